package printers

import (
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Annotations that mark the cluster's default storage class.
const (
	defaultClassAnnotation     = "storageclass.kubernetes.io/is-default-class"
	betaDefaultClassAnnotation = "storageclass.beta.kubernetes.io/is-default-class"
)

func storagePrinters() map[schema.GroupKind]kindPrinter {
	return map[schema.GroupKind]kindPrinter{
		{Group: "storage.k8s.io", Kind: "StorageClass"}: printer([]metav1.TableColumnDefinition{
			nameColumn(),
			column("Provisioner", typeString, "The volume plugin that makes the class's volumes."),
			column("ReclaimPolicy", typeString, "What happens to a volume of the class when its claim goes away."),
			column("VolumeBindingMode", typeString, "When claims are bound: at once, or when a pod first uses them."),
			column("AllowVolumeExpansion", typeString, "Whether claims of the class may grow."),
			ageColumn(),
		}, storageClassCells),
	}
}

func storageClassCells(c *storagev1.StorageClass, now time.Time) []interface{} {
	name := c.Name
	if c.Annotations[defaultClassAnnotation] == "true" || c.Annotations[betaDefaultClassAnnotation] == "true" {
		name += " (default)"
	}
	reclaim := string(corev1.PersistentVolumeReclaimDelete)
	if c.ReclaimPolicy != nil {
		reclaim = string(*c.ReclaimPolicy)
	}
	binding := string(storagev1.VolumeBindingImmediate)
	if c.VolumeBindingMode != nil {
		binding = string(*c.VolumeBindingMode)
	}
	expand := c.AllowVolumeExpansion != nil && *c.AllowVolumeExpansion
	return []interface{}{name, c.Provisioner, reclaim, binding, strconv.FormatBool(expand), since(c.CreationTimestamp, now)}
}
