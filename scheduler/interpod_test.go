package scheduler

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Three nodes in two zones: a and b in z1, c in z2.
func zonedNodes() []*corev1.Node {
	return []*corev1.Node{
		mkNode("a", nodeLabels(labelZone, "z1")),
		mkNode("b", nodeLabels(labelZone, "z1")),
		mkNode("c", nodeLabels(labelZone, "z2")),
	}
}

func requiredAffinity(terms ...corev1.PodAffinityTerm) podOpt {
	return func(p *corev1.Pod) {
		if p.Spec.Affinity == nil {
			p.Spec.Affinity = &corev1.Affinity{}
		}
		p.Spec.Affinity.PodAffinity = &corev1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: terms}
	}
}

func requiredAnti(terms ...corev1.PodAffinityTerm) podOpt {
	return func(p *corev1.Pod) {
		if p.Spec.Affinity == nil {
			p.Spec.Affinity = &corev1.Affinity{}
		}
		p.Spec.Affinity.PodAntiAffinity = &corev1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: terms}
	}
}

func TestInterPodAffinityFilter(t *testing.T) {
	db := mkPod("db", on("a"), podLabels("app", "db"))
	dbOther := mkPod("db", on("a"), podLabels("app", "db"), ns("other"))
	dbLabelled := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "other", Labels: map[string]string{"team": "data"}}}
	noAff, noAnti, noExisting := reasonAffinity, reasonAntiAffinity, reasonExistingAntiAff
	runFilterCases(t, []filterCase{
		{name: "affinity by host", nodes: zonedNodes(), pods: []*corev1.Pod{db},
			pod:  mkPod("web", requiredAffinity(podTermOf(labelHostname, selector("app", "db")))),
			want: map[string]string{"a": "ok", "b": noAff, "c": noAff}},
		{name: "affinity by zone", nodes: zonedNodes(), pods: []*corev1.Pod{db},
			pod:  mkPod("web", requiredAffinity(podTermOf(labelZone, selector("app", "db")))),
			want: map[string]string{"a": "ok", "b": "ok", "c": noAff}},
		{name: "affinity to nothing, not self-matching", nodes: zonedNodes(),
			pod:  mkPod("web", requiredAffinity(podTermOf(labelZone, selector("app", "db")))),
			want: map[string]string{"a": noAff, "b": noAff, "c": noAff}},
		{name: "first pod of a self-affine group goes anywhere", nodes: zonedNodes(),
			pod:  mkPod("web", podLabels("app", "web"), requiredAffinity(podTermOf(labelZone, selector("app", "web")))),
			want: map[string]string{"a": "ok", "b": "ok", "c": "ok"}},
		{name: "affinity ignores other namespaces by default", nodes: zonedNodes(), pods: []*corev1.Pod{dbOther},
			pod:  mkPod("web", requiredAffinity(podTermOf(labelZone, selector("app", "db")))),
			want: map[string]string{"a": noAff, "b": noAff, "c": noAff}},
		{name: "affinity with explicit namespaces", nodes: zonedNodes(), pods: []*corev1.Pod{dbOther},
			pod:  mkPod("web", requiredAffinity(corev1.PodAffinityTerm{TopologyKey: labelZone, LabelSelector: selector("app", "db"), Namespaces: []string{"other"}})),
			want: map[string]string{"a": "ok", "b": "ok", "c": noAff}},
		{name: "affinity with namespaceSelector", nodes: zonedNodes(), pods: []*corev1.Pod{dbOther},
			objs: &ObjectSet{NamespaceList: []*corev1.Namespace{dbLabelled}},
			pod: mkPod("web", requiredAffinity(corev1.PodAffinityTerm{TopologyKey: labelZone, LabelSelector: selector("app", "db"),
				NamespaceSelector: selector("team", "data")})),
			want: map[string]string{"a": "ok", "b": "ok", "c": noAff}},
		{name: "empty namespaceSelector means all namespaces", nodes: zonedNodes(), pods: []*corev1.Pod{dbOther},
			pod: mkPod("web", requiredAffinity(corev1.PodAffinityTerm{TopologyKey: labelHostname, LabelSelector: selector("app", "db"),
				NamespaceSelector: &metav1.LabelSelector{}})),
			want: map[string]string{"a": "ok", "b": noAff, "c": noAff}},
		{name: "node without the topology key fails affinity", nodes: append(zonedNodes(), mkNode("d")), pods: []*corev1.Pod{db},
			pod:  mkPod("web", requiredAffinity(podTermOf(labelZone, selector("app", "db")))),
			want: map[string]string{"a": "ok", "b": "ok", "c": noAff, "d": noAff}},
		{name: "anti-affinity by zone", nodes: zonedNodes(), pods: []*corev1.Pod{db},
			pod:  mkPod("db2", requiredAnti(podTermOf(labelZone, selector("app", "db")))),
			want: map[string]string{"a": noAnti, "b": noAnti, "c": "ok"}},
		{name: "existing pod's anti-affinity repels the incoming pod", nodes: zonedNodes(),
			pods: []*corev1.Pod{mkPod("loner", on("b"), requiredAnti(podTermOf(labelHostname, selector("app", "web"))))},
			pod:  mkPod("web", podLabels("app", "web")),
			want: map[string]string{"a": "ok", "b": noExisting, "c": "ok"}},
		{name: "existing anti-affinity that does not select the pod", nodes: zonedNodes(),
			pods: []*corev1.Pod{mkPod("loner", on("b"), requiredAnti(podTermOf(labelHostname, selector("app", "web"))))},
			pod:  mkPod("api", podLabels("app", "api")),
			want: map[string]string{"a": "ok", "b": "ok", "c": "ok"}},
		{name: "matchLabelKeys narrows to the pod's own value", nodes: zonedNodes(),
			pods: []*corev1.Pod{mkPod("old", on("a"), podLabels("app", "web", "rev", "1"))},
			pod: mkPod("new", podLabels("app", "web", "rev", "2"), requiredAnti(corev1.PodAffinityTerm{
				TopologyKey: labelHostname, LabelSelector: selector("app", "web"), MatchLabelKeys: []string{"rev"}})),
			want: map[string]string{"a": "ok", "b": "ok", "c": "ok"}},
	})
}

func TestTopologySpreadFilter(t *testing.T) {
	sel := selector("app", "web")
	web := func(name, node string) *corev1.Pod { return mkPod(name, on(node), podLabels("app", "web")) }
	hard := func(opts ...func(*corev1.TopologySpreadConstraint)) podOpt {
		return func(p *corev1.Pod) {
			c := corev1.TopologySpreadConstraint{MaxSkew: 1, TopologyKey: labelZone, WhenUnsatisfiable: corev1.DoNotSchedule, LabelSelector: sel}
			for _, o := range opts {
				o(&c)
			}
			p.Spec.TopologySpreadConstraints = append(p.Spec.TopologySpreadConstraints, c)
		}
	}
	honor, ignore := corev1.NodeInclusionPolicyHonor, corev1.NodeInclusionPolicyIgnore
	skewed := reasonSpread
	runFilterCases(t, []filterCase{
		{name: "zone with more pods is skewed", nodes: zonedNodes(), pods: []*corev1.Pod{web("w1", "a")},
			pod: mkPod("w", podLabels("app", "web"), hard()), want: map[string]string{"a": skewed, "b": skewed, "c": "ok"}},
		{name: "balanced zones accept either", nodes: zonedNodes(), pods: []*corev1.Pod{web("w1", "a"), web("w2", "c")},
			pod: mkPod("w", podLabels("app", "web"), hard()), want: map[string]string{"a": "ok", "b": "ok", "c": "ok"}},
		{name: "maxSkew 2 tolerates one extra", nodes: zonedNodes(), pods: []*corev1.Pod{web("w1", "a")},
			pod:  mkPod("w", podLabels("app", "web"), hard(func(c *corev1.TopologySpreadConstraint) { c.MaxSkew = 2 })),
			want: map[string]string{"a": "ok", "b": "ok", "c": "ok"}},
		{name: "a pod not matching its own selector adds nothing to the skew", nodes: zonedNodes(), pods: []*corev1.Pod{web("w1", "a"), web("w2", "b")},
			pod: mkPod("x", hard()), want: map[string]string{"a": skewed, "b": skewed, "c": "ok"}},
		{name: "so it may join the fuller zone while within maxSkew", nodes: zonedNodes(), pods: []*corev1.Pod{web("w1", "a")},
			pod: mkPod("x", hard()), want: map[string]string{"a": "ok", "b": "ok", "c": "ok"}},
		{name: "node without the key", nodes: append(zonedNodes(), mkNode("d")),
			pod:  mkPod("w", podLabels("app", "web"), hard()),
			want: map[string]string{"a": "ok", "b": "ok", "c": "ok", "d": reasonSpreadLabel}},
		{name: "minDomains above the domain count makes the global minimum 0", nodes: zonedNodes(),
			pods: []*corev1.Pod{web("w1", "a"), web("w2", "c")},
			pod:  mkPod("w", podLabels("app", "web"), hard(func(c *corev1.TopologySpreadConstraint) { n := int32(3); c.MinDomains = &n })),
			want: map[string]string{"a": skewed, "b": skewed, "c": skewed}},
		{name: "nodeAffinityPolicy Honor ignores nodes the pod cannot use", nodes: zonedNodes(),
			pods: []*corev1.Pod{web("w1", "a")},
			pod: mkPod("w", podLabels("app", "web"), hard(func(c *corev1.TopologySpreadConstraint) { c.NodeAffinityPolicy = &honor }),
				func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{labelZone: "z1"} }),
			want: map[string]string{"a": "ok", "b": "ok", "c": reasonNodeAffinity}},
		{name: "nodeAffinityPolicy Ignore counts them", nodes: zonedNodes(),
			pods: []*corev1.Pod{web("w1", "a")},
			pod: mkPod("w", podLabels("app", "web"), hard(func(c *corev1.TopologySpreadConstraint) { c.NodeAffinityPolicy = &ignore }),
				func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{labelZone: "z1"} }),
			want: map[string]string{"a": skewed, "b": skewed, "c": reasonNodeAffinity}},
		{name: "nodeTaintsPolicy Honor ignores tainted nodes",
			nodes: []*corev1.Node{mkNode("a", nodeLabels(labelZone, "z1")), mkNode("c", nodeLabels(labelZone, "z2"), nodeTaint("k", "v", corev1.TaintEffectNoSchedule))},
			pods:  []*corev1.Pod{web("w1", "a")},
			pod:   mkPod("w", podLabels("app", "web"), hard(func(c *corev1.TopologySpreadConstraint) { c.NodeTaintsPolicy = &honor })),
			want:  map[string]string{"a": "ok", "c": "node(s) had untolerated taint {k: v}"}},
		{name: "nodeTaintsPolicy Ignore (default) counts tainted nodes",
			nodes: []*corev1.Node{mkNode("a", nodeLabels(labelZone, "z1")), mkNode("c", nodeLabels(labelZone, "z2"), nodeTaint("k", "v", corev1.TaintEffectNoSchedule))},
			pods:  []*corev1.Pod{web("w1", "a")},
			pod:   mkPod("w", podLabels("app", "web"), hard()),
			want:  map[string]string{"a": skewed, "c": "node(s) had untolerated taint {k: v}"}},
		{name: "terminating pods do not count", nodes: zonedNodes(),
			pods: []*corev1.Pod{web("w1", "a"), mkPod("w2", on("a"), podLabels("app", "web"), func(p *corev1.Pod) { now := metav1.NewTime(epoch); p.DeletionTimestamp = &now })},
			pod:  mkPod("w", podLabels("app", "web"), hard(func(c *corev1.TopologySpreadConstraint) { c.MaxSkew = 2 })),
			want: map[string]string{"a": "ok", "b": "ok", "c": "ok"}},
		{name: "hostname spreading", nodes: zonedNodes(), pods: []*corev1.Pod{web("w1", "a"), web("w2", "b")},
			pod:  mkPod("w", podLabels("app", "web"), hard(func(c *corev1.TopologySpreadConstraint) { c.TopologyKey = labelHostname })),
			want: map[string]string{"a": skewed, "b": skewed, "c": "ok"}},
	})
}

func TestVolumeFilter(t *testing.T) {
	wait := storageClass("local", true)
	now := storageClass("immediate", false)
	claim := func(name, volume, class string) *corev1.PersistentVolumeClaim {
		c := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}}
		c.Spec.VolumeName = volume
		if class != "" {
			c.Spec.StorageClassName = &class
		}
		return c
	}
	pinned := &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv-b"}, Spec: corev1.PersistentVolumeSpec{
		NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
			MatchExpressions: []corev1.NodeSelectorRequirement{{Key: labelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{"b"}}}}}}}}}
	uses := func(claim string) podOpt {
		return func(p *corev1.Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim}}})
		}
	}
	objs := &ObjectSet{
		Claims:  []*corev1.PersistentVolumeClaim{claim("bound", "pv-b", ""), claim("lost", "pv-gone", ""), claim("later", "", "local"), claim("now", "", "immediate")},
		Volumes: []*corev1.PersistentVolume{pinned},
		Classes: []*storagev1.StorageClass{wait, now},
	}
	ns := []*corev1.Node{mkNode("a"), mkNode("b")}
	runFilterCases(t, []filterCase{
		{name: "local volume pins the pod", nodes: ns, objs: objs, pod: mkPod("p", uses("bound")),
			want: map[string]string{"a": reasonVolumeAffinity, "b": "ok"}},
		{name: "missing claim", nodes: ns, objs: objs, pod: mkPod("p", uses("nope")),
			want: map[string]string{"pod": `persistentvolumeclaim "nope" not found`}},
		{name: "claim bound to a missing volume", nodes: ns, objs: objs, pod: mkPod("p", uses("lost")),
			want: map[string]string{"a": reasonMissingPV, "b": reasonMissingPV}},
		{name: "unbound claim waiting for a consumer", nodes: ns, objs: objs, pod: mkPod("p", uses("later")),
			want: map[string]string{"a": "ok", "b": "ok"}},
		{name: "unbound immediate claim", nodes: ns, objs: objs, pod: mkPod("p", uses("now")),
			want: map[string]string{"pod": "pod has unbound immediate PersistentVolumeClaims"}},
		{name: "ephemeral volume not created yet", nodes: ns, objs: objs, pod: mkPod("p", func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{Ephemeral: &corev1.EphemeralVolumeSource{}}}}
		}), want: map[string]string{"pod": `waiting for ephemeral volume controller to create the persistentvolumeclaim "p-scratch"`}},
	})
}

func storageClass(name string, waitForConsumer bool) *storagev1.StorageClass {
	mode := storagev1.VolumeBindingImmediate
	if waitForConsumer {
		mode = storagev1.VolumeBindingWaitForFirstConsumer
	}
	return &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name}, VolumeBindingMode: &mode}
}
