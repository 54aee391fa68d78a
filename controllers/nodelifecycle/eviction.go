package nodelifecycle

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
)

// Taint-based eviction: a pod on a node with NoExecute taints must go at
// once if it does not tolerate one of them, and when the shortest
// tolerationSeconds among the tolerations it uses runs out otherwise; a
// pod whose tolerations have no tolerationSeconds stays.
//
// The clock of a tolerationSeconds starts when the taint was added
// (timeAdded, which this controller stamps; for a taint without one, when
// the controller first saw it) or when the pod was created, whichever is
// later, so the decision survives restarts of the controller.

// verdict is what happens to one pod.
type verdict struct {
	evict bool      // delete it
	at    time.Time // when (zero: now); meaningful when evict
}

// judge decides for one pod. taints are the node's NoExecute taints;
// seen gives, for a taint without timeAdded, when the controller first saw it.
func judge(pod *corev1.Pod, taints []corev1.Taint, seen func(corev1.Taint) time.Time) verdict {
	if len(taints) == 0 {
		return verdict{}
	}
	logger := klog.Background()
	var start time.Time
	limit := time.Duration(-1) // forever
	for i := range taints {
		t := &taints[i]
		var used *corev1.Toleration
		for j := range pod.Spec.Tolerations {
			if pod.Spec.Tolerations[j].ToleratesTaint(logger, t, false) {
				used = &pod.Spec.Tolerations[j]
				break
			}
		}
		if used == nil {
			return verdict{evict: true}
		}
		if used.TolerationSeconds == nil {
			continue
		}
		d := time.Duration(max(*used.TolerationSeconds, 0)) * time.Second
		if limit < 0 || d < limit {
			limit = d
		}
		added := seen(*t)
		if t.TimeAdded != nil {
			added = t.TimeAdded.Time
		}
		if added.After(start) {
			start = added
		}
	}
	if limit < 0 {
		return verdict{}
	}
	if created := pod.CreationTimestamp.Time; created.After(start) {
		start = created
	}
	return verdict{evict: true, at: start.Add(limit)}
}

// noExecuteTaints are the node's NoExecute taints.
func noExecuteTaints(node *corev1.Node) []corev1.Taint {
	var out []corev1.Taint
	for _, t := range node.Spec.Taints {
		if t.Effect == corev1.TaintEffectNoExecute {
			out = append(out, t)
		}
	}
	return out
}
