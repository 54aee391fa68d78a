package scheduler

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
)

// The reasons filters give, worded as Kubernetes words them so that
// messages read the same to people (and tools) used to it.
const (
	reasonUnschedulable    = "node(s) were unschedulable"
	reasonNodeName         = "node(s) didn't match the requested node name"
	reasonNodeAffinity     = "node(s) didn't match Pod's node affinity/selector"
	reasonPorts            = "node(s) didn't have free ports for the requested pod ports"
	reasonTooManyPods      = "Too many pods"
	reasonVolumeAffinity   = "node(s) had volume node affinity conflict"
	reasonSpread           = "node(s) didn't match pod topology spread constraints"
	reasonSpreadLabel      = "node(s) didn't match pod topology spread constraints (missing required label)"
	reasonAffinity         = "node(s) didn't match pod affinity rules"
	reasonAntiAffinity     = "node(s) didn't match pod anti-affinity rules"
	reasonExistingAntiAff  = "node(s) didn't satisfy existing pods anti-affinity rules"
	reasonInsufficientCPU  = "Insufficient cpu"
	reasonInsufficientMem  = "Insufficient memory"
	reasonInsufficientDisk = "Insufficient ephemeral-storage"
)

// Shared statuses for the common rejections, so rejecting a node does not
// allocate. They must never be changed.
var (
	statusUnschedulable   = unresolvable(reasonUnschedulable)
	statusNodeName        = unresolvable(reasonNodeName)
	statusNodeAffinity    = unresolvable(reasonNodeAffinity)
	statusPorts           = unschedulable(reasonPorts)
	statusTooManyPods     = unschedulable(reasonTooManyPods)
	statusCPU             = unschedulable(reasonInsufficientCPU)
	statusMemory          = unschedulable(reasonInsufficientMem)
	statusCPUMemory       = unschedulable(reasonInsufficientCPU, reasonInsufficientMem)
	statusVolumeAffinity  = unresolvable(reasonVolumeAffinity)
	statusSpread          = unschedulable(reasonSpread)
	statusSpreadLabel     = unresolvable(reasonSpreadLabel)
	statusAffinity        = unresolvable(reasonAffinity)
	statusAntiAffinity    = unschedulable(reasonAntiAffinity)
	statusExistingAntiAff = unschedulable(reasonExistingAntiAff)
)

// nodeUnschedulable rejects cordoned nodes (spec.unschedulable) unless the
// pod tolerates the node.kubernetes.io/unschedulable taint.
type nodeUnschedulable struct{}

func (nodeUnschedulable) Name() string { return "NodeUnschedulable" }

func (nodeUnschedulable) Prepare(c *Cycle) (bool, *Status) {
	t := corev1.Taint{Key: taintUnschedulable, Effect: corev1.TaintEffectNoSchedule}
	return toleratedBy(c.Pod.Pod.Spec.Tolerations, &t), nil
}

func (nodeUnschedulable) Filter(_ *Cycle, n *NodeInfo) *Status {
	if n.unschedulable {
		return statusUnschedulable
	}
	return nil
}

// nodeName keeps only the node a pod names in spec.nodeName.
type nodeName struct{}

func (nodeName) Name() string { return "NodeName" }

func (nodeName) Prepare(c *Cycle) (bool, *Status) { return c.Pod.Pod.Spec.NodeName == "", nil }

func (nodeName) Filter(c *Cycle, n *NodeInfo) *Status {
	if n.node.Name != c.Pod.Pod.Spec.NodeName {
		return statusNodeName
	}
	return nil
}

// taintToleration rejects nodes with a NoSchedule or NoExecute taint the
// pod does not tolerate, and as a scorer prefers nodes with fewer
// untolerated PreferNoSchedule taints.
type taintToleration struct{}

func (taintToleration) Name() string { return "TaintToleration" }

func (taintToleration) Prepare(*Cycle) (bool, *Status) { return false, nil }

func (taintToleration) Filter(c *Cycle, n *NodeInfo) *Status {
	tols := c.Pod.Pod.Spec.Tolerations
	for i := range n.taints {
		t := &n.taints[i]
		if !toleratedBy(tols, t) {
			return unresolvable(fmt.Sprintf("node(s) had untolerated taint {%s: %s}", t.Key, t.Value))
		}
	}
	return nil
}

func (taintToleration) PrepareScore(*Cycle, []*NodeInfo) bool { return false }

func (taintToleration) Score(c *Cycle, n *NodeInfo) int64 {
	var count int64
	tols := c.Pod.Pod.Spec.Tolerations
	for i := range n.preferTaints {
		t := &n.preferTaints[i]
		tolerated := false
		for j := range tols {
			if (tols[j].Effect == "" || tols[j].Effect == corev1.TaintEffectPreferNoSchedule) && tolerates(&tols[j], t) {
				tolerated = true
				break
			}
		}
		if !tolerated {
			count++
		}
	}
	return count
}

func (taintToleration) Normalize(_ *Cycle, scores []int64) { normalizeReverse(scores) }

// nodeAffinity keeps nodes matching spec.nodeSelector and the required
// node affinity (terms ORed, expressions within a term ANDed), and as a
// scorer adds the weights of the preferred terms a node matches.
type nodeAffinity struct{}

func (nodeAffinity) Name() string { return "NodeAffinity" }

func (nodeAffinity) Prepare(c *Cycle) (bool, *Status) {
	spec := &c.Pod.Pod.Spec
	c.nodeSelector = spec.NodeSelector
	if a := spec.Affinity; a != nil && a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
		c.nodeAffinity = compileNodeSelector(a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution)
	}
	return len(c.nodeSelector) == 0 && c.nodeAffinity == nil, nil
}

func (nodeAffinity) Filter(c *Cycle, n *NodeInfo) *Status {
	if !matchesNodeSelector(c, n.node) {
		return statusNodeAffinity
	}
	return nil
}

// matchesNodeSelector reports whether node satisfies the pod's
// nodeSelector and required node affinity (as prepared in c).
func matchesNodeSelector(c *Cycle, node *corev1.Node) bool {
	for k, v := range c.nodeSelector {
		if got, ok := node.Labels[k]; !ok || got != v {
			return false
		}
	}
	return c.nodeAffinity == nil || c.nodeAffinity.matches(node)
}

type weightedNodeTerm struct {
	term   nodeTerm
	weight int64
}

func (nodeAffinity) PrepareScore(c *Cycle, _ []*NodeInfo) bool {
	a := c.Pod.Pod.Spec.Affinity
	if a == nil || a.NodeAffinity == nil {
		return true
	}
	for _, p := range a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
		if t, ok := compileNodeTerm(&p.Preference); ok && p.Weight != 0 {
			c.preferredNode = append(c.preferredNode, weightedNodeTerm{term: t, weight: int64(p.Weight)})
		}
	}
	return len(c.preferredNode) == 0
}

func (nodeAffinity) Score(c *Cycle, n *NodeInfo) int64 {
	var sum int64
	for i := range c.preferredNode {
		if c.preferredNode[i].term.matches(n.node) {
			sum += c.preferredNode[i].weight
		}
	}
	return sum
}

func (nodeAffinity) Normalize(_ *Cycle, scores []int64) { normalizeToMax(scores) }

// nodePorts rejects nodes where a pod already holds one of the pod's host
// ports (same port and protocol, and the same or a wildcard host IP).
type nodePorts struct{}

func (nodePorts) Name() string { return "NodePorts" }

func (nodePorts) Prepare(c *Cycle) (bool, *Status) { return len(c.Pod.ports) == 0, nil }

func (nodePorts) Filter(c *Cycle, n *NodeInfo) *Status {
	for _, want := range c.Pod.ports {
		for _, used := range n.ports {
			if want.conflicts(used) {
				return statusPorts
			}
		}
	}
	return nil
}

// nodeResources rejects nodes whose allocatable, less the requests of
// their pods (and of higher-or-equal priority pods nominated to them),
// cannot hold the pod's requests. Every short resource is a reason.
type nodeResources struct{}

func (nodeResources) Name() string { return "NodeResourcesFit" }

func (nodeResources) Prepare(c *Cycle) (bool, *Status) {
	c.nominated = len(c.Snap.nominated) > 0
	return false, nil
}

func (nodeResources) Filter(c *Cycle, n *NodeInfo) *Status {
	req := &c.Pod.Requests
	used := n.requested
	pods := int64(len(n.pods))
	if c.nominated {
		for _, nom := range c.Snap.nominated[n.node.Name] {
			if nom.Priority >= c.Pod.Priority && nom.Pod.UID != c.Pod.Pod.UID {
				used = used.clone()
				used.add(&nom.Requests)
				pods++
			}
		}
	}
	alloc := &n.allocatable
	tooMany := pods+1 > alloc.Pods
	cpu := req.MilliCPU > 0 && req.MilliCPU > alloc.MilliCPU-used.MilliCPU
	mem := req.Memory > 0 && req.Memory > alloc.Memory-used.Memory
	disk := req.EphemeralStorage > 0 && req.EphemeralStorage > alloc.EphemeralStorage-used.EphemeralStorage
	short := false
	for name, v := range req.Scalars {
		if v > 0 && v > alloc.Scalars[name]-used.Scalars[name] {
			short = true
			break
		}
	}
	if !tooMany && !cpu && !mem && !disk && !short {
		return nil
	}
	if !tooMany && !disk && !short {
		switch {
		case cpu && mem:
			return statusCPUMemory
		case cpu:
			return statusCPU
		case mem:
			return statusMemory
		}
	}
	if tooMany && !cpu && !mem && !disk && !short {
		return statusTooManyPods
	}
	var reasons []string
	if tooMany {
		reasons = append(reasons, reasonTooManyPods)
	}
	if cpu {
		reasons = append(reasons, reasonInsufficientCPU)
	}
	if mem {
		reasons = append(reasons, reasonInsufficientMem)
	}
	if disk {
		reasons = append(reasons, reasonInsufficientDisk)
	}
	for _, name := range sortedScalars(req.Scalars) {
		if v := req.Scalars[name]; v > 0 && v > alloc.Scalars[name]-used.Scalars[name] {
			reasons = append(reasons, "Insufficient "+string(name))
		}
	}
	return unschedulable(reasons...)
}
