package scheduler

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const reasonMissingPV = "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)"

var statusMissingPV = unresolvable(reasonMissingPV)

// volumeNodeAffinity follows each of the pod's claims (and generic
// ephemeral volumes' claims) to its bound PersistentVolume and keeps only
// nodes the volume's spec.nodeAffinity allows, which pins pods to the node
// of a local volume. A missing or deleted claim, or an unbound claim whose
// class binds immediately, rejects the pod. An unbound claim whose class
// waits for the first consumer keeps only its selected node once it has
// one, and otherwise nodes holding a matching volume (classes without a
// provisioner) or in the class's allowed topologies (claims.go).
type volumeNodeAffinity struct{}

func (volumeNodeAffinity) Name() string { return "VolumeBinding" }

func (volumeNodeAffinity) Prepare(c *Cycle) (bool, *Status) {
	objs := c.Snap.objects
	pod := c.Pod.Pod
	if objs == nil || len(pod.Spec.Volumes) == 0 {
		return true, nil
	}
	missingPV := false
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		var claim string
		ephemeral := false
		switch {
		case v.PersistentVolumeClaim != nil:
			claim = v.PersistentVolumeClaim.ClaimName
		case v.Ephemeral != nil:
			claim, ephemeral = pod.Name+"-"+v.Name, true
		default:
			continue
		}
		pvc := objs.PersistentVolumeClaim(pod.Namespace, claim)
		switch {
		case pvc == nil && ephemeral:
			return false, unresolvable(fmt.Sprintf("waiting for ephemeral volume controller to create the persistentvolumeclaim %q", claim))
		case pvc == nil:
			return false, unresolvable(fmt.Sprintf("persistentvolumeclaim %q not found", claim))
		case ephemeral && !metav1.IsControlledBy(pvc, pod):
			return false, unresolvable(fmt.Sprintf("persistentvolumeclaim %q was not created for the pod", claim))
		case pvc.DeletionTimestamp != nil:
			return false, unresolvable(fmt.Sprintf("persistentvolumeclaim %q is being deleted", claim))
		}
		if pvc.Spec.VolumeName == "" {
			if waitsForConsumer(objs, pvc) {
				prepareDelayed(c, objs, pvc)
				continue
			}
			return false, unresolvable("pod has unbound immediate PersistentVolumeClaims")
		}
		pv := objs.PersistentVolume(pvc.Spec.VolumeName)
		if pv == nil {
			missingPV = true
			continue
		}
		if na := pv.Spec.NodeAffinity; na != nil && na.Required != nil {
			c.volumes = append(c.volumes, compileNodeSelector(na.Required))
		}
	}
	if missingPV {
		c.volumes = append(c.volumes[:0], nil)
	}
	return len(c.volumes) == 0 && len(c.delayed) == 0, nil
}

func (volumeNodeAffinity) Filter(c *Cycle, n *NodeInfo) *Status {
	for _, sel := range c.volumes {
		if sel == nil {
			return statusMissingPV
		}
		if !sel.matches(n.node) {
			return statusVolumeAffinity
		}
	}
	return filterDelayed(c, n)
}

// waitsForConsumer reports whether an unbound claim's storage class
// delays binding until a pod uses it.
func waitsForConsumer(objs Objects, pvc *corev1.PersistentVolumeClaim) bool {
	class := ""
	if pvc.Spec.StorageClassName != nil {
		class = *pvc.Spec.StorageClassName
	} else if a, ok := pvc.Annotations[corev1.BetaStorageClassAnnotation]; ok {
		class = a
	}
	if class == "" {
		return false
	}
	sc := objs.StorageClass(class)
	return sc != nil && sc.VolumeBindingMode != nil && *sc.VolumeBindingMode == storagev1.VolumeBindingWaitForFirstConsumer
}
