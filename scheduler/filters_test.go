package scheduler

import (
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// verdicts runs the default filters on every node and returns each
// node's reasons ("" joined; "ok" when it passes), or the pod-level
// rejection under the key "pod".
func verdicts(t *testing.T, snap *Snapshot, pod *corev1.Pod) map[string]string {
	t.Helper()
	c := &Cycle{}
	c.reset(snap, NewPodInfo(pod))
	out := map[string]string{}
	if st := DefaultProfile().prepareFilters(c); st != nil {
		out["pod"] = strings.Join(st.Reasons, "; ")
		return out
	}
	for _, n := range snap.Nodes() {
		if st := c.runFilters(n); st != nil {
			out[n.Name()] = strings.Join(st.Reasons, "; ")
		} else {
			out[n.Name()] = "ok"
		}
	}
	return out
}

type filterCase struct {
	name  string
	nodes []*corev1.Node
	pods  []*corev1.Pod
	objs  *ObjectSet
	pod   *corev1.Pod
	want  map[string]string
}

func runFilterCases(t *testing.T, cases []filterCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var objs Objects = &ObjectSet{}
			if tc.objs != nil {
				objs = tc.objs
			}
			got := verdicts(t, NewSnapshot(tc.nodes, tc.pods, objs), tc.pod)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("verdicts:\n got %v\nwant %v", got, tc.want)
			}
		})
	}
}

func TestNodeConditionFilters(t *testing.T) {
	runFilterCases(t, []filterCase{
		{
			name:  "cordoned node is rejected",
			nodes: []*corev1.Node{mkNode("a"), mkNode("b", cordoned)},
			pod:   mkPod("p"),
			want:  map[string]string{"a": "ok", "b": reasonUnschedulable},
		},
		{
			name:  "cordon tolerated",
			nodes: []*corev1.Node{mkNode("b", cordoned)},
			pod:   mkPod("p", tolerate(taintUnschedulable, "", corev1.TaintEffectNoSchedule)),
			want:  map[string]string{"b": "ok"},
		},
		{
			name:  "not ready and unknown nodes carry implied taints",
			nodes: []*corev1.Node{mkNode("a", nodeReady(corev1.ConditionFalse)), mkNode("b", nodeReady(corev1.ConditionUnknown))},
			pod:   mkPod("p"),
			want: map[string]string{
				"a": "node(s) had untolerated taint {node.kubernetes.io/not-ready: }",
				"b": "node(s) had untolerated taint {node.kubernetes.io/unreachable: }",
			},
		},
		{
			name:  "not-ready tolerated (daemon pods)",
			nodes: []*corev1.Node{mkNode("a", nodeReady(corev1.ConditionFalse))},
			pod:   mkPod("p", tolerate(taintNotReady, "", "")),
			want:  map[string]string{"a": "ok"},
		},
		{
			name:  "spec.nodeName",
			nodes: []*corev1.Node{mkNode("a"), mkNode("b")},
			pod:   mkPod("p", on("b")),
			want:  map[string]string{"a": reasonNodeName, "b": "ok"},
		},
	})
}

func TestTaintFilter(t *testing.T) {
	tainted := func(effect corev1.TaintEffect) *corev1.Node {
		return mkNode("t", nodeTaint("dedicated", "gpu", effect))
	}
	msg := "node(s) had untolerated taint {dedicated: gpu}"
	runFilterCases(t, []filterCase{
		{name: "NoSchedule rejects", nodes: []*corev1.Node{tainted(corev1.TaintEffectNoSchedule)}, pod: mkPod("p"), want: map[string]string{"t": msg}},
		{name: "NoExecute rejects", nodes: []*corev1.Node{tainted(corev1.TaintEffectNoExecute)}, pod: mkPod("p"), want: map[string]string{"t": msg}},
		{name: "PreferNoSchedule does not filter", nodes: []*corev1.Node{tainted(corev1.TaintEffectPreferNoSchedule)}, pod: mkPod("p"), want: map[string]string{"t": "ok"}},
		{name: "Equal toleration", nodes: []*corev1.Node{tainted(corev1.TaintEffectNoSchedule)},
			pod: mkPod("p", tolerate("dedicated", "gpu", corev1.TaintEffectNoSchedule)), want: map[string]string{"t": "ok"}},
		{name: "wrong value", nodes: []*corev1.Node{tainted(corev1.TaintEffectNoSchedule)},
			pod: mkPod("p", tolerate("dedicated", "cpu", corev1.TaintEffectNoSchedule)), want: map[string]string{"t": msg}},
		{name: "wrong effect", nodes: []*corev1.Node{tainted(corev1.TaintEffectNoExecute)},
			pod: mkPod("p", tolerate("dedicated", "gpu", corev1.TaintEffectNoSchedule)), want: map[string]string{"t": msg}},
		{name: "Exists with empty effect", nodes: []*corev1.Node{tainted(corev1.TaintEffectNoExecute)},
			pod: mkPod("p", tolerate("dedicated", "", "")), want: map[string]string{"t": "ok"}},
		{name: "empty key Exists tolerates everything", nodes: []*corev1.Node{tainted(corev1.TaintEffectNoExecute)},
			pod: mkPod("p", tolerate("", "", "")), want: map[string]string{"t": "ok"}},
		{name: "first untolerated taint is reported",
			nodes: []*corev1.Node{mkNode("t", nodeTaint("a", "1", corev1.TaintEffectNoSchedule), nodeTaint("b", "2", corev1.TaintEffectNoSchedule))},
			pod:   mkPod("p", tolerate("a", "1", corev1.TaintEffectNoSchedule)),
			want:  map[string]string{"t": "node(s) had untolerated taint {b: 2}"}},
	})
}

func TestNodeAffinityFilter(t *testing.T) {
	ns := []*corev1.Node{
		mkNode("a", nodeLabels("disk", "ssd", "gen", "3")),
		mkNode("b", nodeLabels("disk", "hdd", "gen", "5")),
		mkNode("c"),
	}
	required := func(terms ...corev1.NodeSelectorTerm) podOpt {
		return affinity(&corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: terms},
		}})
	}
	expr := func(key string, op corev1.NodeSelectorOperator, values ...string) corev1.NodeSelectorRequirement {
		return corev1.NodeSelectorRequirement{Key: key, Operator: op, Values: values}
	}
	term := func(exprs ...corev1.NodeSelectorRequirement) corev1.NodeSelectorTerm {
		return corev1.NodeSelectorTerm{MatchExpressions: exprs}
	}
	no := reasonNodeAffinity
	runFilterCases(t, []filterCase{
		{name: "nodeSelector", nodes: ns, pod: mkPod("p", func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{"disk": "ssd"} }),
			want: map[string]string{"a": "ok", "b": no, "c": no}},
		{name: "In", nodes: ns, pod: mkPod("p", required(term(expr("disk", corev1.NodeSelectorOpIn, "ssd", "nvme")))),
			want: map[string]string{"a": "ok", "b": no, "c": no}},
		{name: "NotIn matches nodes without the label", nodes: ns, pod: mkPod("p", required(term(expr("disk", corev1.NodeSelectorOpNotIn, "ssd")))),
			want: map[string]string{"a": no, "b": "ok", "c": "ok"}},
		{name: "Exists", nodes: ns, pod: mkPod("p", required(term(expr("disk", corev1.NodeSelectorOpExists)))),
			want: map[string]string{"a": "ok", "b": "ok", "c": no}},
		{name: "DoesNotExist", nodes: ns, pod: mkPod("p", required(term(expr("disk", corev1.NodeSelectorOpDoesNotExist)))),
			want: map[string]string{"a": no, "b": no, "c": "ok"}},
		{name: "Gt", nodes: ns, pod: mkPod("p", required(term(expr("gen", corev1.NodeSelectorOpGt, "4")))),
			want: map[string]string{"a": no, "b": "ok", "c": no}},
		{name: "Lt", nodes: ns, pod: mkPod("p", required(term(expr("gen", corev1.NodeSelectorOpLt, "4")))),
			want: map[string]string{"a": "ok", "b": no, "c": no}},
		{name: "Gt with a non-integer value matches nothing", nodes: ns, pod: mkPod("p", required(term(expr("gen", corev1.NodeSelectorOpGt, "x")))),
			want: map[string]string{"a": no, "b": no, "c": no}},
		{name: "expressions in a term are ANDed", nodes: ns,
			pod:  mkPod("p", required(term(expr("disk", corev1.NodeSelectorOpExists), expr("gen", corev1.NodeSelectorOpGt, "4")))),
			want: map[string]string{"a": no, "b": "ok", "c": no}},
		{name: "terms are ORed", nodes: ns,
			pod:  mkPod("p", required(term(expr("disk", corev1.NodeSelectorOpIn, "ssd")), term(expr("disk", corev1.NodeSelectorOpDoesNotExist)))),
			want: map[string]string{"a": "ok", "b": no, "c": "ok"}},
		{name: "matchFields metadata.name", nodes: ns,
			pod: mkPod("p", required(corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{
				expr("metadata.name", corev1.NodeSelectorOpIn, "c")}})),
			want: map[string]string{"a": no, "b": no, "c": "ok"}},
		{name: "empty term list matches nothing", nodes: ns, pod: mkPod("p", required()),
			want: map[string]string{"a": no, "b": no, "c": no}},
		{name: "nodeSelector and affinity must both hold", nodes: ns,
			pod: mkPod("p", required(term(expr("disk", corev1.NodeSelectorOpExists))),
				func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{"gen": "5"} }),
			want: map[string]string{"a": no, "b": "ok", "c": no}},
	})
}

func TestNodePortsFilter(t *testing.T) {
	ns := []*corev1.Node{mkNode("a")}
	used := func(opts ...podOpt) []*corev1.Pod {
		return []*corev1.Pod{mkPod("old", append(opts, on("a"))...)}
	}
	busy := reasonPorts
	runFilterCases(t, []filterCase{
		{name: "same port and protocol", nodes: ns, pods: used(withHostPort(80, corev1.ProtocolTCP, "")),
			pod: mkPod("p", withHostPort(80, "", "")), want: map[string]string{"a": busy}},
		{name: "other protocol", nodes: ns, pods: used(withHostPort(80, corev1.ProtocolTCP, "")),
			pod: mkPod("p", withHostPort(80, corev1.ProtocolUDP, "")), want: map[string]string{"a": "ok"}},
		{name: "different specific IPs", nodes: ns, pods: used(withHostPort(80, corev1.ProtocolTCP, "10.0.0.1")),
			pod: mkPod("p", withHostPort(80, corev1.ProtocolTCP, "10.0.0.2")), want: map[string]string{"a": "ok"}},
		{name: "wildcard IP clashes with a specific one", nodes: ns, pods: used(withHostPort(80, corev1.ProtocolTCP, "10.0.0.1")),
			pod: mkPod("p", withHostPort(80, corev1.ProtocolTCP, "0.0.0.0")), want: map[string]string{"a": busy}},
		{name: "other port", nodes: ns, pods: used(withHostPort(80, corev1.ProtocolTCP, "")),
			pod: mkPod("p", withHostPort(81, corev1.ProtocolTCP, "")), want: map[string]string{"a": "ok"}},
		{name: "finished pods free their ports", nodes: ns,
			pods: used(withHostPort(80, corev1.ProtocolTCP, ""), func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }),
			pod:  mkPod("p", withHostPort(80, corev1.ProtocolTCP, "")), want: map[string]string{"a": "ok"}},
	})
}

func TestNodeResourcesFilter(t *testing.T) {
	small := mkNode("a", nodeAlloc("cpu", "1", "memory", "1Gi", "ephemeral-storage", "1Gi", "pods", "2", "example.com/gpu", "1"))
	one := []*corev1.Node{small}
	existing := []*corev1.Pod{mkPod("old", on("a"), req("cpu", "600m", "memory", "600Mi", "example.com/gpu", "1"))}
	runFilterCases(t, []filterCase{
		{name: "fits", nodes: one, pods: existing, pod: mkPod("p", req("cpu", "400m", "memory", "400Mi")),
			want: map[string]string{"a": "ok"}},
		{name: "cpu", nodes: one, pods: existing, pod: mkPod("p", req("cpu", "500m")),
			want: map[string]string{"a": "Insufficient cpu"}},
		{name: "cpu and memory", nodes: one, pods: existing, pod: mkPod("p", req("cpu", "500m", "memory", "500Mi")),
			want: map[string]string{"a": "Insufficient cpu; Insufficient memory"}},
		{name: "ephemeral storage", nodes: one, pod: mkPod("p", req("ephemeral-storage", "2Gi")),
			want: map[string]string{"a": "Insufficient ephemeral-storage"}},
		{name: "extended resource in use", nodes: one, pods: existing, pod: mkPod("p", req("example.com/gpu", "1")),
			want: map[string]string{"a": "Insufficient example.com/gpu"}},
		{name: "extended resource the node lacks", nodes: one, pod: mkPod("p", req("example.com/fpga", "1")),
			want: map[string]string{"a": "Insufficient example.com/fpga"}},
		{name: "pod count", nodes: one, pods: append(existing, mkPod("old2", on("a"))), pod: mkPod("p"),
			want: map[string]string{"a": "Too many pods"}},
		{name: "pod count and cpu together", nodes: one, pods: append(existing, mkPod("old2", on("a"))), pod: mkPod("p", req("cpu", "1")),
			want: map[string]string{"a": "Too many pods; Insufficient cpu"}},
		{name: "best effort pod always fits resources", nodes: one, pods: existing, pod: mkPod("p"),
			want: map[string]string{"a": "ok"}},
		{name: "init container peak counts", nodes: one, pod: mkPod("p", req("cpu", "100m"), func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "init", Resources: corev1.ResourceRequirements{Requests: list("cpu", "2")}}}
		}), want: map[string]string{"a": "Insufficient cpu"}},
		{name: "overhead counts", nodes: one, pod: mkPod("p", req("cpu", "900m"), func(p *corev1.Pod) { p.Spec.Overhead = list("cpu", "200m") }),
			want: map[string]string{"a": "Insufficient cpu"}},
		{name: "higher-priority nominated pod holds room", nodes: one,
			pods: []*corev1.Pod{mkPod("nom", prio(100), req("cpu", "800m"), func(p *corev1.Pod) { p.Status.NominatedNodeName = "a" })},
			pod:  mkPod("p", prio(10), req("cpu", "500m")), want: map[string]string{"a": "Insufficient cpu"}},
		{name: "lower-priority nominated pod does not", nodes: one,
			pods: []*corev1.Pod{mkPod("nom", prio(1), req("cpu", "800m"), func(p *corev1.Pod) { p.Status.NominatedNodeName = "a" })},
			pod:  mkPod("p", prio(10), req("cpu", "500m")), want: map[string]string{"a": "ok"}},
	})
}

func TestPodRequests(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	ctr := func(kv ...string) corev1.Container {
		return corev1.Container{Name: "c", Resources: corev1.ResourceRequirements{Requests: list(kv...)}}
	}
	sidecar := func(kv ...string) corev1.Container {
		c := ctr(kv...)
		c.RestartPolicy = &always
		return c
	}
	cases := []struct {
		name            string
		spec            corev1.PodSpec
		cpu, mem        int64
		nonZeroCPU, nzm int64
	}{
		{name: "sum of containers", spec: corev1.PodSpec{Containers: []corev1.Container{ctr("cpu", "100m", "memory", "1Mi"), ctr("cpu", "200m")}},
			cpu: 300, mem: 1 << 20, nonZeroCPU: 300, nzm: 1<<20 + defaultMemoryRequest},
		{name: "init max wins", spec: corev1.PodSpec{InitContainers: []corev1.Container{ctr("cpu", "1")}, Containers: []corev1.Container{ctr("cpu", "100m")}},
			cpu: 1000, nonZeroCPU: 1000, nzm: defaultMemoryRequest},
		{name: "sum wins", spec: corev1.PodSpec{InitContainers: []corev1.Container{ctr("cpu", "100m")}, Containers: []corev1.Container{ctr("cpu", "300m")}},
			cpu: 300, nonZeroCPU: 300, nzm: defaultMemoryRequest},
		{name: "sidecar adds to the app containers and later inits", spec: corev1.PodSpec{
			InitContainers: []corev1.Container{sidecar("cpu", "200m", "memory", "1Mi"), ctr("cpu", "400m", "memory", "1Mi")},
			Containers:     []corev1.Container{ctr("cpu", "100m", "memory", "1Mi")}},
			cpu: 600, mem: 2 << 20, nonZeroCPU: 600, nzm: 2 << 20},
		{name: "overhead", spec: corev1.PodSpec{Containers: []corev1.Container{ctr("cpu", "100m", "memory", "1Mi")}, Overhead: list("cpu", "50m", "memory", "1Mi")},
			cpu: 150, mem: 2 << 20, nonZeroCPU: 150, nzm: 2 << 20},
		{name: "pod-level requests", spec: corev1.PodSpec{Containers: []corev1.Container{ctr("cpu", "100m"), ctr("cpu", "100m")},
			Resources: &corev1.ResourceRequirements{Requests: list("cpu", "1", "memory", "1Gi")}},
			cpu: 1000, mem: 1 << 30, nonZeroCPU: 1000, nzm: 1 << 30},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, cpu, mem := podRequests(&corev1.Pod{Spec: tc.spec})
			if r.MilliCPU != tc.cpu || r.Memory != tc.mem || cpu != tc.nonZeroCPU || mem != tc.nzm {
				t.Errorf("got cpu=%d mem=%d nonzero=%d/%d, want %d %d %d/%d", r.MilliCPU, r.Memory, cpu, mem, tc.cpu, tc.mem, tc.nonZeroCPU, tc.nzm)
			}
		})
	}
}
