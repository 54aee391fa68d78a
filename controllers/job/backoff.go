package job

import (
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Pod re-creation backoff, as Kubernetes does it: after failures the Job
// waits base, 2*base, 4*base ... (capped at a limit) from the last failure
// before it creates pods again; a success resets the count.
//
// The record is kept in the controller's memory and fed to decide, which
// returns it updated with the pods it counts for the first time; pods
// are counted once (see track.go), so no failure is seen twice. Like
// Kubernetes', the record does not survive a restart of the controller:
// the first pods after a restart are created without waiting.

// backoffRecord is a Job's run of failures since its last success.
type backoffRecord struct {
	failures    int
	lastFailure time.Time
}

// attempt is one newly finished pod as the backoff sees it.
type attempt struct {
	at     time.Time // when it finished
	failed bool
}

// with returns the record after the attempts, taken in the order they
// finished.
func (r backoffRecord) with(attempts []attempt) backoffRecord {
	attempts = slices.Clone(attempts)
	slices.SortStableFunc(attempts, func(a, b attempt) int { return a.at.Compare(b.at) })
	for _, a := range attempts {
		switch {
		case !a.failed:
			r = backoffRecord{}
		case a.at.After(r.lastFailure):
			r.failures++
			r.lastFailure = a.at
		default:
			r.failures++
		}
	}
	return r
}

// remaining is how long pod creation must still wait at now.
func (r backoffRecord) remaining(now time.Time, base, limit time.Duration) time.Duration {
	if r.failures == 0 {
		return 0
	}
	return max(r.lastFailure.Add(backoffDelay(r.failures, base, limit)).Sub(now), 0)
}

// backoffDelay is the wait after the given number of consecutive
// failures: base doubled failures-1 times, at most limit.
func backoffDelay(failures int, base, limit time.Duration) time.Duration {
	if failures <= 0 || base <= 0 {
		return 0
	}
	d := base
	for i := 1; i < failures && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// finishTime is when a finished pod finished: its containers' last exit,
// else the start of its deletion's grace period, else the last change of
// its Ready condition, else its creation.
func finishTime(pod *corev1.Pod) time.Time {
	var t time.Time
	for _, list := range [][]corev1.ContainerStatus{pod.Status.ContainerStatuses, pod.Status.InitContainerStatuses} {
		for _, cs := range list {
			if term := cs.State.Terminated; term != nil && term.FinishedAt.After(t) {
				t = term.FinishedAt.Time
			}
		}
	}
	if !t.IsZero() {
		return t
	}
	if dt := pod.DeletionTimestamp; dt != nil {
		at := dt.Time
		if g := pod.DeletionGracePeriodSeconds; g != nil {
			at = at.Add(-time.Duration(*g) * time.Second)
		}
		return at
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady && !c.LastTransitionTime.IsZero() {
			return c.LastTransitionTime.Time
		}
	}
	return pod.CreationTimestamp.Time
}
