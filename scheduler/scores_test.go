package scheduler

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestScorers checks each scorer's weighted contribution (normalized score
// times its weight in the default profile) per node.
func TestScorers(t *testing.T) {
	preferNode := func(terms ...corev1.PreferredSchedulingTerm) podOpt {
		return affinity(&corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{PreferredDuringSchedulingIgnoredDuringExecution: terms}})
	}
	preferTerm := func(w int32, key string, op corev1.NodeSelectorOperator, values ...string) corev1.PreferredSchedulingTerm {
		return corev1.PreferredSchedulingTerm{Weight: w, Preference: corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{
			{Key: key, Operator: op, Values: values}}}}
	}
	weighted := func(w int32, key string, sel map[string]string) []corev1.WeightedPodAffinityTerm {
		return []corev1.WeightedPodAffinityTerm{{Weight: w, PodAffinityTerm: corev1.PodAffinityTerm{TopologyKey: key,
			LabelSelector: selector(flatten(sel)...)}}}
	}
	withImages := func(n *corev1.Node) {
		n.Status.Images = []corev1.ContainerImage{{Names: []string{"registry.example/app:1"}, SizeBytes: 500 << 20}}
	}
	cases := []struct {
		name   string
		nodes  []*corev1.Node
		pods   []*corev1.Pod
		pod    *corev1.Pod
		scorer string
		want   map[string]int64
	}{
		{
			name:   "least allocated prefers free cpu and memory",
			nodes:  []*corev1.Node{mkNode("a"), mkNode("b")},
			pods:   []*corev1.Pod{mkPod("old", on("b"), req("cpu", "2", "memory", "1Gi"))},
			pod:    mkPod("p", req("cpu", "1", "memory", "1Gi")),
			scorer: "NodeResourcesFit",
			// a: cpu 3/4 free = 75, memory 7/8 = 87 -> 81; b: 25 and 75 -> 50.
			want: map[string]int64{"a": 81, "b": 50},
		},
		{
			name:   "least allocated counts defaults for best-effort pods",
			nodes:  []*corev1.Node{mkNode("a"), mkNode("b")},
			pods:   []*corev1.Pod{mkPod("old", on("b"))},
			pod:    mkPod("p"),
			scorer: "NodeResourcesFit",
			// a: cpu 3900/4000 -> 97, memory 7992/8192Mi -> 97; b twice the defaults: 95, 95.
			want: map[string]int64{"a": 97, "b": 95},
		},
		{
			name:   "balanced allocation",
			nodes:  []*corev1.Node{mkNode("a"), mkNode("b")},
			pods:   []*corev1.Pod{mkPod("old", on("b"), req("cpu", "2", "memory", "1Gi"))},
			pod:    mkPod("p", req("cpu", "1", "memory", "1Gi")),
			scorer: "NodeResourcesBalancedAllocation",
			// a: fractions .25 and .125 -> 1-.0625; b: .75 and .25 -> 1-.25.
			want: map[string]int64{"a": 93, "b": 75},
		},
		{
			name:   "preferred node affinity",
			nodes:  []*corev1.Node{mkNode("a", nodeLabels("disk", "ssd", "gen", "3")), mkNode("b", nodeLabels("gen", "4")), mkNode("c")},
			pod:    mkPod("p", preferNode(preferTerm(10, "disk", corev1.NodeSelectorOpIn, "ssd"), preferTerm(5, "gen", corev1.NodeSelectorOpExists))),
			scorer: "NodeAffinity",
			// raw 15, 5, 0 -> 100, 33, 0, weight 2.
			want: map[string]int64{"a": 200, "b": 66, "c": 0},
		},
		{
			name: "PreferNoSchedule taints",
			nodes: []*corev1.Node{mkNode("a"), mkNode("b", nodeTaint("x", "1", corev1.TaintEffectPreferNoSchedule)),
				mkNode("c", nodeTaint("x", "1", corev1.TaintEffectPreferNoSchedule), nodeTaint("y", "1", corev1.TaintEffectPreferNoSchedule))},
			pod:    mkPod("p"),
			scorer: "TaintToleration",
			// 0, 1, 2 untolerated -> 100, 50, 0, weight 3.
			want: map[string]int64{"a": 300, "b": 150, "c": 0},
		},
		{
			name: "tolerated PreferNoSchedule taints do not count",
			nodes: []*corev1.Node{mkNode("a"), mkNode("b", nodeTaint("x", "1", corev1.TaintEffectPreferNoSchedule)),
				mkNode("c", nodeTaint("x", "1", corev1.TaintEffectPreferNoSchedule), nodeTaint("y", "1", corev1.TaintEffectPreferNoSchedule))},
			pod:    mkPod("p", tolerate("x", "", corev1.TaintEffectPreferNoSchedule)),
			scorer: "TaintToleration",
			want:   map[string]int64{"a": 300, "b": 300, "c": 0},
		},
		{
			name:   "preferred pod affinity by zone",
			nodes:  zonedNodes(),
			pods:   []*corev1.Pod{mkPod("db", on("a"), podLabels("app", "db"))},
			pod:    mkPod("web", affinity(&corev1.Affinity{PodAffinity: &corev1.PodAffinity{PreferredDuringSchedulingIgnoredDuringExecution: weighted(50, labelZone, map[string]string{"app": "db"})}})),
			scorer: "InterPodAffinity",
			want:   map[string]int64{"a": 200, "b": 200, "c": 0},
		},
		{
			name:   "preferred pod anti-affinity by host",
			nodes:  zonedNodes(),
			pods:   []*corev1.Pod{mkPod("web1", on("a"), podLabels("app", "web"))},
			pod:    mkPod("web", affinity(&corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{PreferredDuringSchedulingIgnoredDuringExecution: weighted(50, labelHostname, map[string]string{"app": "web"})}})),
			scorer: "InterPodAffinity",
			want:   map[string]int64{"a": 0, "b": 200, "c": 200},
		},
		{
			name:  "existing pods' preferred anti-affinity counts against the incoming pod",
			nodes: zonedNodes(),
			pods: []*corev1.Pod{mkPod("shy", on("c"), affinity(&corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
				PreferredDuringSchedulingIgnoredDuringExecution: weighted(10, labelZone, map[string]string{"app": "web"})}}))},
			pod:    mkPod("web", podLabels("app", "web")),
			scorer: "InterPodAffinity",
			want:   map[string]int64{"a": 200, "b": 200, "c": 0},
		},
		{
			name:   "existing pods' required affinity attracts the incoming pod",
			nodes:  zonedNodes(),
			pods:   []*corev1.Pod{mkPod("fan", on("c"), requiredAffinity(podTermOf(labelZone, selector("app", "web"))))},
			pod:    mkPod("web", podLabels("app", "web")),
			scorer: "InterPodAffinity",
			want:   map[string]int64{"a": 0, "b": 0, "c": 200},
		},
		{
			name:   "soft topology spread",
			nodes:  zonedNodes(),
			pods:   []*corev1.Pod{mkPod("w1", on("a"), podLabels("app", "web"))},
			pod:    mkPod("w", podLabels("app", "web"), spread(labelZone, 1, corev1.ScheduleAnyway, selector("app", "web"))),
			scorer: "PodTopologySpread",
			want:   map[string]int64{"a": 0, "b": 0, "c": 200},
		},
		{
			name:   "soft spread scores nodes without the key 0",
			nodes:  append(zonedNodes(), mkNode("d")),
			pod:    mkPod("w", podLabels("app", "web"), spread(labelZone, 1, corev1.ScheduleAnyway, selector("app", "web"))),
			scorer: "PodTopologySpread",
			want:   map[string]int64{"a": 200, "b": 200, "c": 200, "d": 0},
		},
		{
			name:  "controller pods spread over nodes and zones by default",
			nodes: zonedNodes(),
			pods: []*corev1.Pod{mkPod("s1", on("a"), ownedBy("rs1")), mkPod("s2", on("a"), ownedBy("rs1")),
				mkPod("other", on("c"), ownedBy("rs2"))},
			pod:    mkPod("s3", ownedBy("rs1")),
			scorer: "PodTopologySpread",
			// Siblings: 2 on a (zone z1). Per constraint, count*ln(domains+2)
			// + maxSkew-1: a = 2*ln5+2 + 2*ln4+4 = 12, b = 0+2 + 2*ln4+4 = 9,
			// c = 2 + 4 = 6; normalized 100*(12+6-s)/12, weight 2.
			want: map[string]int64{"a": 100, "b": 150, "c": 200},
		},
		{
			name:   "image locality",
			nodes:  []*corev1.Node{mkNode("a", withImages), mkNode("b")},
			pod:    mkPod("p", func(p *corev1.Pod) { p.Spec.Containers[0].Image = "registry.example/app:1" }),
			scorer: "ImageLocality",
			// 500MiB on half the nodes = 250MiB -> (250-23)/(1000-23) of 100.
			want: map[string]int64{"a": 23, "b": 0},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := decide(t, tc.nodes, tc.pods, tc.pod)
			got := map[string]int64{}
			for _, s := range d.Scores {
				got[s.Node] = s.Parts[tc.scorer]
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("%s scores: got %v, want %v", tc.scorer, got, tc.want)
			}
		})
	}
}

func flatten(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k, v)
	}
	return out
}

func TestSelectionPicksHighestTotalAndBreaksTiesByOrder(t *testing.T) {
	nodes := []*corev1.Node{mkNode("a"), mkNode("b"), mkNode("c")}
	pods := []*corev1.Pod{mkPod("x", on("a"), req("cpu", "1")), mkPod("y", on("c"), req("cpu", "1"))}
	d := decide(t, nodes, pods, mkPod("p", req("cpu", "1")))
	if d.Node != "b" {
		t.Fatalf("chose %q, want the empty node b (scores %+v)", d.Node, d.Scores)
	}
	d = decide(t, []*corev1.Node{mkNode("a"), mkNode("b")}, nil, mkPod("p"))
	if d.Node != "a" {
		t.Fatalf("tie went to %q, want the first visited, a", d.Node)
	}
	if d.Scores[0].Total != d.Scores[1].Total {
		t.Fatalf("expected a tie: %+v", d.Scores)
	}
}
