package pvmatch

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

type pvOpt func(*corev1.PersistentVolume)

func pv(name, class, size string, opts ...pvOpt) *corev1.PersistentVolume {
	v := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{}},
		Spec: corev1.PersistentVolumeSpec{
			StorageClassName: class,
			Capacity:         corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)},
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		},
		Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeAvailable},
	}
	for _, o := range opts {
		o(v)
	}
	return v
}

func modes(m ...corev1.PersistentVolumeAccessMode) pvOpt {
	return func(v *corev1.PersistentVolume) { v.Spec.AccessModes = m }
}

func phase(p corev1.PersistentVolumePhase) pvOpt {
	return func(v *corev1.PersistentVolume) { v.Status.Phase = p }
}

func onHost(h string) pvOpt {
	return func(v *corev1.PersistentVolume) {
		v.Spec.NodeAffinity = &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
			MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{h}}}}}}}
	}
}

func claimedBy(ns, name string, uid types.UID) pvOpt {
	return func(v *corev1.PersistentVolume) {
		v.Spec.ClaimRef = &corev1.ObjectReference{Namespace: ns, Name: name, UID: uid}
	}
}

func label(k, val string) pvOpt { return func(v *corev1.PersistentVolume) { v.Labels[k] = val } }

func block(v *corev1.PersistentVolume) {
	m := corev1.PersistentVolumeBlock
	v.Spec.VolumeMode = &m
}

func deleting(v *corev1.PersistentVolume) {
	now := metav1.Now()
	v.DeletionTimestamp = &now
}

func claim(class, size string, m ...corev1.PersistentVolumeAccessMode) *corev1.PersistentVolumeClaim {
	c := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "data", UID: "c-1"}}
	c.Spec.StorageClassName = &class
	c.Spec.Resources.Requests = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}
	if len(m) == 0 {
		m = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}
	}
	c.Spec.AccessModes = m
	return c
}

func node(name string, kv ...string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{corev1.LabelHostname: name}}}
	for i := 0; i+1 < len(kv); i += 2 {
		n.Labels[kv[i]] = kv[i+1]
	}
	return n
}

func TestMatch(t *testing.T) {
	rwo, rwx, rox := corev1.ReadWriteOnce, corev1.ReadWriteMany, corev1.ReadOnlyMany
	withSelector := claim("fast", "1Gi")
	withSelector.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "gold"}}
	cases := []struct {
		name    string
		claim   *corev1.PersistentVolumeClaim
		volumes []*corev1.PersistentVolume
		node    *corev1.Node
		delay   bool
		want    string
	}{
		{name: "smallest that fits", claim: claim("fast", "2Gi"),
			volumes: []*corev1.PersistentVolume{pv("big", "fast", "10Gi"), pv("small", "fast", "1Gi"), pv("right", "fast", "3Gi")}, want: "right"},
		{name: "fewest access modes before size", claim: claim("fast", "1Gi"),
			volumes: []*corev1.PersistentVolume{pv("many", "fast", "1Gi", modes(rwo, rwx, rox)), pv("two", "fast", "5Gi", modes(rwo, rox))}, want: "two"},
		{name: "access modes must cover the claim's", claim: claim("fast", "1Gi", rwx),
			volumes: []*corev1.PersistentVolume{pv("rwo", "fast", "1Gi")}, want: ""},
		{name: "class must match", claim: claim("fast", "1Gi"),
			volumes: []*corev1.PersistentVolume{pv("slow", "slow", "1Gi"), pv("none", "", "1Gi")}, want: ""},
		{name: "empty class matches volumes without class", claim: claim("", "1Gi"),
			volumes: []*corev1.PersistentVolume{pv("slow", "slow", "1Gi"), pv("none", "", "1Gi")}, want: "none"},
		{name: "only Available volumes", claim: claim("fast", "1Gi"),
			volumes: []*corev1.PersistentVolume{pv("pending", "fast", "1Gi", phase(corev1.VolumePending)), pv("released", "fast", "1Gi", phase(corev1.VolumeReleased))}, want: ""},
		{name: "claimed by another", claim: claim("fast", "1Gi"),
			volumes: []*corev1.PersistentVolume{pv("taken", "fast", "1Gi", claimedBy("ns", "other", "x"))}, want: ""},
		{name: "pre-bound volume wins over a better fit", claim: claim("fast", "1Gi"),
			volumes: []*corev1.PersistentVolume{pv("fit", "fast", "1Gi"), pv("mine", "other", "9Gi", claimedBy("ns", "data", ""), phase(corev1.VolumePending))}, want: "mine"},
		{name: "pre-bound to an older claim of the same name", claim: claim("fast", "1Gi"),
			volumes: []*corev1.PersistentVolume{pv("old", "fast", "1Gi", claimedBy("ns", "data", "c-0"))}, want: ""},
		{name: "pre-bound but too small", claim: claim("fast", "5Gi"),
			volumes: []*corev1.PersistentVolume{pv("mine", "fast", "1Gi", claimedBy("ns", "data", "c-1"))}, want: ""},
		{name: "selector", claim: withSelector,
			volumes: []*corev1.PersistentVolume{pv("plain", "fast", "1Gi"), pv("gold", "fast", "2Gi", label("tier", "gold"))}, want: "gold"},
		{name: "volume mode", claim: claim("fast", "1Gi"),
			volumes: []*corev1.PersistentVolume{pv("raw", "fast", "1Gi", block)}, want: ""},
		{name: "being deleted", claim: claim("fast", "1Gi"),
			volumes: []*corev1.PersistentVolume{pv("doomed", "fast", "1Gi", deleting)}, want: ""},
		{name: "node affinity with a node", claim: claim("fast", "1Gi"), node: node("b"),
			volumes: []*corev1.PersistentVolume{pv("on-a", "fast", "1Gi", onHost("a")), pv("on-b", "fast", "2Gi", onHost("b"))}, want: "on-b"},
		{name: "node affinity ignored without a node", claim: claim("fast", "1Gi"),
			volumes: []*corev1.PersistentVolume{pv("on-a", "fast", "1Gi", onHost("a"))}, want: "on-a"},
		{name: "pre-bound volume on another node", claim: claim("fast", "1Gi"), node: node("b"),
			volumes: []*corev1.PersistentVolume{pv("mine", "fast", "1Gi", onHost("a"), claimedBy("ns", "data", "")), pv("on-b", "fast", "1Gi", onHost("b"))}, want: ""},
		{name: "delayed binding takes only pre-bound volumes", claim: claim("fast", "1Gi"), delay: true,
			volumes: []*corev1.PersistentVolume{pv("fit", "fast", "1Gi")}, want: ""},
		{name: "delayed binding with a pre-bound volume", claim: claim("fast", "1Gi"), delay: true,
			volumes: []*corev1.PersistentVolume{pv("fit", "fast", "1Gi"), pv("mine", "fast", "1Gi", claimedBy("ns", "data", "c-1"))}, want: "mine"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := ""
			if v := Match(tc.claim, tc.volumes, tc.node, tc.delay); v != nil {
				got = v.Name
			}
			if got != tc.want {
				t.Errorf("Match = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSatisfies(t *testing.T) {
	cases := []struct {
		name string
		v    *corev1.PersistentVolume
		want string
	}{
		{"fits", pv("v", "fast", "2Gi"), ""},
		{"too small", pv("v", "fast", "500Mi"), "requested PV is too small"},
		{"class", pv("v", "slow", "2Gi"), "storageClassName does not match"},
		{"mode", pv("v", "fast", "2Gi", block), "incompatible volumeMode"},
		{"access", pv("v", "fast", "2Gi", modes(corev1.ReadOnlyMany)), "incompatible accessMode"},
	}
	for _, tc := range cases {
		err := Satisfies(tc.v, claim("fast", "1Gi"))
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestNodeSelectorMatches(t *testing.T) {
	n := node("n1", "zone", "z1", "rank", "5")
	req := func(key string, op corev1.NodeSelectorOperator, vals ...string) corev1.NodeSelectorRequirement {
		return corev1.NodeSelectorRequirement{Key: key, Operator: op, Values: vals}
	}
	term := func(rs ...corev1.NodeSelectorRequirement) corev1.NodeSelectorTerm {
		return corev1.NodeSelectorTerm{MatchExpressions: rs}
	}
	cases := []struct {
		name  string
		terms []corev1.NodeSelectorTerm
		want  bool
	}{
		{"in", []corev1.NodeSelectorTerm{term(req("zone", corev1.NodeSelectorOpIn, "z0", "z1"))}, true},
		{"not in", []corev1.NodeSelectorTerm{term(req("zone", corev1.NodeSelectorOpNotIn, "z1"))}, false},
		{"not in, label absent", []corev1.NodeSelectorTerm{term(req("disk", corev1.NodeSelectorOpNotIn, "ssd"))}, true},
		{"exists", []corev1.NodeSelectorTerm{term(req("rank", corev1.NodeSelectorOpExists))}, true},
		{"does not exist", []corev1.NodeSelectorTerm{term(req("rank", corev1.NodeSelectorOpDoesNotExist))}, false},
		{"gt", []corev1.NodeSelectorTerm{term(req("rank", corev1.NodeSelectorOpGt, "4"))}, true},
		{"lt", []corev1.NodeSelectorTerm{term(req("rank", corev1.NodeSelectorOpLt, "5"))}, false},
		{"requirements are ANDed", []corev1.NodeSelectorTerm{term(req("zone", corev1.NodeSelectorOpIn, "z1"), req("rank", corev1.NodeSelectorOpGt, "9"))}, false},
		{"terms are ORed", []corev1.NodeSelectorTerm{term(req("zone", corev1.NodeSelectorOpIn, "z9")), term(req("rank", corev1.NodeSelectorOpExists))}, true},
		{"empty term matches nothing", []corev1.NodeSelectorTerm{{}}, false},
		{"field metadata.name", []corev1.NodeSelectorTerm{{MatchFields: []corev1.NodeSelectorRequirement{req("metadata.name", corev1.NodeSelectorOpIn, "n1")}}}, true},
		{"other field", []corev1.NodeSelectorTerm{{MatchFields: []corev1.NodeSelectorRequirement{req("spec.x", corev1.NodeSelectorOpIn, "n1")}}}, false},
	}
	for _, tc := range cases {
		if got := NodeSelectorMatches(&corev1.NodeSelector{NodeSelectorTerms: tc.terms}, n); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
	if !NodeAllowed(pv("free", "", "1Gi"), n) || NodeAllowed(pv("pinned", "", "1Gi", onHost("n2")), n) {
		t.Error("NodeAllowed: a volume without affinity is allowed everywhere; one pinned elsewhere is not")
	}
}

func TestClasses(t *testing.T) {
	at := func(name string, age time.Duration, ann ...string) *storagev1.StorageClass {
		sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{},
			CreationTimestamp: metav1.NewTime(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Add(-age))}}
		for i := 0; i+1 < len(ann); i += 2 {
			sc.Annotations[ann[i]] = ann[i+1]
		}
		return sc
	}
	cases := []struct {
		name    string
		classes []*storagev1.StorageClass
		want    string
	}{
		{"none", []*storagev1.StorageClass{at("a", 0), at("b", 0, AnnDefaultClass, "false")}, ""},
		{"one", []*storagev1.StorageClass{at("a", 0), at("b", time.Hour, AnnDefaultClass, "true")}, "b"},
		{"beta annotation", []*storagev1.StorageClass{at("old", 0, AnnBetaDefaultClass, "true")}, "old"},
		{"newest of several", []*storagev1.StorageClass{at("older", time.Hour, AnnDefaultClass, "true"), at("newer", time.Minute, AnnDefaultClass, "true")}, "newer"},
		{"same age: by name", []*storagev1.StorageClass{at("y", 0, AnnDefaultClass, "true"), at("x", 0, AnnDefaultClass, "true")}, "x"},
	}
	for _, tc := range cases {
		got := ""
		if d := DefaultClass(tc.classes); d != nil {
			got = d.Name
		}
		if got != tc.want {
			t.Errorf("DefaultClass %s: got %q, want %q", tc.name, got, tc.want)
		}
	}

	c := claim("spec", "1Gi")
	c.Annotations = map[string]string{corev1.BetaStorageClassAnnotation: "beta"}
	if ClaimClass(c) != "beta" || !HasClass(c) {
		t.Errorf("the beta annotation wins: got %q", ClaimClass(c))
	}
	none := &corev1.PersistentVolumeClaim{}
	if ClaimClass(none) != "" || HasClass(none) {
		t.Error("a claim without class")
	}
	empty := claim("", "1Gi")
	if !HasClass(empty) {
		t.Error(`storageClassName "" names the empty class`)
	}

	zones := &storagev1.StorageClass{AllowedTopologies: []corev1.TopologySelectorTerm{{MatchLabelExpressions: []corev1.TopologySelectorLabelRequirement{
		{Key: "zone", Values: []string{"z1", "z2"}}, {Key: "rack", Values: []string{"r1"}}}}}}
	if !TopologyAllows(zones, node("a", "zone", "z2", "rack", "r1")) || TopologyAllows(zones, node("b", "zone", "z2")) ||
		!TopologyAllows(&storagev1.StorageClass{}, node("c")) {
		t.Error("TopologyAllows: all expressions of a term must hold; no terms allow all")
	}
}

func TestPodClaims(t *testing.T) {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: corev1.PodSpec{Volumes: []corev1.Volume{
		{Name: "a", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}},
		{Name: "b", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: "scratch", VolumeSource: corev1.VolumeSource{Ephemeral: &corev1.EphemeralVolumeSource{}}},
	}}}
	got := PodClaims(p)
	if len(got) != 2 || got[0] != "data" || got[1] != "web-scratch" {
		t.Errorf("PodClaims = %v", got)
	}
}
