package replicaset

import (
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// ConditionReplicaFailure is the condition a set carries while it cannot
// create or delete pods; the same name on ReplicaSets and
// ReplicationControllers.
const ConditionReplicaFailure = "ReplicaFailure"

// Reasons of the ReplicaFailure condition.
const (
	ReasonFailedCreate = "FailedCreate"
	ReasonFailedDelete = "FailedDelete"
)

// Status is a set's status in the terms both kinds share.
type Status struct {
	Replicas             int32
	FullyLabeledReplicas int32
	ReadyReplicas        int32
	AvailableReplicas    int32
	// TerminatingReplicas is nil when the kind does not report it.
	TerminatingReplicas *int32
	ObservedGeneration  int64
	Conditions          []Condition
}

// Condition is a set's condition in the terms both kinds share.
type Condition struct {
	Type               string
	Status             corev1.ConditionStatus
	LastTransitionTime metav1.Time
	Reason             string
	Message            string
}

// StatusInput is what a set's status is computed from.
type StatusInput struct {
	Generation      int64
	Replicas        int32
	MinReadySeconds int32
	// TemplateLabels decide fullyLabeledReplicas: pods carrying all of them.
	TemplateLabels map[string]string
	// Active are the set's active pods; Terminating its pods being deleted.
	Active      []*corev1.Pod
	Terminating []*corev1.Pod
	// CountTerminating fills Status.TerminatingReplicas.
	CountTerminating bool
	// ManageErr is the error creating or deleting pods ran into, if any;
	// Diff is the active pod count minus replicas when it did (positive:
	// too many, so deleting failed; otherwise creating did).
	ManageErr error
	Diff      int
	Now       time.Time
}

// ComputeStatus is the status a set should report, given its previous
// status. The ReplicaFailure condition is raised when managing pods failed
// and the set had none, and dropped once managing succeeds; a condition
// already raised keeps its first message, as Kubernetes keeps it.
func ComputeStatus(prev Status, in StatusInput) Status {
	st := Status{
		Replicas:           int32(len(in.Active)),
		ObservedGeneration: in.Generation,
		Conditions:         slices.Clone(prev.Conditions),
	}
	template := labels.SelectorFromSet(in.TemplateLabels)
	for _, p := range in.Active {
		if template.Matches(labels.Set(p.Labels)) {
			st.FullyLabeledReplicas++
		}
		if IsReady(p) {
			st.ReadyReplicas++
			if IsAvailable(p, in.MinReadySeconds, in.Now) {
				st.AvailableReplicas++
			}
		}
	}
	if in.CountTerminating {
		n := int32(len(in.Terminating))
		st.TerminatingReplicas = &n
	}
	i := slices.IndexFunc(st.Conditions, func(c Condition) bool { return c.Type == ConditionReplicaFailure })
	switch {
	case in.ManageErr != nil && i < 0:
		reason := ReasonFailedCreate
		if in.Diff > 0 {
			reason = ReasonFailedDelete
		}
		st.Conditions = append(st.Conditions, Condition{
			Type:               ConditionReplicaFailure,
			Status:             corev1.ConditionTrue,
			LastTransitionTime: metav1.NewTime(in.Now.Truncate(time.Second)),
			Reason:             reason,
			Message:            in.ManageErr.Error(),
		})
	case in.ManageErr == nil && i >= 0:
		st.Conditions = slices.Delete(st.Conditions, i, i+1)
	}
	if len(st.Conditions) == 0 {
		st.Conditions = nil
	}
	return st
}

// equalStatus says whether two statuses would read the same.
func equalStatus(a, b Status) bool {
	if a.Replicas != b.Replicas || a.FullyLabeledReplicas != b.FullyLabeledReplicas ||
		a.ReadyReplicas != b.ReadyReplicas || a.AvailableReplicas != b.AvailableReplicas ||
		a.ObservedGeneration != b.ObservedGeneration || len(a.Conditions) != len(b.Conditions) {
		return false
	}
	if (a.TerminatingReplicas == nil) != (b.TerminatingReplicas == nil) ||
		(a.TerminatingReplicas != nil && *a.TerminatingReplicas != *b.TerminatingReplicas) {
		return false
	}
	for i := range a.Conditions {
		x, y := a.Conditions[i], b.Conditions[i]
		if x.Type != y.Type || x.Status != y.Status || x.Reason != y.Reason || x.Message != y.Message ||
			!x.LastTransitionTime.Equal(&y.LastTransitionTime) {
			return false
		}
	}
	return true
}
