package scheduler

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Well-known node labels and taints.
const (
	labelHostname = "kubernetes.io/hostname"
	labelZone     = "topology.kubernetes.io/zone"

	taintNotReady      = "node.kubernetes.io/not-ready"
	taintUnreachable   = "node.kubernetes.io/unreachable"
	taintUnschedulable = "node.kubernetes.io/unschedulable"
)

// NodeInfo is one node and the pods assigned to it, with their summed
// requests and host ports precomputed. A NodeInfo inside a Snapshot is never
// changed; the cache changes its own copy and the snapshot takes a clone.
type NodeInfo struct {
	node *corev1.Node
	pods []*PodInfo

	allocatable Resources
	requested   Resources
	// nonZeroCPU and nonZeroMem are the requests with scoring defaults.
	nonZeroCPU, nonZeroMem int64
	ports                  []hostPort

	// taints are the node's NoSchedule and NoExecute taints, plus the one
	// its Ready condition implies (see effectiveTaints); preferTaints are
	// its PreferNoSchedule taints.
	taints, preferTaints []corev1.Taint
	zone                 string
	unschedulable        bool
	// images maps every name of every image on the node to its size.
	// Shared between clones: it is replaced, never changed.
	images map[string]int64

	// affinityPods counts pods with any inter-pod term; antiAffinityPods
	// those with a required anti-affinity term.
	affinityPods, antiAffinityPods int

	generation uint64
}

// Node returns the node object (nil for a node the cache knows only from
// pods bound to it).
func (n *NodeInfo) Node() *corev1.Node { return n.node }

// Name is the node's name.
func (n *NodeInfo) Name() string {
	if n.node == nil {
		return ""
	}
	return n.node.Name
}

// Pods returns the pods assigned to the node. The caller must not change it.
func (n *NodeInfo) Pods() []*PodInfo { return n.pods }

// Requested is the sum of the requests of the node's pods.
func (n *NodeInfo) Requested() Resources { return n.requested }

// Allocatable is the node's status.allocatable.
func (n *NodeInfo) Allocatable() Resources { return n.allocatable }

// Zone is the node's topology.kubernetes.io/zone label, or "".
func (n *NodeInfo) Zone() string { return n.zone }

// setNode records a new version of the node object.
func (n *NodeInfo) setNode(node *corev1.Node) {
	n.node = node
	n.allocatable = fromList(node.Status.Allocatable)
	n.taints, n.preferTaints = effectiveTaints(node)
	n.zone = node.Labels[labelZone]
	n.unschedulable = node.Spec.Unschedulable
	n.images = nodeImages(node, n.images)
}

// addPod counts pod on the node.
func (n *NodeInfo) addPod(p *PodInfo) {
	n.pods = append(n.pods, p)
	n.requested.add(&p.Requests)
	n.nonZeroCPU += p.NonZeroCPU
	n.nonZeroMem += p.NonZeroMem
	n.ports = append(n.ports, p.ports...)
	if p.hasAffinity() {
		n.affinityPods++
	}
	if len(p.requiredAntiAffinity) > 0 {
		n.antiAffinityPods++
	}
}

// removePod stops counting the pod with pod's UID; it reports whether the
// pod was there.
func (n *NodeInfo) removePod(p *PodInfo) bool {
	for i, q := range n.pods {
		if q.Pod.UID != p.Pod.UID {
			continue
		}
		last := len(n.pods) - 1
		n.pods[i] = n.pods[last]
		n.pods[last] = nil
		n.pods = n.pods[:last]
		n.requested.sub(&q.Requests)
		n.nonZeroCPU -= q.NonZeroCPU
		n.nonZeroMem -= q.NonZeroMem
		if q.hasAffinity() {
			n.affinityPods--
		}
		if len(q.requiredAntiAffinity) > 0 {
			n.antiAffinityPods--
		}
		if len(q.ports) > 0 {
			n.ports = n.ports[:0]
			for _, o := range n.pods {
				n.ports = append(n.ports, o.ports...)
			}
		}
		return true
	}
	return false
}

// clone returns a copy that can be changed without affecting n.
func (n *NodeInfo) clone() *NodeInfo {
	c := *n
	c.pods = append([]*PodInfo(nil), n.pods...)
	c.ports = append([]hostPort(nil), n.ports...)
	c.requested = n.requested.clone()
	return &c
}

// effectiveTaints splits a node's taints by effect and adds the taint a
// node lifecycle controller would put on a node that is not Ready, so the
// scheduler never places a pod there that does not tolerate it even before
// that controller acts: not-ready when Ready is False or missing,
// unreachable when it is Unknown.
func effectiveTaints(node *corev1.Node) (hard, prefer []corev1.Taint) {
	implied := impliedTaint(node)
	for _, t := range node.Spec.Taints {
		switch t.Effect {
		case corev1.TaintEffectNoSchedule, corev1.TaintEffectNoExecute:
			hard = append(hard, t)
			if implied != "" && t.Key == implied {
				implied = ""
			}
		case corev1.TaintEffectPreferNoSchedule:
			prefer = append(prefer, t)
		}
	}
	if implied != "" {
		hard = append(hard, corev1.Taint{Key: implied, Effect: corev1.TaintEffectNoSchedule})
	}
	return hard, prefer
}

func impliedTaint(node *corev1.Node) string {
	for _, c := range node.Status.Conditions {
		if c.Type != corev1.NodeReady {
			continue
		}
		switch c.Status {
		case corev1.ConditionTrue:
			return ""
		case corev1.ConditionUnknown:
			return taintUnreachable
		default:
			return taintNotReady
		}
	}
	return taintNotReady
}

// nodeImages indexes the node's images by every name they go by. It
// returns prev unchanged when the node lists the same images, so clones and
// snapshots keep sharing one map.
func nodeImages(node *corev1.Node, prev map[string]int64) map[string]int64 {
	if len(node.Status.Images) == 0 {
		return nil
	}
	same := prev != nil
	n := 0
	for _, img := range node.Status.Images {
		for _, name := range img.Names {
			n++
			if same {
				if size, ok := prev[normalizeImage(name)]; !ok || size != img.SizeBytes {
					same = false
				}
			}
		}
	}
	if same && n == len(prev) {
		return prev
	}
	m := make(map[string]int64, n)
	for _, img := range node.Status.Images {
		for _, name := range img.Names {
			m[normalizeImage(name)] = img.SizeBytes
		}
	}
	return m
}

// normalizeImage gives an image reference without tag or digest the
// implicit :latest tag, so "nginx" and "nginx:latest" are one image.
func normalizeImage(name string) string {
	if strings.Contains(name, "@") {
		return name
	}
	slash := strings.LastIndexByte(name, '/')
	if !strings.Contains(name[slash+1:], ":") {
		return name + ":latest"
	}
	return name
}
