package scheduler

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Messages preemption gives, as Kubernetes words them.
const (
	reasonNotHelpful = "Preemption is not helpful for scheduling"
	reasonNoVictims  = "No preemption victims found for incoming pod"
	msgPolicyNever   = "not eligible due to preemptionPolicy=Never."
	msgTerminating   = "not eligible due to a terminating pod on the nominated node."
)

var (
	statusNotHelpful = unresolvable(reasonNotHelpful)
	statusNoVictims  = unresolvable(reasonNoVictims)
)

// Preemption is the outcome of trying to make room for a pod by evicting
// lower-priority pods.
type Preemption struct {
	// Node is where the pod will fit once Victims are gone; empty when
	// preemption cannot help.
	Node    string
	Victims []*corev1.Pod
	// Message explains a failure, for Unschedulable.Preemption.
	Message string
}

// Preempt finds, with the default profile, a node where evicting
// lower-priority pods lets pod fit, and the pods to evict.
func Preempt(snap *Snapshot, pod *corev1.Pod, pdbs []*policyv1.PodDisruptionBudget) (node string, victims []*corev1.Pod, ok bool) {
	d, err := defaultProfile.Schedule(snap, pod)
	if err != nil || d.Unschedulable == nil {
		return "", nil, false
	}
	r := defaultProfile.Preempt(snap, pod, pdbs, d.Unschedulable)
	return r.Node, r.Victims, r.Node != ""
}

// candidate is one node preemption could use.
type candidate struct {
	node       string
	victims    []*PodInfo
	violations int
}

// Preempt looks for a node where evicting lower-priority pods lets pod
// fit, given why it fits nowhere now (u, from Schedule):
//
//  1. the pod must be allowed to preempt (preemptionPolicy, and not
//     already waiting on a terminating victim);
//  2. only nodes rejected for reasons eviction can fix are tried;
//  3. on each, all lower-priority pods are removed; if the pod then fits,
//     they are added back one by one, most important first (pods a
//     PodDisruptionBudget protects first of all), keeping each that still
//     lets the pod fit; the rest are the victims;
//  4. the node with the fewest budget violations wins, then the lowest
//     highest victim priority, the lowest sum of priorities, the fewest
//     victims, the most recently started victims.
//
// At most max(10% of the nodes, 100) candidates are gathered.
func (p *Profile) Preempt(snap *Snapshot, pod *corev1.Pod, pdbs []*policyv1.PodDisruptionBudget, u *Unschedulable) Preemption {
	if pod.Spec.PreemptionPolicy != nil && *pod.Spec.PreemptionPolicy == corev1.PreemptNever {
		return Preemption{Message: msgPolicyNever}
	}
	c := cyclePool.Get().(*Cycle)
	defer cyclePool.Put(c)
	c.reset(snap, NewPodInfo(pod))
	if terminatingVictim(snap, c.Pod) {
		return Preemption{Message: msgTerminating}
	}
	if u.PodReason != "" || p.prepareFilters(c) != nil {
		return Preemption{Message: fmt.Sprintf("0/%d nodes are available: %d %s.", u.NumNodes, u.NumNodes, reasonNotHelpful)}
	}
	want := max(len(snap.nodes)/10, 100)
	var cands []candidate
	var verdicts []NodeReasons
	for _, nr := range u.Nodes {
		if nr.Code != CodeUnschedulable {
			verdicts = append(verdicts, NodeReasons{Node: nr.Node, Reasons: statusNotHelpful.Reasons})
			continue
		}
		ni := snap.byName[nr.Node]
		if ni == nil || len(cands) >= want {
			continue
		}
		cand, st := p.selectVictims(c, ni, pdbs)
		if st != nil {
			verdicts = append(verdicts, NodeReasons{Node: nr.Node, Reasons: st.Reasons})
			continue
		}
		cands = append(cands, cand)
	}
	if len(cands) == 0 {
		return Preemption{Message: fmt.Sprintf("0/%d nodes are available: %s.", u.NumNodes, strings.Join(histogram(verdicts), ", "))}
	}
	best := pickCandidate(cands)
	out := Preemption{Node: best.node, Victims: make([]*corev1.Pod, len(best.victims))}
	for i, v := range best.victims {
		out.Victims[i] = v.Pod
	}
	return out
}

// terminatingVictim reports whether the pod already waits on its
// nominated node for a lower-priority pod that is terminating: preempting
// again would only take more.
func terminatingVictim(snap *Snapshot, pi *PodInfo) bool {
	ni := snap.byName[pi.Pod.Status.NominatedNodeName]
	if ni == nil {
		return false
	}
	for _, p := range ni.pods {
		if p.Pod.DeletionTimestamp != nil && p.Priority < pi.Priority {
			return true
		}
	}
	return false
}

// selectVictims finds the fewest, least important pods to evict from
// node n for c.Pod to fit. The cycle's prepared state is restored before
// it returns.
func (p *Profile) selectVictims(c *Cycle, n *NodeInfo, pdbs []*policyv1.PodDisruptionBudget) (candidate, *Status) {
	var potential []*PodInfo
	for _, q := range n.pods {
		if q.Priority < c.Pod.Priority {
			potential = append(potential, q)
		}
	}
	if len(potential) == 0 {
		return candidate{}, statusNoVictims
	}
	ni := n.clone()
	for _, v := range potential {
		ni.removePod(v)
		c.update(v, ni, -1)
	}
	var victims []*PodInfo
	restore := func() {
		for _, v := range victims {
			c.update(v, ni, 1)
		}
	}
	if st := c.runFilters(ni); st != nil {
		victims = potential
		restore()
		return candidate{}, st
	}
	sort.Slice(potential, func(i, j int) bool { return moreImportant(potential[i], potential[j]) })
	violating, safe := splitByBudget(potential, pdbs)
	violations := 0
	reprieve := func(v *PodInfo) bool {
		ni.addPod(v)
		c.update(v, ni, 1)
		if c.runFilters(ni) == nil {
			return true
		}
		ni.removePod(v)
		c.update(v, ni, -1)
		victims = append(victims, v)
		return false
	}
	for _, v := range violating {
		if !reprieve(v) {
			violations++
		}
	}
	for _, v := range safe {
		reprieve(v)
	}
	restore()
	return candidate{node: n.node.Name, victims: victims, violations: violations}, nil
}

// update tells the prepared state that depends on pods elsewhere in the
// cluster that pod p was added to (delta 1) or removed from (-1) node n.
func (c *Cycle) update(p *PodInfo, n *NodeInfo, delta int64) {
	if c.interPod != nil {
		c.interPod.update(c, p, n, delta)
	}
	if c.spread != nil {
		c.spread.update(c, p, n, delta)
	}
}

// splitByBudget separates pods whose eviction would exceed a
// PodDisruptionBudget's allowed disruptions from those that would not,
// keeping their order.
func splitByBudget(pods []*PodInfo, pdbs []*policyv1.PodDisruptionBudget) (violating, safe []*PodInfo) {
	allowed := make([]int32, len(pdbs))
	sels := make([]labels.Selector, len(pdbs))
	for i, b := range pdbs {
		allowed[i] = b.Status.DisruptionsAllowed
		sel, err := metav1.LabelSelectorAsSelector(b.Spec.Selector)
		if err != nil {
			sel = labels.Nothing()
		}
		sels[i] = sel
	}
	for _, p := range pods {
		violates := false
		for i, b := range pdbs {
			if b.Namespace != p.Pod.Namespace || !sels[i].Matches(labels.Set(p.Pod.Labels)) {
				continue
			}
			if _, ok := b.Status.DisruptedPods[p.Pod.Name]; ok {
				continue
			}
			allowed[i]--
			if allowed[i] < 0 {
				violates = true
			}
		}
		if violates {
			violating = append(violating, p)
		} else {
			safe = append(safe, p)
		}
	}
	return violating, safe
}

// pickCandidate applies the tie-breaking rules of Preempt, step 4.
func pickCandidate(cands []candidate) candidate {
	best := 0
	for i := 1; i < len(cands); i++ {
		if betterCandidate(&cands[i], &cands[best]) {
			best = i
		}
	}
	return cands[best]
}

func betterCandidate(a, b *candidate) bool {
	if len(a.victims) == 0 || len(b.victims) == 0 {
		return len(a.victims) == 0 && len(b.victims) > 0
	}
	if a.violations != b.violations {
		return a.violations < b.violations
	}
	ha, hb := highest(a.victims), highest(b.victims)
	if ha != hb {
		return ha < hb
	}
	sa, sb := prioritySum(a.victims), prioritySum(b.victims)
	if sa != sb {
		return sa < sb
	}
	if len(a.victims) != len(b.victims) {
		return len(a.victims) < len(b.victims)
	}
	return earliestStart(a.victims, ha).After(earliestStart(b.victims, hb))
}

func highest(victims []*PodInfo) int32 {
	h := int32(math.MinInt32)
	for _, v := range victims {
		h = max(h, v.Priority)
	}
	return h
}

// prioritySum adds the priorities, each shifted to be positive so that
// more victims never sum lower.
func prioritySum(victims []*PodInfo) int64 {
	var s int64
	for _, v := range victims {
		s += int64(v.Priority) + math.MaxInt32 + 1
	}
	return s
}

// earliestStart is when the earliest of the victims with priority prio
// started.
func earliestStart(victims []*PodInfo, prio int32) time.Time {
	var t time.Time
	for _, v := range victims {
		if v.Priority != prio {
			continue
		}
		if st := startTime(v.Pod); t.IsZero() || st.Before(t) {
			t = st
		}
	}
	return t
}
