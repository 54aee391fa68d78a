package daemonset

import (
	"slices"
	"sort"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/skiff-sh/skiff/controllers/history"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func node(name string, labels map[string]string, taints ...corev1.Taint) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}, Spec: corev1.NodeSpec{Taints: taints}}
}

func daemon(mut ...func(*appsv1.DaemonSet)) *appsv1.DaemonSet {
	one := intstr.FromInt32(1)
	zero := intstr.FromInt32(0)
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: "ns", UID: "ds-uid", Generation: 1},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "agent"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "agent"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "img"}}},
			},
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{
				Type:          appsv1.RollingUpdateDaemonSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: &one, MaxSurge: &zero},
			},
		},
	}
	for _, m := range mut {
		m(ds)
	}
	return ds
}

// pod makes a daemon pod on node with the given hash; ready pods became
// ready at t0.
func pod(name, nodeName, hash string, ready bool, mut ...func(*corev1.Pod)) *corev1.Pod {
	p := newPod(daemon(), nodeName, hash)
	p.Name, p.UID = name, types.UID(name)
	p.CreationTimestamp = metav1.NewTime(t0)
	p.Spec.NodeName = nodeName
	p.Status.Phase = corev1.PodRunning
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: st, LastTransitionTime: metav1.NewTime(t0)}}
	for _, m := range mut {
		m(p)
	}
	return p
}

func TestEligibility(t *testing.T) {
	tolerate := func(key string, effect corev1.TaintEffect) func(*appsv1.DaemonSet) {
		return func(ds *appsv1.DaemonSet) {
			ds.Spec.Template.Spec.Tolerations = append(ds.Spec.Template.Spec.Tolerations,
				corev1.Toleration{Key: key, Operator: corev1.TolerationOpExists, Effect: effect})
		}
	}
	selector := func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.NodeSelector = map[string]string{"disk": "ssd"} }
	affinity := func(ds *appsv1.DaemonSet) {
		ds.Spec.Template.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"a", "b"}}},
			}}},
		}}
	}
	taint := func(key string, effect corev1.TaintEffect) corev1.Taint {
		return corev1.Taint{Key: key, Value: "x", Effect: effect}
	}
	cases := []struct {
		name             string
		ds               *appsv1.DaemonSet
		node             *corev1.Node
		run, continueRun bool
	}{
		{"plain node", daemon(), node("n", nil), true, true},
		{"selector matches", daemon(selector), node("n", map[string]string{"disk": "ssd"}), true, true},
		{"selector misses", daemon(selector), node("n", map[string]string{"disk": "hdd"}), false, false},
		{"affinity matches", daemon(affinity), node("n", map[string]string{"zone": "b"}), true, true},
		{"affinity misses", daemon(affinity), node("n", map[string]string{"zone": "c"}), false, false},
		{"nodeName elsewhere", daemon(func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.NodeName = "other" }), node("n", nil), false, false},
		{"untolerated NoSchedule keeps running pods", daemon(), node("n", nil, taint("dedicated", corev1.TaintEffectNoSchedule)), false, true},
		{"untolerated NoExecute evicts", daemon(), node("n", nil, taint("dedicated", corev1.TaintEffectNoExecute)), false, false},
		{"PreferNoSchedule is ignored", daemon(), node("n", nil, taint("dedicated", corev1.TaintEffectPreferNoSchedule)), true, true},
		{"tolerated NoSchedule", daemon(tolerate("dedicated", corev1.TaintEffectNoSchedule)), node("n", nil, taint("dedicated", corev1.TaintEffectNoSchedule)), true, true},
		{"tolerated NoExecute", daemon(tolerate("dedicated", corev1.TaintEffectNoExecute)), node("n", nil, taint("dedicated", corev1.TaintEffectNoExecute)), true, true},
		{"default: unreachable", daemon(), node("n", nil, taint(taintUnreachable, corev1.TaintEffectNoExecute)), true, true},
		{"default: not-ready", daemon(), node("n", nil, taint(taintNotReady, corev1.TaintEffectNoExecute)), true, true},
		{"default: cordoned", daemon(), node("n", nil, taint(taintUnschedulable, corev1.TaintEffectNoSchedule)), true, true},
		{"default: memory pressure", daemon(), node("n", nil, taint(taintMemoryPressure, corev1.TaintEffectNoSchedule)), true, true},
		{"network-unavailable without host network", daemon(), node("n", nil, taint(taintNetworkUnavailable, corev1.TaintEffectNoSchedule)), false, true},
		{"network-unavailable with host network", daemon(func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.HostNetwork = true }),
			node("n", nil, taint(taintNetworkUnavailable, corev1.TaintEffectNoSchedule)), true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := eligibility(tc.ds, tc.node)
			if got.shouldRun != tc.run || got.shouldContinueRunning != tc.continueRun {
				t.Errorf("got run=%v continue=%v, want run=%v continue=%v", got.shouldRun, got.shouldContinueRunning, tc.run, tc.continueRun)
			}
		})
	}
}

func TestNewPodPinsAndTolerates(t *testing.T) {
	ds := daemon(func(ds *appsv1.DaemonSet) {
		ds.Spec.Template.Spec.Tolerations = []corev1.Toleration{
			{Key: taintUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr(int64(5))},
			{Key: "mine", Operator: corev1.TolerationOpExists},
		}
	})
	p := newPod(ds, "node-7", "abc")
	if targetNode(p) != "node-7" {
		t.Fatalf("target node = %q", targetNode(p))
	}
	if p.GenerateName != "agent-" || p.Labels[history.HashLabel] != "abc" || p.Labels["pod-template-generation"] != "1" {
		t.Errorf("meta = %q %v", p.GenerateName, p.Labels)
	}
	if ref := metav1.GetControllerOf(p); ref == nil || ref.UID != ds.UID || ref.BlockOwnerDeletion == nil || !*ref.BlockOwnerDeletion {
		t.Errorf("owner = %+v", ref)
	}
	var keys []string
	for _, tl := range p.Spec.Tolerations {
		keys = append(keys, tl.Key+":"+string(tl.Effect))
		if tl.Key == taintUnreachable && tl.TolerationSeconds != nil {
			t.Errorf("default unreachable toleration must replace the template's bounded one")
		}
	}
	sort.Strings(keys)
	want := []string{"mine:", // the template's own, any effect
		"node.kubernetes.io/disk-pressure:NoSchedule", "node.kubernetes.io/memory-pressure:NoSchedule",
		"node.kubernetes.io/not-ready:NoExecute", "node.kubernetes.io/pid-pressure:NoSchedule",
		"node.kubernetes.io/unreachable:NoExecute", "node.kubernetes.io/unschedulable:NoSchedule"}
	sort.Strings(want)
	if !slices.Equal(keys, want) {
		t.Errorf("tolerations = %v, want %v", keys, want)
	}
}

func ptr[T any](v T) *T { return &v }

func names(pl plan) (creates []string, deletes []string) {
	creates = append(creates, pl.create...)
	for _, d := range pl.delete {
		deletes = append(deletes, d.pod.Name)
	}
	sort.Strings(creates)
	sort.Strings(deletes)
	return creates, deletes
}

func TestDecide(t *testing.T) {
	surge := func(ds *appsv1.DaemonSet) {
		s, u := intstr.FromInt32(1), intstr.FromInt32(0)
		ds.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateDaemonSet{MaxSurge: &s, MaxUnavailable: &u}
	}
	onDelete := func(ds *appsv1.DaemonSet) {
		ds.Spec.UpdateStrategy = appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType}
	}
	unavail := func(n int32) func(*appsv1.DaemonSet) {
		return func(ds *appsv1.DaemonSet) {
			v := intstr.FromInt32(n)
			ds.Spec.UpdateStrategy.RollingUpdate.MaxUnavailable = &v
		}
	}
	noExec := corev1.Taint{Key: "gone", Effect: corev1.TaintEffectNoExecute}
	three := []*corev1.Node{node("a", nil), node("b", nil), node("c", nil)}
	failed := func(p *corev1.Pod) { p.Status.Phase = corev1.PodFailed }
	deleting := func(p *corev1.Pod) { now := metav1.NewTime(t0); p.DeletionTimestamp = &now }
	older := func(p *corev1.Pod) { p.CreationTimestamp = metav1.NewTime(t0.Add(-time.Hour)) }

	cases := []struct {
		name    string
		ds      *appsv1.DaemonSet
		nodes   []*corev1.Node
		pods    []*corev1.Pod
		creates []string
		deletes []string
	}{
		{name: "fresh: one pod per node", ds: daemon(), nodes: three, creates: []string{"a", "b", "c"}},
		{name: "converged", ds: daemon(), nodes: three,
			pods: []*corev1.Pod{pod("pa", "a", "new", true), pod("pb", "b", "new", true), pod("pc", "c", "new", true)}},
		{name: "node no longer fits", ds: daemon(), nodes: []*corev1.Node{node("a", nil, noExec)},
			pods: []*corev1.Pod{pod("pa", "a", "new", true)}, deletes: []string{"pa"}},
		{name: "terminating pod is waited for", ds: daemon(), nodes: []*corev1.Node{node("a", nil)},
			pods: []*corev1.Pod{pod("pa", "a", "new", true, deleting)}},
		{name: "failed pod deleted, recreated later", ds: daemon(), nodes: []*corev1.Node{node("a", nil)},
			pods: []*corev1.Pod{pod("pa", "a", "new", false, failed)}, deletes: []string{"pa"}},
		{name: "excess pods: oldest kept", ds: daemon(), nodes: []*corev1.Node{node("a", nil)},
			pods: []*corev1.Pod{pod("young", "a", "new", true), pod("old", "a", "new", true, older)}, deletes: []string{"young"}},
		{name: "unbound pod pinned to a vanished node", ds: daemon(), nodes: []*corev1.Node{node("a", nil)},
			pods: []*corev1.Pod{pod("pa", "a", "new", true), pod("ghost", "", "new", false, func(p *corev1.Pod) {
				p.Spec.Affinity = pinnedAffinity(nil, "gone")
			})}, deletes: []string{"ghost"}},
		{name: "rolling: one old pod at a time", ds: daemon(), nodes: three,
			pods:    []*corev1.Pod{pod("pa", "a", "old", true), pod("pb", "b", "old", true), pod("pc", "c", "old", true)},
			deletes: []string{"pa"}},
		{name: "rolling: wait while a node is unavailable", ds: daemon(), nodes: three,
			pods: []*corev1.Pod{pod("pa", "a", "new", false), pod("pb", "b", "old", true), pod("pc", "c", "old", true)}},
		{name: "rolling: unavailable old pods go at once", ds: daemon(), nodes: three,
			pods:    []*corev1.Pod{pod("pa", "a", "new", false), pod("pb", "b", "old", false), pod("pc", "c", "old", true)},
			deletes: []string{"pb"}},
		{name: "rolling: maxUnavailable 2", ds: daemon(unavail(2)), nodes: three,
			pods:    []*corev1.Pod{pod("pa", "a", "old", true), pod("pb", "b", "old", true), pod("pc", "c", "old", true)},
			deletes: []string{"pa", "pb"}},
		{name: "placement before rollout", ds: daemon(), nodes: three,
			pods:    []*corev1.Pod{pod("pa", "a", "old", true), pod("pb", "b", "old", true)},
			creates: []string{"c"}},
		{name: "surge: new pod beside the old", ds: daemon(surge), nodes: three,
			pods:    []*corev1.Pod{pod("pa", "a", "old", true), pod("pb", "b", "old", true), pod("pc", "c", "old", true)},
			creates: []string{"a"}},
		{name: "surge: old pod goes once the new is available", ds: daemon(surge), nodes: three,
			pods: []*corev1.Pod{pod("pa", "a", "old", true, older), pod("na", "a", "new", true),
				pod("pb", "b", "old", true), pod("pc", "c", "old", true)},
			deletes: []string{"pa"}},
		{name: "surge: both kept while the new is not ready", ds: daemon(surge), nodes: three,
			pods: []*corev1.Pod{pod("pa", "a", "old", true, older), pod("na", "a", "new", false),
				pod("pb", "b", "old", true), pod("pc", "c", "old", true)}},
		{name: "OnDelete: old pods stay", ds: daemon(onDelete), nodes: three,
			pods: []*corev1.Pod{pod("pa", "a", "old", true), pod("pb", "b", "old", true), pod("pc", "c", "old", true)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pl := decide(world{ds: tc.ds, nodes: tc.nodes, pods: tc.pods, hash: "new", now: t0.Add(time.Minute)})
			creates, deletes := names(pl)
			if !slices.Equal(creates, tc.creates) || !slices.Equal(deletes, tc.deletes) {
				t.Errorf("creates %v deletes %v, want creates %v deletes %v", creates, deletes, tc.creates, tc.deletes)
			}
		})
	}
}

func TestStatus(t *testing.T) {
	ds := daemon(func(ds *appsv1.DaemonSet) {
		ds.Generation = 4
		ds.Spec.Template.Spec.NodeSelector = map[string]string{"run": "yes"}
		ds.Spec.MinReadySeconds = 30
	})
	yes := map[string]string{"run": "yes"}
	nodes := []*corev1.Node{node("a", yes), node("b", yes), node("c", yes), node("d", yes), node("x", nil)}
	pods := []*corev1.Pod{
		pod("pa", "a", "new", true),  // ready at t0, available at t0+30s
		pod("pb", "b", "old", true),  // ready, outdated
		pod("pc", "c", "new", false), // not ready
		pod("px", "x", "new", true),  // on a node it should not be on
	}
	st, recheck := computeStatus(world{ds: ds, pods: pods, hash: "new", now: t0.Add(10 * time.Second)}, mustNodes(ds, nodes, pods))
	want := appsv1.DaemonSetStatus{
		ObservedGeneration: 4, DesiredNumberScheduled: 4, CurrentNumberScheduled: 3, NumberMisscheduled: 1,
		NumberReady: 2, NumberAvailable: 0, UpdatedNumberScheduled: 2, NumberUnavailable: 4,
	}
	if st.ObservedGeneration != want.ObservedGeneration || st.DesiredNumberScheduled != want.DesiredNumberScheduled ||
		st.CurrentNumberScheduled != want.CurrentNumberScheduled || st.NumberMisscheduled != want.NumberMisscheduled ||
		st.NumberReady != want.NumberReady || st.NumberAvailable != want.NumberAvailable ||
		st.UpdatedNumberScheduled != want.UpdatedNumberScheduled || st.NumberUnavailable != want.NumberUnavailable {
		t.Errorf("status = %+v\nwant     %+v", st, want)
	}
	if recheck <= 0 || recheck > 21*time.Second {
		t.Errorf("recheck = %v, want about 20s", recheck)
	}
	st, _ = computeStatus(world{ds: ds, pods: pods, hash: "new", now: t0.Add(time.Minute)}, mustNodes(ds, nodes, pods))
	if st.NumberAvailable != 2 || st.NumberUnavailable != 2 {
		t.Errorf("after minReadySeconds: available %d unavailable %d, want 2 and 2", st.NumberAvailable, st.NumberUnavailable)
	}
}

// mustNodes builds the per-node view decide would.
func mustNodes(ds *appsv1.DaemonSet, nodes []*corev1.Node, pods []*corev1.Pod) []nodePods {
	var out []nodePods
	for _, n := range nodes {
		np := nodePods{node: n, place: eligibility(ds, n)}
		for _, p := range pods {
			if targetNode(p) == n.Name {
				np.all = append(np.all, p)
				np.live = append(np.live, p)
				np.running = append(np.running, p)
			}
		}
		out = append(out, np)
	}
	return out
}

func TestRolloutLimits(t *testing.T) {
	pct := func(s string) *intstr.IntOrString { v := intstr.FromString(s); return &v }
	num := func(n int32) *intstr.IntOrString { v := intstr.FromInt32(n); return &v }
	cases := []struct {
		surge, unavail *intstr.IntOrString
		desired        int
		wantS, wantU   int
	}{
		{num(0), num(1), 10, 0, 1},
		{num(0), pct("25%"), 10, 0, 3},
		{pct("10%"), num(0), 5, 1, 0},
		{num(0), num(0), 5, 0, 1},
	}
	for _, tc := range cases {
		ds := daemon(func(ds *appsv1.DaemonSet) {
			ds.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateDaemonSet{MaxSurge: tc.surge, MaxUnavailable: tc.unavail}
		})
		s, u := rolloutLimits(ds, tc.desired)
		if s != tc.wantS || u != tc.wantU {
			t.Errorf("surge %v unavail %v of %d: got %d/%d want %d/%d", tc.surge, tc.unavail, tc.desired, s, u, tc.wantS, tc.wantU)
		}
	}
}
