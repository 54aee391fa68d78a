// Package pvmatch holds the pure rules of persistent volume binding that
// the binder, the local-path provisioner, the scheduler, the node agent
// and the API server's admission share: the annotations Kubernetes
// defines on claims, volumes and classes, Skiff's own names, which class
// a claim or volume belongs to, which class is the default, and which
// volume suits a claim. Nothing here talks to the API.
package pvmatch

import (
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
)

// Annotations Kubernetes' volume binding writes and reads.
const (
	// AnnBindCompleted ("yes") on a claim: the binder finished binding it.
	AnnBindCompleted = "pv.kubernetes.io/bind-completed"
	// AnnBoundByController ("yes") on a claim or volume: the binder, not
	// the user, chose the other side.
	AnnBoundByController = "pv.kubernetes.io/bound-by-controller"
	// AnnSelectedNode on a claim: the node the scheduler chose for the
	// first pod using it, where a WaitForFirstConsumer volume must live.
	AnnSelectedNode = "volume.kubernetes.io/selected-node"
	// AnnStorageProvisioner (and its beta twin) on a claim: the
	// provisioner the binder expects to create its volume.
	AnnStorageProvisioner     = "volume.kubernetes.io/storage-provisioner"
	AnnBetaStorageProvisioner = "volume.beta.kubernetes.io/storage-provisioner"
	// AnnProvisionedBy on a volume: the provisioner that created it, and
	// that deletes it when the reclaim policy says Delete.
	AnnProvisionedBy = "pv.kubernetes.io/provisioned-by"
	// AnnDefaultClass ("true") on a StorageClass makes it the default for
	// claims that name none; the beta key is still honoured.
	AnnDefaultClass     = "storageclass.kubernetes.io/is-default-class"
	AnnBetaDefaultClass = "storageclass.beta.kubernetes.io/is-default-class"
	// NoProvisioner is the provisioner of classes whose volumes are all
	// created by hand.
	NoProvisioner = "kubernetes.io/no-provisioner"
)

// Skiff's local-path storage.
const (
	// LocalPathProvisioner provisions directories on the node that first
	// uses a claim.
	LocalPathProvisioner = "skiff.sh/local-path"
	// LocalPathClass is the built-in default StorageClass using it.
	LocalPathClass = "local-path"
	// AnnLocalPathBase on a Node: the directory under which the node's
	// agent keeps local-path volumes.
	AnnLocalPathBase = "skiff.sh/local-path-base"
	// AnnLocalPathNode on a local-path volume: the node holding it.
	AnnLocalPathNode = "skiff.sh/local-path-node"
	// DefaultLocalPathBase is the base of nodes that do not say.
	DefaultLocalPathBase = "/var/lib/skiff/agent/storage"
)

// ClaimClass is the class a claim asks for: the beta annotation wins over
// spec.storageClassName; "" means no class.
func ClaimClass(c *corev1.PersistentVolumeClaim) string {
	if v, ok := c.Annotations[corev1.BetaStorageClassAnnotation]; ok {
		return v
	}
	if c.Spec.StorageClassName != nil {
		return *c.Spec.StorageClassName
	}
	return ""
}

// HasClass reports whether a claim names a class at all, even "" (which
// asks for a volume without class and keeps the default away).
func HasClass(c *corev1.PersistentVolumeClaim) bool {
	_, ok := c.Annotations[corev1.BetaStorageClassAnnotation]
	return ok || c.Spec.StorageClassName != nil
}

// VolumeClass is the class a volume belongs to, beta annotation first.
func VolumeClass(v *corev1.PersistentVolume) string {
	if c, ok := v.Annotations[corev1.BetaStorageClassAnnotation]; ok {
		return c
	}
	return v.Spec.StorageClassName
}

// IsDefaultClass reports whether a class carries the default annotation.
func IsDefaultClass(sc *storagev1.StorageClass) bool {
	return sc.Annotations[AnnDefaultClass] == "true" || sc.Annotations[AnnBetaDefaultClass] == "true"
}

// DefaultClass picks the class claims without one get: among the classes
// marked default, the newest (then the first by name), as Kubernetes does
// when several are marked. It returns nil when none is.
func DefaultClass(classes []*storagev1.StorageClass) *storagev1.StorageClass {
	var best *storagev1.StorageClass
	for _, sc := range classes {
		if !IsDefaultClass(sc) || sc.DeletionTimestamp != nil {
			continue
		}
		if best == nil {
			best = sc
			continue
		}
		bt, st := best.CreationTimestamp.Time, sc.CreationTimestamp.Time
		if st.After(bt) || (st.Equal(bt) && sc.Name < best.Name) {
			best = sc
		}
	}
	return best
}

// WaitsForConsumer reports whether a class delays binding until a pod
// using the claim is scheduled.
func WaitsForConsumer(sc *storagev1.StorageClass) bool {
	return sc != nil && sc.VolumeBindingMode != nil && *sc.VolumeBindingMode == storagev1.VolumeBindingWaitForFirstConsumer
}

// ProvisionsDynamically reports whether a class has a provisioner that
// creates volumes (rather than only matching hand-made ones).
func ProvisionsDynamically(sc *storagev1.StorageClass) bool {
	return sc != nil && sc.Provisioner != "" && sc.Provisioner != NoProvisioner
}

// PodClaims lists the names of the claims a pod's volumes use, in volume
// order: persistentVolumeClaim volumes and the claims of generic ephemeral
// volumes (<pod>-<volume>).
func PodClaims(pod *corev1.Pod) []string {
	var out []string
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		switch {
		case v.PersistentVolumeClaim != nil:
			out = append(out, v.PersistentVolumeClaim.ClaimName)
		case v.Ephemeral != nil:
			out = append(out, pod.Name+"-"+v.Name)
		}
	}
	return out
}
