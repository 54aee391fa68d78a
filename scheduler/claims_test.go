package scheduler

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-sh/skiff/controllers/volumebinding/pvmatch"
)

func delayedClass(name, provisioner string, zones ...string) *storagev1.StorageClass {
	sc := storageClass(name, true)
	sc.Provisioner = provisioner
	if len(zones) > 0 {
		sc.AllowedTopologies = []corev1.TopologySelectorTerm{{MatchLabelExpressions: []corev1.TopologySelectorLabelRequirement{
			{Key: corev1.LabelTopologyZone, Values: zones}}}}
	}
	return sc
}

func unboundClaim(name, class, selected string) *corev1.PersistentVolumeClaim {
	c := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name)}}
	c.Spec.StorageClassName = &class
	c.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}
	c.Spec.Resources.Requests = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}
	if selected != "" {
		c.Annotations = map[string]string{pvmatch.AnnSelectedNode: selected}
	}
	return c
}

func localPV(name, class, node string) *corev1.PersistentVolume {
	return &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeSpec{
			StorageClassName: class,
			Capacity:         corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("5Gi")},
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: labelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{node}}}}}}},
		},
		Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeAvailable},
	}
}

func usesClaims(names ...string) podOpt {
	return func(p *corev1.Pod) {
		for _, n := range names {
			p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "v-" + n, VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: n}}})
		}
	}
}

func TestDelayedClaimFilter(t *testing.T) {
	dynamic := delayedClass("local-path", pvmatch.LocalPathProvisioner)
	static := delayedClass("local-storage", pvmatch.NoProvisioner)
	zoned := delayedClass("zoned", "example.com/disk", "z1")
	objs := &ObjectSet{
		Claims: []*corev1.PersistentVolumeClaim{
			unboundClaim("fresh", "local-path", ""),
			unboundClaim("picked", "local-path", "b"),
			unboundClaim("orphaned", "local-path", "gone"),
			unboundClaim("manual", "local-storage", ""),
			unboundClaim("zonal", "zoned", ""),
		},
		Volumes: []*corev1.PersistentVolume{
			localPV("on-b", "local-storage", "b"),
			localPV("wrong-class", "other", "a"),
		},
		Classes: []*storagev1.StorageClass{dynamic, static, zoned},
	}
	bare := &ObjectSet{Claims: objs.Claims[3:4], Classes: objs.Classes}
	ns := []*corev1.Node{mkNode("a", nodeLabels(corev1.LabelTopologyZone, "z1")), mkNode("b", nodeLabels(corev1.LabelTopologyZone, "z2"))}
	runFilterCases(t, []filterCase{
		{name: "a provisioner serves any node", nodes: ns, objs: objs, pod: mkPod("p", usesClaims("fresh")),
			want: map[string]string{"a": "ok", "b": "ok"}},
		{name: "the selected node pins the pod", nodes: ns, objs: objs, pod: mkPod("p", usesClaims("picked")),
			want: map[string]string{"a": reasonBindConflict, "b": "ok"}},
		{name: "a selected node that is gone is ignored", nodes: ns, objs: objs, pod: mkPod("p", usesClaims("orphaned")),
			want: map[string]string{"a": "ok", "b": "ok"}},
		{name: "without a provisioner a node needs a matching volume", nodes: ns, objs: objs, pod: mkPod("p", usesClaims("manual")),
			want: map[string]string{"a": reasonBindConflict, "b": "ok"}},
		{name: "without a provisioner and volumes no node fits", nodes: ns, objs: bare, pod: mkPod("p", usesClaims("manual")),
			want: map[string]string{"a": reasonBindConflict, "b": reasonBindConflict}},
		{name: "allowed topologies", nodes: ns, objs: objs, pod: mkPod("p", usesClaims("zonal")),
			want: map[string]string{"a": "ok", "b": reasonBindConflict}},
		{name: "all claims must agree", nodes: ns, objs: objs, pod: mkPod("p", usesClaims("zonal", "picked")),
			want: map[string]string{"a": reasonBindConflict, "b": reasonBindConflict}},
	})
}

func TestClaimOverlay(t *testing.T) {
	objs := &ObjectSet{
		Claims: []*corev1.PersistentVolumeClaim{
			unboundClaim("shared", "local-path", ""),
			unboundClaim("done", "local-path", "a"),
			unboundClaim("other", "local-path", ""),
		},
		Classes: []*storagev1.StorageClass{delayedClass("local-path", pvmatch.LocalPathProvisioner), storageClass("fast", false)},
	}
	bound := unboundClaim("bound", "local-path", "")
	bound.Spec.VolumeName = "pv-1"
	immediate := unboundClaim("immediate", "fast", "")
	objs.Claims = append(objs.Claims, bound, immediate)

	pod := mkPod("first", usesClaims("shared", "done", "bound", "immediate", "missing"))
	var got []string
	for _, c := range delayedClaims(objs, pod) {
		got = append(got, c.Name)
	}
	if want := []string{"shared", "done"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("delayed claims: got %v, want %v", got, want)
	}

	o := newClaimOverlay(objs)
	pod = mkPod("first", usesClaims("shared"))
	o.assume(pod, "b")
	if sel := o.PersistentVolumeClaim("default", "shared").Annotations[pvmatch.AnnSelectedNode]; sel != "b" {
		t.Errorf("assumed claim shows selected node %q, want b", sel)
	}
	if objs.Claims[0].Annotations[pvmatch.AnnSelectedNode] != "" {
		t.Error("assuming changed the cached claim")
	}
	if sel := o.PersistentVolumeClaim("default", "other").Annotations[pvmatch.AnnSelectedNode]; sel != "" {
		t.Errorf("untouched claim shows selected node %q", sel)
	}

	// A second pod using the shared claim follows the first one's node.
	ns := []*corev1.Node{mkNode("a"), mkNode("b"), mkNode("c")}
	got2 := verdicts(t, NewSnapshot(ns, nil, o), mkPod("second", usesClaims("shared")))
	if want := map[string]string{"a": reasonBindConflict, "b": "ok", "c": reasonBindConflict}; !reflect.DeepEqual(got2, want) {
		t.Errorf("second pod: got %v, want %v", got2, want)
	}

	// The informer catching up settles the assumption; forget drops it.
	h := o.handlers()
	seen := objs.Claims[0].DeepCopy()
	seen.Annotations = map[string]string{pvmatch.AnnSelectedNode: "b"}
	h.OnUpdate(objs.Claims[0], seen)
	if len(o.nodes) != 0 {
		t.Errorf("assumption kept after the informer showed it: %v", o.nodes)
	}
	o.assume(pod, "c")
	o.forget(pod)
	if len(o.nodes) != 0 {
		t.Errorf("forget left %v", o.nodes)
	}
}
