package statefulset

import (
	"sort"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// world is everything one decision about a StatefulSet reads.
type world struct {
	set *appsv1.StatefulSet
	// pods are the set's own pods, terminating ones included.
	pods []*corev1.Pod
	// current and update are the names of the current revision (what the
	// set ran before the latest template) and the update revision (the
	// latest template); equal when no rollout is under way.
	current, update string
	now             time.Time
}

type actionKind int

const (
	// actCreate creates the ordinal's claims (those missing) and its pod.
	actCreate actionKind = iota
	// actDelete deletes a pod.
	actDelete
	// actRelabel restores a pod's identity labels.
	actRelabel
	// actClaims creates a pending pod's missing claims.
	actClaims
)

// action is one step; the controller performs a plan's actions in order
// and stops at the first that fails.
type action struct {
	kind    actionKind
	ordinal int
	pod     *corev1.Pod // the pod acted on (delete, relabel, claims)
	// fromCurrent makes a created pod from the current revision (ordinals
	// below the partition keep the old template); else the update revision.
	fromCurrent bool
	reason      string
}

// Why pods are deleted (logs and events).
const (
	whyFinished  = "finished"
	whyCondemned = "scaled down"
	whyUpdate    = "updated"
)

// plan is the outcome of decide.
type plan struct {
	actions []action
	status  appsv1.StatefulSetStatus
	// recheck, when positive, is when a ready pod becomes available
	// (minReadySeconds), which can unblock the next step.
	recheck time.Duration
}

// decide is the StatefulSet controller's decision, in Kubernetes' order:
//
//  1. every ordinal in [start, start+replicas), lowest first: replace a
//     finished pod, create a missing one (claims first), wait for a
//     terminating or not yet ready one (OrderedReady only), restore
//     identity labels;
//  2. pods outside the range, highest ordinal first: delete them
//     (OrderedReady: one at a time, only once every lower pod is healthy);
//  3. RollingUpdate: from the highest ordinal down to the partition,
//     delete the first pod not on the update revision and wait for each to
//     come back ready (with maxUnavailable: up to that many at once).
//
// OrderedReady stops at the first thing it must wait for; Parallel does
// steps 1 and 2 for all pods at once.
func decide(w world) plan {
	set := w.set
	start, replicas := startOrdinal(set), replicasOf(set)
	slots := make([]*corev1.Pod, replicas)
	var condemned []*corev1.Pod
	for _, p := range w.pods {
		ord := ordinalOf(set, p)
		switch {
		case ord < 0:
			continue
		case inRange(set, ord):
			slots[ord-start] = p
		default:
			condemned = append(condemned, p)
		}
	}
	sort.Slice(condemned, func(i, j int) bool { return ordinalOf(set, condemned[i]) > ordinalOf(set, condemned[j]) })

	pl := plan{}
	pl.status, pl.recheck = computeStatus(w)
	if set.DeletionTimestamp != nil {
		return pl
	}

	// The lowest-ordinal unhealthy pod (missing counts as unhealthy) may be
	// scaled down even while it is unhealthy; nothing else may.
	var firstUnhealthy *corev1.Pod
	firstUnhealthyOrd := -1
	for i, p := range slots {
		if !healthy(p) {
			firstUnhealthy, firstUnhealthyOrd = p, start+i
			break
		}
	}
	if firstUnhealthyOrd < 0 {
		for i := len(condemned) - 1; i >= 0; i-- {
			if !healthy(condemned[i]) {
				firstUnhealthy = condemned[i]
				break
			}
		}
	}

	ordered := set.Spec.PodManagementPolicy != appsv1.ParallelPodManagement
	minReady := set.Spec.MinReadySeconds
	partition := partitionOf(set)
	add := func(a action) { pl.actions = append(pl.actions, a) }

	for i, p := range slots {
		ord := start + i
		switch {
		case p == nil:
			add(action{kind: actCreate, ordinal: ord, fromCurrent: rollingUpdate(set) && ord < partition && w.current != w.update})
			if ordered {
				return pl
			}
			continue
		case isFinished(p):
			if !isTerminating(p) {
				add(action{kind: actDelete, ordinal: ord, pod: p, reason: whyFinished})
			}
			if ordered {
				return pl
			}
			continue
		}
		if p.Status.Phase == corev1.PodPending && len(set.Spec.VolumeClaimTemplates) > 0 {
			add(action{kind: actClaims, ordinal: ord, pod: p})
		}
		if ordered && (isTerminating(p) || !runningAndReady(p) || !runningAndAvailable(p, minReady, w.now)) {
			return pl
		}
		if !identityMatches(set, p, ord) && !isTerminating(p) {
			add(action{kind: actRelabel, ordinal: ord, pod: p})
		}
	}

	for _, p := range condemned {
		ord := ordinalOf(set, p)
		if isTerminating(p) {
			if ordered {
				return pl
			}
			continue
		}
		if ordered && p != firstUnhealthy && (!runningAndReady(p) || !runningAndAvailable(p, minReady, w.now)) {
			return pl
		}
		add(action{kind: actDelete, ordinal: ord, pod: p, reason: whyCondemned})
		if ordered {
			return pl
		}
	}

	if !rollingUpdate(set) {
		return pl
	}
	if ru := set.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.MaxUnavailable != nil {
		pl.actions = append(pl.actions, updateMany(w, slots, start, partition)...)
		return pl
	}
	for i := len(slots) - 1; i >= 0 && start+i >= partition; i-- {
		p := slots[i]
		if p == nil {
			return pl
		}
		if revisionOf(p) != w.update && !isTerminating(p) {
			add(action{kind: actDelete, ordinal: start + i, pod: p, reason: whyUpdate})
			return pl
		}
		if !healthy(p) {
			return pl
		}
	}
	return pl
}

// updateMany is the rolling update under maxUnavailable: with u pods of
// the range unhealthy, up to maxUnavailable-u outdated pods at or above
// the partition are deleted, highest ordinal first.
func updateMany(w world, slots []*corev1.Pod, start, partition int) []action {
	ru := w.set.Spec.UpdateStrategy.RollingUpdate
	maxUnavailable, err := intstr.GetScaledValueFromIntOrPercent(ru.MaxUnavailable, len(slots), true)
	if err != nil || maxUnavailable < 1 {
		maxUnavailable = 1
	}
	unhealthy := 0
	for _, p := range slots {
		if !healthy(p) {
			unhealthy++
		}
	}
	var out []action
	for i := len(slots) - 1; i >= 0 && start+i >= partition && unhealthy+len(out) < maxUnavailable; i-- {
		p := slots[i]
		if p != nil && revisionOf(p) != w.update && !isTerminating(p) {
			out = append(out, action{kind: actDelete, ordinal: start + i, pod: p, reason: whyUpdate})
		}
	}
	return out
}

func rollingUpdate(set *appsv1.StatefulSet) bool {
	return set.Spec.UpdateStrategy.Type != appsv1.OnDeleteStatefulSetStrategyType
}

// partitionOf is the lowest ordinal a rolling update touches.
func partitionOf(set *appsv1.StatefulSet) int {
	if ru := set.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.Partition != nil {
		return int(*ru.Partition)
	}
	return 0
}

// computeStatus counts the set's pods as kubectl reads them. The current
// revision becomes the update revision once a rolling update has every
// pod updated and ready.
func computeStatus(w world) (appsv1.StatefulSetStatus, time.Duration) {
	set := w.set
	st := appsv1.StatefulSetStatus{
		ObservedGeneration: set.Generation,
		CurrentRevision:    w.current,
		UpdateRevision:     w.update,
		CollisionCount:     set.Status.CollisionCount,
		Conditions:         set.Status.Conditions,
	}
	var recheck time.Duration
	for _, p := range w.pods {
		if ordinalOf(set, p) < 0 {
			continue
		}
		st.Replicas++
		if runningAndReady(p) {
			st.ReadyReplicas++
			if runningAndAvailable(p, set.Spec.MinReadySeconds, w.now) {
				st.AvailableReplicas++
			} else if wait := untilAvailable(set, p, w.now); wait > 0 && (recheck == 0 || wait < recheck) {
				recheck = wait
			}
		}
		if !isTerminating(p) {
			if revisionOf(p) == w.current {
				st.CurrentReplicas++
			}
			if revisionOf(p) == w.update {
				st.UpdatedReplicas++
			}
		}
	}
	if rollingUpdate(set) && st.UpdatedReplicas == st.Replicas && st.ReadyReplicas == st.Replicas {
		st.CurrentRevision = st.UpdateRevision
		st.CurrentReplicas = st.UpdatedReplicas
	}
	return st, recheck
}

// untilAvailable is how long a ready pod still waits out minReadySeconds.
func untilAvailable(set *appsv1.StatefulSet, pod *corev1.Pod, now time.Time) time.Duration {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return c.LastTransitionTime.Add(time.Duration(set.Spec.MinReadySeconds)*time.Second).Sub(now) + time.Second
		}
	}
	return 0
}
