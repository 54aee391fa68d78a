package ingress

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
)

// env is a controller running against a fake clientset, with httptest
// servers standing in for pods.
type env struct {
	t      *testing.T
	client *fake.Clientset
	c      *Controller
	http   string // "127.0.0.1:port"
	https  string
}

func startEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	client := fake.NewClientset()
	factory := informers.NewSharedInformerFactory(client, 0)
	cfg.HTTPAddr, cfg.HTTPSAddr = "127.0.0.1:0", "127.0.0.1:0"
	if testing.Verbose() {
		cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	c, err := New(client, factory, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return")
		}
		factory.Shutdown()
	})
	h, s := c.Addrs()
	return &env{t: t, client: client, c: c, http: h.String(), https: s.String()}
}

// reply is what the test backends answer.
type reply struct {
	Backend string
	Host    string
	Path    string
	Headers http.Header
}

// backend starts a server answering with its name and what it saw.
func backend(t *testing.T, name string) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(reply{Backend: name, Host: r.Host, Path: r.URL.RequestURI(), Headers: r.Header})
	}))
	t.Cleanup(s.Close)
	return s
}

func serverPort(t *testing.T, s *httptest.Server) int32 {
	t.Helper()
	u, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatal(err)
	}
	return int32(p)
}

func (e *env) create(obj any) {
	e.t.Helper()
	ctx := context.Background()
	var err error
	switch o := obj.(type) {
	case *networkingv1.Ingress:
		_, err = e.client.NetworkingV1().Ingresses(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
	case *networkingv1.IngressClass:
		_, err = e.client.NetworkingV1().IngressClasses().Create(ctx, o, metav1.CreateOptions{})
	case *corev1.Service:
		_, err = e.client.CoreV1().Services(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
	case *discoveryv1.EndpointSlice:
		_, err = e.client.DiscoveryV1().EndpointSlices(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
	case *corev1.Secret:
		_, err = e.client.CoreV1().Secrets(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
	default:
		err = fmt.Errorf("unknown type %T", obj)
	}
	if err != nil {
		e.t.Fatalf("create: %v", err)
	}
}

// service creates Service ns/name (port 80 "http") with one EndpointSlice
// per server, all at 127.0.0.1.
func (e *env) service(ns, name string, servers ...*httptest.Server) {
	e.t.Helper()
	e.create(mkService(ns, name, "http"))
	for i, s := range servers {
		e.create(mkSlice(ns, name, fmt.Sprintf("%s-%d", name, i), "http", serverPort(e.t, s), boolPtr(true), "127.0.0.1"))
	}
}

// plainClient never follows redirects.
var plainClient = &http.Client{
	Timeout:       5 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// get sends GET to the proxy with a Host header and returns status, the
// backend's reply (if it answered) and the response.
func (e *env) get(client *http.Client, scheme, addr, host, path string, hdr http.Header) (int, reply, *http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, scheme+"://"+addr+path, nil)
	if err != nil {
		return 0, reply{}, nil, err
	}
	req.Host = host
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, reply{}, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, reply{}, nil, err
	}
	var r reply
	if resp.Header.Get("Content-Type") == "application/json" {
		if err := json.Unmarshal(body, &r); err != nil {
			return 0, reply{}, nil, fmt.Errorf("decode %q: %w", body, err)
		}
	}
	return resp.StatusCode, r, resp, nil
}

// eventually retries f until it succeeds or 10 s pass.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// expect waits until host+path over plain HTTP answers status from backend
// ("" for a response the proxy made itself).
func (e *env) expect(host, path string, status int, backendName string) reply {
	e.t.Helper()
	var last reply
	eventually(e.t, fmt.Sprintf("GET %s%s", host, path), func() error {
		code, r, _, err := e.get(plainClient, "http", e.http, host, path, nil)
		if err != nil {
			return err
		}
		if code != status || r.Backend != backendName {
			return fmt.Errorf("got %d from %q, want %d from %q", code, r.Backend, status, backendName)
		}
		last = r
		return nil
	})
	return last
}

func TestProxyRouting(t *testing.T) {
	e := startEnv(t, Config{})
	a1, a2, b := backend(t, "a1"), backend(t, "a2"), backend(t, "b")
	e.service("ns", "a", a1, a2)
	e.service("ns", "b", b)
	e.create(mkService("ns", "empty", "http"))
	e.create(mkSlice("ns", "empty", "empty-0", "http", serverPort(t, b), boolPtr(false), "127.0.0.1"))
	e.create(mkIngress("ns", "web", 0, withRule("web.test",
		mkPath(networkingv1.PathTypePrefix, "/", "a", 80),
		networkingv1.HTTPIngressPath{
			Path: "/b", PathType: ptr(networkingv1.PathTypePrefix),
			Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "b", Port: networkingv1.ServiceBackendPort{Name: "http"}}},
		},
		mkPath(networkingv1.PathTypeExact, "/empty", "empty", 80),
	)))

	e.expect("web.test", "/b/x", http.StatusOK, "b")
	r := e.expect("Web.Test:8080", "/b?q=1", http.StatusOK, "b")
	if r.Path != "/b?q=1" || r.Host != "Web.Test:8080" {
		t.Errorf("backend saw %s%s, want the request's host and URI", r.Host, r.Path)
	}
	if got := r.Headers.Get("X-Forwarded-For"); got != "127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q, want 127.0.0.1", got)
	}
	if got := r.Headers.Get("X-Forwarded-Proto"); got != "http" {
		t.Errorf("X-Forwarded-Proto = %q, want http", got)
	}
	if got := r.Headers.Get("X-Forwarded-Host"); got != "Web.Test:8080" {
		t.Errorf("X-Forwarded-Host = %q", got)
	}
	_, httpPort, _ := net.SplitHostPort(e.http)
	if got := r.Headers.Get("X-Forwarded-Port"); got != httpPort {
		t.Errorf("X-Forwarded-Port = %q, want %s", got, httpPort)
	}
	// A client's own X-Forwarded-For is not trusted.
	_, r, _, err := e.get(plainClient, "http", e.http, "web.test", "/b", http.Header{"X-Forwarded-For": {"6.6.6.6"}})
	if err != nil || r.Headers.Get("X-Forwarded-For") != "127.0.0.1" {
		t.Errorf("spoofed X-Forwarded-For: %v %q", err, r.Headers.Get("X-Forwarded-For"))
	}

	// Round robin over the two endpoints of a.
	e.expect("web.test", "/", http.StatusOK, "a1")
	seen := map[string]int{}
	for range 10 {
		_, r, _, err := e.get(plainClient, "http", e.http, "web.test", "/", nil)
		if err != nil {
			t.Fatal(err)
		}
		seen[r.Backend]++
	}
	if seen["a1"] != 5 || seen["a2"] != 5 {
		t.Errorf("round robin split %v, want 5 and 5", seen)
	}

	// No ready endpoints: 503; unknown host: 404.
	e.expect("web.test", "/empty", http.StatusServiceUnavailable, "")
	e.expect("other.test", "/", http.StatusNotFound, "")

	// Endpoints becoming ready are picked up.
	ready := mkSlice("ns", "empty", "empty-0", "http", serverPort(t, b), boolPtr(true), "127.0.0.1")
	if _, err := e.client.DiscoveryV1().EndpointSlices("ns").Update(context.Background(), ready, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.expect("web.test", "/empty", http.StatusOK, "b")

	// Deleting the Ingress removes its routes.
	if err := e.client.NetworkingV1().Ingresses("ns").Delete(context.Background(), "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.expect("web.test", "/b", http.StatusNotFound, "")
}

func TestProxyDefaultClassAndBackend(t *testing.T) {
	e := startEnv(t, Config{})
	d := backend(t, "default")
	e.service("ns", "d", d)
	e.create(mkIngress("ns", "catchall", 0, withClass(""), withDefault("d", 80)))
	// Not served while skiff is not the default class.
	e.expect("any.test", "/", http.StatusNotFound, "")
	if err := EnsureIngressClass(context.Background(), e.client); err != nil {
		t.Fatal(err)
	}
	e.expect("any.test", "/x", http.StatusOK, "default")
}

func TestProxyTLS(t *testing.T) {
	e := startEnv(t, Config{})
	s := backend(t, "secure")
	e.service("ns", "s", s)
	cert := makeCert(t, "secure.test", "secure.test")
	e.create(cert.secret("ns", "secure-tls"))
	e.create(mkIngress("ns", "secure", 0, withTLS("secure-tls", "secure.test"), withRule("secure.test", prefix("/", "s"))))
	e.create(mkIngress("ns", "noredirect", 1,
		withAnnotation("nginx.ingress.kubernetes.io/ssl-redirect", "false"),
		withTLS("secure-tls", "plain.test"), withRule("plain.test", prefix("/", "s"))))

	// Plain HTTP to a TLS host is redirected with 308, keeping the URI.
	_, httpsPort, _ := net.SplitHostPort(e.https)
	eventually(t, "redirect", func() error {
		code, _, resp, err := e.get(plainClient, "http", e.http, "secure.test", "/a/b?c=d", nil)
		if err != nil {
			return err
		}
		want := "https://secure.test:" + httpsPort + "/a/b?c=d"
		if code != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
			return fmt.Errorf("got %d Location %q, want 308 %q", code, resp.Header.Get("Location"), want)
		}
		return nil
	})
	// ssl-redirect: "false" keeps plain HTTP.
	e.expect("plain.test", "/", http.StatusOK, "secure")

	// HTTPS with the Secret's certificate, chosen by SNI, over HTTP/2.
	pool := x509.NewCertPool()
	pool.AddCert(cert.leaf)
	h2 := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool, ServerName: "secure.test"},
		ForceAttemptHTTP2: true,
	}}
	code, r, resp, err := e.get(h2, "https", e.https, "secure.test", "/x", nil)
	if err != nil || code != http.StatusOK || r.Backend != "secure" {
		t.Fatalf("HTTPS: %d %q %v", code, r.Backend, err)
	}
	if resp.ProtoMajor != 2 {
		t.Errorf("HTTPS protocol %s, want HTTP/2", resp.Proto)
	}
	if got := r.Headers.Get("X-Forwarded-Proto"); got != "https" {
		t.Errorf("X-Forwarded-Proto = %q, want https", got)
	}

	// Another server name gets the self-signed certificate.
	conn, err := tls.Dial("tcp", e.https, &tls.Config{ServerName: "unknown.test", InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	peer := conn.ConnectionState().PeerCertificates[0]
	_ = conn.Close()
	if peer.Subject.CommonName != "Skiff ingress default certificate" {
		t.Errorf("unknown SNI got certificate %q", peer.Subject.CommonName)
	}

	// Replacing the Secret's certificate is picked up.
	cert2 := makeCert(t, "secure.test renewed", "secure.test")
	if _, err := e.client.CoreV1().Secrets("ns").Update(context.Background(), cert2.secret("ns", "secure-tls"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "renewed certificate", func() error {
		conn, err := tls.Dial("tcp", e.https, &tls.Config{ServerName: "secure.test", InsecureSkipVerify: true})
		if err != nil {
			return err
		}
		defer conn.Close()
		if cn := conn.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "secure.test renewed" {
			return fmt.Errorf("certificate %q", cn)
		}
		return nil
	})
}

func TestProxyH2C(t *testing.T) {
	e := startEnv(t, Config{})
	e.service("ns", "a", backend(t, "a"))
	e.create(mkIngress("ns", "a", 0, withRule("", prefix("/", "a"))))
	e.expect("h2c.test", "/", http.StatusOK, "a")
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	code, r, resp, err := e.get(&http.Client{Transport: tr, Timeout: 5 * time.Second}, "http", e.http, "h2c.test", "/", nil)
	if err != nil || code != http.StatusOK || r.Backend != "a" {
		t.Fatalf("h2c: %d %q %v", code, r.Backend, err)
	}
	if resp.ProtoMajor != 2 {
		t.Errorf("protocol %s, want HTTP/2", resp.Proto)
	}
}

func TestProxyWebSocket(t *testing.T) {
	e := startEnv(t, Config{})
	up := websocket.Upgrader{}
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		for {
			mt, msg, err := conn.ReadMessage()
			if err != nil {
				return
			}
			if err := conn.WriteMessage(mt, append([]byte("echo: "), msg...)); err != nil {
				return
			}
		}
	}))
	t.Cleanup(echo.Close)
	e.service("ns", "ws", echo)
	e.create(mkIngress("ns", "ws", 0, withRule("ws.test", prefix("/ws", "ws"))))
	e.expect("ws.test", "/ws", http.StatusBadRequest, "") // the echo server refuses a plain GET

	conn, resp, err := websocket.DefaultDialer.Dial("ws://"+e.http+"/ws", http.Header{"Host": {"ws.test"}})
	if err != nil {
		t.Fatalf("dial through the proxy: %v (%v)", err, resp)
	}
	defer conn.Close()
	for i := range 3 {
		msg := fmt.Sprintf("hello %d", i)
		if err := conn.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, got, err := conn.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != "echo: "+msg {
			t.Errorf("got %q, want %q", got, "echo: "+msg)
		}
	}
}

func TestProxyCanary(t *testing.T) {
	e := startEnv(t, Config{})
	e.service("ns", "stable", backend(t, "stable"))
	e.service("ns", "next", backend(t, "next"))
	e.create(mkIngress("ns", "main", 0, withRule("app.test", prefix("/", "stable"))))
	e.create(mkIngress("ns", "canary", 1, withCanary("30"),
		withAnnotation("nginx.ingress.kubernetes.io/canary-by-header", "X-Canary"),
		withRule("app.test", prefix("/", "next"))))

	eventually(t, "canary by header", func() error {
		_, r, _, err := e.get(plainClient, "http", e.http, "app.test", "/", http.Header{"X-Canary": {"always"}})
		if err != nil {
			return err
		}
		if r.Backend != "next" {
			return fmt.Errorf("header always went to %q", r.Backend)
		}
		return nil
	})
	const n = 1000
	hits := 0
	for range n {
		_, r, _, err := e.get(plainClient, "http", e.http, "app.test", "/", nil)
		if err != nil {
			t.Fatal(err)
		}
		switch r.Backend {
		case "next":
			hits++
		case "stable":
		default:
			t.Fatalf("request went to %q", r.Backend)
		}
	}
	if hits < 250 || hits > 350 {
		t.Errorf("canary took %d of %d requests, want 300±50", hits, n)
	}
}

func TestProxyEventsAndStatus(t *testing.T) {
	e := startEnv(t, Config{UpdateStatus: true, NodeAddresses: func() []string { return []string{"192.0.2.10", "node1.example"} }})
	e.service("ns", "good", backend(t, "good"))
	e.create(mkIngress("ns", "good", 0, withRule("app.test", prefix("/", "good"))))
	e.create(mkIngress("ns", "bad", 1,
		withTLS("no-such-secret", "bad.test"),
		withRule("app.test", prefix("/", "good")),    // claimed by the older "good"
		withRule("bad.test", prefix("/", "missing")), // no such Service
	))
	e.expect("app.test", "/", http.StatusOK, "good")
	e.expect("bad.test", "/x", http.StatusPermanentRedirect, "")

	eventually(t, "warning events", func() error {
		evs, err := e.client.CoreV1().Events("ns").List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return err
		}
		want := map[string]bool{ReasonRouteConflict: false, ReasonServiceNotFound: false, ReasonSecretNotFound: false}
		for _, ev := range evs.Items {
			if ev.InvolvedObject.Kind != "Ingress" || ev.InvolvedObject.Name != "bad" || ev.Type != corev1.EventTypeWarning {
				return fmt.Errorf("unexpected event %s %s on %s/%s: %s", ev.Type, ev.Reason, ev.InvolvedObject.Kind, ev.InvolvedObject.Name, ev.Message)
			}
			want[ev.Reason] = true
		}
		for r, ok := range want {
			if !ok {
				return fmt.Errorf("no %s event (have %d events)", r, len(evs.Items))
			}
		}
		return nil
	})

	eventually(t, "status", func() error {
		for _, name := range []string{"good", "bad"} {
			ing, err := e.client.NetworkingV1().Ingresses("ns").Get(context.Background(), name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			want := []networkingv1.IngressLoadBalancerIngress{{IP: "192.0.2.10"}, {Hostname: "node1.example"}}
			if !sameAddresses(ing.Status.LoadBalancer.Ingress, want) {
				return fmt.Errorf("%s status %+v", name, ing.Status.LoadBalancer.Ingress)
			}
		}
		return nil
	})
}

func TestNoEventsWithoutUpdateStatus(t *testing.T) {
	e := startEnv(t, Config{NodeAddresses: func() []string { return []string{"192.0.2.10"} }})
	e.create(mkIngress("ns", "bad", 0, withRule("bad.test", prefix("/", "missing"))))
	e.expect("bad.test", "/", http.StatusServiceUnavailable, "")
	time.Sleep(300 * time.Millisecond) // give a wrong event or status write time to land
	evs, err := e.client.CoreV1().Events("ns").List(context.Background(), metav1.ListOptions{})
	if err != nil || len(evs.Items) != 0 {
		t.Errorf("events from a non-writer: %v %+v", err, evs.Items)
	}
	ing, err := e.client.NetworkingV1().Ingresses("ns").Get(context.Background(), "bad", metav1.GetOptions{})
	if err != nil || len(ing.Status.LoadBalancer.Ingress) != 0 {
		t.Errorf("status written by a non-writer: %v %+v", err, ing.Status)
	}
}

func TestEnsureIngressClass(t *testing.T) {
	ctx := context.Background()
	client := fake.NewClientset()
	for range 2 {
		if err := EnsureIngressClass(ctx, client); err != nil {
			t.Fatal(err)
		}
	}
	ic, err := client.NetworkingV1().IngressClasses().Get(ctx, "skiff", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ic.Spec.Controller != ControllerName || ic.Annotations[defaultClassAnnotation] != "true" {
		t.Errorf("IngressClass = %+v", ic)
	}
	// An administrator's change is kept.
	ic.Annotations = nil
	if _, err := client.NetworkingV1().IngressClasses().Update(ctx, ic, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := EnsureIngressClass(ctx, client); err != nil {
		t.Fatal(err)
	}
	ic, err = client.NetworkingV1().IngressClasses().Get(ctx, "skiff", metav1.GetOptions{})
	if err != nil || ic.Annotations[defaultClassAnnotation] == "true" {
		t.Errorf("EnsureIngressClass changed an existing class: %v %+v", err, ic)
	}
}

func TestLoad(t *testing.T) {
	e := startEnv(t, Config{})
	e.service("ns", "a", backend(t, "a"))
	e.create(mkIngress("ns", "a", 0, withRule("", prefix("/", "a"))))
	e.expect("", "/", http.StatusOK, "a")
	rps, p99 := Load(context.Background(), "http://"+e.http+"/", 4, 300*time.Millisecond)
	t.Logf("%.0f requests/s, p99 %v", rps, p99)
	if rps <= 0 || p99 <= 0 {
		t.Errorf("Load = %v rps, p99 %v", rps, p99)
	}
	// Nothing listening: no requests complete.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	if rps, _ := Load(context.Background(), "http://"+addr+"/", 2, 100*time.Millisecond); rps != 0 {
		t.Errorf("Load against a closed port = %v rps", rps)
	}
}

func TestNewListenError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client := fake.NewClientset()
	_, err = New(client, informers.NewSharedInformerFactory(client, 0), Config{HTTPAddr: "127.0.0.1:0", HTTPSAddr: ln.Addr().String()})
	var opErr *net.OpError
	if !errors.As(err, &opErr) {
		t.Errorf("New on a used port: %v, want a listen error", err)
	}
}

// TestStatusWriter: the controller manager's copy opens no listener, makes
// the default IngressClass, and writes status (the Ready nodes' addresses)
// and Warning events.
func TestStatusWriter(t *testing.T) {
	client := fake.NewClientset()
	factory := informers.NewSharedInformerFactory(client, 0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "n1"},
		Status: corev1.NodeStatus{
			Addresses:  []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.0.2.21"}},
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
		},
	}
	if _, err := client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	w, err := NewStatusWriter(client, factory, nil)
	if err != nil {
		t.Fatal(err)
	}
	if w.c.httpLn != nil || w.c.httpsLn != nil {
		t.Fatal("the status writer opened listeners")
	}
	done := make(chan error, 1)
	go func() { done <- w.Start(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Start: %v", err)
		}
	}()
	if _, err := client.NetworkingV1().Ingresses("ns").Create(ctx, mkIngress("ns", "web", 0, withRule("app.test", prefix("/", "missing"))), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "class, status and event", func() error {
		if _, err := client.NetworkingV1().IngressClasses().Get(ctx, DefaultClassName, metav1.GetOptions{}); err != nil {
			return err
		}
		ing, err := client.NetworkingV1().Ingresses("ns").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if want := []networkingv1.IngressLoadBalancerIngress{{IP: "192.0.2.21"}}; !sameAddresses(ing.Status.LoadBalancer.Ingress, want) {
			return fmt.Errorf("status %+v", ing.Status.LoadBalancer.Ingress)
		}
		evs, err := client.CoreV1().Events("ns").List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		for _, ev := range evs.Items {
			if ev.Reason == ReasonServiceNotFound {
				return nil
			}
		}
		return fmt.Errorf("no %s event among %d", ReasonServiceNotFound, len(evs.Items))
	})
}
