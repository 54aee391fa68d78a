package scheduler

import (
	"math"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
)

// System-default spreading, applied when a pod owned by a controller
// states no topologySpreadConstraints of its own: its siblings (pods with
// the same controller) spread softly over nodes and zones.
const (
	defaultHostSkew = 3
	defaultZoneSkew = 5
)

// topologySpread enforces topologySpreadConstraints with
// whenUnsatisfiable DoNotSchedule, and as a scorer favours the domains
// with the fewest matching pods for ScheduleAnyway constraints (or the
// system defaults).
//
// Vocabulary: a domain is one value of the constraint's topologyKey; the
// skew of placing the pod in a domain is (matching pods there + 1 if the
// pod matches itself) - (fewest matching pods in any eligible domain).
// Eligible nodes are those the inclusion policies admit: by default nodes
// matching the pod's node selector and affinity (nodeAffinityPolicy
// Honor), whatever their taints (nodeTaintsPolicy Ignore).
type topologySpread struct{}

func (topologySpread) Name() string { return "PodTopologySpread" }

// spreadConstraint is one compiled constraint.
type spreadConstraint struct {
	key           string
	maxSkew       int64
	minDomains    int64
	selector      labels.Selector
	owner         types.UID // system default: select siblings by controller
	honorAffinity bool
	honorTaints   bool
	selfMatch     int64
}

// matches reports whether an existing pod counts for the constraint.
func (sc *spreadConstraint) matches(ns string, p *PodInfo) bool {
	if sc.owner != "" {
		// A controller's UID is unique, and it owns pods only in its own
		// namespace.
		return p.Controller == sc.owner && p.Pod.DeletionTimestamp == nil
	}
	if p.Pod.Namespace != ns || p.Pod.DeletionTimestamp != nil {
		return false
	}
	return sc.selector.Matches(labels.Set(p.Pod.Labels))
}

// domain returns node n's value for the constraint's key.
func (sc *spreadConstraint) domain(n *NodeInfo) (string, bool) {
	if sc.key == labelZone {
		return n.zone, n.zone != ""
	}
	v, ok := n.node.Labels[sc.key]
	return v, ok
}

// compileSpread compiles the pod's constraints with the given
// whenUnsatisfiable.
func compileSpread(pi *PodInfo, when corev1.UnsatisfiableConstraintAction) []spreadConstraint {
	pod := pi.Pod
	var out []spreadConstraint
	for i := range pod.Spec.TopologySpreadConstraints {
		tc := &pod.Spec.TopologySpreadConstraints[i]
		if tc.WhenUnsatisfiable != when {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(tc.LabelSelector)
		if err != nil {
			sel = labels.Nothing()
		} else if len(tc.MatchLabelKeys) > 0 && tc.LabelSelector != nil {
			sel = withLabelKeys(sel, pod.Labels, tc.MatchLabelKeys, nil)
		}
		sc := spreadConstraint{
			key:           tc.TopologyKey,
			maxSkew:       int64(tc.MaxSkew),
			minDomains:    1,
			selector:      sel,
			honorAffinity: tc.NodeAffinityPolicy == nil || *tc.NodeAffinityPolicy == corev1.NodeInclusionPolicyHonor,
			honorTaints:   tc.NodeTaintsPolicy != nil && *tc.NodeTaintsPolicy == corev1.NodeInclusionPolicyHonor,
		}
		if tc.MinDomains != nil && *tc.MinDomains > 0 {
			sc.minDomains = int64(*tc.MinDomains)
		}
		if sel.Matches(labels.Set(pod.Labels)) {
			sc.selfMatch = 1
		}
		out = append(out, sc)
	}
	return out
}

// systemDefaults are the soft constraints for a controller's pod that
// has none of its own.
func systemDefaults(pi *PodInfo) []spreadConstraint {
	if pi.Controller == "" || len(pi.Pod.Spec.TopologySpreadConstraints) > 0 {
		return nil
	}
	return []spreadConstraint{
		{key: labelHostname, maxSkew: defaultHostSkew, minDomains: 1, owner: pi.Controller, honorAffinity: true, selfMatch: 1},
		{key: labelZone, maxSkew: defaultZoneSkew, minDomains: 1, owner: pi.Controller, honorAffinity: true, selfMatch: 1},
	}
}

// eligible reports whether node n counts for constraint sc.
func (sc *spreadConstraint) eligible(c *Cycle, n *NodeInfo) bool {
	if sc.honorAffinity && !matchesNodeSelector(c, n.node) {
		return false
	}
	if sc.honorTaints {
		for i := range n.taints {
			if !toleratedBy(c.Pod.Pod.Spec.Tolerations, &n.taints[i]) {
				return false
			}
		}
	}
	return true
}

func hasAllKeys(node *corev1.Node, cs []spreadConstraint) bool {
	for i := range cs {
		if _, ok := node.Labels[cs[i].key]; !ok {
			return false
		}
	}
	return true
}

// spreadState holds, per DoNotSchedule constraint, the matching pods per
// eligible domain.
type spreadState struct {
	constraints []spreadConstraint
	counts      []map[string]int64
	mins        []int64 // per constraint; valid unless stale
	stale       bool
}

func (topologySpread) Prepare(c *Cycle) (bool, *Status) {
	cs := compileSpread(c.Pod, corev1.DoNotSchedule)
	if len(cs) == 0 {
		return true, nil
	}
	st := &spreadState{constraints: cs, counts: make([]map[string]int64, len(cs)), stale: true}
	for i := range st.counts {
		st.counts[i] = map[string]int64{}
	}
	ns := c.Pod.Pod.Namespace
	for _, n := range c.Snap.nodes {
		if !hasAllKeys(n.node, cs) {
			continue
		}
		for i := range cs {
			sc := &cs[i]
			if !sc.eligible(c, n) {
				continue
			}
			v := n.node.Labels[sc.key]
			cnt := st.counts[i][v]
			for _, p := range n.pods {
				if sc.matches(ns, p) {
					cnt++
				}
			}
			st.counts[i][v] = cnt
		}
	}
	c.spread = st
	return false, nil
}

// min returns the fewest matching pods in an eligible domain of
// constraint i; with fewer eligible domains than minDomains, 0.
func (st *spreadState) min(i int) (int64, bool) {
	if st.stale {
		st.mins = st.mins[:0]
		for j := range st.constraints {
			m := int64(math.MaxInt64)
			for _, v := range st.counts[j] {
				m = min(m, v)
			}
			if int64(len(st.counts[j])) < st.constraints[j].minDomains {
				m = 0
			}
			st.mins = append(st.mins, m)
		}
		st.stale = false
	}
	return st.mins[i], st.mins[i] != math.MaxInt64
}

// update counts (delta 1) or uncounts (delta -1) pod p on node n, as
// preemption adds and removes victims.
func (st *spreadState) update(c *Cycle, p *PodInfo, n *NodeInfo, delta int64) {
	if !hasAllKeys(n.node, st.constraints) {
		return
	}
	ns := c.Pod.Pod.Namespace
	for i := range st.constraints {
		sc := &st.constraints[i]
		if sc.eligible(c, n) && sc.matches(ns, p) {
			st.counts[i][n.node.Labels[sc.key]] += delta
			st.stale = true
		}
	}
}

func (topologySpread) Filter(c *Cycle, n *NodeInfo) *Status {
	st := c.spread
	for i := range st.constraints {
		sc := &st.constraints[i]
		v, ok := n.node.Labels[sc.key]
		if !ok {
			return statusSpreadLabel
		}
		lo, ok := st.min(i)
		if !ok {
			continue
		}
		if st.counts[i][v]+sc.selfMatch-lo > sc.maxSkew {
			return statusSpread
		}
	}
	return nil
}

// spreadScoreState holds the soft constraints and, for those not on the
// hostname key, the matching pods per domain of the feasible nodes.
type spreadScoreState struct {
	constraints []spreadConstraint
	counts      []map[string]int64 // nil for hostname constraints
	weights     []float64
	requireAll  bool
}

func (topologySpread) PrepareScore(c *Cycle, nodes []*NodeInfo) bool {
	cs := compileSpread(c.Pod, corev1.ScheduleAnyway)
	requireAll := true
	if len(c.Pod.Pod.Spec.TopologySpreadConstraints) == 0 {
		cs, requireAll = systemDefaults(c.Pod), false
		if len(cs) == 2 && c.Snap.zones == 0 {
			cs = cs[:1] // no node has a zone: nothing to spread over
		}
	}
	if len(cs) == 0 {
		return true
	}
	st := &spreadScoreState{constraints: cs, counts: make([]map[string]int64, len(cs)), weights: make([]float64, len(cs)), requireAll: requireAll}
	scoredNodes := 0
	for i := range cs {
		if cs[i].key != labelHostname {
			st.counts[i] = map[string]int64{}
		}
	}
	for _, n := range nodes {
		if requireAll && !hasAllKeys(n.node, cs) {
			continue
		}
		scoredNodes++
		for i := range cs {
			if st.counts[i] == nil {
				continue
			}
			if v, ok := cs[i].domain(n); ok {
				if _, seen := st.counts[i][v]; !seen {
					st.counts[i][v] = 0
				}
			}
		}
	}
	for i := range cs {
		domains := scoredNodes
		if st.counts[i] != nil {
			domains = len(st.counts[i])
		}
		st.weights[i] = math.Log(float64(domains + 2))
	}
	if !requireAll && len(c.nodeSelector) == 0 && c.nodeAffinity == nil {
		// System defaults on an unconstrained pod: every node is eligible,
		// and the snapshot already counts siblings per zone.
		zones := c.Snap.ownerZones[c.Pod.Controller]
		for i := range cs {
			for v := range st.counts[i] {
				st.counts[i][v] = zones[v]
			}
		}
		c.spreadScore = st
		return false
	}
	ns := c.Pod.Pod.Namespace
	for _, n := range c.Snap.nodes {
		if requireAll && !hasAllKeys(n.node, cs) {
			continue
		}
		for i := range cs {
			sc := &cs[i]
			if st.counts[i] == nil || !sc.eligible(c, n) {
				continue
			}
			v, ok := n.node.Labels[sc.key]
			if !ok {
				continue
			}
			cnt, ok := st.counts[i][v]
			if !ok {
				continue // not a domain of any feasible node
			}
			for _, p := range n.pods {
				if sc.matches(ns, p) {
					cnt++
				}
			}
			st.counts[i][v] = cnt
		}
	}
	c.spreadScore = st
	return false
}

// Score is the weighted count of matching pods in the node's domains, or
// -1 for a node that lacks a required topology key (it scores 0).
func (topologySpread) Score(c *Cycle, n *NodeInfo) int64 {
	st := c.spreadScore
	if st.requireAll && !hasAllKeys(n.node, st.constraints) {
		return -1
	}
	ns := c.Pod.Pod.Namespace
	var score float64
	for i := range st.constraints {
		sc := &st.constraints[i]
		var cnt int64
		if st.counts[i] == nil {
			for _, p := range n.pods {
				if sc.matches(ns, p) {
					cnt++
				}
			}
		} else if v, ok := sc.domain(n); ok {
			cnt = st.counts[i][v]
		} else {
			continue
		}
		score += float64(cnt)*st.weights[i] + float64(sc.maxSkew-1)
	}
	return int64(math.Round(score))
}

// Normalize maps the fewest matching pods to MaxScore and the most to
// proportionally less; nodes marked -1 score 0.
func (topologySpread) Normalize(_ *Cycle, scores []int64) {
	lo, hi := int64(math.MaxInt64), int64(0)
	for _, s := range scores {
		if s < 0 {
			continue
		}
		lo, hi = min(lo, s), max(hi, s)
	}
	for i, s := range scores {
		switch {
		case s < 0:
			scores[i] = 0
		case hi == 0:
			scores[i] = MaxScore
		default:
			scores[i] = MaxScore * (hi + lo - s) / hi
		}
	}
}
