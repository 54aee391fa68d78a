package scheduler

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// harness runs a Scheduler against a fake clientset whose pods/binding
// subresource sets spec.nodeName, as the API server does.
type harness struct {
	t      *testing.T
	client *fake.Clientset
	ctx    context.Context
}

func startScheduler(t *testing.T, objs ...runtime.Object) *harness {
	t.Helper()
	client := fake.NewClientset(objs...)
	client.PrependReactor("create", "pods", func(action k8stesting.Action) (bool, runtime.Object, error) {
		if action.GetSubresource() != "binding" {
			return false, nil, nil
		}
		b := action.(k8stesting.CreateAction).GetObject().(*corev1.Binding)
		gvr := corev1.SchemeGroupVersion.WithResource("pods")
		obj, err := client.Tracker().Get(gvr, b.Namespace, b.Name)
		if err != nil {
			return true, nil, err
		}
		pod := obj.(*corev1.Pod).DeepCopy()
		if pod.Spec.NodeName != "" {
			return true, nil, fmt.Errorf("pod %s already bound", pod.Name)
		}
		pod.Spec.NodeName = b.Target.Name
		return true, b, client.Tracker().Update(gvr, pod, b.Namespace)
	})
	factory := informers.NewSharedInformerFactory(client, 0)
	s := New(client, factory, Options{
		InitialBackoff: 10 * time.Millisecond,
		MaxBackoff:     40 * time.Millisecond,
		Log:            slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := s.Start(ctx); err != nil {
			t.Errorf("Start: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	select {
	case <-s.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("scheduler not ready")
	}
	return &harness{t: t, client: client, ctx: ctx}
}

// eventually polls cond until it holds or 10 seconds pass.
func (h *harness) eventually(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (h *harness) pod(name string) *corev1.Pod {
	h.t.Helper()
	p, err := h.client.CoreV1().Pods("default").Get(h.ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil
	}
	return p
}

func (h *harness) create(objs ...runtime.Object) {
	h.t.Helper()
	for _, o := range objs {
		var err error
		switch o := o.(type) {
		case *corev1.Pod:
			_, err = h.client.CoreV1().Pods(o.Namespace).Create(h.ctx, o, metav1.CreateOptions{})
		case *corev1.Node:
			_, err = h.client.CoreV1().Nodes().Create(h.ctx, o, metav1.CreateOptions{})
		}
		if err != nil {
			h.t.Fatal(err)
		}
	}
}

func (h *harness) boundTo(name string) string {
	if p := h.pod(name); p != nil {
		return p.Spec.NodeName
	}
	return ""
}

func (h *harness) events(reason string) []corev1.Event {
	list, err := h.client.CoreV1().Events("default").List(h.ctx, metav1.ListOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	var out []corev1.Event
	for _, e := range list.Items {
		if e.Reason == reason {
			out = append(out, e)
		}
	}
	return out
}

func TestSchedulerBindsPods(t *testing.T) {
	h := startScheduler(t, mkNode("a"), mkNode("b"))
	for i := 0; i < 20; i++ {
		h.create(mkPod(fmt.Sprintf("p%d", i), req("cpu", "300m")))
	}
	h.eventually("all pods bound", func() bool {
		for i := 0; i < 20; i++ {
			if h.boundTo(fmt.Sprintf("p%d", i)) == "" {
				return false
			}
		}
		return true
	})
	// 20 x 300m on two 4-cpu nodes: assumed pods keep either from
	// exceeding 13 pods (3.9 cpu), and spreading splits them.
	count := map[string]int{}
	for i := 0; i < 20; i++ {
		count[h.boundTo(fmt.Sprintf("p%d", i))]++
	}
	if count["a"] > 13 || count["b"] > 13 {
		t.Errorf("overcommitted: %v", count)
	}
	h.eventually("Scheduled events", func() bool { return len(h.events("Scheduled")) == 20 })
}

func TestSchedulerIgnoresOtherSchedulersAndGatedPods(t *testing.T) {
	h := startScheduler(t, mkNode("a"))
	h.create(
		mkPod("theirs", func(p *corev1.Pod) { p.Spec.SchedulerName = "other" }),
		mkPod("gated", func(p *corev1.Pod) { p.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: "wait"}} }),
		mkPod("ours"),
	)
	h.eventually("our pod bound", func() bool { return h.boundTo("ours") == "a" })
	time.Sleep(50 * time.Millisecond)
	if h.boundTo("theirs") != "" || h.boundTo("gated") != "" {
		t.Fatal("placed a pod that is not ours to place")
	}
	gated := h.pod("gated")
	gated.Spec.SchedulingGates = nil
	if _, err := h.client.CoreV1().Pods("default").Update(h.ctx, gated, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.eventually("ungated pod bound", func() bool { return h.boundTo("gated") == "a" })
}

func TestSchedulerReportsAndRetriesUnschedulablePods(t *testing.T) {
	h := startScheduler(t, mkNode("small", nodeAlloc("cpu", "1")), mkNode("tainted", nodeTaint("key", "value", corev1.TaintEffectNoSchedule)))
	h.create(mkPod("big", req("cpu", "2")))
	want := "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint {key: value}. " +
		"preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, 1 Preemption is not helpful for scheduling.."
	h.eventually("PodScheduled=False", func() bool {
		p := h.pod("big")
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
				if c.Message != want {
					t.Fatalf("message:\n got %q\nwant %q", c.Message, want)
				}
				return true
			}
		}
		return false
	})
	h.eventually("explanation annotation", func() bool { return h.pod("big").Annotations[AnnotationUnschedulable] != "" })
	e, err := ParseExplanation(h.pod("big").Annotations[AnnotationUnschedulable])
	if err != nil {
		t.Fatal(err)
	}
	if e.Nodes != 2 || len(e.Rejected) != 2 || e.Rejected[0].Node != "small" || e.Rejected[0].Reasons[0] != "Insufficient cpu" {
		t.Errorf("explanation %+v", e)
	}
	h.eventually("FailedScheduling event", func() bool {
		evs := h.events("FailedScheduling")
		return len(evs) > 0 && evs[0].Type == corev1.EventTypeWarning && evs[0].Message == want
	})

	// Nothing changes: no retries beyond backoff-free waiting.
	time.Sleep(200 * time.Millisecond)
	before := len(h.events("FailedScheduling"))
	time.Sleep(200 * time.Millisecond)
	if after := len(h.events("FailedScheduling")); after != before {
		t.Errorf("pod retried %d times without any cluster change", after-before)
	}

	// A node that fits arrives: the pod is retried and bound, and the
	// explanation removed.
	h.create(mkNode("large"))
	h.eventually("pod bound to the new node", func() bool { return h.boundTo("big") == "large" })
	h.eventually("explanation removed", func() bool { _, ok := h.pod("big").Annotations[AnnotationUnschedulable]; return !ok })
}

func TestSchedulerPreempts(t *testing.T) {
	victim := mkPod("victim", on("a"), prio(1), req("cpu", "1"))
	h := startScheduler(t, mkNode("a", nodeAlloc("cpu", "1")), victim)
	h.create(mkPod("vip", prio(100), req("cpu", "1")))
	h.eventually("victim deleted", func() bool { return h.pod("victim") == nil })
	h.eventually("preemptor bound", func() bool { return h.boundTo("vip") == "a" })
	// Events are sent asynchronously.
	h.eventually("Preempted event", func() bool { return len(h.events("Preempted")) > 0 })
}

func TestSchedulerFreedRoomIsUsed(t *testing.T) {
	h := startScheduler(t, mkNode("a", nodeAlloc("cpu", "1")), mkPod("hog", on("a"), req("cpu", "1")))
	h.create(mkPod("waiting", req("cpu", "1")))
	h.eventually("unschedulable", func() bool { return len(h.events("FailedScheduling")) > 0 })
	if err := h.client.CoreV1().Pods("default").Delete(h.ctx, "hog", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	h.eventually("pod bound once room is freed", func() bool { return h.boundTo("waiting") == "a" })
	if !strings.HasPrefix(h.events("FailedScheduling")[0].Message, "0/1 nodes are available: 1 Insufficient cpu.") {
		t.Errorf("event message %q", h.events("FailedScheduling")[0].Message)
	}
}
