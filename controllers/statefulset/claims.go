package statefulset

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// The retention policy is carried out by owner references, so the garbage
// collector does the deleting:
//
//	whenDeleted  whenScaled   claim of a pod in range   claim of a scaled-down pod
//	Retain       Retain       -                         -
//	Delete       Retain       owned by the set          owned by the set
//	Retain       Delete       -                         owned by the pod
//	Delete       Delete       owned by the set          owned by the pod
//
// Owner references to anything else are kept as they are.

func retentionPolicy(set *appsv1.StatefulSet) (whenDeleted, whenScaled appsv1.PersistentVolumeClaimRetentionPolicyType) {
	whenDeleted, whenScaled = appsv1.RetainPersistentVolumeClaimRetentionPolicyType, appsv1.RetainPersistentVolumeClaimRetentionPolicyType
	if p := set.Spec.PersistentVolumeClaimRetentionPolicy; p != nil {
		if p.WhenDeleted != "" {
			whenDeleted = p.WhenDeleted
		}
		if p.WhenScaled != "" {
			whenScaled = p.WhenScaled
		}
	}
	return whenDeleted, whenScaled
}

// claimOwners is the owner references a claim should have: its current
// ones with the set's and the pod's adjusted to the policy. pod may be nil
// (no pod for the ordinal now); then a reference to the pod is kept only
// if it is already there. changed says whether they differ from the
// claim's.
func claimOwners(set *appsv1.StatefulSet, claim *corev1.PersistentVolumeClaim, pod *corev1.Pod, ordinal int) (refs []metav1.OwnerReference, changed bool) {
	whenDeleted, whenScaled := retentionPolicy(set)
	const del = appsv1.DeletePersistentVolumeClaimRetentionPolicyType
	scaledDown := !inRange(set, ordinal)
	wantSet := whenDeleted == del && (!scaledDown || whenScaled != del)
	wantPod := whenScaled == del && scaledDown

	var podUID types.UID
	if pod != nil {
		podUID = pod.UID
	}
	isPodRef := func(r metav1.OwnerReference) bool {
		return r.Kind == "Pod" && r.APIVersion == "v1" && r.Name == podName(set, ordinal)
	}
	hasSet, hasPod := false, false
	for _, r := range claim.OwnerReferences {
		switch {
		case r.UID == set.UID:
			if !wantSet {
				changed = true
				continue
			}
			hasSet = true
		case isPodRef(r):
			if !wantPod || (pod != nil && r.UID != podUID) {
				changed = true
				continue
			}
			hasPod = true
		}
		refs = append(refs, r)
	}
	if wantSet && !hasSet {
		refs = append(refs, metav1.OwnerReference{APIVersion: kind.GroupVersion().String(), Kind: kind.Kind, Name: set.Name, UID: set.UID})
		changed = true
	}
	if wantPod && !hasPod && pod != nil {
		refs = append(refs, metav1.OwnerReference{APIVersion: podKind.GroupVersion().String(), Kind: podKind.Kind, Name: pod.Name, UID: pod.UID})
		changed = true
	}
	return refs, changed
}
