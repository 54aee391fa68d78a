package scheduler

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestUnschedulableMessage(t *testing.T) {
	cases := []struct {
		name  string
		nodes []*corev1.Node
		pods  []*corev1.Pod
		pod   *corev1.Pod
		want  string
	}{
		{
			name: "reasons counted and sorted as text",
			nodes: []*corev1.Node{
				mkNode("a", nodeAlloc("cpu", "100m")),
				mkNode("b", nodeTaint("key", "value", corev1.TaintEffectNoSchedule)),
				mkNode("c", nodeTaint("key", "value", corev1.TaintEffectNoSchedule)),
			},
			pod:  mkPod("p", req("cpu", "1")),
			want: "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint {key: value}.",
		},
		{
			name: "a node with two reasons counts under both; 10 sorts before 2",
			nodes: append(nodes(10, "small", nodeAlloc("cpu", "100m", "memory", "1Mi")),
				mkNode("x", cordoned), mkNode("y", cordoned)),
			pod: mkPod("p", req("cpu", "1", "memory", "1Gi")),
			want: "0/12 nodes are available: 10 Insufficient cpu, 10 Insufficient memory, " +
				"2 node(s) were unschedulable.",
		},
		{
			name:  "pod-level rejection",
			nodes: []*corev1.Node{mkNode("a"), mkNode("b")},
			pod: mkPod("p", func(p *corev1.Pod) {
				p.Spec.Volumes = []corev1.Volume{{Name: "d", VolumeSource: corev1.VolumeSource{
					PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}}}
			}),
			want: `0/2 nodes are available: persistentvolumeclaim "data" not found.`,
		},
		{
			name: "no nodes",
			pod:  mkPod("p"),
			want: "no nodes available to schedule pods",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := decide(t, tc.nodes, tc.pods, tc.pod)
			if d.Unschedulable == nil {
				t.Fatalf("scheduled on %q", d.Node)
			}
			if got := d.Unschedulable.Message(); got != tc.want {
				t.Errorf("message:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestMessageWithPreemption(t *testing.T) {
	u := &Unschedulable{NumNodes: 3, Nodes: []NodeReasons{
		{Node: "a", Reasons: []string{"Insufficient cpu"}},
		{Node: "b", Reasons: []string{"node(s) had untolerated taint {key: value}"}},
		{Node: "c", Reasons: []string{"node(s) had untolerated taint {key: value}"}},
	}, Preemption: "0/3 nodes are available: 1 No preemption victims found for incoming pod, 2 Preemption is not helpful for scheduling."}
	want := "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint {key: value}. " +
		"preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, 2 Preemption is not helpful for scheduling.."
	if got := u.Message(); got != want {
		t.Errorf("message:\n got %q\nwant %q", got, want)
	}
}

func TestNumFeasibleToFind(t *testing.T) {
	cases := []struct {
		nodes, pct, want int
	}{
		{nodes: 50, want: 50},
		{nodes: 100, want: 100},
		{nodes: 200, want: 100},   // 48% = 96, floor 100
		{nodes: 1000, want: 420},  // 42%
		{nodes: 5000, want: 500},  // 10%
		{nodes: 6000, want: 300},  // 2% -> 5%
		{nodes: 10000, want: 500}, // 5%
		{nodes: 5000, pct: 30, want: 1500},
		{nodes: 5000, pct: 1, want: 100},
		{nodes: 5000, pct: 100, want: 5000},
	}
	for _, tc := range cases {
		p := &Profile{PercentageOfNodesToScore: tc.pct}
		if got := p.numFeasibleToFind(tc.nodes); got != tc.want {
			t.Errorf("%d nodes at %d%%: got %d, want %d", tc.nodes, tc.pct, got, tc.want)
		}
	}
}

func TestSamplingRotatesThroughTheCluster(t *testing.T) {
	snap := NewSnapshot(nodes(1000, "n"), nil, nil)
	p := DefaultProfile()
	seen := map[string]bool{}
	start := 0
	for i := 0; i < 3; i++ {
		d, err := p.Schedule(snap, mkPod(fmt.Sprintf("p%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		if d.Feasible != 420 || d.Visited != 420 {
			t.Fatalf("decision %d looked at %d feasible of %d visited, want 420 of 420", i, d.Feasible, d.Visited)
		}
		seen[d.Node] = true
		snap.Advance(d.Visited)
		start += d.Visited
		if snap.start != start%1000 {
			t.Fatalf("start = %d, want %d", snap.start, start%1000)
		}
	}
	if len(seen) != 3 {
		t.Errorf("three decisions over disjoint samples chose %v", seen)
	}
}

func TestNodesAreVisitedZonesInterleaved(t *testing.T) {
	var ns []*corev1.Node
	for i := 0; i < 6; i++ {
		ns = append(ns, mkNode(fmt.Sprintf("n%d", i), nodeLabels(labelZone, fmt.Sprintf("z%d", i/3))))
	}
	snap := NewSnapshot(ns, nil, nil)
	var got []string
	for _, n := range snap.Nodes() {
		got = append(got, n.Name())
	}
	if want := "n0 n3 n1 n4 n2 n5"; strings.Join(got, " ") != want {
		t.Errorf("order %v, want %s", got, want)
	}
}

func TestNominatedNodeIsTriedFirst(t *testing.T) {
	ns := []*corev1.Node{mkNode("a"), mkNode("b", nodeAlloc("cpu", "2"))}
	pod := mkPod("p", req("cpu", "1"), func(p *corev1.Pod) { p.Status.NominatedNodeName = "b" })
	if d := decide(t, ns, nil, pod); d.Node != "b" {
		t.Errorf("chose %q, want nominated node b", d.Node)
	}
	pod.Status.NominatedNodeName = "gone"
	if d := decide(t, ns, nil, pod); d.Node != "a" {
		t.Errorf("chose %q with a missing nominated node, want the best node a", d.Node)
	}
}

func TestExplanation(t *testing.T) {
	u := &Unschedulable{NumNodes: 103}
	for i := 102; i >= 0; i-- {
		r := "Insufficient cpu"
		if i%2 == 1 {
			r = reasonUnschedulable
		}
		u.Nodes = append(u.Nodes, NodeReasons{Node: fmt.Sprintf("n%03d", i), Reasons: []string{r}})
	}
	note, err := u.Annotation()
	if err != nil {
		t.Fatal(err)
	}
	e, err := ParseExplanation(note)
	if err != nil {
		t.Fatal(err)
	}
	if e.Nodes != 103 || len(e.Rejected) != ExplanationNodeLimit {
		t.Fatalf("explanation lists %d of %d nodes", len(e.Rejected), e.Nodes)
	}
	if e.Rejected[0].Node != "n000" || e.Rejected[99].Node != "n099" {
		t.Errorf("nodes not sorted by name: first %s last %s", e.Rejected[0].Node, e.Rejected[99].Node)
	}
	if e.Omitted == nil || e.Omitted.Nodes != 3 || e.Omitted.Reasons["Insufficient cpu"] != 2 || e.Omitted.Reasons[reasonUnschedulable] != 1 {
		t.Errorf("omitted = %+v, want 3 nodes: 2 cpu, 1 unschedulable", e.Omitted)
	}
	small := (&Unschedulable{NumNodes: 1, Nodes: []NodeReasons{{Node: "a", Reasons: []string{"Too many pods"}}}}).Explain(ExplanationNodeLimit)
	if small.Omitted != nil {
		t.Errorf("nothing to omit, got %+v", small.Omitted)
	}
	if got, want := mustJSON(t, small), `{"nodes":1,"rejected":[{"node":"a","reasons":["Too many pods"]}]}`; got != want {
		t.Errorf("json %s, want %s", got, want)
	}
}

func mustJSON(t *testing.T, e Explanation) string {
	t.Helper()
	u := &Unschedulable{NumNodes: e.Nodes, PodReason: e.Pod, Nodes: e.Rejected, Preemption: e.Preemption}
	s, err := u.Annotation()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestScheduleDoesNotChangeTheSnapshot(t *testing.T) {
	snap := NewSnapshot([]*corev1.Node{mkNode("a")}, []*corev1.Pod{mkPod("x", on("a"), req("cpu", "1"))}, nil)
	before := snap.Node("a").Requested()
	if _, err := Schedule(snap, mkPod("p", req("cpu", "1"))); err != nil {
		t.Fatal(err)
	}
	if after := snap.Node("a").Requested(); after.MilliCPU != before.MilliCPU || len(snap.Node("a").Pods()) != 1 {
		t.Errorf("snapshot changed: %+v -> %+v", before, after)
	}
}

func TestTerminatingPodsStillHoldResources(t *testing.T) {
	gone := metav1.NewTime(epoch)
	ns := []*corev1.Node{mkNode("a", nodeAlloc("cpu", "1"))}
	pods := []*corev1.Pod{mkPod("x", on("a"), req("cpu", "1"), func(p *corev1.Pod) { p.DeletionTimestamp = &gone })}
	if d := decide(t, ns, pods, mkPod("p", req("cpu", "1"))); d.Unschedulable == nil {
		t.Errorf("scheduled onto a node still held by a terminating pod")
	}
}
