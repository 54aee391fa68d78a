package printers

import (
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// betaStorageClassAnnotation is the annotation that named a volume's or
// claim's class before spec.storageClassName existed; it still wins.
const betaStorageClassAnnotation = "volume.beta.kubernetes.io/storage-class"

func volumePrinters() map[schema.GroupKind]kindPrinter {
	return map[schema.GroupKind]kindPrinter{
		{Kind: "PersistentVolume"}: printer([]metav1.TableColumnDefinition{
			nameColumn(),
			column("Capacity", typeString, "The volume's storage size."),
			column("Access Modes", typeString, "How the volume can be mounted: RWO, ROX, RWX, RWOP."),
			column("Reclaim Policy", typeString, "What happens to the volume when its claim goes away."),
			column("Status", typeString, "The volume's phase, or Terminating."),
			column("Claim", typeString, "The namespace/name of the claim bound to the volume."),
			column("StorageClass", typeString, "The storage class the volume belongs to."),
			column("VolumeAttributesClass", typeString, "The volume attributes class the volume uses."),
			column("Reason", typeString, "Why the volume is in its phase, if it says."),
			ageColumn(),
			wide(column("VolumeMode", typeString, "Filesystem or Block.")),
		}, pvCells),
		{Kind: "PersistentVolumeClaim"}: printer([]metav1.TableColumnDefinition{
			nameColumn(),
			column("Status", typeString, "The claim's phase, or Terminating."),
			column("Volume", typeString, "The volume the claim is bound to."),
			column("Capacity", typeString, "The storage size of the bound volume."),
			column("Access Modes", typeString, "How the bound volume can be mounted: RWO, ROX, RWX, RWOP."),
			column("StorageClass", typeString, "The storage class the claim asks for."),
			column("VolumeAttributesClass", typeString, "The volume attributes class the claim asks for."),
			ageColumn(),
			wide(column("VolumeMode", typeString, "Filesystem or Block.")),
		}, pvcCells),
	}
}

func pvCells(pv *corev1.PersistentVolume, now time.Time) []interface{} {
	claim := ""
	if ref := pv.Spec.ClaimRef; ref != nil {
		claim = ref.Namespace + "/" + ref.Name
	}
	capacity := pv.Spec.Capacity[corev1.ResourceStorage]
	phase := string(pv.Status.Phase)
	if pv.DeletionTimestamp != nil {
		phase = "Terminating"
	}
	class := pv.Spec.StorageClassName
	if a, ok := pv.Annotations[betaStorageClassAnnotation]; ok {
		class = a
	}
	return []interface{}{
		pv.Name,
		capacity.String(),
		accessModes(pv.Spec.AccessModes),
		string(pv.Spec.PersistentVolumeReclaimPolicy),
		phase,
		claim,
		class,
		strOr(pv.Spec.VolumeAttributesClassName, unset),
		pv.Status.Reason,
		since(pv.CreationTimestamp, now),
		volumeMode(pv.Spec.VolumeMode),
	}
}

func pvcCells(pvc *corev1.PersistentVolumeClaim, now time.Time) []interface{} {
	phase := string(pvc.Status.Phase)
	if pvc.DeletionTimestamp != nil {
		phase = "Terminating"
	}
	capacity, modes := "", ""
	if pvc.Spec.VolumeName != "" {
		q := pvc.Status.Capacity[corev1.ResourceStorage]
		capacity = q.String()
		modes = accessModes(pvc.Status.AccessModes)
	}
	class := strOr(pvc.Spec.StorageClassName, "")
	if a, ok := pvc.Annotations[betaStorageClassAnnotation]; ok {
		class = a
	}
	return []interface{}{
		pvc.Name,
		phase,
		pvc.Spec.VolumeName,
		capacity,
		modes,
		class,
		strOr(pvc.Spec.VolumeAttributesClassName, unset),
		since(pvc.CreationTimestamp, now),
		volumeMode(pvc.Spec.VolumeMode),
	}
}

// accessModes abbreviates access modes in a fixed order, each once.
func accessModes(modes []corev1.PersistentVolumeAccessMode) string {
	has := map[corev1.PersistentVolumeAccessMode]bool{}
	for _, m := range modes {
		has[m] = true
	}
	var out []string
	for _, m := range []struct {
		mode  corev1.PersistentVolumeAccessMode
		short string
	}{
		{corev1.ReadWriteOnce, "RWO"},
		{corev1.ReadOnlyMany, "ROX"},
		{corev1.ReadWriteMany, "RWX"},
		{corev1.ReadWriteOncePod, "RWOP"},
	} {
		if has[m.mode] {
			out = append(out, m.short)
		}
	}
	return strings.Join(out, ",")
}

func volumeMode(m *corev1.PersistentVolumeMode) string {
	if m == nil {
		return unset
	}
	return string(*m)
}
