package scheduler

import (
	"errors"
	"sort"
	"sync"

	corev1 "k8s.io/api/core/v1"
)

// Decision is the outcome of scheduling one pod: either a node or, when
// Unschedulable is set, why no node fits.
type Decision struct {
	// Node is the chosen node; empty when the pod is unschedulable.
	Node string
	// Score is the chosen node's weighted total (0 when it was the only
	// feasible node and scoring was skipped).
	Score int64
	// Feasible is how many nodes passed every filter (the search stops
	// once it has enough; see Profile.PercentageOfNodesToScore).
	Feasible int
	// Visited is how many nodes were filtered; pass it to
	// Snapshot.Advance so the next decision starts where this one ended.
	Visited int
	// Scores holds every scored node, best first, when the profile
	// records scores.
	Scores []NodeScore
	// Unschedulable says why no node fits; nil on success.
	Unschedulable *Unschedulable
}

// NodeScore is one node's total and its weighted score per scorer.
type NodeScore struct {
	Node  string
	Total int64
	Parts map[string]int64
}

var defaultProfile = DefaultProfile()

// Schedule picks a node for pod with the default profile.
func Schedule(snap *Snapshot, pod *corev1.Pod) (Decision, error) {
	return defaultProfile.Schedule(snap, pod)
}

var cyclePool = sync.Pool{New: func() any { return new(Cycle) }}

// Schedule picks a node for pod:
//
//	prepare filters ---> nominated node fits? ---> that node
//	      |                     | no
//	      | pod rejected        v
//	      |          filter nodes from snap's start until enough feasible
//	      v                     |
//	 Unschedulable <-- none ----+---- one ---> that node
//	                            | several
//	                            v
//	              score, normalize, weight, sum ---> highest total
//
// Ties go to the node visited first. Schedule does no I/O and does not
// change snap.
func (p *Profile) Schedule(snap *Snapshot, pod *corev1.Pod) (Decision, error) {
	if snap == nil || pod == nil {
		return Decision{}, errors.New("schedule: nil snapshot or pod")
	}
	n := len(snap.nodes)
	if n == 0 {
		return Decision{Unschedulable: &Unschedulable{}}, nil
	}
	c := cyclePool.Get().(*Cycle)
	defer cyclePool.Put(c)
	c.reset(snap, NewPodInfo(pod))
	if st := p.prepareFilters(c); st != nil {
		return Decision{Unschedulable: &Unschedulable{NumNodes: n, PodReason: st.Reasons[0]}}, nil
	}
	if nn := pod.Status.NominatedNodeName; nn != "" {
		if ni := snap.byName[nn]; ni != nil && c.runFilters(ni) == nil {
			return Decision{Node: nn, Feasible: 1}, nil
		}
	}
	want := p.numFeasibleToFind(n)
	visited := 0
	for i := 0; i < n && len(c.feasible) < want; i++ {
		ni := snap.nodes[(snap.start+i)%n]
		visited++
		if st := c.runFilters(ni); st != nil {
			c.failures = append(c.failures, nodeFailure{ni, st})
			continue
		}
		c.feasible = append(c.feasible, ni)
	}
	switch len(c.feasible) {
	case 0:
		return Decision{Visited: visited, Unschedulable: c.diagnose(n)}, nil
	case 1:
		return Decision{Node: c.feasible[0].node.Name, Feasible: 1, Visited: visited}, nil
	}
	d := p.score(c)
	d.Feasible, d.Visited = len(c.feasible), visited
	return d, nil
}

// prepareFilters runs every filter's Prepare and keeps those with work
// to do; a non-nil Status rejects the pod.
func (p *Profile) prepareFilters(c *Cycle) *Status {
	for _, f := range p.Filters {
		skip, st := f.Prepare(c)
		if st != nil {
			return st
		}
		if !skip {
			c.filters = append(c.filters, f)
		}
	}
	return nil
}

// numFeasibleToFind is how many feasible nodes a decision looks for in a
// cluster of n nodes.
func (p *Profile) numFeasibleToFind(n int) int {
	const floor = 100
	if n <= floor || p.PercentageOfNodesToScore >= 100 {
		return n
	}
	pct := p.PercentageOfNodesToScore
	if pct <= 0 {
		pct = max(50-n/125, 5)
	}
	return max(n*pct/100, floor)
}

// score ranks c.feasible and returns the best.
func (p *Profile) score(c *Cycle) Decision {
	nf := len(c.feasible)
	c.totals = resize(c.totals, nf)
	c.raw = resize(c.raw, nf)
	clear(c.totals)
	var parts []map[string]int64
	if p.RecordScores {
		parts = make([]map[string]int64, nf)
		for i := range parts {
			parts[i] = map[string]int64{}
		}
	}
	for _, ws := range p.Scorers {
		if ws.PrepareScore(c, c.feasible) {
			continue
		}
		for j, ni := range c.feasible {
			c.raw[j] = ws.Score(c, ni)
		}
		ws.Normalize(c, c.raw)
		for j := range c.raw {
			c.totals[j] += c.raw[j] * ws.Weight
			if parts != nil {
				parts[j][ws.Name()] += c.raw[j] * ws.Weight
			}
		}
	}
	best := 0
	for j := 1; j < nf; j++ {
		if c.totals[j] > c.totals[best] {
			best = j
		}
	}
	d := Decision{Node: c.feasible[best].node.Name, Score: c.totals[best]}
	if parts != nil {
		d.Scores = make([]NodeScore, nf)
		for j, ni := range c.feasible {
			d.Scores[j] = NodeScore{Node: ni.node.Name, Total: c.totals[j], Parts: parts[j]}
		}
		sort.SliceStable(d.Scores, func(a, b int) bool { return d.Scores[a].Total > d.Scores[b].Total })
	}
	return d
}

func resize(s []int64, n int) []int64 {
	if cap(s) < n {
		return make([]int64, n)
	}
	return s[:n]
}

// diagnose turns the recorded failures into an Unschedulable.
func (c *Cycle) diagnose(numNodes int) *Unschedulable {
	u := &Unschedulable{NumNodes: numNodes, Nodes: make([]NodeReasons, len(c.failures))}
	for i, f := range c.failures {
		u.Nodes[i] = NodeReasons{Node: f.node.node.Name, Reasons: f.st.Reasons, Code: f.st.Code}
	}
	return u
}
