package node

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/skiff-sh/skiff/pki"
	"github.com/skiff-sh/skiff/test/framework"
)

// TestIngress routes through the built-in ingress controller of a real
// node to demo pods: host and path rules, TLS with a certificate from the
// cluster CA, the HTTP to HTTPS redirect, a canary split and a WebSocket.
func TestIngress(t *testing.T) {
	c := startClusterWith(t, framework.NodeOptions{Ingress: true})
	ns := c.namespace(t, "web")
	ctx := context.Background()
	for _, app := range []struct {
		name     string
		replicas int32
	}{{"blue", 2}, {"green", 1}} {
		c.demoApp(t, ns, app.name, app.replicas)
	}
	prefix := networkingv1.PathTypePrefix
	exact := networkingv1.PathTypeExact
	backend := func(svc string) networkingv1.IngressBackend {
		return networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: svc, Port: networkingv1.ServiceBackendPort{Number: 80}}}
	}
	rule := func(host string, paths ...networkingv1.HTTPIngressPath) networkingv1.IngressRule {
		return networkingv1.IngressRule{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: paths}}}
	}
	// The TLS secret, signed by the cluster CA.
	ca, err := pki.EnsureCA(filepath.Join(c.srv.DataDir, "pki"), "ca", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.IssueServer("secure.local", []string{"secure.local"}, nil, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "secure-tls"}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ingresses := []*networkingv1.Ingress{
		{ObjectMeta: metav1.ObjectMeta{Name: "demo"}, Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{
			rule("demo.local",
				networkingv1.HTTPIngressPath{Path: "/", PathType: &prefix, Backend: backend("blue")},
				networkingv1.HTTPIngressPath{Path: "/green", PathType: &exact, Backend: backend("green")}),
		}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "secure"}, Spec: networkingv1.IngressSpec{
			TLS:   []networkingv1.IngressTLS{{Hosts: []string{"secure.local"}, SecretName: "secure-tls"}},
			Rules: []networkingv1.IngressRule{rule("secure.local", networkingv1.HTTPIngressPath{Path: "/", PathType: &prefix, Backend: backend("blue")})},
		}},
		{ObjectMeta: metav1.ObjectMeta{Name: "main"}, Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{
			rule("canary.local", networkingv1.HTTPIngressPath{Path: "/", PathType: &prefix, Backend: backend("blue")}),
		}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "canary", Annotations: map[string]string{
			"nginx.ingress.kubernetes.io/canary": "true", "nginx.ingress.kubernetes.io/canary-weight": "20"}},
			Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{
				rule("canary.local", networkingv1.HTTPIngressPath{Path: "/", PathType: &prefix, Backend: backend("green")}),
			}}},
	}
	for _, ing := range ingresses {
		if _, err := c.client.NetworkingV1().Ingresses(ns).Create(ctx, ing, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	httpURL := "http://" + c.node.IngressHTTP
	get := func(host, path string) (int, string) {
		req, _ := http.NewRequest("GET", httpURL+path, nil)
		req.Host = host
		resp, err := noRedirect.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// Routes appear once the controller has seen the objects.
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body := get("demo.local", "/")
		if code == 200 && strings.Contains(body, "pod blue-") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("demo.local / through the ingress: %d %q", code, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if code, body := get("demo.local", "/green"); code != 200 || !strings.Contains(body, "pod green-") {
		t.Errorf("demo.local /green: %d %q", code, body)
	}
	if code, body := get("demo.local", "/green/more"); code != 200 || !strings.Contains(body, "pod blue-") {
		t.Errorf("Exact /green must not match /green/more: %d %q", code, body)
	}
	if code, _ := get("nobody.local", "/"); code != 404 {
		t.Errorf("unknown host: %d, want 404", code)
	}
	// Both blue replicas get traffic.
	seen := map[string]bool{}
	for i := 0; i < 20; i++ {
		_, body := get("demo.local", "/")
		seen[podOf(body)] = true
	}
	if len(seen) != 2 {
		t.Errorf("requests went to %v, want both blue pods", seen)
	}

	// TLS, checked with the cluster CA; plain HTTP redirects.
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM)
	tlsClient := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "secure.local"},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, c.node.IngressHTTPS)
		},
	}}
	// The certificate is served once the controller has read the Secret.
	var resp *http.Response
	deadline = time.Now().Add(20 * time.Second)
	for {
		resp, err = tlsClient.Get("https://secure.local/")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("https://secure.local through the ingress: %v", err)
		}
		tlsClient.CloseIdleConnections()
		time.Sleep(200 * time.Millisecond)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "pod blue-") {
		t.Errorf("https://secure.local: %d %q", resp.StatusCode, body)
	}
	if code, _ := get("secure.local", "/x"); code != http.StatusPermanentRedirect {
		t.Errorf("http://secure.local: %d, want 308 to https", code)
	}

	// The canary gets about 20% of 1,000 requests.
	green := 0
	for i := 0; i < 1000; i++ {
		if _, body := get("canary.local", "/"); strings.Contains(body, "pod green-") {
			green++
		}
	}
	if green < 150 || green > 250 {
		t.Errorf("canary weight 20: %d of 1000 requests went to green, want 200±50", green)
	}

	// A WebSocket through the ingress to the demo app's echo.
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+c.node.IngressHTTP+"/ws", http.Header{"Host": []string{"demo.local"}})
	if err != nil {
		t.Fatalf("websocket through the ingress: %v", err)
	}
	defer ws.Close()
	if err := ws.WriteMessage(websocket.TextMessage, []byte("ping through skiff")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := ws.ReadMessage(); err != nil || !strings.Contains(string(msg), "ping through skiff") {
		t.Errorf("websocket echo: %q %v", msg, err)
	}

	// The controller fills in the Ingress status.
	deadline = time.Now().Add(20 * time.Second)
	for {
		ing, err := c.client.NetworkingV1().Ingresses(ns).Get(ctx, "demo", metav1.GetOptions{})
		if err == nil && len(ing.Status.LoadBalancer.Ingress) > 0 && ing.Status.LoadBalancer.Ingress[0].IP == "127.0.0.1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ingress status not filled in: %+v", ing.Status)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

var noRedirect = &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// podOf picks the pod name out of the demo app's answer.
func podOf(body string) string {
	if i := strings.Index(body, "pod "); i >= 0 {
		rest := body[i+4:]
		if j := strings.IndexAny(rest, ", "); j >= 0 {
			return rest[:j]
		}
	}
	return body
}

// demoApp deploys the demo web app as a Deployment (changed by mods before
// it is created) with a Service on port 80, and waits for its pods to be
// ready.
func (c *cluster) demoApp(t *testing.T, ns, name string, replicas int32, mods ...func(*appsv1.Deployment)) {
	t.Helper()
	ctx := context.Background()
	labels := map[string]string{"app": name}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: ptr.To(int64(0)),
					Containers: []corev1.Container{{
						Name: "web", Image: "skiff.local/demo:1",
						Env:   []corev1.EnvVar{{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}},
						Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
						ReadinessProbe: &corev1.Probe{PeriodSeconds: 1, ProbeHandler: corev1.ProbeHandler{
							HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http")}}},
					}},
				},
			},
		},
	}
	for _, m := range mods {
		m(dep)
	}
	if _, err := c.client.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}},
	}
	if _, err := c.client.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		d, err := c.client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err == nil && d.Status.ReadyReplicas == replicas {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("deployment %s: not ready: %v", name, fmt.Sprint(d.Status))
		}
		time.Sleep(200 * time.Millisecond)
	}
}
