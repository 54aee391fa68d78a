package replicaset

import (
	"time"

	corev1 "k8s.io/api/core/v1"
)

// IsActive says whether pod counts towards a set's replicas: it is not
// being deleted and has not finished.
func IsActive(pod *corev1.Pod) bool {
	return pod.DeletionTimestamp == nil && !IsTerminal(pod)
}

// IsTerminal says whether pod has finished (Succeeded or Failed).
func IsTerminal(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}

// IsTerminating says whether pod is being deleted but may still run: it has
// a deletionTimestamp and has not finished.
func IsTerminating(pod *corev1.Pod) bool {
	return pod.DeletionTimestamp != nil && !IsTerminal(pod)
}

// readyCondition is pod's Ready condition, or nil.
func readyCondition(pod *corev1.Pod) *corev1.PodCondition {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == corev1.PodReady {
			return &pod.Status.Conditions[i]
		}
	}
	return nil
}

// IsReady says whether pod's Ready condition is True.
func IsReady(pod *corev1.Pod) bool {
	c := readyCondition(pod)
	return c != nil && c.Status == corev1.ConditionTrue
}

// ReadySince is when pod last became Ready; zero when it is not ready or
// the time is unknown.
func ReadySince(pod *corev1.Pod) time.Time {
	c := readyCondition(pod)
	if c == nil || c.Status != corev1.ConditionTrue {
		return time.Time{}
	}
	return c.LastTransitionTime.Time
}

// IsAvailable says whether pod has been Ready for more than minReadySeconds
// at now (any ready pod when minReadySeconds is 0).
func IsAvailable(pod *corev1.Pod, minReadySeconds int32, now time.Time) bool {
	if !IsReady(pod) {
		return false
	}
	if minReadySeconds <= 0 {
		return true
	}
	since := ReadySince(pod)
	return !since.IsZero() && since.Add(time.Duration(minReadySeconds)*time.Second).Before(now)
}

// NextAvailable is how long until the first of pods that is Ready but not
// yet available becomes available; ok is false when there is no such pod.
func NextAvailable(pods []*corev1.Pod, minReadySeconds int32, now time.Time) (wait time.Duration, ok bool) {
	if minReadySeconds <= 0 {
		return 0, false
	}
	for _, p := range pods {
		if !IsActive(p) || !IsReady(p) || IsAvailable(p, minReadySeconds, now) {
			continue
		}
		since := ReadySince(p)
		if since.IsZero() {
			continue
		}
		// Available strictly after the mark; look a moment later.
		d := since.Add(time.Duration(minReadySeconds)*time.Second).Sub(now) + 10*time.Millisecond
		if d < 10*time.Millisecond {
			d = 10 * time.Millisecond
		}
		if !ok || d < wait {
			wait, ok = d, true
		}
	}
	return wait, ok
}
