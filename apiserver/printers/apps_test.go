package printers

import (
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func template() corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{
		{Name: "web", Image: "nginx:1.27"}, {Name: "sidecar", Image: "envoy:1.30"},
	}}}
}

func TestAppsRows(t *testing.T) {
	three := int32(3)
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
	bad := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: "Bogus"}}}

	d := &appsv1.Deployment{ObjectMeta: objMeta("web", 26*time.Hour)}
	d.Spec.Replicas, d.Spec.Selector, d.Spec.Template = &three, sel, template()
	d.Status.ReadyReplicas, d.Status.UpdatedReplicas, d.Status.AvailableReplicas = 2, 3, 2
	dBad := d.DeepCopy()
	dBad.Spec.Selector = bad
	checkRows(t, schema.GroupKind{Group: "apps", Kind: "Deployment"}, []rowCase{
		{"rolling", d, []interface{}{"web", "2/3", int64(3), int64(2), "26h", "web,sidecar", "nginx:1.27,envoy:1.30", "app=web"}},
		{"invalid selector", dBad, []interface{}{"web", "2/3", int64(3), int64(2), "26h", "web,sidecar", "nginx:1.27,envoy:1.30", "<invalid>"}},
		{"empty", &appsv1.Deployment{}, []interface{}{"", "0/1", int64(0), int64(0), "<unknown>", "", "", ""}},
	})

	rs := &appsv1.ReplicaSet{ObjectMeta: objMeta("web-5d8f", time.Minute)}
	rs.Spec.Replicas, rs.Spec.Selector, rs.Spec.Template = &three, sel, template()
	rs.Status.Replicas, rs.Status.ReadyReplicas = 3, 1
	checkRows(t, schema.GroupKind{Group: "apps", Kind: "ReplicaSet"}, []rowCase{
		{"scaling", rs, []interface{}{"web-5d8f", int64(3), int64(3), int64(1), "60s", "web,sidecar", "nginx:1.27,envoy:1.30", "app=web"}},
		{"no selector", &appsv1.ReplicaSet{}, []interface{}{"", int64(1), int64(0), int64(0), "<unknown>", "", "", "<none>"}},
	})

	ds := &appsv1.DaemonSet{ObjectMeta: objMeta("agent", time.Hour)}
	ds.Spec.Selector, ds.Spec.Template = sel, template()
	ds.Spec.Template.Spec.NodeSelector = map[string]string{"kubernetes.io/os": "linux"}
	ds.Status = appsv1.DaemonSetStatus{DesiredNumberScheduled: 3, CurrentNumberScheduled: 3, NumberReady: 2, UpdatedNumberScheduled: 1, NumberAvailable: 2}
	checkRows(t, schema.GroupKind{Group: "apps", Kind: "DaemonSet"}, []rowCase{
		{"agent", ds, []interface{}{"agent", int64(3), int64(3), int64(2), int64(1), int64(2), "kubernetes.io/os=linux", "60m",
			"web,sidecar", "nginx:1.27,envoy:1.30", "app=web"}},
	})

	ss := &appsv1.StatefulSet{ObjectMeta: objMeta("db", 3*time.Minute)}
	ss.Spec.Replicas, ss.Spec.Template = &three, template()
	ss.Status.ReadyReplicas = 3
	checkRows(t, schema.GroupKind{Group: "apps", Kind: "StatefulSet"}, []rowCase{
		{"ready", ss, []interface{}{"db", "3/3", "3m", "web,sidecar", "nginx:1.27,envoy:1.30"}},
	})

	controller := true
	owned := &appsv1.ControllerRevision{ObjectMeta: objMeta("db-7c9", 3*time.Minute), Revision: 4}
	owned.OwnerReferences = []metav1.OwnerReference{
		{APIVersion: "v1", Kind: "Pod", Name: "not-the-controller"},
		{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "db", Controller: &controller},
	}
	coreOwned := &appsv1.ControllerRevision{ObjectMeta: objMeta("x", time.Minute), Revision: 1}
	coreOwned.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "ReplicationController", Name: "rc", Controller: &controller}}
	checkRows(t, schema.GroupKind{Group: "apps", Kind: "ControllerRevision"}, []rowCase{
		{"owned by a stateful set", owned, []interface{}{"db-7c9", "statefulset.apps/db", "4", "3m"}},
		{"owned by a core kind", coreOwned, []interface{}{"x", "replicationcontroller/rc", "1", "60s"}},
		{"orphan", &appsv1.ControllerRevision{ObjectMeta: objMeta("y", time.Minute)}, []interface{}{"y", "<none>", "0", "60s"}},
	})

	broken := owned.DeepCopy()
	broken.OwnerReferences[1].APIVersion = "a/b/c"
	if _, err := Cells(broken, now); err == nil {
		t.Error("a controller reference with a malformed apiVersion printed without error")
	}
}
