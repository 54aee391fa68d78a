package replicaset

import (
	"slices"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// DeletionCostAnnotation lets users say which pods of a set they would
// rather lose first: lower costs go first. Values are int32; anything else
// counts as 0.
const DeletionCostAnnotation = "controller.kubernetes.io/pod-deletion-cost"

// RankForDeletion orders pods from least to most valuable, so that a set
// with n too many pods deletes the first n. related are the active pods of
// the set and of its siblings; a pod sharing its node with more of them is
// less valuable (deleting it spreads the rest). The order, each step
// deciding only between pods equal on the steps before it:
//
//  1. not assigned to a node < assigned
//  2. Pending < Unknown < Running
//  3. not ready < ready for less than minReadySeconds < available
//  4. lower pod-deletion-cost < higher
//  5. more related pods on the same node < fewer
//  6. ready for less time < ready for more time (both ready)
//  7. more container restarts < fewer
//  8. newer < older (creation time)
//
// and finally by UID, so the order is total and stable. pods is not
// changed; the result is a new slice.
//
// Step 3 refines Kubernetes' "not ready < ready": a pod not yet available
// always goes before an available one, whatever its cost or node. So a
// set shrunk to n keeps min(available, n) available pods even if more pods
// become ready meanwhile, which lets a Deployment's rolling update bound
// availability at every instant (see package deployment).
func RankForDeletion(pods, related []*corev1.Pod, minReadySeconds int32, now time.Time) []*corev1.Pod {
	onNode := map[string]int{}
	for _, p := range related {
		if IsActive(p) {
			onNode[p.Spec.NodeName]++
		}
	}
	ranked := make([]rankedPod, len(pods))
	for i, p := range pods {
		ranked[i] = rankedPod{
			pod:      p,
			doubled:  onNode[p.Spec.NodeName],
			cost:     deletionCost(p),
			ready:    IsReady(p),
			avail:    IsAvailable(p, minReadySeconds, now),
			since:    ReadySince(p),
			restarts: maxRestarts(p),
		}
	}
	slices.SortStableFunc(ranked, func(a, b rankedPod) int {
		if lessValuable(a, b) {
			return -1
		}
		if lessValuable(b, a) {
			return 1
		}
		return 0
	})
	out := make([]*corev1.Pod, len(pods))
	for i := range ranked {
		out[i] = ranked[i].pod
	}
	return out
}

// PodsToDelete picks the n least valuable of pods (see RankForDeletion).
func PodsToDelete(pods, related []*corev1.Pod, n int, minReadySeconds int32, now time.Time) []*corev1.Pod {
	if n <= 0 {
		return nil
	}
	if n >= len(pods) {
		return slices.Clone(pods)
	}
	return RankForDeletion(pods, related, minReadySeconds, now)[:n]
}

// rankedPod carries what the comparison needs, computed once per pod.
type rankedPod struct {
	pod      *corev1.Pod
	doubled  int
	cost     int32
	ready    bool
	avail    bool
	since    time.Time
	restarts int32
}

// lessValuable says whether a should be deleted before b.
func lessValuable(a, b rankedPod) bool {
	pa, pb := a.pod, b.pod
	// 1. unassigned first
	if (pa.Spec.NodeName == "") != (pb.Spec.NodeName == "") {
		return pa.Spec.NodeName == ""
	}
	// 2. Pending < Unknown < Running
	if oa, ob := phaseOrder(pa.Status.Phase), phaseOrder(pb.Status.Phase); oa != ob {
		return oa < ob
	}
	// 3. not ready first, then not yet available
	if a.ready != b.ready {
		return !a.ready
	}
	if a.avail != b.avail {
		return !a.avail
	}
	// 4. cheaper first
	if a.cost != b.cost {
		return a.cost < b.cost
	}
	// 5. more doubled up first
	if a.doubled != b.doubled {
		return a.doubled > b.doubled
	}
	// 6. ready for less time first; an unknown ready time counts as newest
	if a.ready && b.ready && !a.since.Equal(b.since) {
		return laterOrZero(a.since, b.since)
	}
	// 7. more restarts first
	if a.restarts != b.restarts {
		return a.restarts > b.restarts
	}
	// 8. newer first; no creation time counts as newest
	if ca, cb := pa.CreationTimestamp.Time, pb.CreationTimestamp.Time; !ca.Equal(cb) {
		return laterOrZero(ca, cb)
	}
	return pa.UID < pb.UID
}

// laterOrZero says whether t1 is zero or after t2 (t2 not zero).
func laterOrZero(t1, t2 time.Time) bool {
	if t1.IsZero() || t2.IsZero() {
		return t1.IsZero() && !t2.IsZero()
	}
	return t1.After(t2)
}

// phaseOrder ranks phases for deletion; phases not listed (finished pods
// are never candidates) sort first.
func phaseOrder(p corev1.PodPhase) int {
	switch p {
	case corev1.PodPending:
		return 1
	case corev1.PodUnknown:
		return 2
	case corev1.PodRunning:
		return 3
	}
	return 0
}

// deletionCost reads DeletionCostAnnotation; 0 when absent or invalid.
func deletionCost(pod *corev1.Pod) int32 {
	v, ok := pod.Annotations[DeletionCostAnnotation]
	if !ok {
		return 0
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil {
		return 0
	}
	return int32(n)
}

// maxRestarts is the highest restart count among pod's containers
// (regular and init, which includes restartable sidecars).
func maxRestarts(pod *corev1.Pod) int32 {
	var m int32
	for _, list := range [][]corev1.ContainerStatus{pod.Status.ContainerStatuses, pod.Status.InitContainerStatuses} {
		for _, c := range list {
			m = max(m, c.RestartCount)
		}
	}
	return m
}
