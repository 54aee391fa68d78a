package reconcile

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
)

// waitEvents polls until the namespace's events satisfy ok.
func waitEvents(t *testing.T, client kubernetes.Interface, ns string, ok func([]corev1.Event) bool) []corev1.Event {
	t.Helper()
	var items []corev1.Event
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		l, err := client.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			t.Fatalf("listing events: %v", err)
		}
		items = l.Items
		if ok(items) {
			return items
		}
	}
	t.Fatalf("events never reached the expected state; last seen: %+v", items)
	return nil
}

func TestEventRecorderKeepsEarlyEventsAndStops(t *testing.T) {
	pod := testPod("web-1", nil)
	pod.UID = "uid-1"
	client := fake.NewClientset(pod)
	r := NewEventRecorder(client, "test-controller")
	r.Eventf(pod, corev1.EventTypeNormal, ReasonSuccessfulCreate, "Created pod: %s", pod.Name)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Start(ctx) }()
	r.Event(pod, corev1.EventTypeWarning, ReasonFailedDelete, "could not delete")

	events := waitEvents(t, client, "ns", func(es []corev1.Event) bool { return len(es) == 2 })
	reasons := map[string]corev1.Event{}
	for _, e := range events {
		reasons[e.Reason] = e
	}
	created, ok := reasons[ReasonSuccessfulCreate]
	if !ok || created.Message != "Created pod: web-1" || created.Type != corev1.EventTypeNormal {
		t.Errorf("early event missing or wrong: %+v", created)
	}
	if created.Source.Component != "test-controller" || created.ReportingController != "test-controller" {
		t.Errorf("event source %+v / reporting controller %q, want test-controller", created.Source, created.ReportingController)
	}
	if created.InvolvedObject.Kind != "Pod" || created.InvolvedObject.Name != "web-1" || created.InvolvedObject.UID != "uid-1" {
		t.Errorf("involved object %+v", created.InvolvedObject)
	}
	if _, ok := reasons[ReasonFailedDelete]; !ok {
		t.Errorf("event recorded while running is missing: %+v", events)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Start: %v", err)
	}
	r.Event(pod, corev1.EventTypeNormal, "AfterStop", "dropped")
	if err := r.Start(context.Background()); err == nil {
		t.Error("second Start: no error")
	}
	checkNoGoroutines(t, "tools/record.", "pkg/watch.(*Broadcaster)")
}
