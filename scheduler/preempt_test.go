package scheduler

import (
	"reflect"
	"sort"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestPreempt(t *testing.T) {
	oneCPU := func(name string, opts ...nodeOpt) *corev1.Node {
		return mkNode(name, append([]nodeOpt{nodeAlloc("cpu", "1")}, opts...)...)
	}
	twoCPU := func(name string) *corev1.Node { return mkNode(name, nodeAlloc("cpu", "2")) }
	low := func(name, node string, p int32, opts ...podOpt) *corev1.Pod {
		return mkPod(name, append([]podOpt{on(node), prio(p), req("cpu", "1")}, opts...)...)
	}
	budget := func(allowed int32, sel ...string) *policyv1.PodDisruptionBudget {
		one := intstr.FromInt32(1)
		return &policyv1.PodDisruptionBudget{
			ObjectMeta: metav1.ObjectMeta{Name: "pdb", Namespace: "default"},
			Spec:       policyv1.PodDisruptionBudgetSpec{MinAvailable: &one, Selector: selector(sel...)},
			Status:     policyv1.PodDisruptionBudgetStatus{DisruptionsAllowed: allowed},
		}
	}
	never := corev1.PreemptNever
	cases := []struct {
		name        string
		nodes       []*corev1.Node
		pods        []*corev1.Pod
		pdbs        []*policyv1.PodDisruptionBudget
		pod         *corev1.Pod
		wantNode    string
		wantVictims []string
		wantMessage string
	}{
		{
			name:        "evict the lower-priority pod",
			nodes:       []*corev1.Node{oneCPU("a")},
			pods:        []*corev1.Pod{low("v", "a", 0)},
			pod:         mkPod("p", prio(10), req("cpu", "1")),
			wantNode:    "a",
			wantVictims: []string{"v"},
		},
		{
			name:        "only as many victims as needed, least important first",
			nodes:       []*corev1.Node{twoCPU("a")},
			pods:        []*corev1.Pod{low("v1", "a", 1), low("v2", "a", 2)},
			pod:         mkPod("p", prio(10), req("cpu", "1")),
			wantNode:    "a",
			wantVictims: []string{"v1"},
		},
		{
			name:        "equal priority is never a victim",
			nodes:       []*corev1.Node{oneCPU("a")},
			pods:        []*corev1.Pod{low("v", "a", 10)},
			pod:         mkPod("p", prio(10), req("cpu", "1")),
			wantMessage: "0/1 nodes are available: 1 No preemption victims found for incoming pod.",
		},
		{
			name:        "lowest highest-victim priority wins",
			nodes:       []*corev1.Node{oneCPU("a"), oneCPU("b")},
			pods:        []*corev1.Pod{low("va", "a", 5), low("vb", "b", 1)},
			pod:         mkPod("p", prio(10), req("cpu", "1")),
			wantNode:    "b",
			wantVictims: []string{"vb"},
		},
		{
			name:  "removing every lower-priority pod is not enough",
			nodes: []*corev1.Node{twoCPU("a"), twoCPU("b")},
			pods: []*corev1.Pod{low("a1", "a", 1), low("a2", "a", 20),
				mkPod("b1", on("b"), prio(20), req("cpu", "2"))},
			pod:         mkPod("p", prio(10), req("cpu", "2")),
			wantMessage: "0/2 nodes are available: 1 Insufficient cpu, 1 No preemption victims found for incoming pod.",
		},
		{
			name:        "fewest victims wins",
			nodes:       []*corev1.Node{twoCPU("a"), twoCPU("b")},
			pods:        []*corev1.Pod{low("a1", "a", 1), low("a2", "a", 1), mkPod("b1", on("b"), prio(1), req("cpu", "2"))},
			pod:         mkPod("p", prio(10), req("cpu", "2")),
			wantNode:    "b",
			wantVictims: []string{"b1"},
		},
		{
			name:        "a disruption budget steers preemption elsewhere",
			nodes:       []*corev1.Node{oneCPU("a"), oneCPU("b")},
			pods:        []*corev1.Pod{low("guarded", "a", 1, podLabels("app", "db")), low("free", "b", 3)},
			pdbs:        []*policyv1.PodDisruptionBudget{budget(0, "app", "db")},
			pod:         mkPod("p", prio(10), req("cpu", "1")),
			wantNode:    "b",
			wantVictims: []string{"free"},
		},
		{
			name:        "a budget with room does not",
			nodes:       []*corev1.Node{oneCPU("a"), oneCPU("b")},
			pods:        []*corev1.Pod{low("guarded", "a", 1, podLabels("app", "db")), low("free", "b", 3)},
			pdbs:        []*policyv1.PodDisruptionBudget{budget(1, "app", "db")},
			pod:         mkPod("p", prio(10), req("cpu", "1")),
			wantNode:    "a",
			wantVictims: []string{"guarded"},
		},
		{
			name:        "a budget is violated when nothing else helps",
			nodes:       []*corev1.Node{oneCPU("a")},
			pods:        []*corev1.Pod{low("guarded", "a", 1, podLabels("app", "db"))},
			pdbs:        []*policyv1.PodDisruptionBudget{budget(0, "app", "db")},
			pod:         mkPod("p", prio(10), req("cpu", "1")),
			wantNode:    "a",
			wantVictims: []string{"guarded"},
		},
		{
			name:        "preemptionPolicy Never",
			nodes:       []*corev1.Node{oneCPU("a")},
			pods:        []*corev1.Pod{low("v", "a", 0)},
			pod:         mkPod("p", prio(10), req("cpu", "1"), func(p *corev1.Pod) { p.Spec.PreemptionPolicy = &never }),
			wantMessage: "not eligible due to preemptionPolicy=Never.",
		},
		{
			name:        "eviction cannot fix a taint",
			nodes:       []*corev1.Node{oneCPU("a", nodeTaint("k", "v", corev1.TaintEffectNoSchedule)), oneCPU("b")},
			pods:        []*corev1.Pod{low("v", "a", 0), low("w", "b", 20)},
			pod:         mkPod("p", prio(10), req("cpu", "1")),
			wantMessage: "0/2 nodes are available: 1 No preemption victims found for incoming pod, 1 Preemption is not helpful for scheduling.",
		},
		{
			name:        "already waiting for a terminating victim",
			nodes:       []*corev1.Node{oneCPU("a")},
			pods:        []*corev1.Pod{low("v", "a", 0, func(p *corev1.Pod) { d := metav1.NewTime(epoch); p.DeletionTimestamp = &d })},
			pod:         mkPod("p", prio(10), req("cpu", "1"), func(p *corev1.Pod) { p.Status.NominatedNodeName = "a" }),
			wantMessage: "not eligible due to a terminating pod on the nominated node.",
		},
		{
			name:  "evicting resolves anti-affinity",
			nodes: []*corev1.Node{mkNode("a")},
			pods:  []*corev1.Pod{mkPod("web1", on("a"), prio(0), podLabels("app", "web"))},
			pod: mkPod("web2", prio(10), podLabels("app", "web"),
				requiredAnti(podTermOf(labelHostname, selector("app", "web")))),
			wantNode:    "a",
			wantVictims: []string{"web1"},
		},
		{
			name:  "most recently started victims are preferred at equal cost",
			nodes: []*corev1.Node{oneCPU("a"), oneCPU("b")},
			pods: []*corev1.Pod{low("old", "a", 1, started(time.Hour)),
				low("new", "b", 1, started(2*time.Hour))},
			pod:         mkPod("p", prio(10), req("cpu", "1")),
			wantNode:    "b",
			wantVictims: []string{"new"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			snap := NewSnapshot(tc.nodes, tc.pods, &ObjectSet{})
			d, err := Schedule(snap, tc.pod)
			if err != nil {
				t.Fatal(err)
			}
			if d.Unschedulable == nil {
				t.Fatalf("pod fits on %q without preemption", d.Node)
			}
			r := DefaultProfile().Preempt(snap, tc.pod, tc.pdbs, d.Unschedulable)
			var victims []string
			for _, v := range r.Victims {
				victims = append(victims, v.Name)
			}
			sort.Strings(victims)
			if r.Node != tc.wantNode || !reflect.DeepEqual(victims, tc.wantVictims) || r.Message != tc.wantMessage {
				t.Errorf("got node %q victims %v message %q\nwant node %q victims %v message %q",
					r.Node, victims, r.Message, tc.wantNode, tc.wantVictims, tc.wantMessage)
			}
			if node, vs, ok := Preempt(snap, tc.pod, tc.pdbs); ok != (tc.wantNode != "") || node != tc.wantNode || len(vs) != len(tc.wantVictims) {
				t.Errorf("Preempt() = %q, %d victims, %v", node, len(vs), ok)
			}
		})
	}
}

func TestPreemptLeavesTheSnapshotAlone(t *testing.T) {
	ns := []*corev1.Node{mkNode("a", nodeAlloc("cpu", "1"), nodeLabels(labelZone, "z"))}
	pods := []*corev1.Pod{mkPod("v", on("a"), prio(0), req("cpu", "1"), podLabels("app", "web"))}
	snap := NewSnapshot(ns, pods, nil)
	pod := mkPod("p", prio(10), req("cpu", "1"), podLabels("app", "web"),
		spread(labelZone, 1, corev1.DoNotSchedule, selector("app", "web")))
	if _, _, ok := Preempt(snap, pod, nil); !ok {
		t.Fatal("expected preemption to find a node")
	}
	if n := snap.Node("a"); len(n.Pods()) != 1 || n.Requested().MilliCPU != 1000 {
		t.Errorf("snapshot changed by preemption: %d pods, %dm", len(n.Pods()), n.Requested().MilliCPU)
	}
}
