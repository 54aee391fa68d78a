package scheduler

// MaxScore is the top of the range every scorer normalizes to.
const MaxScore int64 = 100

// Code says whether evicting pods could ever make a rejected node fit.
type Code uint8

const (
	// CodeUnschedulable: the node does not fit now; removing pods from it
	// might change that (resources, ports, anti-affinity, spread).
	CodeUnschedulable Code = iota + 1
	// CodeUnresolvable: no eviction helps (taints, labels, volumes).
	CodeUnresolvable
)

// Status is why a filter rejects a node, or a whole pod. A nil *Status
// means "passes". Reasons are the human phrases counted in the
// FailedScheduling message ("Insufficient cpu").
type Status struct {
	Code    Code
	Reasons []string
}

func unschedulable(reasons ...string) *Status {
	return &Status{Code: CodeUnschedulable, Reasons: reasons}
}

func unresolvable(reasons ...string) *Status {
	return &Status{Code: CodeUnresolvable, Reasons: reasons}
}

// Filter decides whether a pod may run on a node.
//
// Prepare runs once per decision, before any node is visited: it may
// precompute per-pod state into the Cycle, reject the pod outright (a
// non-nil Status: no node can help, e.g. a missing claim), or report that
// it has nothing to check for this pod (skip), so the hot loop does not
// call it. Filter then runs per node and must not change anything but the
// Cycle's scratch state of its own.
type Filter interface {
	Name() string
	Prepare(c *Cycle) (skip bool, st *Status)
	Filter(c *Cycle, n *NodeInfo) *Status
}

// Scorer ranks the nodes that passed every filter.
//
// PrepareScore runs once per decision with the feasible nodes; skip means
// the scorer has no opinion for this pod and adds nothing. Score gives one
// node a raw value; Normalize rescales the raw values of all feasible
// nodes, in place, to 0..MaxScore (higher is better).
type Scorer interface {
	Name() string
	PrepareScore(c *Cycle, nodes []*NodeInfo) (skip bool)
	Score(c *Cycle, n *NodeInfo) int64
	Normalize(c *Cycle, scores []int64)
}

// WeightedScorer is a scorer with its weight in the sum.
type WeightedScorer struct {
	Scorer
	Weight int64
}

// Profile is one way of scheduling: the filters run in order (the first
// rejection decides a node's reasons), the weighted scorers, and how much
// of a large cluster to look at.
type Profile struct {
	Filters []Filter
	Scorers []WeightedScorer
	// PercentageOfNodesToScore caps how many feasible nodes a decision
	// looks for, as a share of the cluster: 0 is adaptive (50% at 100
	// nodes, falling by 1% per 125 nodes, never under 5%), 100 looks at
	// all. At least 100 nodes are always looked for.
	PercentageOfNodesToScore int
	// RecordScores keeps every scored node's per-scorer scores in the
	// Decision (for debugging; it costs an allocation per node).
	RecordScores bool
}

// DefaultProfile is the profile the scheduler runs: Kubernetes' default
// plugin set, order and weights. This is the one place filters and
// scorers are put together.
func DefaultProfile() *Profile {
	return &Profile{
		Filters: []Filter{
			// spec.unschedulable (cordon), unless tolerated.
			nodeUnschedulable{},
			// spec.nodeName, when the pod names its node.
			nodeName{},
			// NoSchedule and NoExecute taints, including not-ready.
			taintToleration{},
			// spec.nodeSelector and required node affinity.
			nodeAffinity{},
			// hostPort + protocol + hostIP clashes.
			nodePorts{},
			// cpu, memory, ephemeral-storage, pods, extended resources.
			nodeResources{},
			// PVs of the pod's claims pin it to their nodes.
			volumeNodeAffinity{},
			// topologySpreadConstraints with DoNotSchedule.
			topologySpread{},
			// required pod (anti-)affinity, and existing pods' anti-affinity.
			interPodAffinity{},
		},
		Scorers: []WeightedScorer{
			// Fewer untolerated PreferNoSchedule taints is better.
			{taintToleration{}, 3},
			// Preferred node affinity terms that match.
			{nodeAffinity{}, 2},
			// Preferred pod (anti-)affinity, both ways.
			{interPodAffinity{}, 2},
			// Soft topology spread, or spreading a controller's pods
			// over nodes and zones when the pod states no constraint.
			{topologySpread{}, 2},
			// Most free cpu and memory after placing the pod.
			{leastAllocated{}, 1},
			// cpu and memory used in equal proportion.
			{balancedAllocation{}, 1},
			// Images already pulled on the node.
			{imageLocality{}, 1},
		},
	}
}

// Cycle is the scratch state of one decision: the pod and what the
// filters and scorers precomputed for it. It belongs to one decision at a
// time and is reused between decisions to spare allocations.
type Cycle struct {
	Snap *Snapshot
	Pod  *PodInfo

	filters  []Filter
	scorers  []WeightedScorer
	raw      []int64
	totals   []int64
	feasible []*NodeInfo
	failures []nodeFailure

	// Per-pod state prepared by filters and scorers.
	nodeAffinity  *nodeSelector // required affinity (nil: none)
	nodeSelector  map[string]string
	preferredNode []weightedNodeTerm
	nominated     bool // some node has nominated pods to account for
	interPod      *interPodState
	interPodScore *interPodScoreState
	spread        *spreadState
	spreadScore   *spreadScoreState
	volumes       []*nodeSelector
	delayed       []delayedClaim // unbound WaitForFirstConsumer claims
	images        []string
}

type nodeFailure struct {
	node *NodeInfo
	st   *Status
}

// reset readies a reused cycle for a new decision.
func (c *Cycle) reset(snap *Snapshot, pi *PodInfo) {
	*c = Cycle{
		Snap:     snap,
		Pod:      pi,
		filters:  c.filters[:0],
		scorers:  c.scorers[:0],
		raw:      c.raw[:0],
		totals:   c.totals[:0],
		feasible: c.feasible[:0],
		failures: c.failures[:0],
		images:   c.images[:0],
	}
}

// runFilters applies the prepared filters to one node.
func (c *Cycle) runFilters(n *NodeInfo) *Status {
	for _, f := range c.filters {
		if st := f.Filter(c, n); st != nil {
			return st
		}
	}
	return nil
}
