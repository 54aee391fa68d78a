package volumebinding

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-sh/skiff/controllers/volumebinding/pvmatch"
)

// volumePlan is what the binder does about one volume.
type volumePlan struct {
	// Phase and Message are the status to record, Phase "" to leave it.
	Phase   corev1.PersistentVolumePhase
	Message string
	// Unbind clears the claimRef (the binder had set it); ForgetUID
	// clears only its UID (the user pre-bound the volume by name).
	Unbind, ForgetUID bool
	// Release means the claim is gone: the caller confirms that with the
	// API before acting, since its cache may lag.
	Release bool
	// SyncClaim asks for the claim named by the claimRef to be reconciled.
	SyncClaim bool
	Event     *event
}

// planVolume decides a volume's phase from its claimRef and that claim
// (nil when it does not exist), and what its reclaim policy asks for
// once the claim is gone.
func planVolume(v *corev1.PersistentVolume, claim *corev1.PersistentVolumeClaim) volumePlan {
	ref := v.Spec.ClaimRef
	switch {
	case ref == nil:
		return volumePlan{Phase: corev1.VolumeAvailable}
	case ref.UID == "":
		return volumePlan{Phase: corev1.VolumeAvailable, SyncClaim: true}
	case claim == nil || claim.UID != ref.UID:
		p := reclaim(v)
		p.Release = true
		return p
	case claim.Spec.VolumeName == "":
		// Pre-bound to a claim that is not bound yet (a provisioned
		// volume, or a user's pre-binding): the claim's turn.
		return volumePlan{SyncClaim: true}
	case claim.Spec.VolumeName == v.Name:
		return volumePlan{Phase: corev1.VolumeBound}
	}
	// The claim is bound to another volume.
	if v.Annotations[pvmatch.AnnProvisionedBy] != "" && v.Spec.PersistentVolumeReclaimPolicy == corev1.PersistentVolumeReclaimDelete {
		// Made for this claim and no longer needed: reclaim it.
		p := reclaim(v)
		p.Release = true
		return p
	}
	if metav1.HasAnnotation(v.ObjectMeta, pvmatch.AnnBoundByController) {
		return volumePlan{Phase: corev1.VolumeAvailable, Unbind: true}
	}
	return volumePlan{Phase: corev1.VolumeAvailable, ForgetUID: true}
}

// reclaim applies the reclaim policy of a volume whose claim is gone.
// Retain keeps it Released; Delete leaves a provisioned volume Released
// for its provisioner to delete and fails any other, as Skiff has no
// deleter for hand-made volumes; Recycle is not supported.
func reclaim(v *corev1.PersistentVolume) volumePlan {
	if v.Status.Phase == corev1.VolumeFailed {
		return volumePlan{}
	}
	switch v.Spec.PersistentVolumeReclaimPolicy {
	case corev1.PersistentVolumeReclaimDelete:
		if v.Annotations[pvmatch.AnnProvisionedBy] != "" {
			return volumePlan{Phase: corev1.VolumeReleased}
		}
		msg := fmt.Sprintf("error getting deleter volume plugin for volume %q: no deletable volume plugin matched", v.Name)
		return volumePlan{Phase: corev1.VolumeFailed, Message: msg, Event: &event{corev1.EventTypeWarning, ReasonVolumeFailedDelete, msg}}
	case corev1.PersistentVolumeReclaimRecycle:
		msg := fmt.Sprintf("no volume plugin can recycle volume %q: Skiff does not support the Recycle policy", v.Name)
		return volumePlan{Phase: corev1.VolumeFailed, Message: msg, Event: &event{corev1.EventTypeWarning, ReasonVolumeFailedRecycle, msg}}
	}
	return volumePlan{Phase: corev1.VolumeReleased}
}
