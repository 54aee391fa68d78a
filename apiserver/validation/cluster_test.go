package validation

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func TestNamespacesAndNodes(t *testing.T) {
	runCreate(t, []createCase{
		{name: "namespace valid", obj: &corev1.Namespace{ObjectMeta: clusterMeta("team-a")}},
		{name: "namespace name is a DNS label", obj: &corev1.Namespace{ObjectMeta: clusterMeta("team.a")}, want: []string{e(invalid, "metadata.name")}},
		{name: "namespace has no namespace", obj: &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "b"}},
			want: []string{e(forbidden, "metadata.namespace")}},
		{name: "namespace finalizer", obj: &corev1.Namespace{ObjectMeta: clusterMeta("a"), Spec: corev1.NamespaceSpec{
			Finalizers: []corev1.FinalizerName{"kubernetes", "example.com/cleanup", "mine"}}}, want: []string{e(invalid, "spec.finalizers")}},
		{name: "node valid", obj: &corev1.Node{ObjectMeta: clusterMeta("node-1.example.com"), Spec: corev1.NodeSpec{
			PodCIDR: "10.244.1.0/24", PodCIDRs: []string{"10.244.1.0/24"},
			Taints: []corev1.Taint{{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoSchedule}}}}},
		{name: "node", obj: &corev1.Node{ObjectMeta: clusterMeta("node-1"), Spec: corev1.NodeSpec{
			PodCIDR: "10.244.1.0/33", PodCIDRs: []string{"10.244.1.0/33"},
			Taints: []corev1.Taint{{Key: "a"}, {Value: "x", Effect: corev1.TaintEffectNoExecute}, {Key: "b", Effect: "Never"},
				{Key: "c", Effect: corev1.TaintEffectNoSchedule}, {Key: "c", Effect: corev1.TaintEffectNoSchedule}}}},
			want: []string{e(invalid, "spec.podCIDRs[0]"), e(required, "spec.taints[0].effect"), e(required, "spec.taints[1].key"),
				e(notSupported, "spec.taints[2].effect"), e(invalid, "spec.taints[4]")}},
	})
	runUpdate(t, []updateCase{
		{name: "node pod cidr from empty", old: &corev1.Node{ObjectMeta: clusterMeta("n")}, change: func(o runtime.Object) {
			n := o.(*corev1.Node)
			n.Spec.PodCIDR, n.Spec.PodCIDRs = "10.244.0.0/24", []string{"10.244.0.0/24"}
			n.Spec.ProviderID = "skiff://n"
		}},
		{name: "node pod cidr and provider once set", old: &corev1.Node{ObjectMeta: clusterMeta("n"), Spec: corev1.NodeSpec{
			PodCIDR: "10.244.0.0/24", PodCIDRs: []string{"10.244.0.0/24"}, ProviderID: "skiff://n"}}, change: func(o runtime.Object) {
			n := o.(*corev1.Node)
			n.Spec.PodCIDR, n.Spec.PodCIDRs = "10.244.9.0/24", []string{"10.244.9.0/24"}
			n.Spec.ProviderID = "skiff://m"
		}, want: []string{e(forbidden, "spec.podCIDRs"), e(forbidden, "spec.providerID")}},
	})
}

func pvc(mut func(c *corev1.PersistentVolumeClaim)) *corev1.PersistentVolumeClaim {
	c := &corev1.PersistentVolumeClaim{ObjectMeta: nsMeta("data"), Spec: corev1.PersistentVolumeClaimSpec{
		AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: q("1Gi")}}}}
	if mut != nil {
		mut(c)
	}
	return c
}

func pv(mut func(v *corev1.PersistentVolume)) *corev1.PersistentVolume {
	v := &corev1.PersistentVolume{ObjectMeta: clusterMeta("pv-1"), Spec: corev1.PersistentVolumeSpec{
		AccessModes:            []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		Capacity:               corev1.ResourceList{corev1.ResourceStorage: q("10Gi")},
		PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/srv/pv-1"}}}}
	if mut != nil {
		mut(v)
	}
	return v
}

func TestVolumes(t *testing.T) {
	runCreate(t, []createCase{
		{name: "pvc valid", obj: pvc(nil)},
		{name: "pvc", obj: pvc(func(c *corev1.PersistentVolumeClaim) {
			c.Spec.AccessModes = nil
			c.Spec.Resources.Requests = nil
			c.Spec.VolumeMode = ptr(corev1.PersistentVolumeMode("Raw"))
		}), want: []string{e(required, "spec.accessModes"), e(required, "spec.resources[storage]"), e(notSupported, "spec.volumeMode")}},
		{name: "pvc zero storage and exclusive mode", obj: pvc(func(c *corev1.PersistentVolumeClaim) {
			c.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOncePod, corev1.ReadOnlyMany}
			c.Spec.Resources.Requests[corev1.ResourceStorage] = q("0")
		}), want: []string{e(forbidden, "spec.accessModes"), e(invalid, "spec.resources[storage]")}},
		{name: "pv valid", obj: pv(nil)},
		{name: "pv names may be path segments", obj: pv(func(v *corev1.PersistentVolume) { v.Name = "PV_1" })},
		{name: "pv", obj: pv(func(v *corev1.PersistentVolume) {
			v.Spec.AccessModes = nil
			v.Spec.Capacity = nil
			v.Spec.PersistentVolumeSource = corev1.PersistentVolumeSource{}
		}), want: []string{e(required, "spec.accessModes"), e(required, "spec.capacity"), e(required, "spec")}},
		{name: "pv local needs node affinity", obj: pv(func(v *corev1.PersistentVolume) {
			v.Spec.PersistentVolumeSource = corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: "/mnt/disk"}}
		}), want: []string{e(required, "spec.nodeAffinity")}},
		{name: "pv two sources and bad capacity", obj: pv(func(v *corev1.PersistentVolume) {
			v.Spec.NFS = &corev1.NFSVolumeSource{Server: "nfs", Path: "/x"}
			v.Spec.Capacity["cpu"] = q("1")
			v.Spec.PersistentVolumeReclaimPolicy = "Keep"
		}), want: []string{e(forbidden, "spec.nfs"), e(notSupported, "spec.capacity"), e(notSupported, "spec.persistentVolumeReclaimPolicy")}},
	})
	bound := func() *corev1.PersistentVolumeClaim {
		return pvc(func(c *corev1.PersistentVolumeClaim) {
			c.Spec.VolumeName = "pv-1"
			c.Status.Phase = corev1.ClaimBound
		})
	}
	change := func(f func(c *corev1.PersistentVolumeClaim)) func(runtime.Object) {
		return func(o runtime.Object) { f(o.(*corev1.PersistentVolumeClaim)) }
	}
	runUpdate(t, []updateCase{
		{name: "bind sets the volume name", old: pvc(nil), change: change(func(c *corev1.PersistentVolumeClaim) { c.Spec.VolumeName = "pv-1" })},
		{name: "bound claim grows", old: bound(), change: change(func(c *corev1.PersistentVolumeClaim) {
			c.Spec.Resources.Requests[corev1.ResourceStorage] = q("5Gi")
		})},
		{name: "bound claim shrinks", old: bound(), change: change(func(c *corev1.PersistentVolumeClaim) {
			c.Spec.Resources.Requests[corev1.ResourceStorage] = q("500Mi")
		}), want: []string{e(forbidden, "spec.resources.requests.storage")}},
		{name: "unbound claim may not resize", old: pvc(nil), change: change(func(c *corev1.PersistentVolumeClaim) {
			c.Spec.Resources.Requests[corev1.ResourceStorage] = q("5Gi")
		}), want: []string{e(forbidden, "spec")}},
		{name: "access modes are immutable", old: bound(), change: change(func(c *corev1.PersistentVolumeClaim) {
			c.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}
		}), want: []string{e(forbidden, "spec")}},
		{name: "volume name once set", old: bound(), change: change(func(c *corev1.PersistentVolumeClaim) { c.Spec.VolumeName = "pv-2" }),
			want: []string{e(forbidden, "spec")}},
		{name: "pv capacity may change", old: pv(nil), change: func(o runtime.Object) {
			o.(*corev1.PersistentVolume).Spec.Capacity[corev1.ResourceStorage] = q("20Gi")
		}},
		{name: "pv source is immutable", old: pv(nil), change: func(o runtime.Object) {
			o.(*corev1.PersistentVolume).Spec.HostPath.Path = "/elsewhere"
		}, want: []string{e(forbidden, "spec.persistentvolumesource")}},
	})
}

func TestStorageAndPriorityClasses(t *testing.T) {
	sc := func(mut func(s *storagev1.StorageClass)) *storagev1.StorageClass {
		s := &storagev1.StorageClass{ObjectMeta: clusterMeta("fast"), Provisioner: "example.com/ssd", Parameters: map[string]string{"type": "ssd"}}
		if mut != nil {
			mut(s)
		}
		return s
	}
	pc := func(name string, value int32) *schedulingv1.PriorityClass {
		return &schedulingv1.PriorityClass{ObjectMeta: clusterMeta(name), Value: value}
	}
	runCreate(t, []createCase{
		{name: "storage class valid", obj: sc(nil)},
		{name: "storage class", obj: sc(func(s *storagev1.StorageClass) {
			s.Provisioner = ""
			s.ReclaimPolicy = ptr(corev1.PersistentVolumeReclaimRecycle)
			s.VolumeBindingMode = ptr(storagev1.VolumeBindingMode("Later"))
		}), want: []string{e(required, "provisioner"), e(notSupported, "reclaimPolicy"), e(notSupported, "volumeBindingMode")}},
		{name: "priority class valid", obj: pc("high", 1000)},
		{name: "system priority class", obj: pc("system-node-critical", 2000001000)},
		{name: "system priority class with the wrong value", obj: pc("system-cluster-critical", 5), want: []string{e(forbidden, "metadata.name")}},
		{name: "system prefix is reserved", obj: pc("system-mine", 5), want: []string{e(forbidden, "metadata.name")}},
		{name: "priority too high", obj: pc("huge", 1000000001), want: []string{e(forbidden, "value")}},
		{name: "preemption policy", obj: &schedulingv1.PriorityClass{ObjectMeta: clusterMeta("p"), PreemptionPolicy: ptr(corev1.PreemptionPolicy("Always"))},
			want: []string{e(notSupported, "preemptionPolicy")}},
	})
	runUpdate(t, []updateCase{
		{name: "storage class labels", old: sc(nil), change: func(o runtime.Object) { o.(*storagev1.StorageClass).Labels = map[string]string{"a": "b"} }},
		{name: "storage class is frozen", old: sc(nil), change: func(o runtime.Object) {
			s := o.(*storagev1.StorageClass)
			s.Parameters = map[string]string{"type": "hdd"}
			s.Provisioner = "example.com/hdd"
			s.ReclaimPolicy = ptr(corev1.PersistentVolumeReclaimRetain)
			s.VolumeBindingMode = ptr(storagev1.VolumeBindingWaitForFirstConsumer)
		}, want: []string{e(forbidden, "parameters"), e(forbidden, "provisioner"), e(forbidden, "reclaimPolicy"), e(invalid, "volumeBindingMode")}},
		{name: "priority value is frozen", old: pc("high", 1000), change: func(o runtime.Object) { o.(*schedulingv1.PriorityClass).Value = 2000 },
			want: []string{e(forbidden, "value")}},
		{name: "priority description may change", old: pc("high", 1000), change: func(o runtime.Object) {
			o.(*schedulingv1.PriorityClass).Description = "more"
		}},
	})
}
