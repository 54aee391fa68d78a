package why

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-sh/skiff/scheduler"
)

var now = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func pod(mut func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec:       corev1.PodSpec{SchedulerName: corev1.DefaultSchedulerName, RestartPolicy: corev1.RestartPolicyAlways},
		Status:     corev1.PodStatus{Phase: corev1.PodPending},
	}
	mut(p)
	return p
}

func readyNode(status corev1.ConditionStatus) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{
		Type: corev1.NodeReady, Status: status, Reason: "NodeStatusUnknown", LastTransitionTime: metav1.NewTime(now.Add(-2 * time.Minute)),
	}}}}
}

func TestExplain(t *testing.T) {
	explanation := `{"nodes":3,"rejected":[{"node":"a","reasons":["Insufficient cpu"]},{"node":"b","reasons":["Insufficient cpu"]},{"node":"c","reasons":["node(s) had untolerated taint {gpu: true}"]}],"preemption":"0/3 nodes are available: 3 No preemption victims found for incoming pod."}`
	cases := []struct {
		name   string
		pod    *corev1.Pod
		node   *corev1.Node
		events []corev1.Event
		ok     bool
		want   []string // substrings that must appear, in order
	}{
		{
			name: "running and ready",
			pod: pod(func(p *corev1.Pod) {
				p.Spec.NodeName = "n1"
				p.Status.Phase = corev1.PodRunning
				p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
			}),
			node: readyNode(corev1.ConditionTrue),
			ok:   true,
			want: []string{"running and ready on n1"},
		},
		{
			name: "unschedulable, with per-node reasons grouped",
			pod: pod(func(p *corev1.Pod) {
				p.Annotations = map[string]string{scheduler.AnnotationUnschedulable: explanation}
				p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable",
					Message: "0/3 nodes are available: 2 Insufficient cpu, 1 node(s) had untolerated taint {gpu: true}."}}
			}),
			events: []corev1.Event{{Type: corev1.EventTypeWarning, Reason: "FailedScheduling", Message: "0/3 nodes", Count: 4, LastTimestamp: metav1.NewTime(now.Add(-30 * time.Second))}},
			want:   []string{"no node can take the pod: 0/3 nodes are available", "a, b: Insufficient cpu", "c: node(s) had untolerated taint", "preemption:", "recent warnings", "30s ago FailedScheduling (x4)"},
		},
		{
			name: "not yet seen by the scheduler",
			pod:  pod(func(*corev1.Pod) {}),
			want: []string{"waiting for the scheduler"},
		},
		{
			name: "another scheduler",
			pod:  pod(func(p *corev1.Pod) { p.Spec.SchedulerName = "volcano" }),
			want: []string{`asks for scheduler "volcano"`},
		},
		{
			name: "scheduling gates",
			pod: pod(func(p *corev1.Pod) {
				p.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: "example.com/quota"}}
			}),
			want: []string{"scheduling gates: example.com/quota"},
		},
		{
			name: "crash loop on an unhealthy node",
			pod: pod(func(p *corev1.Pod) {
				p.Spec.NodeName = "n1"
				p.Status.Phase = corev1.PodRunning
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{
					Name: "app", RestartCount: 5,
					State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off 2m40s"}},
					LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error"}},
				}}
			}),
			node: readyNode(corev1.ConditionUnknown),
			want: []string{"node n1 is not ready (Ready=Unknown NodeStatusUnknown, for 2m", "container app is CrashLoopBackOff", "exited with code 1 (Error), 5 restarts", "kubectl logs --previous web -c app"},
		},
		{
			name: "image cannot be pulled",
			pod: pod(func(p *corev1.Pod) {
				p.Spec.NodeName = "n1"
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", Image: "nginx:nope",
					State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff"}}}}
			}),
			node: readyNode(corev1.ConditionTrue),
			want: []string{"container app is ImagePullBackOff", `image "nginx:nope" cannot be pulled`},
		},
		{
			name: "running, not ready",
			pod: pod(func(p *corev1.Pod) {
				p.Spec.NodeName = "n1"
				p.Status.Phase = corev1.PodRunning
				p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse}}
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", Ready: false, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}
			}),
			node:   readyNode(corev1.ConditionTrue),
			events: []corev1.Event{{Type: corev1.EventTypeWarning, Reason: "Unhealthy", Message: "Readiness probe failed: 503", LastTimestamp: metav1.NewTime(now.Add(-5 * time.Second))}},
			want:   []string{"running but not ready", "containers not ready: app", "Unhealthy: Readiness probe failed: 503"},
		},
		{
			name: "bound to a node that is gone",
			pod:  pod(func(p *corev1.Pod) { p.Spec.NodeName = "ghost" }),
			want: []string{"bound to node ghost, which does not exist"},
		},
		{
			name: "being deleted",
			pod: pod(func(p *corev1.Pod) {
				p.Spec.NodeName = "n1"
				ts := metav1.NewTime(now.Add(20 * time.Second))
				g := int64(30)
				p.DeletionTimestamp, p.DeletionGracePeriodSeconds = &ts, &g
				p.Finalizers = []string{"example.com/hold"}
			}),
			want: []string{"being deleted", "grace period 30s", "node n1 stops its containers", "example.com/hold"},
		},
		{
			name: "failed",
			pod: pod(func(p *corev1.Pod) {
				p.Spec.RestartPolicy = corev1.RestartPolicyNever
				p.Status.Phase = corev1.PodFailed
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "job", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 3, Reason: "Error"}}}}
			}),
			want: []string{"failed and will not be restarted (restartPolicy Never)", "container job exited with code 3 (Error)"},
		},
		{
			name: "succeeded",
			pod:  pod(func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }),
			ok:   true,
			want: []string{"finished"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := Explain(c.pod, c.node, c.events, now)
			if r.OK != c.ok {
				t.Errorf("OK = %v, want %v", r.OK, c.ok)
			}
			text := Format(r)
			pos := 0
			for _, w := range c.want {
				i := strings.Index(text[pos:], w)
				if i < 0 {
					t.Fatalf("%q not found (in order) in:\n%s", w, text)
				}
				pos += i + len(w)
			}
		})
	}
}
