package replicaset

import (
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// podOpt shapes a test pod.
type podOpt func(*corev1.Pod)

func mkPod(name string, opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-" + name),
			CreationTimestamp: metav1.NewTime(t0), Labels: map[string]string{"app": "web"}},
		Spec:   corev1.PodSpec{NodeName: "n1"},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func onNode(n string) podOpt { return func(p *corev1.Pod) { p.Spec.NodeName = n } }
func phase(ph corev1.PodPhase) podOpt {
	return func(p *corev1.Pod) { p.Status.Phase = ph }
}
func readyAt(t time.Time) podOpt {
	return func(p *corev1.Pod) {
		p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{
			Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(t)})
	}
}
func cost(v string) podOpt {
	return func(p *corev1.Pod) {
		if p.Annotations == nil {
			p.Annotations = map[string]string{}
		}
		p.Annotations[DeletionCostAnnotation] = v
	}
}
func restarts(n int32) podOpt {
	return func(p *corev1.Pod) {
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{Name: "c", RestartCount: n})
	}
}
func created(t time.Time) podOpt {
	return func(p *corev1.Pod) { p.CreationTimestamp = metav1.NewTime(t) }
}
func deleting() podOpt {
	return func(p *corev1.Pod) { now := metav1.NewTime(t0); p.DeletionTimestamp = &now }
}
func labelled(kv ...string) podOpt {
	return func(p *corev1.Pod) {
		p.Labels = map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			p.Labels[kv[i]] = kv[i+1]
		}
	}
}
func ownedBy(uid types.UID) podOpt {
	return func(p *corev1.Pod) {
		yes := true
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "rs", UID: uid, Controller: &yes}}
	}
}

func names(pods []*corev1.Pod) []string {
	out := make([]string, len(pods))
	for i, p := range pods {
		out[i] = p.Name
	}
	return out
}

func TestRankForDeletion(t *testing.T) {
	tests := []struct {
		name     string
		pods     []*corev1.Pod
		related  []*corev1.Pod // nil: the pods themselves
		minReady int32
		want     []string // least valuable first
	}{
		{
			name: "unassigned before assigned",
			pods: []*corev1.Pod{mkPod("assigned", readyAt(t0)), mkPod("unassigned", onNode(""), phase(corev1.PodPending))},
			want: []string{"unassigned", "assigned"},
		},
		{
			name: "pending before unknown before running",
			pods: []*corev1.Pod{mkPod("running"), mkPod("unknown", phase(corev1.PodUnknown)), mkPod("pending", phase(corev1.PodPending))},
			want: []string{"pending", "unknown", "running"},
		},
		{
			name: "not ready before ready",
			pods: []*corev1.Pod{mkPod("ready", readyAt(t0)), mkPod("notready")},
			want: []string{"notready", "ready"},
		},
		{
			name: "ready but not yet available before available, whatever the cost",
			pods: []*corev1.Pod{
				mkPod("available-cheap", readyAt(t0.Add(-time.Hour)), cost("-100")),
				mkPod("just-ready-dear", readyAt(t0.Add(-time.Second)), cost("100")),
				mkPod("notready-dear", cost("100")),
			},
			minReady: 10,
			want:     []string{"notready-dear", "just-ready-dear", "available-cheap"},
		},
		{
			name: "lower deletion cost first, before readiness time",
			pods: []*corev1.Pod{
				mkPod("cheap-old", readyAt(t0.Add(-time.Hour)), cost("-5")),
				mkPod("costly-new", readyAt(t0), cost("100")),
				mkPod("default", readyAt(t0)),
			},
			want: []string{"cheap-old", "default", "costly-new"},
		},
		{
			name: "an invalid deletion cost counts as zero",
			pods: []*corev1.Pod{mkPod("bad", readyAt(t0.Add(-time.Hour)), cost("lots")), mkPod("neg", readyAt(t0), cost("-1"))},
			want: []string{"neg", "bad"},
		},
		{
			name: "doubled up on a node first",
			pods: []*corev1.Pod{
				mkPod("alone", onNode("n2"), readyAt(t0)),
				mkPod("crowded", onNode("n1"), readyAt(t0.Add(-time.Hour))),
			},
			related: []*corev1.Pod{
				mkPod("alone", onNode("n2")), mkPod("crowded", onNode("n1")),
				mkPod("sibling1", onNode("n1")), mkPod("sibling2", onNode("n1")),
				mkPod("gone", onNode("n2"), deleting()), // not active: not counted
			},
			want: []string{"crowded", "alone"},
		},
		{
			name: "ready for less time first",
			pods: []*corev1.Pod{
				mkPod("ready-long", readyAt(t0.Add(-time.Hour))),
				mkPod("ready-recently", readyAt(t0.Add(-time.Minute))),
				mkPod("ready-unknown", readyAt(time.Time{})),
			},
			want: []string{"ready-unknown", "ready-recently", "ready-long"},
		},
		{
			name: "more restarts first",
			pods: []*corev1.Pod{mkPod("stable", restarts(0)), mkPod("flaky", restarts(7)), mkPod("some", restarts(2))},
			want: []string{"flaky", "some", "stable"},
		},
		{
			name: "newer first",
			pods: []*corev1.Pod{
				mkPod("old", created(t0.Add(-time.Hour))),
				mkPod("new", created(t0)),
				mkPod("no-time", created(time.Time{})),
			},
			want: []string{"no-time", "new", "old"},
		},
		{
			name: "earlier steps win over later ones",
			pods: []*corev1.Pod{
				mkPod("ready-many-restarts", readyAt(t0), restarts(9)),
				mkPod("notready-old", created(t0.Add(-time.Hour))),
				mkPod("pending-new", phase(corev1.PodPending)),
			},
			want: []string{"pending-new", "notready-old", "ready-many-restarts"},
		},
		{
			name: "equal pods order by UID",
			pods: []*corev1.Pod{mkPod("b"), mkPod("a"), mkPod("c")},
			want: []string{"a", "b", "c"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			related := tt.related
			if related == nil {
				related = tt.pods
			}
			in := slices.Clone(tt.pods)
			got := names(RankForDeletion(tt.pods, related, tt.minReady, t0))
			if !slices.Equal(got, tt.want) {
				t.Errorf("order = %v, want %v", got, tt.want)
			}
			if !slices.Equal(in, tt.pods) {
				t.Errorf("RankForDeletion changed its input")
			}
		})
	}
}

func TestPodsToDelete(t *testing.T) {
	pods := []*corev1.Pod{mkPod("ready", readyAt(t0)), mkPod("notready"), mkPod("pending", phase(corev1.PodPending))}
	tests := []struct {
		n    int
		want []string
	}{
		{0, nil},
		{1, []string{"pending"}},
		{2, []string{"pending", "notready"}},
		{5, []string{"ready", "notready", "pending"}}, // all of them, order irrelevant
	}
	for _, tt := range tests {
		got := names(PodsToDelete(pods, pods, tt.n, 0, t0))
		if tt.n >= len(pods) {
			slices.Sort(got)
			slices.Sort(tt.want)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("PodsToDelete(%d) = %v, want %v", tt.n, got, tt.want)
		}
	}
}

func TestAvailability(t *testing.T) {
	now := t0
	tests := []struct {
		name     string
		pod      *corev1.Pod
		minReady int32
		active   bool
		avail    bool
	}{
		{"running ready", mkPod("a", readyAt(now.Add(-time.Second))), 0, true, true},
		{"ready too recently", mkPod("a", readyAt(now.Add(-5*time.Second))), 10, true, false},
		{"ready long enough", mkPod("a", readyAt(now.Add(-11*time.Second))), 10, true, true},
		{"exactly at the mark is not yet available", mkPod("a", readyAt(now.Add(-10*time.Second))), 10, true, false},
		{"not ready", mkPod("a"), 0, true, false},
		{"terminating", mkPod("a", readyAt(now), deleting()), 0, false, true},
		{"succeeded", mkPod("a", phase(corev1.PodSucceeded)), 0, false, false},
		{"failed", mkPod("a", phase(corev1.PodFailed)), 0, false, false},
	}
	for _, tt := range tests {
		if got := IsActive(tt.pod); got != tt.active {
			t.Errorf("%s: IsActive = %v, want %v", tt.name, got, tt.active)
		}
		if got := IsAvailable(tt.pod, tt.minReady, now); got != tt.avail {
			t.Errorf("%s: IsAvailable = %v, want %v", tt.name, got, tt.avail)
		}
	}
}

func TestNextAvailable(t *testing.T) {
	pods := []*corev1.Pod{
		mkPod("available", readyAt(t0.Add(-time.Minute))),
		mkPod("soon", readyAt(t0.Add(-8*time.Second))),
		mkPod("later", readyAt(t0.Add(-2*time.Second))),
		mkPod("notready"),
	}
	wait, ok := NextAvailable(pods, 10, t0)
	if !ok || wait < 2*time.Second || wait > 2*time.Second+50*time.Millisecond {
		t.Errorf("NextAvailable = %v, %v; want just over 2s", wait, ok)
	}
	if _, ok := NextAvailable(pods, 0, t0); ok {
		t.Errorf("NextAvailable without minReadySeconds asked for a requeue")
	}
	if _, ok := NextAvailable(pods[:1], 10, t0); ok {
		t.Errorf("NextAvailable with every ready pod available asked for a requeue")
	}
}
