package nodelifecycle

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// noScheduleTaints maps a condition and its status to the NoSchedule taint
// Kubernetes puts on the node for it (taint nodes by condition).
var noScheduleTaints = map[corev1.NodeConditionType]map[corev1.ConditionStatus]string{
	corev1.NodeReady: {
		corev1.ConditionFalse:   corev1.TaintNodeNotReady,
		corev1.ConditionUnknown: corev1.TaintNodeUnreachable,
	},
	corev1.NodeMemoryPressure:     {corev1.ConditionTrue: corev1.TaintNodeMemoryPressure},
	corev1.NodeDiskPressure:       {corev1.ConditionTrue: corev1.TaintNodeDiskPressure},
	corev1.NodePIDPressure:        {corev1.ConditionTrue: corev1.TaintNodePIDPressure},
	corev1.NodeNetworkUnavailable: {corev1.ConditionTrue: corev1.TaintNodeNetworkUnavailable},
}

// managedNoSchedule are the NoSchedule taint keys this controller owns.
var managedNoSchedule = map[string]bool{
	corev1.TaintNodeNotReady: true, corev1.TaintNodeUnreachable: true, corev1.TaintNodeMemoryPressure: true,
	corev1.TaintNodeDiskPressure: true, corev1.TaintNodePIDPressure: true, corev1.TaintNodeNetworkUnavailable: true,
	corev1.TaintNodeUnschedulable: true,
}

// managedNoExecute are the NoExecute taint keys this controller owns.
var managedNoExecute = map[string]bool{corev1.TaintNodeNotReady: true, corev1.TaintNodeUnreachable: true}

// wantedNoSchedule is the set of NoSchedule taint keys the node's
// conditions and spec.unschedulable call for.
func wantedNoSchedule(node *corev1.Node) map[string]bool {
	want := map[string]bool{}
	for _, c := range node.Status.Conditions {
		if key, ok := noScheduleTaints[c.Type][c.Status]; ok {
			want[key] = true
		}
	}
	if node.Spec.Unschedulable {
		want[corev1.TaintNodeUnschedulable] = true
	}
	return want
}

// wantedNoExecute is the NoExecute taint key the node's Ready condition
// calls for: not-ready for False, unreachable for Unknown, none for True
// or no condition yet.
func wantedNoExecute(node *corev1.Node) string {
	c := condition(node, corev1.NodeReady)
	switch {
	case c == nil:
		return ""
	case c.Status == corev1.ConditionFalse:
		return corev1.TaintNodeNotReady
	case c.Status == corev1.ConditionUnknown:
		return corev1.TaintNodeUnreachable
	}
	return ""
}

// taintPlan is the node's taint list after this controller's changes.
type taintPlan struct {
	taints  []corev1.Taint
	changed bool
	// held: a NoExecute taint should be added but was not, because
	// mayAdd was false (the zone's eviction rate allows none now).
	held bool
}

// planTaints computes the node's taints: the managed NoSchedule taints
// exactly as wanted; the managed NoExecute taint as wanted, where adding
// one to a node that has neither needs mayAdd (evictions are rate
// limited), while swapping not-ready for unreachable or the reverse, and
// removing, do not. halted (every zone is fully disrupted, so the fault is
// more likely the controller's view than the nodes) removes the NoExecute
// taints and adds none. Taints owned by others are kept as they are.
// NoExecute taints are stamped with timeAdded = now.
func planTaints(node *corev1.Node, now time.Time, mayAdd, halted bool) taintPlan {
	wantNS := wantedNoSchedule(node)
	wantNE := wantedNoExecute(node)
	if halted {
		wantNE = ""
	}
	var out []corev1.Taint
	hadNE, keptNE := false, false // any managed NoExecute taint; the wanted one
	changed := false
	for _, t := range node.Spec.Taints {
		switch {
		case t.Effect == corev1.TaintEffectNoSchedule && managedNoSchedule[t.Key]:
			if !wantNS[t.Key] {
				changed = true
				continue
			}
			delete(wantNS, t.Key) // present
		case t.Effect == corev1.TaintEffectNoExecute && managedNoExecute[t.Key]:
			hadNE = true
			if t.Key != wantNE || keptNE {
				changed = true
				continue
			}
			keptNE = true
		}
		out = append(out, t)
	}
	for _, key := range []string{ // a fixed order keeps updates stable
		corev1.TaintNodeNotReady, corev1.TaintNodeUnreachable, corev1.TaintNodeMemoryPressure,
		corev1.TaintNodeDiskPressure, corev1.TaintNodePIDPressure, corev1.TaintNodeNetworkUnavailable,
		corev1.TaintNodeUnschedulable,
	} {
		if wantNS[key] {
			out = append(out, corev1.Taint{Key: key, Effect: corev1.TaintEffectNoSchedule})
			changed = true
		}
	}
	held := false
	if wantNE != "" && !keptNE {
		if hadNE || mayAdd { // a swap needs no token
			added := metav1.NewTime(now)
			out = append(out, corev1.Taint{Key: wantNE, Effect: corev1.TaintEffectNoExecute, TimeAdded: &added})
			changed = true
		} else {
			held = true
		}
	}
	return taintPlan{taints: out, changed: changed, held: held}
}
