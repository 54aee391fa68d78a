package job

import (
	"cmp"
	"slices"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/utils/ptr"
)

// Counting pods exactly, with the batch.kubernetes.io/job-tracking
// finalizer. Every pod the Job creates carries it, so a finished pod stays
// in the API until the Job has counted it, even if someone deletes it. A
// pod is counted in three steps, each one safe to repeat after a crash:
//
//	finished pod, finalizer held
//	    │ 1. its UID goes into status.uncountedTerminatedPods (written)
//	    v
//	uncounted, finalizer held
//	    │ 2. the finalizer is removed (the pod may now go away)
//	    v
//	uncounted, no finalizer
//	    │ 3. the UID moves into status.succeeded / status.failed (written)
//	    v
//	counted
//
// An Indexed Job records succeeded pods by index instead
// (status.completedIndexes is written in step 1), so only its failed
// pods pass through the uncounted lists.

// track performs step 1 on st for every pod that may be counted now, and
// returns the pods whose finalizer may then go. A pod may be counted when
// it succeeded, when it failed (unless its index still needs its history),
// or whenever the Job is finishing or being deleted; while the Job is
// failing, pods still running count as failed. capped reports that the
// uncounted lists are full and some pods wait for the next reconcile.
func track(w world, t tally, ph perIndex, target *batchv1.JobCondition, st *batchv1.JobStatus) (unfinalize []*corev1.Pod, capped bool) {
	j := w.job
	indexed := isIndexed(j)
	completions := int(ptr.Deref(j.Spec.Completions, 0))
	onlyFailed := onlyReplaceFailed(j)
	unc := st.UncountedTerminatedPods
	uncSucceeded, uncFailed := sets.New(unc.Succeeded...), sets.New(unc.Failed...)
	finishing := target != nil || j.DeletionTimestamp != nil
	failing := isFailure(target)

	pods := slices.Clone(w.pods)
	if indexed {
		slices.SortStableFunc(pods, func(a, b *corev1.Pod) int { return cmp.Compare(completionIndex(a), completionIndex(b)) })
	}
	for _, pod := range pods {
		if !hasTrackingFinalizer(pod) || w.unfinalizing.Has(pod.UID) {
			continue // counted already
		}
		succeeded := pod.Status.Phase == corev1.PodSucceeded
		failed := consideredFailed(pod, onlyFailed)
		if !finishing && !succeeded && !(failed && !ph.delayed[pod.UID]) {
			continue
		}
		unfinalize = append(unfinalize, pod)
		known := uncSucceeded.Has(pod.UID) || uncFailed.Has(pod.UID)
		switch {
		case known:
		case succeeded:
			if !indexed { // an index is recorded in completedIndexes
				unc.Succeeded = append(unc.Succeeded, pod.UID)
			}
		case failed || failing:
			if indexed && validIndex(pod, completions) == noIndex {
				break
			}
			if judge(j.Spec.PodFailurePolicy, pod).counts() {
				unc.Failed = append(unc.Failed, pod.UID)
			}
		}
		if len(unc.Succeeded)+len(unc.Failed) >= maxUncountedPods {
			capped = true
			break
		}
	}
	if indexed {
		st.CompletedIndexes = t.succeededIndexes.String()
		st.Succeeded = int32(t.succeededIndexes.total())
	}
	if ph.active {
		st.FailedIndexes = ptr.To(t.failedIndexes.String())
	}
	return unfinalize, capped
}

// settle is step 3, after the finalizers were removed: uncounted pods
// that no longer hold one (held names those that still do) move into the
// counters. Then, if the Job is finishing (finish is set, capped is not),
// nothing is left uncounted and no pod is terminating, the terminal
// condition is added, with completionTime for Complete, and its event.
func settle(st batchv1.JobStatus, held sets.Set[types.UID], finish *batchv1.JobCondition, capped bool) (batchv1.JobStatus, []event) {
	st = *st.DeepCopy()
	unc := st.UncountedTerminatedPods
	if unc == nil {
		unc = &batchv1.UncountedTerminatedPods{}
		st.UncountedTerminatedPods = unc
	}
	var moved int32
	unc.Succeeded, moved = keepHeld(unc.Succeeded, held)
	st.Succeeded += moved
	unc.Failed, moved = keepHeld(unc.Failed, held)
	st.Failed += moved

	if finish == nil || capped || len(unc.Succeeded)+len(unc.Failed) > 0 || ptr.Deref(st.Terminating, 0) > 0 {
		return st, nil
	}
	setCondition(&st.Conditions, finish.Type, corev1.ConditionTrue, finish.Reason, finish.Message, finish.LastTransitionTime.Time)
	if finish.Type == batchv1.JobComplete {
		st.CompletionTime = finish.LastTransitionTime.DeepCopy()
		return st, []event{{corev1.EventTypeNormal, "Completed", "Job completed"}}
	}
	return st, []event{{corev1.EventTypeWarning, finish.Reason, finish.Message}}
}

// keepHeld splits uids into those still held (kept) and a count of the
// rest.
func keepHeld(uids []types.UID, held sets.Set[types.UID]) ([]types.UID, int32) {
	var keep []types.UID
	for _, uid := range uids {
		if held.Has(uid) {
			keep = append(keep, uid)
		}
	}
	return keep, int32(len(uids) - len(keep))
}
