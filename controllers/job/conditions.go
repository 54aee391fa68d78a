package job

import (
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// newCondition is a True condition that starts at now.
func newCondition(t batchv1.JobConditionType, reason, message string, now time.Time) *batchv1.JobCondition {
	stamp := metav1.NewTime(now)
	return &batchv1.JobCondition{
		Type: t, Status: corev1.ConditionTrue, Reason: reason, Message: message,
		LastProbeTime: stamp, LastTransitionTime: stamp,
	}
}

// findCondition returns the condition of that type in the list, or nil.
func findCondition(list []batchv1.JobCondition, t batchv1.JobConditionType) *batchv1.JobCondition {
	for i := range list {
		if list[i].Type == t {
			return &list[i]
		}
	}
	return nil
}

// setCondition makes the list hold a condition of type t with this
// status, reason and message, stamped now if anything changed. A False
// condition is not added where none exists: its absence says as much. It
// reports whether the list changed.
func setCondition(list *[]batchv1.JobCondition, t batchv1.JobConditionType, status corev1.ConditionStatus, reason, message string, now time.Time) bool {
	c := newCondition(t, reason, message, now)
	c.Status = status
	if old := findCondition(*list, t); old != nil {
		if old.Status == status && old.Reason == reason && old.Message == message {
			return false
		}
		*old = *c
		return true
	}
	if status == corev1.ConditionFalse {
		return false
	}
	*list = append(*list, *c)
	return true
}

// finished returns the Job's terminal condition (Complete or Failed,
// True), or nil while it runs.
func finished(j *batchv1.Job) *batchv1.JobCondition {
	for i := range j.Status.Conditions {
		c := &j.Status.Conditions[i]
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return c
		}
	}
	return nil
}

// ttlExpiry is when a finished Job with ttlSecondsAfterFinished is due
// for deletion: its terminal condition's time plus the TTL.
func ttlExpiry(j *batchv1.Job) (time.Time, bool) {
	ttl := j.Spec.TTLSecondsAfterFinished
	c := finished(j)
	if ttl == nil || c == nil {
		return time.Time{}, false
	}
	at := c.LastTransitionTime.Time
	if j.Status.CompletionTime != nil && c.Type == batchv1.JobComplete {
		at = j.Status.CompletionTime.Time
	}
	return at.Add(time.Duration(*ttl) * time.Second), true
}
