package deployment

import (
	"math"
	"slices"
)

// Scaling a Deployment whose replicas changed (or that is paused) without
// moving its rollout on:
//
//	one active ReplicaSet (or none: the newest) ──> give it all the replicas
//	the new ReplicaSet saturated (full and available) ──> old ones to 0
//	rolling update in flight ──> spread the change over the active
//	    ReplicaSets in proportion to their size at the last scaling
//	    (their max-replicas annotation), within replicas + maxSurge; the
//	    rounding leftover goes to the largest (growing) or, when
//	    shrinking, to the largest as well, never below 0.

// isScalingEvent says whether some active ReplicaSet was last scaled for a
// different number of replicas than the Deployment now wants.
func (p *planner) isScalingEvent() bool {
	p.syncRevision(false)
	want := replicasOf(p.d)
	for _, w := range p.all {
		if w.replicas() == 0 {
			continue
		}
		if desired, ok := intAnnotation(w.rs, DesiredReplicasAnnotation); ok && desired != want {
			return true
		}
	}
	return false
}

// scale applies a change of replicas to the ReplicaSets.
func (p *planner) scale() {
	want := replicasOf(p.d)
	if w := p.activeOrLatest(); w != nil {
		p.scaleIfNeeded(w, want)
		return
	}
	if p.saturated(p.newRS) {
		for _, w := range p.old {
			if w.replicas() > 0 {
				p.scaleIfNeeded(w, 0)
			}
		}
		return
	}
	if !isRolling(p.d) {
		return
	}
	var active []*working
	var total int32
	for _, w := range p.all {
		if w.replicas() > 0 {
			active = append(active, w)
			total += w.replicas()
		}
	}
	allowed := int32(0)
	if want > 0 {
		allowed = want + p.surge
	}
	toAdd := allowed - total
	// Growing: largest first, newer first among equals; shrinking: largest
	// first, older first among equals.
	slices.SortStableFunc(active, func(a, b *working) int {
		if a.replicas() != b.replicas() {
			return int(b.replicas() - a.replicas())
		}
		if toAdd > 0 {
			return olderFirst(b.rs, a.rs)
		}
		return olderFirst(a.rs, b.rs)
	})
	sizes := make([]int32, len(active))
	var added int32
	for i, w := range active {
		sizes[i] = w.replicas()
		if toAdd != 0 {
			share := p.proportion(w, toAdd, added)
			sizes[i] += share
			added += share
		}
	}
	if len(active) > 0 && toAdd != 0 {
		sizes[0] = max(0, sizes[0]+toAdd-added)
	}
	for i, w := range active {
		p.scaleTo(w, sizes[i])
	}
}

// proportion is w's share of toAdd replicas (negative when removing), of
// which added are already given out.
func (p *planner) proportion(w *working, toAdd, added int32) int32 {
	if w.replicas() == 0 || toAdd == 0 || toAdd == added {
		return 0
	}
	allowed := toAdd - added
	frac := p.fraction(w)
	if toAdd > 0 {
		return min(frac, allowed)
	}
	return max(frac, allowed)
}

// fraction is how much w would change to keep its proportion of the new
// replicas + maxSurge.
func (p *planner) fraction(w *working) int32 {
	want := replicasOf(p.d)
	if want == 0 {
		return -w.replicas()
	}
	newMax := want + p.surge
	oldMax, ok := intAnnotation(w.rs, MaxReplicasAnnotation)
	if !ok {
		oldMax = p.d.Status.Replicas
	}
	if oldMax <= 0 {
		return 0 // no base to scale from; the leftover goes to the largest
	}
	size := float64(w.replicas()) * float64(newMax) / float64(oldMax)
	return int32(math.Round(size)) - w.replicas()
}

// activeOrLatest is the ReplicaSet to scale when at most one is active:
// the active one, or with none active the new one, or the newest old one.
func (p *planner) activeOrLatest() *working {
	if p.newRS == nil && len(p.old) == 0 {
		return nil
	}
	var active []*working
	for _, w := range p.all {
		if w.replicas() > 0 {
			active = append(active, w)
		}
	}
	switch len(active) {
	case 0:
		if p.newRS != nil {
			return p.newRS
		}
		return p.old[len(p.old)-1] // p.old is oldest first
	case 1:
		return active[0]
	}
	return nil
}

// saturated says whether w is the full, available new ReplicaSet.
func (p *planner) saturated(w *working) bool {
	if w == nil {
		return false
	}
	want := replicasOf(p.d)
	desired, ok := intAnnotation(w.rs, DesiredReplicasAnnotation)
	return ok && desired == want && w.replicas() == want && w.rs.Status.AvailableReplicas == want
}
