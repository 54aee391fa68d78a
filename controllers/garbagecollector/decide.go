package garbagecollector

import (
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// ownerState is what verifying one owner reference found.
type ownerState int

const (
	// ownerPresent: the owner exists and is not waiting on its dependents.
	ownerPresent ownerState = iota
	// ownerWaiting: the owner exists and is being deleted in the
	// foreground; it waits for its dependents to go.
	ownerWaiting
	// ownerAbsent: the owner is verified gone (not found, or found with
	// another UID). The reference dangles.
	ownerAbsent
	// ownerUnresolvable: the reference cannot be checked (its kind is not
	// served, or a cluster-scoped dependent names a namespaced kind). It
	// keeps the dependent, as a present owner would.
	ownerUnresolvable
)

func (s ownerState) String() string {
	switch s {
	case ownerPresent:
		return "present"
	case ownerWaiting:
		return "waiting"
	case ownerAbsent:
		return "absent"
	case ownerUnresolvable:
		return "unresolvable"
	}
	return "unknown"
}

// verdict is one owner reference with what verifying it found.
type verdict struct {
	Ref   metav1.OwnerReference
	State ownerState
}

// ownedAction is what to do with a dependent that is not being deleted.
type ownedAction struct {
	// Delete the dependent, with Policy.
	Delete bool
	Policy metav1.DeletionPropagation
	// DropRefs are owner references to remove from the dependent.
	DropRefs []types.UID
}

// decideOwned judges a dependent by its owners:
//
//   - some owner is present (or cannot be checked): the dependent stays;
//     references to absent owners, and to owners waiting on their
//     dependents, are removed (it is not going to be deleted for them);
//   - otherwise, with an owner waiting on its dependents, the dependent
//     is deleted in the foreground when it has dependents of its own, so
//     the wait reaches down the whole tree;
//   - otherwise every owner is gone: the dependent is deleted, in the
//     background unless its own finalizers ask for orphaning or the
//     foreground.
//
// A dependent without owner references is left alone.
func decideOwned(vs []verdict, finalizers []string, hasDependents bool) ownedAction {
	if len(vs) == 0 {
		return ownedAction{}
	}
	var solid, dangling, waiting []types.UID
	for _, v := range vs {
		switch v.State {
		case ownerPresent, ownerUnresolvable:
			solid = append(solid, v.Ref.UID)
		case ownerAbsent:
			dangling = append(dangling, v.Ref.UID)
		case ownerWaiting:
			waiting = append(waiting, v.Ref.UID)
		}
	}
	switch {
	case len(solid) > 0:
		return ownedAction{DropRefs: append(dangling, waiting...)}
	case len(waiting) > 0 && hasDependents:
		return ownedAction{Delete: true, Policy: metav1.DeletePropagationForeground}
	case slices.Contains(finalizers, metav1.FinalizerOrphanDependents):
		return ownedAction{Delete: true, Policy: metav1.DeletePropagationOrphan}
	case slices.Contains(finalizers, metav1.FinalizerDeleteDependents):
		return ownedAction{Delete: true, Policy: metav1.DeletePropagationForeground}
	default:
		return ownedAction{Delete: true, Policy: metav1.DeletePropagationBackground}
	}
}

// dependent is one object whose owner references name the object being
// decided on.
type dependent struct {
	UID types.UID
	// Blocking: its reference to the owner has blockOwnerDeletion=true.
	Blocking bool
	// Deleting: it has a deletionTimestamp.
	Deleting bool
}

// deletingAction is what to do for an object being deleted whose
// finalizers ask the garbage collector to act first.
type deletingAction struct {
	// Orphan: remove the references to the owner from these dependents,
	// then drop the finalizer.
	Orphan []types.UID
	// Nudge: dependents to look at again (they will see their owner
	// waiting and go).
	Nudge []types.UID
	// RemoveFinalizer is the finalizer to drop once the rest is done;
	// empty when the owner must keep waiting.
	RemoveFinalizer string
	// Wait: not every resource's cache is synced; dependents may be
	// missing from the view, so nothing may be concluded yet.
	Wait bool
}

// decideDeleting handles an owner whose deletion waits for the garbage
// collector:
//
//	orphan finalizer:      every dependent loses its reference to the
//	                       owner, then the finalizer goes
//	foregroundDeletion:    while dependents with blockOwnerDeletion
//	                       remain, they are (re)looked at and the owner
//	                       waits; when none remain the finalizer goes
//
// Orphaning comes first when both finalizers are present. Without a
// complete view (synced false) it concludes nothing.
func decideDeleting(finalizers []string, deps []dependent, synced bool) deletingAction {
	orphan := slices.Contains(finalizers, metav1.FinalizerOrphanDependents)
	foreground := slices.Contains(finalizers, metav1.FinalizerDeleteDependents)
	if !orphan && !foreground {
		return deletingAction{}
	}
	if !synced {
		return deletingAction{Wait: true}
	}
	if orphan {
		a := deletingAction{RemoveFinalizer: metav1.FinalizerOrphanDependents}
		for _, d := range deps {
			a.Orphan = append(a.Orphan, d.UID)
		}
		return a
	}
	var a deletingAction
	blocked := false
	for _, d := range deps {
		if d.Blocking {
			blocked = true
		}
		if !d.Deleting {
			a.Nudge = append(a.Nudge, d.UID)
		}
	}
	if !blocked {
		a.RemoveFinalizer = metav1.FinalizerDeleteDependents
	}
	return a
}

// gcFinalizer says whether finalizers hold one the collector acts on.
func gcFinalizer(finalizers []string) bool {
	return slices.Contains(finalizers, metav1.FinalizerOrphanDependents) ||
		slices.Contains(finalizers, metav1.FinalizerDeleteDependents)
}
