package deployment

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// The Recreate strategy, one step per decision:
//
//	old ReplicaSets with replicas ──> scale them all to 0 ──> status, done
//	old pods still there (any phase but Succeeded/Failed, terminating
//	included) ──> status, done (their deletion events bring the next step)
//	no new ReplicaSet ──> create it at full size
//	new ReplicaSet smaller than replicas ──> scale it up
//	complete? remove old ReplicaSets beyond revisionHistoryLimit; status

// rollRecreate is one step of a Recreate rollout.
func (p *planner) rollRecreate() {
	p.syncRevision(false)
	scaledDown := false
	for _, w := range p.old {
		if w.replicas() > 0 && p.scaleIfNeeded(w, 0) {
			scaledDown = true
		}
	}
	if scaledDown || p.oldPodsRunning() {
		p.syncStatus(true)
		return
	}
	if p.newRS == nil {
		p.syncRevision(true)
	}
	if p.newRS != nil {
		p.scaleIfNeeded(p.newRS, replicasOf(p.d))
	}
	if deploymentComplete(p.d, &p.d.Status) {
		p.cleanup()
	}
	p.syncStatus(true)
}

// oldPodsRunning says whether any pod of an old ReplicaSet may still run.
func (p *planner) oldPodsRunning() bool {
	old := map[types.UID]bool{}
	for _, w := range p.old {
		if w.rs.Status.Replicas > 0 {
			return true
		}
		old[w.rs.UID] = true
	}
	for _, pod := range p.pods {
		ref := metav1.GetControllerOf(pod)
		if ref == nil || !old[ref.UID] {
			continue
		}
		if pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed {
			return true
		}
	}
	return false
}
