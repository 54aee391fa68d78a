package volumebinding

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-sh/skiff/controllers/volumebinding/pvmatch"
)

// Event reasons and messages of the binder, as Kubernetes' persistent
// volume controller records them on claims and volumes.
const (
	ReasonWaitForFirstConsumer = "WaitForFirstConsumer"
	ReasonExternalProvisioning = "ExternalProvisioning"
	ReasonFailedBinding        = "FailedBinding"
	ReasonProvisioningFailed   = "ProvisioningFailed"
	ReasonVolumeMismatch       = "VolumeMismatch"
	ReasonClaimLost            = "ClaimLost"
	ReasonClaimMisbound        = "ClaimMisbound"
	ReasonVolumeFailedDelete   = "VolumeFailedDelete"
	ReasonVolumeFailedRecycle  = "VolumeFailedRecycle"

	msgWaitForFirstConsumer = "waiting for first consumer to be created before binding"
	msgNoClass              = "no persistent volumes available for this claim and no storage class is set"
)

// event is an Event to record about the object being reconciled.
type event struct {
	Type, Reason, Message string
}

// claimState is what the binder observed about one claim.
type claimState struct {
	Claim *corev1.PersistentVolumeClaim
	// Class is the claim's StorageClass, nil when it names none or the
	// class does not exist.
	Class *storagev1.StorageClass
	// Volume is the volume named by spec.volumeName, nil if none or gone.
	Volume *corev1.PersistentVolume
	// Volumes is every volume, for matching (needed only while the claim
	// has no spec.volumeName).
	Volumes []*corev1.PersistentVolume
	// Node is the node named by the selected-node annotation, nil if none
	// or gone.
	Node *corev1.Node
	// DefaultClass names the default StorageClass, "" if there is none.
	DefaultClass string
}

// claimPlan is what the binder does about one claim. At most one of
// SetClass and Bind is set; otherwise Phase, Provisioner and Event apply.
type claimPlan struct {
	// SetClass gives a claim without class the default class (Kubernetes'
	// retroactive default StorageClass assignment).
	SetClass string
	// Bind binds the claim and this volume to each other.
	Bind *corev1.PersistentVolume
	// Phase is the claim's phase to record, "" to leave it.
	Phase corev1.PersistentVolumeClaimPhase
	// Provisioner is the provisioner to name in the claim's
	// storage-provisioner annotations, "" for none.
	Provisioner string
	// Event, if set, is recorded; when OnChange it is recorded only if the
	// phase changes.
	Event    *event
	OnChange bool
}

// planClaim decides what to do about a claim: bind it, ask for a volume
// to be provisioned, wait, or record that it lost its volume.
func planClaim(s claimState) claimPlan {
	if metav1.HasAnnotation(s.Claim.ObjectMeta, pvmatch.AnnBindCompleted) {
		return planBoundClaim(s)
	}
	c := s.Claim
	if c.Spec.VolumeName == "" {
		return planUnboundClaim(s)
	}
	// The user named the volume, or an earlier bind stopped half way.
	v := s.Volume
	switch {
	case v == nil:
		return claimPlan{Phase: corev1.ClaimPending}
	case v.Spec.ClaimRef == nil:
		if err := pvmatch.Satisfies(v, c); err != nil {
			return claimPlan{Phase: corev1.ClaimPending, Event: &event{corev1.EventTypeWarning, ReasonVolumeMismatch,
				fmt.Sprintf("Cannot bind to requested volume %q: %v", v.Name, err)}}
		}
		return claimPlan{Bind: v}
	case pvmatch.BoundToClaim(v, c):
		return claimPlan{Bind: v}
	}
	return claimPlan{Phase: corev1.ClaimPending, Event: &event{corev1.EventTypeNormal, ReasonFailedBinding,
		fmt.Sprintf("volume %q already bound to a different claim.", v.Name)}}
}

// planUnboundClaim handles a claim with no volume yet.
func planUnboundClaim(s claimState) claimPlan {
	c := s.Claim
	if !pvmatch.HasClass(c) && s.DefaultClass != "" {
		return claimPlan{SetClass: s.DefaultClass}
	}
	className := pvmatch.ClaimClass(c)
	delay := pvmatch.WaitsForConsumer(s.Class) && c.Annotations[pvmatch.AnnSelectedNode] == ""
	if v := pvmatch.Match(c, s.Volumes, s.Node, delay); v != nil {
		return claimPlan{Bind: v}
	}
	p := claimPlan{Phase: corev1.ClaimPending}
	switch {
	case delay:
		p.Event = &event{corev1.EventTypeNormal, ReasonWaitForFirstConsumer, msgWaitForFirstConsumer}
	case className == "":
		p.Event = &event{corev1.EventTypeNormal, ReasonFailedBinding, msgNoClass}
	case s.Class == nil:
		p.Event = &event{corev1.EventTypeWarning, ReasonProvisioningFailed,
			fmt.Sprintf("storageclass.storage.k8s.io %q not found", className)}
	default:
		p.Provisioner = s.Class.Provisioner
		p.Event = &event{corev1.EventTypeNormal, ReasonExternalProvisioning, fmt.Sprintf(
			"Waiting for a volume to be created either by the external provisioner '%s' or manually by the system administrator. "+
				"If volume creation is delayed, please verify that the provisioner is running and correctly registered.", s.Class.Provisioner)}
	}
	return p
}

// planBoundClaim handles a claim whose binding completed once: keep it
// bound, or mark it Lost when its volume went away or belongs to another
// claim.
func planBoundClaim(s claimState) claimPlan {
	c, v := s.Claim, s.Volume
	lost := func(reason, msg string) claimPlan {
		return claimPlan{Phase: corev1.ClaimLost, Event: &event{corev1.EventTypeWarning, reason, msg}, OnChange: true}
	}
	switch {
	case c.Spec.VolumeName == "":
		return lost(ReasonClaimLost, "Bound claim has lost reference to PersistentVolume. Data on the volume is lost!")
	case v == nil:
		return lost(ReasonClaimLost, "Bound claim has lost its PersistentVolume. Data on the volume is lost!")
	case v.Spec.ClaimRef == nil, pvmatch.BoundToClaim(v, c):
		return claimPlan{Bind: v}
	}
	return lost(ReasonClaimMisbound, "Two claims are bound to the same volume, this one is bound incorrectly")
}
