package nodelifecycle

import (
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Reasons and messages of the conditions the controller writes for a node
// that went silent, as Kubernetes writes them.
const (
	reasonStatusUnknown      = "NodeStatusUnknown"
	reasonStatusNeverUpdated = "NodeStatusNeverUpdated"
	messageStatusUnknown     = "Kubelet stopped posting node status."
	messageNeverUpdated      = "Kubelet never posted node status."
)

// silencedConditions are the kubelet-owned conditions that turn Unknown
// when the kubelet stops reporting.
var silencedConditions = []corev1.NodeConditionType{
	corev1.NodeReady, corev1.NodeMemoryPressure, corev1.NodeDiskPressure, corev1.NodePIDPressure,
}

// probe is what the controller last saw of a node's signs of life, and
// when, on its own clock: it never compares the node's timestamps with its
// own time, only notices when they move, so clock skew between a node and
// the controller does not matter.
type probe struct {
	heartbeat metav1.Time // the Ready condition's lastHeartbeatTime
	renew     time.Time   // the Lease's renewTime
	seenAt    time.Time   // when either last moved (or when first seen)
}

// observe updates a node's probe from its status and Lease (nil when it
// has none). A first sighting counts as a sign of life, so a restarted
// controller gives every node a full grace period.
func observe(prev *probe, node *corev1.Node, lease *coordinationv1.Lease, now time.Time) probe {
	var p probe
	if c := condition(node, corev1.NodeReady); c != nil {
		p.heartbeat = c.LastHeartbeatTime
	}
	if lease != nil && lease.Spec.RenewTime != nil {
		p.renew = lease.Spec.RenewTime.Time
	}
	switch {
	case prev == nil:
		p.seenAt = now
	case !p.heartbeat.Equal(&prev.heartbeat) || p.renew.After(prev.renew):
		p.seenAt = now
	default:
		p.seenAt = prev.seenAt
		if prev.renew.After(p.renew) {
			p.renew = prev.renew
		}
	}
	return p
}

// assess decides whether a node has gone silent: no sign of life for the
// grace period (the startup grace period while it has never reported
// Ready). A silent node's kubelet-owned conditions become Unknown. It
// returns the new status (nil when nothing changes) and, for a node still
// within its grace, when it will run out.
//
//	         lease renewed or status posted
//	   ┌──────────────────────────────────┐
//	   v                                  │
//	[alive] ──(grace passes in silence)──> [silent: Ready=Unknown, ...]
func assess(node *corev1.Node, p probe, now time.Time, grace, startupGrace time.Duration) (*corev1.NodeStatus, time.Time) {
	g := grace
	if condition(node, corev1.NodeReady) == nil {
		g = startupGrace
	}
	deadline := p.seenAt.Add(g)
	if now.Before(deadline) {
		return nil, deadline
	}
	st := node.Status.DeepCopy()
	changed := false
	for _, t := range silencedConditions {
		c := conditionIn(st, t)
		if c == nil {
			st.Conditions = append(st.Conditions, corev1.NodeCondition{
				Type: t, Status: corev1.ConditionUnknown,
				Reason: reasonStatusNeverUpdated, Message: messageNeverUpdated,
				LastHeartbeatTime: node.CreationTimestamp, LastTransitionTime: metav1.NewTime(now),
			})
			changed = true
			continue
		}
		if c.Status != corev1.ConditionUnknown {
			c.Status = corev1.ConditionUnknown
			c.Reason, c.Message = reasonStatusUnknown, messageStatusUnknown
			c.LastTransitionTime = metav1.NewTime(now)
			changed = true
		}
	}
	if !changed {
		return nil, time.Time{}
	}
	return st, time.Time{}
}

func condition(node *corev1.Node, t corev1.NodeConditionType) *corev1.NodeCondition {
	return conditionIn(&node.Status, t)
}

func conditionIn(st *corev1.NodeStatus, t corev1.NodeConditionType) *corev1.NodeCondition {
	for i := range st.Conditions {
		if st.Conditions[i].Type == t {
			return &st.Conditions[i]
		}
	}
	return nil
}

// readyStatus is the node's Ready condition status, Unknown when missing.
func readyStatus(node *corev1.Node) corev1.ConditionStatus {
	if c := condition(node, corev1.NodeReady); c != nil {
		return c.Status
	}
	return corev1.ConditionUnknown
}
