package deployment

// The rolling update, one step per decision:
//
//	new ReplicaSet (created if missing)
//	    │
//	    ├─ grow the new one while every pod that exists or is about to
//	    │  (footprint) stays within replicas + maxSurge ──grew──> status, done
//	    │
//	    ├─ shrink old ones while the available pods they surely keep
//	    │  (floor) stay at replicas - maxUnavailable or more:
//	    │    1. first their pods that are not available (free: the
//	    │       ReplicaSet controller deletes those first), within kube's
//	    │       budget all replicas - minAvailable - new unavailable
//	    │    2. then available ones, oldest ReplicaSet first ──shrank──> status, done
//	    │
//	    └─ complete? remove old ReplicaSets beyond revisionHistoryLimit
//	       status (Progressing, Available)
//
// Kubernetes bounds the sum of the ReplicaSets' replicas and trusts their
// reported availability; Skiff also counts the pods themselves, including
// those still terminating, and the worst case of which pods a shrinking
// ReplicaSet deletes, so that replicas + maxSurge and replicas -
// maxUnavailable hold at every instant, not only once things settle.

// rollRolling is one step of a rolling update.
func (p *planner) rollRolling() {
	p.syncRevision(true)
	if p.newRS == nil { // a name collision: the next decision retries
		p.syncStatus(true)
		return
	}
	if p.growNew() {
		p.syncStatus(true)
		return
	}
	if p.shrinkOld() {
		p.syncStatus(true)
		return
	}
	if deploymentComplete(p.d, &p.d.Status) {
		p.cleanup()
	}
	p.syncStatus(true)
}

// growNew scales the new ReplicaSet towards replicas within the surge (or
// down to replicas if it is larger); it says whether it changed.
func (p *planner) growNew() bool {
	w, want := p.newRS, replicasOf(p.d)
	switch {
	case w.replicas() == want:
		return false
	case w.replicas() > want:
		return p.scaleIfNeeded(w, want)
	}
	return p.scaleIfNeeded(w, p.newReplicas(w))
}

// availableFloor is the available pods every ReplicaSet surely keeps at
// its planned size.
func (p *planner) availableFloor() int32 {
	var a int32
	for _, w := range p.all {
		a += w.floor(w.replicas())
	}
	return a
}

// shrinkOld scales old ReplicaSets down as far as availability allows; it
// says whether any changed.
func (p *planner) shrinkOld() bool {
	var oldReplicas, allReplicas int32
	for _, w := range p.old {
		oldReplicas += w.replicas()
	}
	if oldReplicas == 0 {
		return false
	}
	for _, w := range p.all {
		allReplicas += w.replicas()
	}
	minAvailable := replicasOf(p.d) - p.unavail
	newUnavailable := p.newRS.replicas() - p.newRS.floor(p.newRS.replicas())
	budget := allReplicas - minAvailable - newUnavailable
	if budget <= 0 {
		return false
	}
	shrank := false

	// 1. Pods that are not available, oldest ReplicaSet first; this keeps
	// every floor where it is.
	for _, w := range p.old {
		if budget <= 0 {
			break
		}
		n := w.replicas()
		unhealthy := n - w.floor(n)
		if n == 0 || unhealthy <= 0 {
			continue
		}
		k := min(budget, unhealthy)
		if p.scaleIfNeeded(w, n-k) {
			shrank = true
		}
		budget -= k
	}

	// 2. Available pods, while availability stays at the minimum or above.
	// Shrinking by k lowers a ReplicaSet's floor by at most k, so spending
	// no more than floor - minAvailable in all keeps the floor there.
	spare := p.availableFloor() - minAvailable
	for _, w := range p.old {
		if spare <= 0 {
			break
		}
		n := w.replicas()
		if n == 0 {
			continue
		}
		k := min(n, spare)
		if p.scaleIfNeeded(w, n-k) {
			shrank = true
		}
		spare -= k
	}
	return shrank
}
