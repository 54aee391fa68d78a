package podgc

import (
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The pure part of the collector: which pods to delete, given the pods,
// the nodes and the time.

// outOfServiceTaint is the taint an operator puts on a node that is down
// for good, to let its pods go (Kubernetes' non-graceful node shutdown).
const outOfServiceTaint = corev1.TaintNodeOutOfService

// evictedReason is the status.reason of pods a node evicted.
const evictedReason = "Evicted"

// isTerminated says whether the pod's phase is final.
func isTerminated(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

// overThreshold returns the terminated pods to delete so that at most
// threshold remain: evicted pods first, then the oldest. A threshold
// below 1 keeps them all.
func overThreshold(pods []*corev1.Pod, threshold int) []*corev1.Pod {
	if threshold <= 0 {
		return nil
	}
	var done []*corev1.Pod
	for _, p := range pods {
		if isTerminated(p) && p.DeletionTimestamp == nil {
			done = append(done, p)
		}
	}
	excess := len(done) - threshold
	if excess <= 0 {
		return nil
	}
	slices.SortFunc(done, func(a, b *corev1.Pod) int {
		ae, be := a.Status.Reason == evictedReason, b.Status.Reason == evictedReason
		switch {
		case ae && !be:
			return -1
		case be && !ae:
			return 1
		}
		if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		switch {
		case a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name:
			return -1
		case a.Namespace+"/"+a.Name > b.Namespace+"/"+b.Name:
			return 1
		}
		return 0
	})
	return done[:excess]
}

// outOfService says whether a node is both not Ready and tainted out of
// service: its pods will never be stopped by it.
func outOfService(n *corev1.Node) bool {
	tainted := slices.ContainsFunc(n.Spec.Taints, func(t corev1.Taint) bool { return t.Key == outOfServiceTaint })
	if !tainted {
		return false
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status != corev1.ConditionTrue
		}
	}
	return true
}

// terminating returns the pods being deleted.
func terminating(pods []*corev1.Pod) []*corev1.Pod {
	var out []*corev1.Pod
	for _, p := range pods {
		if p.DeletionTimestamp != nil {
			out = append(out, p)
		}
	}
	return out
}

// orphanWait is how much longer the pods of a node missing since
// missingSince must wait before the node's absence is checked with the
// API and they are deleted; zero means now.
func orphanWait(missingSince, now time.Time, quarantine time.Duration) time.Duration {
	return max(missingSince.Add(quarantine).Sub(now), 0)
}

// deletionCondition is the condition a pod gets when the collector deletes
// it before it finished, so that its owner (a Job with a podFailurePolicy)
// knows why.
func deletionCondition(message string, now time.Time) corev1.PodCondition {
	return corev1.PodCondition{
		Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue,
		Reason: "DeletionByPodGC", Message: message,
		LastTransitionTime: metav1.NewTime(now),
	}
}
