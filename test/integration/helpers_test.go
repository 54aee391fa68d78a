package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/skiff-sh/skiff/storage/etcdtest"
	"github.com/skiff-sh/skiff/test/framework"
)

// waitTimeout bounds every wait for the server to show a change.
const waitTimeout = 20 * time.Second

// testCtx is a context that ends with the test.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// startExternal starts an external etcd and a server on it.
func startExternal(t *testing.T) (*framework.Server, []string) {
	t.Helper()
	eps := etcdtest.StartExternal(t)
	srv := framework.StartServer(t, framework.Options{EtcdEndpoints: eps})
	return srv, eps
}

// makeNamespace creates a namespace and returns its name.
func makeNamespace(t *testing.T, cs kubernetes.Interface, name string) string {
	t.Helper()
	_, err := cs.CoreV1().Namespaces().Create(testCtx(t), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	return name
}

func configMap(name string, data map[string]string, lbls map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls}, Data: data}
}

func podSpec() corev1.PodSpec {
	return corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1"}}}
}

func pod(name string, lbls map[string]string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls}, Spec: podSpec()}
}

func int32p(v int32) *int32 { return &v }
func int64p(v int64) *int64 { return &v }

func podTemplate(app string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app}}, Spec: podSpec()}
}

func deployment(name string, replicas int32) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: int32p(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: podTemplate(name),
		},
	}
}

func clusterIPService(name string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": name},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}},
		},
	}
}

// rv parses a resourceVersion; the server's are decimal store revisions.
func rv(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("resourceVersion %q is not a number: %v", s, err)
	}
	return n
}

// rawResponse is one raw HTTP exchange.
type rawResponse struct {
	code   int
	header http.Header
	body   []byte
}

// do sends a raw request with the admin's credentials.
func do(t *testing.T, hc *http.Client, method, url, contentType string, body []byte, hdr ...string) rawResponse {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(testCtx(t), method, url, rd)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return rawResponse{code: resp.StatusCode, header: resp.Header, body: b}
}

// status decodes a Kubernetes Status from a failed response and checks it
// agrees with the HTTP code.
func status(t *testing.T, r rawResponse) metav1.Status {
	t.Helper()
	var st metav1.Status
	if err := json.Unmarshal(r.body, &st); err != nil {
		t.Fatalf("response %d is not a Status: %v: %.300s", r.code, err, r.body)
	}
	if st.Kind != "Status" || st.Status != metav1.StatusFailure || int(st.Code) != r.code {
		t.Fatalf("response %d: want a Failure Status with code %d, got kind=%q status=%q code=%d: %.300s",
			r.code, r.code, st.Kind, st.Status, st.Code, r.body)
	}
	return st
}

// anonymousClient is an HTTPS client that trusts the cluster CA but shows
// no client certificate.
func anonymousClient(t *testing.T, srv *framework.Server) *http.Client {
	t.Helper()
	cfg := rest.AnonymousClientConfig(srv.RESTConfig())
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatalf("anonymous client: %v", err)
	}
	return hc
}

// eventually polls cond until it holds or the wait times out.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	var last string
	for time.Now().Before(deadline) {
		ok, msg := cond()
		if ok {
			return
		}
		last = msg
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s: %s", what, last)
}

// nextEvent reads one event from a watch, failing the test after a wait.
func nextEvent(t *testing.T, w watch.Interface) watch.Event {
	t.Helper()
	select {
	case ev, ok := <-w.ResultChan():
		if !ok {
			t.Fatalf("watch closed while an event was expected")
		}
		return ev
	case <-time.After(waitTimeout):
		t.Fatalf("no watch event within %v", waitTimeout)
	}
	return watch.Event{}
}

// noEvent asserts the watch stays quiet for a while.
func noEvent(t *testing.T, w watch.Interface, d time.Duration) {
	t.Helper()
	select {
	case ev, ok := <-w.ResultChan():
		if ok {
			t.Fatalf("unexpected watch event %s %s", ev.Type, describe(ev.Object))
		}
		t.Fatalf("watch closed unexpectedly")
	case <-time.After(d):
	}
}

// describe names an event's object for messages.
func describe(obj any) string {
	if m, ok := obj.(metav1.Object); ok {
		return fmt.Sprintf("%s/%s@%s", m.GetNamespace(), m.GetName(), m.GetResourceVersion())
	}
	if st, ok := obj.(*metav1.Status); ok {
		return fmt.Sprintf("Status{code=%d reason=%s message=%q}", st.Code, st.Reason, st.Message)
	}
	return fmt.Sprintf("%T", obj)
}

// eventName is an event's object's name, failing on a non-object.
func eventName(t *testing.T, ev watch.Event) string {
	t.Helper()
	m, ok := ev.Object.(metav1.Object)
	if !ok {
		t.Fatalf("event %s carries %s, not an object", ev.Type, describe(ev.Object))
	}
	return m.GetName()
}

// expectEvent reads the next event and checks its type and name.
func expectEvent(t *testing.T, w watch.Interface, typ watch.EventType, name string) watch.Event {
	t.Helper()
	ev := nextEvent(t, w)
	if ev.Type != typ {
		t.Fatalf("want %s %s, got %s %s", typ, name, ev.Type, describe(ev.Object))
	}
	if got := eventName(t, ev); got != name {
		t.Fatalf("want %s of %s, got %s of %s", typ, name, ev.Type, got)
	}
	return ev
}

// nestedJSON is n nested JSON arrays around an empty one.
func nestedJSON(n int) string {
	return strings.Repeat("[", n) + strings.Repeat("]", n)
}

// newClient is the stock typed clientset for srv, as any Kubernetes client
// would build it (protobuf bodies for built-in kinds).
func newClient(t *testing.T, srv *framework.Server) kubernetes.Interface {
	t.Helper()
	cs, err := kubernetes.NewForConfig(srv.RESTConfig())
	if err != nil {
		t.Fatalf("clientset: %v", err)
	}
	return cs
}
