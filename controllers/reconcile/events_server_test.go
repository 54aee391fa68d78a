package reconcile_test

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-sh/skiff/controllers/reconcile"
	"github.com/skiff-sh/skiff/test/framework"
)

// TestEventRecorderAgainstServer checks that the Skiff API accepts what
// client-go's recorder writes, including the patch that counts a repeat.
func TestEventRecorderAgainstServer(t *testing.T) {
	srv := framework.StartServer(t, framework.Options{})
	client := srv.Client()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "events-pod"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
	pod, err := client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := reconcile.NewEventRecorder(client, "replicaset-controller")
	done := make(chan error, 1)
	go func() { done <- r.Start(ctx) }()
	defer func() { cancel(); <-done }()

	r.Eventf(pod, corev1.EventTypeNormal, reconcile.ReasonSuccessfulCreate, "Created pod: %s", pod.Name)
	waitServerEvents(t, client, func(es []corev1.Event) bool { return len(es) == 1 && es[0].Count == 1 })
	r.Eventf(pod, corev1.EventTypeNormal, reconcile.ReasonSuccessfulCreate, "Created pod: %s", pod.Name)
	events := waitServerEvents(t, client, func(es []corev1.Event) bool { return len(es) == 1 && es[0].Count == 2 })
	if e := events[0]; e.InvolvedObject.UID != pod.UID || e.Reason != reconcile.ReasonSuccessfulCreate {
		t.Errorf("event %+v", e)
	}
}

func waitServerEvents(t *testing.T, client kubernetes.Interface, ok func([]corev1.Event) bool) []corev1.Event {
	t.Helper()
	var items []corev1.Event
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		l, err := client.CoreV1().Events("default").List(context.Background(), metav1.ListOptions{})
		if err != nil {
			t.Fatalf("listing events: %v", err)
		}
		// Only ours: a scheduler in the server may also speak of the pod.
		items = items[:0]
		for _, e := range l.Items {
			if e.Source.Component == "replicaset-controller" {
				items = append(items, e)
			}
		}
		if ok(items) {
			return items
		}
	}
	t.Fatalf("events never reached the expected state; last seen: %+v", items)
	return nil
}
