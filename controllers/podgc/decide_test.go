package podgc

import (
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func pod(name string, phase corev1.PodPhase, age time.Duration, mods ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", CreationTimestamp: metav1.NewTime(t0.Add(-age))},
		Status:     corev1.PodStatus{Phase: phase},
	}
	for _, m := range mods {
		m(p)
	}
	return p
}

func evicted(p *corev1.Pod) { p.Status.Reason = evictedReason }

func beingDeleted(p *corev1.Pod) { p.DeletionTimestamp = ptr.To(metav1.NewTime(t0)) }

func names(pods []*corev1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Name)
	}
	return out
}

func TestOverThreshold(t *testing.T) {
	pods := []*corev1.Pod{
		pod("running", corev1.PodRunning, 10*time.Hour),
		pod("old-ok", corev1.PodSucceeded, 5*time.Hour),
		pod("mid-failed", corev1.PodFailed, 3*time.Hour),
		pod("new-ok", corev1.PodSucceeded, time.Hour),
		pod("new-evicted", corev1.PodFailed, time.Minute, evicted),
		pod("going", corev1.PodSucceeded, 9*time.Hour, beingDeleted),
		pod("b-tie", corev1.PodSucceeded, 7*time.Hour),
		pod("a-tie", corev1.PodSucceeded, 7*time.Hour),
	}
	tests := []struct {
		threshold int
		want      []string
	}{
		{threshold: 10, want: nil},
		{threshold: 6, want: nil},
		{threshold: 5, want: []string{"new-evicted"}},
		{threshold: 3, want: []string{"new-evicted", "a-tie", "b-tie"}},
		{threshold: 1, want: []string{"new-evicted", "a-tie", "b-tie", "old-ok", "mid-failed"}},
		{threshold: 0, want: nil},
		{threshold: -1, want: nil},
	}
	for _, tt := range tests {
		if got := names(overThreshold(pods, tt.threshold)); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("threshold %d: got %v, want %v", tt.threshold, got, tt.want)
		}
	}
}

func TestOutOfService(t *testing.T) {
	taint := corev1.Taint{Key: outOfServiceTaint, Value: "nodeshutdown", Effect: corev1.TaintEffectNoExecute}
	node := func(ready corev1.ConditionStatus, taints ...corev1.Taint) *corev1.Node {
		n := &corev1.Node{Spec: corev1.NodeSpec{Taints: taints}}
		if ready != "" {
			n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: ready}}
		}
		return n
	}
	tests := []struct {
		name string
		node *corev1.Node
		want bool
	}{
		{"not ready and tainted", node(corev1.ConditionFalse, taint), true},
		{"unknown and tainted", node(corev1.ConditionUnknown, taint), true},
		{"never reported and tainted", node("", taint), true},
		{"ready, even if tainted", node(corev1.ConditionTrue, taint), false},
		{"not ready but not tainted", node(corev1.ConditionFalse), false},
		{"another taint", node(corev1.ConditionFalse, corev1.Taint{Key: "node.kubernetes.io/unreachable"}), false},
	}
	for _, tt := range tests {
		if got := outOfService(tt.node); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestOrphanWait(t *testing.T) {
	q := 40 * time.Second
	for _, tt := range []struct {
		since time.Duration
		want  time.Duration
	}{{0, 40 * time.Second}, {10 * time.Second, 30 * time.Second}, {40 * time.Second, 0}, {time.Hour, 0}} {
		if got := orphanWait(t0.Add(-tt.since), t0, q); got != tt.want {
			t.Errorf("missing for %v: wait %v, want %v", tt.since, got, tt.want)
		}
	}
}

func TestTerminating(t *testing.T) {
	got := names(terminating([]*corev1.Pod{pod("a", corev1.PodRunning, 0), pod("b", corev1.PodRunning, 0, beingDeleted)}))
	if !reflect.DeepEqual(got, []string{"b"}) {
		t.Errorf("terminating = %v", got)
	}
}
