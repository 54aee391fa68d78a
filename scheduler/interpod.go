package scheduler

// topoPair is one topology domain: a node label key and its value
// ("topology.kubernetes.io/zone", "eu-1a").
type topoPair struct{ key, value string }

// hardAffinityWeight is the score weight an existing pod's required
// affinity term gives the domains where it would be satisfied.
const hardAffinityWeight = 1

// interPodAffinity enforces required pod affinity and anti-affinity, both
// the incoming pod's and existing pods' anti-affinity against it, and as a
// scorer adds up preferred terms (both directions) per topology domain.
//
// Counting happens once per decision in Prepare (per topology domain, over
// the whole snapshot); the per-node check is then a few map lookups.
type interPodAffinity struct{}

func (interPodAffinity) Name() string { return "InterPodAffinity" }

// interPodState is what Prepare counts for the filter.
type interPodState struct {
	// existingAnti: domains where an existing pod's required
	// anti-affinity term selects the incoming pod.
	existingAnti map[topoPair]int64
	// affinity: domains holding pods that match every required affinity
	// term of the incoming pod (counted for each term's key).
	affinity map[topoPair]int64
	// anti: domains holding pods matched by an incoming anti-affinity term.
	anti map[topoPair]int64
}

func (interPodAffinity) Prepare(c *Cycle) (bool, *Status) {
	pi := c.Pod
	snap := c.Snap
	if len(snap.antiAffinityNodes) == 0 && len(pi.requiredAffinity) == 0 && len(pi.requiredAntiAffinity) == 0 {
		return true, nil
	}
	st := &interPodState{
		existingAnti: map[topoPair]int64{},
		affinity:     map[topoPair]int64{},
		anti:         map[topoPair]int64{},
	}
	for _, n := range snap.antiAffinityNodes {
		for _, p := range n.pods {
			st.countExisting(c, p, n, 1)
		}
	}
	if len(pi.requiredAffinity)+len(pi.requiredAntiAffinity) > 0 {
		for _, n := range snap.nodes {
			for _, p := range n.pods {
				st.countIncoming(c, p, n, 1)
			}
		}
	}
	c.interPod = st
	return false, nil
}

// countExisting adds delta for each required anti-affinity term of the
// existing pod p (on node n) that selects the incoming pod.
func (st *interPodState) countExisting(c *Cycle, p *PodInfo, n *NodeInfo, delta int64) {
	for i := range p.requiredAntiAffinity {
		t := &p.requiredAntiAffinity[i]
		v, ok := n.node.Labels[t.topologyKey]
		if ok && t.matches(c.Pod.Pod, c.Snap.objects) {
			st.existingAnti[topoPair{t.topologyKey, v}] += delta
		}
	}
}

// countIncoming adds delta for the domains of node n if the existing pod p
// matches the incoming pod's required terms.
func (st *interPodState) countIncoming(c *Cycle, p *PodInfo, n *NodeInfo, delta int64) {
	pi := c.Pod
	objs := c.Snap.objects
	if len(pi.requiredAffinity) > 0 && matchesAll(pi.requiredAffinity, p, objs) {
		for i := range pi.requiredAffinity {
			k := pi.requiredAffinity[i].topologyKey
			if v, ok := n.node.Labels[k]; ok {
				st.affinity[topoPair{k, v}] += delta
			}
		}
	}
	for i := range pi.requiredAntiAffinity {
		t := &pi.requiredAntiAffinity[i]
		if v, ok := n.node.Labels[t.topologyKey]; ok && t.matches(p.Pod, objs) {
			st.anti[topoPair{t.topologyKey, v}] += delta
		}
	}
}

func matchesAll(terms []podTerm, p *PodInfo, objs Objects) bool {
	for i := range terms {
		if !terms[i].matches(p.Pod, objs) {
			return false
		}
	}
	return true
}

// update counts (delta 1) or uncounts (delta -1) pod p on node n, as
// preemption adds and removes victims.
func (st *interPodState) update(c *Cycle, p *PodInfo, n *NodeInfo, delta int64) {
	st.countExisting(c, p, n, delta)
	st.countIncoming(c, p, n, delta)
}

func (interPodAffinity) Filter(c *Cycle, n *NodeInfo) *Status {
	st := c.interPod
	labels := n.node.Labels
	for tp, count := range st.existingAnti {
		if v, ok := labels[tp.key]; ok && count > 0 && v == tp.value {
			return statusExistingAntiAff
		}
	}
	pi := c.Pod
	for i := range pi.requiredAntiAffinity {
		k := pi.requiredAntiAffinity[i].topologyKey
		if v, ok := labels[k]; ok && st.anti[topoPair{k, v}] > 0 {
			return statusAntiAffinity
		}
	}
	if len(pi.requiredAffinity) == 0 {
		return nil
	}
	found := true
	for i := range pi.requiredAffinity {
		k := pi.requiredAffinity[i].topologyKey
		v, ok := labels[k]
		if !ok {
			return statusAffinity
		}
		if st.affinity[topoPair{k, v}] <= 0 {
			found = false
		}
	}
	if found {
		return nil
	}
	// No matching pod in this node's domains. The first pod of a group
	// that is affine to itself may still go anywhere with the labels,
	// provided no matching pod exists anywhere yet.
	if !hasPositive(st.affinity) && matchesAll(pi.requiredAffinity, pi, c.Snap.objects) {
		return nil
	}
	return statusAffinity
}

func hasPositive(m map[topoPair]int64) bool {
	for _, v := range m {
		if v > 0 {
			return true
		}
	}
	return false
}

// interPodScoreState sums the preferred-term weights per domain.
type interPodScoreState struct {
	scores map[topoPair]int64
}

func (interPodAffinity) PrepareScore(c *Cycle, _ []*NodeInfo) bool {
	pi := c.Pod
	snap := c.Snap
	preferred := len(pi.preferredAffinity)+len(pi.preferredAntiAffinity) > 0
	if !preferred && len(snap.affinityNodes) == 0 {
		return true
	}
	nodes := snap.affinityNodes
	if preferred {
		nodes = snap.nodes
	}
	st := &interPodScoreState{scores: map[topoPair]int64{}}
	objs := snap.objects
	for _, n := range nodes {
		labels := n.node.Labels
		add := func(t *podTerm, w int64) {
			if v, ok := labels[t.topologyKey]; ok {
				st.scores[topoPair{t.topologyKey, v}] += w
			}
		}
		for _, p := range n.pods {
			for i := range pi.preferredAffinity {
				if t := &pi.preferredAffinity[i]; t.matches(p.Pod, objs) {
					add(t, int64(t.weight))
				}
			}
			for i := range pi.preferredAntiAffinity {
				if t := &pi.preferredAntiAffinity[i]; t.matches(p.Pod, objs) {
					add(t, -int64(t.weight))
				}
			}
			if !p.hasAffinity() {
				continue
			}
			for i := range p.requiredAffinity {
				if t := &p.requiredAffinity[i]; t.matches(pi.Pod, objs) {
					add(t, hardAffinityWeight)
				}
			}
			for i := range p.preferredAffinity {
				if t := &p.preferredAffinity[i]; t.matches(pi.Pod, objs) {
					add(t, int64(t.weight))
				}
			}
			for i := range p.preferredAntiAffinity {
				if t := &p.preferredAntiAffinity[i]; t.matches(pi.Pod, objs) {
					add(t, -int64(t.weight))
				}
			}
		}
	}
	if len(st.scores) == 0 {
		return true
	}
	c.interPodScore = st
	return false
}

func (interPodAffinity) Score(c *Cycle, n *NodeInfo) int64 {
	var sum int64
	labels := n.node.Labels
	for tp, s := range c.interPodScore.scores {
		if v, ok := labels[tp.key]; ok && v == tp.value {
			sum += s
		}
	}
	return sum
}

func (interPodAffinity) Normalize(_ *Cycle, scores []int64) { normalizeMinMax(scores) }
