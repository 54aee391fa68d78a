package replicaset

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-sh/skiff/controllers/replicaset/fakenode"
	"github.com/skiff-sh/skiff/test/framework"
)

// cluster is a real server with both set controllers and a fake node.
type cluster struct {
	ctx     context.Context
	client  kubernetes.Interface
	factory informers.SharedInformerFactory // the controllers' informers
	ns      string
}

// startCluster starts a server, the ReplicaSet and ReplicationController
// controllers, and a fake node shaped by node; everything stops with t.
func startCluster(t *testing.T, node fakenode.Options) *cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a server")
	}
	srv := framework.StartServer(t, framework.Options{})
	client := srv.Client()
	ctx, cancel := context.WithCancel(context.Background())
	factory := informers.NewSharedInformerFactory(client, 0)
	log := slog.New(slog.NewTextHandler(testWriter{t}, nil))
	rs, err := New(client, factory, Options{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := NewReplicationController(client, factory, Options{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	var wg sync.WaitGroup
	for _, run := range []func(context.Context) error{
		rs.Start, rc.Start,
		func(ctx context.Context) error { return fakenode.Run(ctx, client, node) },
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(ctx); err != nil {
				t.Errorf("component stopped: %v", err)
			}
		}()
	}
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		factory.Shutdown()
	})
	return &cluster{ctx: ctx, client: client, factory: factory, ns: "default"}
}

// eventually polls cond until it holds or the deadline passes; cond
// describes what it saw for the failure message.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for {
		ok, seen := cond()
		if ok {
			return
		}
		last = seen
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; last saw: %s", timeout, what, last)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func replicaSet(name string, replicas int32, labels map[string]string) *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx:1.27"}}},
			},
		},
	}
}

// podsOf lists the pods in ns that c controls (by UID), active or not.
func (c *cluster) podsOf(t *testing.T, owner metav1.Object) []corev1.Pod {
	t.Helper()
	list, err := c.client.CoreV1().Pods(c.ns).List(c.ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("listing pods: %v", err)
	}
	var out []corev1.Pod
	for _, p := range list.Items {
		if ref := metav1.GetControllerOf(&p); ref != nil && ref.UID == owner.GetUID() {
			out = append(out, p)
		}
	}
	return out
}

// eventsFor lists "Type Reason Message" of the events about the object.
func (c *cluster) eventsFor(t *testing.T, kind, name string) []string {
	t.Helper()
	sel := fields.Set{"involvedObject.kind": kind, "involvedObject.name": name}.AsSelector().String()
	list, err := c.client.CoreV1().Events(c.ns).List(c.ctx, metav1.ListOptions{FieldSelector: sel})
	if err != nil {
		t.Fatalf("listing events: %v", err)
	}
	var out []string
	for _, e := range list.Items {
		out = append(out, fmt.Sprintf("%s %s %s", e.Type, e.Reason, e.Message))
	}
	return out
}

func activeCount(pods []corev1.Pod) int {
	n := 0
	for i := range pods {
		if IsActive(&pods[i]) {
			n++
		}
	}
	return n
}

// testWriter sends the controllers' logs to the test's log, shown with -v
// or when the test fails.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(b), "\n"))
	return len(b), nil
}
