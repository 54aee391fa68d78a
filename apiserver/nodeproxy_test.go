package apiserver

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	restclient "k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/tools/remotecommand"
	clientspdy "k8s.io/client-go/transport/spdy"
	streamhttp "k8s.io/streaming/pkg/httpstream"
	"k8s.io/streaming/pkg/httpstream/spdy"

	"github.com/skiff-sh/skiff/pki"
	"github.com/skiff-sh/skiff/storage"
)

func TestPodContainer(t *testing.T) {
	pod := func(annotation string, init []string, names ...string) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web"}}
		if annotation != "" {
			p.Annotations = map[string]string{defaultContainerAnnotation: annotation}
		}
		for _, n := range init {
			p.Spec.InitContainers = append(p.Spec.InitContainers, corev1.Container{Name: n})
		}
		for _, n := range names {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: n})
		}
		return p
	}
	cases := []struct {
		name      string
		pod       *corev1.Pod
		requested string
		want      string
		wantErr   string
	}{
		{name: "only container", pod: pod("", nil, "app"), want: "app"},
		{name: "requested", pod: pod("", nil, "app", "side"), requested: "side", want: "side"},
		{name: "requested init container", pod: pod("", []string{"setup"}, "app"), requested: "setup", want: "setup"},
		{name: "annotation", pod: pod("side", nil, "app", "side"), want: "side"},
		{name: "only container wins over annotation", pod: pod("other", nil, "app"), want: "app"},
		{name: "unknown container", pod: pod("", nil, "app"), requested: "nope", wantErr: "container nope is not valid for pod web"},
		{name: "choices", pod: pod("", []string{"setup"}, "app", "side"), wantErr: "a container name must be specified for pod web, choose one of: [setup app side]"},
		{name: "annotation naming nothing", pod: pod("ghost", nil, "app", "side"), wantErr: "a container name must be specified for pod web, choose one of: [app side]"},
		{name: "no containers", pod: pod("", nil), wantErr: "a container name must be specified for pod web"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := podContainer(c.pod, c.requested)
			if c.wantErr != "" {
				if err == nil || err.Error() != c.wantErr || !apierrors.IsBadRequest(err) {
					t.Fatalf("err = %v, want 400 %q", err, c.wantErr)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("got %q, %v; want %q", got, err, c.want)
			}
		})
	}
}

func TestAgentHost(t *testing.T) {
	node := func(port int32, addrs ...corev1.NodeAddress) *corev1.Node {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}
		n.Status.Addresses = addrs
		n.Status.DaemonEndpoints.KubeletEndpoint.Port = port
		return n
	}
	internal := corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "10.0.0.5"}
	external := corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: "203.0.113.9"}
	hostname := corev1.NodeAddress{Type: corev1.NodeHostName, Address: "n1.local"}
	v6 := corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "fd00::5"}
	cases := []struct {
		name string
		node *corev1.Node
		port string
		want string
	}{
		{name: "internal IP first", node: node(10250, hostname, external, internal), want: "10.0.0.5:10250"},
		{name: "external without internal", node: node(10250, hostname, external), want: "203.0.113.9:10250"},
		{name: "hostname last resort", node: node(10250, hostname), want: "n1.local:10250"},
		{name: "default port", node: node(0, internal), want: "10.0.0.5:10250"},
		{name: "node's port", node: node(11250, internal), want: "10.0.0.5:11250"},
		{name: "explicit port", node: node(10250, internal), port: "4194", want: "10.0.0.5:4194"},
		{name: "IPv6", node: node(10250, v6), want: "[fd00::5]:10250"},
	}
	for _, c := range cases {
		got, err := agentHost(c.node, c.port)
		if err != nil || got != c.want {
			t.Errorf("%s: got %q, %v; want %q", c.name, got, err, c.want)
		}
	}
	if _, err := agentHost(node(10250), ""); !apierrors.IsServiceUnavailable(err) {
		t.Errorf("node without addresses: %v, want 503", err)
	}
}

func TestPodLogOptions(t *testing.T) {
	cases := []struct {
		query     string
		wantQuery string
		wantCode  int32
		wantMsg   string
	}{
		{query: "", wantQuery: ""},
		{query: "container=app&follow=true&previous=1&timestamps=TRUE", wantQuery: "follow=true&previous=true&timestamps=true"},
		{query: "follow=false&previous=0", wantQuery: ""},
		{query: "tailLines=10&limitBytes=100&sinceSeconds=30", wantQuery: "limitBytes=100&sinceSeconds=30&tailLines=10"},
		{query: "sinceTime=2025-03-01T10:00:00%2B01:00", wantQuery: "sinceTime=2025-03-01T09%3A00%3A00Z"},
		{query: "stream=Stdout", wantQuery: "stream=Stdout"},
		{query: "tailLines=ten", wantCode: 400, wantMsg: `tailLines "ten" is not an integer`},
		{query: "sinceTime=noon", wantCode: 400, wantMsg: `sinceTime "noon" is not an RFC 3339 time`},
		{query: "tailLines=-1", wantCode: 422, wantMsg: `PodLogOptions "web" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0`},
		{query: "limitBytes=0", wantCode: 422, wantMsg: "limitBytes: Invalid value: 0: must be greater than 0"},
		{query: "sinceSeconds=0", wantCode: 422, wantMsg: "sinceSeconds: Invalid value: 0: must be greater than 0"},
		{query: "sinceSeconds=1&sinceTime=2025-03-01T10:00:00Z", wantCode: 422, wantMsg: "at most one of `sinceTime` or `sinceSeconds` may be specified"},
		{query: "stream=Both", wantCode: 422, wantMsg: `stream: Unsupported value: "Both"`},
		{query: "stream=Stderr&tailLines=1", wantCode: 422, wantMsg: "`tailLines` and specific `stream` are mutually exclusive for now"},
	}
	for _, c := range cases {
		q, err := url.ParseQuery(c.query)
		if err != nil {
			t.Fatal(err)
		}
		o, err := podLogOptions("web", q)
		if c.wantCode != 0 {
			var st apierrors.APIStatus
			if err == nil || !asStatus(err, &st) || st.Status().Code != c.wantCode || !strings.Contains(err.Error(), c.wantMsg) {
				t.Errorf("%q: err = %v, want %d %q", c.query, err, c.wantCode, c.wantMsg)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.query, err)
			continue
		}
		if got := logQuery(o).Encode(); got != c.wantQuery {
			t.Errorf("%q: agent query %q, want %q", c.query, got, c.wantQuery)
		}
	}
}

func asStatus(err error, st *apierrors.APIStatus) bool {
	s, ok := err.(apierrors.APIStatus)
	*st = s
	return ok
}

func TestStreamQuery(t *testing.T) {
	cases := []struct {
		sub, query, want, wantErr string
	}{
		{sub: "exec", query: "container=c&command=sh&command=-c&command=ls+%2F&stdin=true&stdout=true&tty=false", want: "command=sh&command=-c&command=ls+%2F&stdin=1&stdout=1"},
		{sub: "attach", query: "command=ignored&stderr=1&tty=true", want: "stderr=1&tty=1"},
		{sub: "portforward", query: "ports=80&ports=8080,9090", want: "port=80%2C8080%2C9090"},
		{sub: "portforward", query: "", want: ""},
		{sub: "portforward", query: "ports=http", wantErr: `invalid port "http"`},
		{sub: "portforward", query: "ports=0", wantErr: `invalid port "0"`},
	}
	for _, c := range cases {
		q, _ := url.ParseQuery(c.query)
		got, err := streamQuery(c.sub, q)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) || !apierrors.IsBadRequest(err) {
				t.Errorf("%s %q: err %v, want %q", c.sub, c.query, err, c.wantErr)
			}
			continue
		}
		if err != nil || got.Encode() != c.want {
			t.Errorf("%s %q: got %q, %v; want %q", c.sub, c.query, got.Encode(), err, c.want)
		}
	}
}

func TestNodeProxyPath(t *testing.T) {
	cases := map[string]string{
		"/api/v1/nodes/n1/proxy":              "",
		"/api/v1/nodes/n1/proxy/":             "/",
		"/api/v1/nodes/n1/proxy/healthz":      "/healthz",
		"/api/v1/nodes/n1:10255/proxy/stats/": "/stats/",
	}
	for p, want := range cases {
		name := strings.Split(strings.TrimPrefix(p, "/api/v1/nodes/"), "/")[0]
		if got := nodeProxyPath(p, name); got != want {
			t.Errorf("%s: %q, want %q", p, got, want)
		}
	}
}

// memStore keeps objects in memory for the proxy tests; only Get and
// Create are used.
type memStore struct {
	storage.Interface
	mu  sync.Mutex
	kvs map[string]storage.KV
	rev int64
}

func (m *memStore) Get(_ context.Context, key string) (storage.KV, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	kv, ok := m.kvs[key]
	if !ok {
		return storage.KV{}, storage.ErrNotFound
	}
	return kv, nil
}

func (m *memStore) Create(_ context.Context, key string, value []byte) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.kvs[key]; ok {
		return 0, storage.ErrExists
	}
	m.rev++
	m.kvs[key] = storage.KV{Key: key, Value: value, Revision: m.rev, CreateRevision: m.rev}
	return m.rev, nil
}

// proxyFixture is an API server whose pods live on a fake agent.
type proxyFixture struct {
	api   *httptest.Server
	agent *fakeAgent
	rest  *restclient.Config
}

// fakeAgent plays the node agent: logs from memory, and SPDY exec and
// port-forward sessions that answer in upper case.
type fakeAgent struct {
	mu       sync.Mutex
	requests []string
	users    []string
}

func (a *fakeAgent) record(r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.requests = append(a.requests, r.Method+" "+r.URL.RequestURI())
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		a.users = append(a.users, r.TLS.PeerCertificates[0].Subject.CommonName)
	}
}

func (a *fakeAgent) last() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.requests) == 0 {
		return ""
	}
	return a.requests[len(a.requests)-1]
}

func (a *fakeAgent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.record(r)
	switch {
	case strings.HasPrefix(r.URL.Path, "/containerLogs/default/web/"), strings.HasPrefix(r.URL.Path, "/containerLogs/default/multi/"):
		_, _ = io.WriteString(w, "hello\nworld\n")
	case strings.HasPrefix(r.URL.Path, "/containerLogs/default/crashed/"):
		http.Error(w, `previous terminated container "app" in pod "crashed" not found`, http.StatusBadRequest)
	case strings.HasPrefix(r.URL.Path, "/containerLogs/"):
		http.Error(w, "no such pod here", http.StatusNotFound)
	case strings.HasPrefix(r.URL.Path, "/exec/"):
		serveFakeExec(w, r)
	case strings.HasPrefix(r.URL.Path, "/portForward/"):
		serveFakePortForward(w, r)
	case r.URL.Path == "/healthz":
		_, _ = io.WriteString(w, "ok "+r.URL.RawQuery)
	default:
		http.NotFound(w, r)
	}
}

// acceptStreams upgrades to SPDY and collects want streams by type.
func acceptStreams(w http.ResponseWriter, r *http.Request, protocol string, want int) (streamhttp.Connection, map[string]streamhttp.Stream, chan streamhttp.Stream) {
	if _, err := streamhttp.Handshake(r, w, []string{protocol}); err != nil {
		return nil, nil, nil
	}
	streams := make(chan streamhttp.Stream, 16)
	conn := spdy.NewResponseUpgrader().UpgradeResponse(w, r, func(s streamhttp.Stream, _ <-chan struct{}) error {
		streams <- s
		return nil
	})
	if conn == nil {
		return nil, nil, nil
	}
	byType := map[string]streamhttp.Stream{}
	timeout := time.After(10 * time.Second)
	for len(byType) < want {
		select {
		case s := <-streams:
			byType[s.Headers().Get(corev1.StreamType)] = s
		case <-timeout:
			_ = conn.Close()
			return nil, nil, nil
		}
	}
	return conn, byType, streams
}

// serveFakeExec runs "upper case stdin to stdout" over the v4 protocol.
func serveFakeExec(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("stdin") != "1" || q.Get("stdout") != "1" {
		http.Error(w, "the fake wants stdin and stdout", http.StatusBadRequest)
		return
	}
	conn, streams, _ := acceptStreams(w, r, "v4.channel.k8s.io", 3)
	if conn == nil {
		return
	}
	defer func() { _ = conn.Close() }()
	in, _ := io.ReadAll(streams[corev1.StreamTypeStdin])
	_, _ = streams[corev1.StreamTypeStdout].Write(bytes.ToUpper(in))
	_ = streams[corev1.StreamTypeStdout].Close()
	_ = streams[corev1.StreamTypeError].Close()
	select {
	case <-conn.CloseChan():
	case <-time.After(10 * time.Second):
	}
}

// serveFakePortForward answers every forwarded connection in upper case.
func serveFakePortForward(w http.ResponseWriter, r *http.Request) {
	conn, _, streams := acceptStreams(w, r, "portforward.k8s.io", 0)
	if conn == nil {
		return
	}
	defer func() { _ = conn.Close() }()
	for {
		select {
		case s := <-streams:
			if s.Headers().Get(corev1.StreamType) != corev1.StreamTypeData {
				continue
			}
			go func() {
				buf := make([]byte, 1024)
				for {
					n, err := s.Read(buf)
					if n > 0 {
						_, _ = s.Write(bytes.ToUpper(buf[:n]))
					}
					if err != nil {
						_ = s.Close()
						return
					}
				}
			}()
		case <-conn.CloseChan():
			return
		case <-time.After(30 * time.Second):
			return
		}
	}
}

func newProxyFixture(t *testing.T, withClient bool) *proxyFixture {
	t.Helper()
	now := time.Now()
	ca, err := pki.EnsureCA(t.TempDir(), "ca", now)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	pair := func(certPEM, keyPEM []byte, err error) tls.Certificate {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		c, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	serving := pair(ca.IssueServer("node-a", nil, []net.IP{net.ParseIP("127.0.0.1")}, time.Hour, now))
	client := pair(ca.IssueClient("skiff:apiserver", nil, time.Hour, now))

	agent := &fakeAgent{}
	agentSrv := httptest.NewUnstartedServer(agent)
	agentSrv.TLS = &tls.Config{Certificates: []tls.Certificate{serving}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert}
	agentSrv.StartTLS()
	t.Cleanup(agentSrv.Close)
	_, portStr, _ := net.SplitHostPort(agentSrv.Listener.Addr().String())
	port, _ := strconv.Atoi(portStr)

	cfg := Config{Store: &memStore{kvs: map[string]storage.KV{}}}
	if withClient {
		cfg.KubeletClient = &tls.Config{Certificates: []tls.Certificate{client}, RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	create := func(resource string, obj runtime.Object) {
		t.Helper()
		res, ok := s.catalog.Lookup(corev1.SchemeGroupVersion.WithResource(resource))
		if !ok {
			t.Fatalf("no %s", resource)
		}
		if _, err := s.objects.create(ctx, res, obj); err != nil {
			t.Fatal(err)
		}
	}
	pod := func(name, node string, containers ...string) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}, Spec: corev1.PodSpec{NodeName: node}}
		for _, c := range containers {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c, Image: "busybox"})
		}
		return p
	}
	create("pods", pod("web", "node-a", "app"))
	create("pods", pod("multi", "node-a", "app", "side"))
	create("pods", pod("crashed", "node-a", "app"))
	create("pods", pod("pending", "", "app"))
	create("pods", pod("stranded", "node-x", "app"))
	create("pods", pod("lost", "node-noaddr", "app"))
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}}
	node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: "node-a"}, {Type: corev1.NodeInternalIP, Address: "127.0.0.1"}}
	node.Status.DaemonEndpoints.KubeletEndpoint.Port = int32(port)
	create("nodes", node)
	create("nodes", &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-noaddr"}})

	api := httptest.NewServer(s.Handler())
	t.Cleanup(api.Close)
	return &proxyFixture{api: api, agent: agent, rest: &restclient.Config{Host: api.URL}}
}

// status decodes a Status answer.
func status(t *testing.T, body []byte) metav1.Status {
	t.Helper()
	var st metav1.Status
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatalf("not a Status: %q", body)
	}
	return st
}

func TestNodeProxyPodLog(t *testing.T) {
	f := newProxyFixture(t, true)
	cases := []struct {
		path      string
		wantCode  int
		wantBody  string
		wantAgent string
	}{
		{path: "/api/v1/namespaces/default/pods/web/log?follow=true&tailLines=5", wantCode: 200, wantBody: "hello\nworld\n",
			wantAgent: "GET /containerLogs/default/web/app?follow=true&tailLines=5"},
		{path: "/api/v1/namespaces/default/pods/multi/log?container=side&timestamps=1", wantCode: 200, wantBody: "hello\nworld\n",
			wantAgent: "GET /containerLogs/default/multi/side?timestamps=true"},
		{path: "/api/v1/namespaces/default/pods/pending/log", wantCode: 200, wantBody: ""},
		{path: "/api/v1/namespaces/default/pods/crashed/log?previous=true", wantCode: 400, wantBody: `previous terminated container "app" in pod "crashed" not found`},
		{path: "/api/v1/namespaces/default/pods/multi/log", wantCode: 400, wantBody: "a container name must be specified for pod multi, choose one of: [app side]"},
		{path: "/api/v1/namespaces/default/pods/web/log?container=nope", wantCode: 400, wantBody: "container nope is not valid for pod web"},
		{path: "/api/v1/namespaces/default/pods/ghost/log", wantCode: 404, wantBody: `pods "ghost" not found`},
		{path: "/api/v1/namespaces/default/pods/stranded/log", wantCode: 404, wantBody: `nodes "node-x" not found`},
		{path: "/api/v1/namespaces/default/pods/lost/log", wantCode: 503, wantBody: "node node-noaddr has no address"},
		{path: "/api/v1/namespaces/default/pods/web/log?tailLines=-2", wantCode: 422, wantBody: "tailLines: Invalid value: -2"},
		{path: "/api/v1/namespaces/default/pods/web/log?limitBytes=x", wantCode: 400, wantBody: `limitBytes "x" is not an integer`},
	}
	for _, c := range cases {
		before := f.agent.last()
		resp, err := http.Get(f.api.URL + c.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != c.wantCode {
			t.Errorf("%s: %d %q, want %d", c.path, resp.StatusCode, body, c.wantCode)
			continue
		}
		if c.wantCode == 200 {
			if string(body) != c.wantBody {
				t.Errorf("%s: body %q, want %q", c.path, body, c.wantBody)
			}
		} else if st := status(t, body); !strings.Contains(st.Message, c.wantBody) {
			t.Errorf("%s: message %q, want %q", c.path, st.Message, c.wantBody)
		}
		if c.wantAgent != "" && f.agent.last() != c.wantAgent {
			t.Errorf("%s: agent saw %q, want %q", c.path, f.agent.last(), c.wantAgent)
		}
		if c.wantAgent == "" && f.agent.last() != before && c.wantCode != 400 {
			t.Errorf("%s: the agent was called: %q", c.path, f.agent.last())
		}
	}
	f.agent.mu.Lock()
	for _, u := range f.agent.users {
		if u != "skiff:apiserver" {
			t.Errorf("agent called as %q", u)
		}
	}
	f.agent.mu.Unlock()

	noClient := newProxyFixture(t, false)
	resp, err := http.Get(noClient.api.URL + "/api/v1/namespaces/default/pods/web/log")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("without agent credentials: %d, want 503", resp.StatusCode)
	}
}

func TestNodeProxyExec(t *testing.T) {
	f := newProxyFixture(t, true)
	execURL := f.api.URL + "/api/v1/namespaces/default/pods/web/exec?command=cat&stdin=true&stdout=true"
	u, _ := url.Parse(execURL)
	run := func(t *testing.T, e remotecommand.Executor) {
		t.Helper()
		var out bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := e.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: strings.NewReader("hello exec"), Stdout: &out}); err != nil {
			t.Fatal(err)
		}
		if out.String() != "HELLO EXEC" {
			t.Fatalf("stdout %q", out.String())
		}
		if want := "POST /exec/default/web/app?command=cat&stdin=1&stdout=1"; f.agent.last() != want {
			t.Fatalf("agent saw %q, want %q", f.agent.last(), want)
		}
	}
	t.Run("SPDY", func(t *testing.T) {
		e, err := remotecommand.NewSPDYExecutor(f.rest, "POST", u)
		if err != nil {
			t.Fatal(err)
		}
		run(t, e)
	})
	t.Run("WebSocket v5", func(t *testing.T) {
		e, err := remotecommand.NewWebSocketExecutor(f.rest, "GET", execURL)
		if err != nil {
			t.Fatal(err)
		}
		run(t, e)
	})
	t.Run("errors", func(t *testing.T) {
		cases := []struct {
			method, path string
			wantCode     int
			wantMsg      string
		}{
			{"POST", "/api/v1/namespaces/default/pods/pending/exec?command=ls&stdout=1", 400, "pod pending does not have a host assigned"},
			{"POST", "/api/v1/namespaces/default/pods/web/exec?command=ls&stdout=1", 400, "Upgrade request required"},
			{"POST", "/api/v1/namespaces/default/pods/web/exec?command=ls&container=x", 400, "container x is not valid for pod web"},
			{"PUT", "/api/v1/namespaces/default/pods/web/exec?command=ls", 405, "update"},
			{"POST", "/api/v1/namespaces/default/pods/web/log", 405, "create"},
			{"GET", "/api/v1/namespaces/default/pods/web/proxy", 501, "pods/proxy is not supported"},
		}
		for _, c := range cases {
			req, _ := http.NewRequest(c.method, f.api.URL+c.path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != c.wantCode || !strings.Contains(status(t, body).Message, c.wantMsg) {
				t.Errorf("%s %s: %d %q, want %d %q", c.method, c.path, resp.StatusCode, body, c.wantCode, c.wantMsg)
			}
		}
	})
}

func TestNodeProxyPortForward(t *testing.T) {
	f := newProxyFixture(t, true)
	u, _ := url.Parse(f.api.URL + "/api/v1/namespaces/default/pods/web/portforward")
	forward := func(t *testing.T, dialer streamhttp.Dialer) {
		t.Helper()
		stop, ready := make(chan struct{}), make(chan struct{})
		pf, err := portforward.NewOnAddressesForStreaming(dialer, []string{"127.0.0.1"}, []string{":80"}, stop, ready, io.Discard, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		errc := make(chan error, 1)
		go func() { errc <- pf.ForwardPorts() }()
		defer func() {
			close(stop)
			if err := <-errc; err != nil {
				t.Errorf("ForwardPorts: %v", err)
			}
		}()
		select {
		case <-ready:
		case err := <-errc:
			t.Fatalf("port-forward ended: %v", err)
		case <-time.After(20 * time.Second):
			t.Fatal("port-forward not ready")
		}
		ports, err := pf.GetPorts()
		if err != nil {
			t.Fatal(err)
		}
		conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", ports[0].Local))
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = conn.Close() }()
		if _, err := conn.Write([]byte("abc")); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 3)
		if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "ABC" {
			t.Fatalf("read %q, %v", buf, err)
		}
		if !strings.HasPrefix(f.agent.last(), "POST /portForward/default/web") {
			t.Fatalf("agent saw %q", f.agent.last())
		}
	}
	t.Run("SPDY", func(t *testing.T) {
		transport, upgrader, err := clientspdy.RoundTripperFor(f.rest)
		if err != nil {
			t.Fatal(err)
		}
		forward(t, clientspdy.NewDialerForStreaming(upgrader, &http.Client{Transport: transport}, "POST", u))
	})
	t.Run("SPDY over WebSocket", func(t *testing.T) {
		dialer, err := portforward.NewSPDYOverWebsocketDialerForStreaming(u, f.rest)
		if err != nil {
			t.Fatal(err)
		}
		forward(t, dialer)
	})
}

func TestNodeProxyNodes(t *testing.T) {
	f := newProxyFixture(t, true)
	cases := []struct {
		path      string
		wantCode  int
		wantBody  string
		wantAgent string
	}{
		{path: "/api/v1/nodes/node-a/proxy/healthz?verbose=1", wantCode: 200, wantBody: "ok verbose=1", wantAgent: "GET /healthz?verbose=1"},
		{path: "/api/v1/nodes/node-a/proxy/nothing", wantCode: 404},
		{path: "/api/v1/nodes/node-x/proxy/healthz", wantCode: 404, wantBody: `nodes "node-x" not found`},
		{path: "/api/v1/nodes/node-noaddr/proxy/healthz", wantCode: 503},
	}
	for _, c := range cases {
		resp, err := http.Get(f.api.URL + c.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		text := string(body)
		if resp.StatusCode != http.StatusOK && resp.Header.Get("Content-Type") == "application/json" {
			text = status(t, body).Message
		}
		if resp.StatusCode != c.wantCode || !strings.Contains(text, c.wantBody) {
			t.Errorf("%s: %d %q, want %d %q", c.path, resp.StatusCode, body, c.wantCode, c.wantBody)
		}
		if c.wantAgent != "" && f.agent.last() != c.wantAgent {
			t.Errorf("%s: agent saw %q, want %q", c.path, f.agent.last(), c.wantAgent)
		}
	}
}
