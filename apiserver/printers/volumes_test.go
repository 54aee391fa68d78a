package printers

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestPersistentVolumeRows(t *testing.T) {
	block := corev1.PersistentVolumeBlock
	gold := "gold"
	pv := &corev1.PersistentVolume{ObjectMeta: objMeta("pv1", 45*time.Second)}
	pv.Spec.Capacity = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Gi")}
	pv.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOncePod, corev1.ReadWriteOnce, corev1.ReadOnlyMany, corev1.ReadWriteOnce}
	pv.Spec.PersistentVolumeReclaimPolicy = corev1.PersistentVolumeReclaimRetain
	pv.Spec.ClaimRef = &corev1.ObjectReference{Namespace: "default", Name: "data"}
	pv.Spec.StorageClassName = "standard"
	pv.Spec.VolumeAttributesClassName = &gold
	pv.Spec.VolumeMode = &block
	pv.Status.Phase = corev1.VolumeBound

	released := pv.DeepCopy()
	released.Status.Phase = corev1.VolumeReleased
	released.Status.Reason = "Released by test"
	released.DeletionTimestamp = agoPtr(time.Second)
	released.Annotations = map[string]string{"volume.beta.kubernetes.io/storage-class": "old"}

	checkRows(t, schema.GroupKind{Kind: "PersistentVolume"}, []rowCase{
		{"bound", pv, []interface{}{"pv1", "10Gi", "RWO,ROX,RWOP", "Retain", "Bound", "default/data", "standard", "gold", "", "45s", "Block"}},
		{"terminating, class from the beta annotation", released,
			[]interface{}{"pv1", "10Gi", "RWO,ROX,RWOP", "Retain", "Terminating", "default/data", "old", "gold", "Released by test", "45s", "Block"}},
		{"empty", &corev1.PersistentVolume{}, []interface{}{"", "0", "", "", "", "", "", "<unset>", "", "<unknown>", "<unset>"}},
	})
}

func TestPersistentVolumeClaimRows(t *testing.T) {
	fs := corev1.PersistentVolumeFilesystem
	standard := "standard"
	pending := &corev1.PersistentVolumeClaim{ObjectMeta: objMeta("data", 2*time.Minute)}
	pending.Spec.StorageClassName = &standard
	pending.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}
	pending.Spec.Resources.Requests = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}
	pending.Status.Phase = corev1.ClaimPending

	bound := pending.DeepCopy()
	bound.Spec.VolumeName = "pv1"
	bound.Spec.VolumeMode = &fs
	bound.Status.Phase = corev1.ClaimBound
	bound.Status.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}
	bound.Status.Capacity = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("2Gi")}

	checkRows(t, schema.GroupKind{Kind: "PersistentVolumeClaim"}, []rowCase{
		{"pending shows no capacity", pending, []interface{}{"data", "Pending", "", "", "", "standard", "<unset>", "2m", "<unset>"}},
		{"bound", bound, []interface{}{"data", "Bound", "pv1", "2Gi", "RWX", "standard", "<unset>", "2m", "Filesystem"}},
	})
}
