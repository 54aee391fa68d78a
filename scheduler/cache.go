package scheduler

import (
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Cache is the scheduler's incremental view of nodes and assigned pods,
// fed by informer events, plus the pods it has assumed: placed by a
// decision but not yet seen bound by the informer. Counting an assumed pod
// on its node at once is what stops consecutive decisions from
// overcommitting a node while bindings are in flight.
//
// Lifecycle of a pod in the cache:
//
//	          Assume                 informer: bound
//	pending ----------> assumed ---------------------> bound
//	                      |  Forget (bind failed)        |  informer: deleted
//	                      v                              v  or terminal
//	                   (gone)                          (gone)
//
// The cache is safe for concurrent use. It feeds exactly one Snapshot:
// UpdateSnapshot copies the nodes changed since its previous call.
type Cache struct {
	mu        sync.Mutex
	nodes     map[string]*NodeInfo
	pods      map[types.UID]*cachedPod
	nominated map[types.UID]*PodInfo
	dirty     map[string]struct{}

	nominatedChanged bool
	// imageNodes counts nodes per image name; copied on write once a
	// snapshot holds it.
	imageNodes  map[string]int
	imagesOwned bool
}

type cachedPod struct {
	info    *PodInfo
	node    string
	assumed bool
}

// NewCache returns an empty cache.
func NewCache() *Cache {
	return &Cache{
		nodes:      map[string]*NodeInfo{},
		pods:       map[types.UID]*cachedPod{},
		nominated:  map[types.UID]*PodInfo{},
		dirty:      map[string]struct{}{},
		imageNodes: map[string]int{},
	}
}

// AddNode adds or updates a node.
func (c *Cache) AddNode(node *corev1.Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.nodeLocked(node.Name)
	oldImages := n.images
	n.setNode(node)
	if !sameMap(oldImages, n.images) {
		c.countImages(oldImages, -1)
		c.countImages(n.images, 1)
	}
	c.dirty[node.Name] = struct{}{}
}

// UpdateNode records a new version of a node.
func (c *Cache) UpdateNode(node *corev1.Node) { c.AddNode(node) }

// RemoveNode forgets a node. Pods still bound to it stay counted until
// they are deleted, but the node is no longer offered to decisions.
func (c *Cache) RemoveNode(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.nodes[name]
	if !ok {
		return
	}
	c.countImages(n.images, -1)
	n.node, n.images = nil, nil
	if len(n.pods) == 0 {
		delete(c.nodes, name)
	}
	c.dirty[name] = struct{}{}
}

func (c *Cache) nodeLocked(name string) *NodeInfo {
	n, ok := c.nodes[name]
	if !ok {
		n = &NodeInfo{}
		c.nodes[name] = n
	}
	return n
}

// AddPod records a pod the informer reports. A pod bound to a node (and
// not finished) is counted on it, replacing an assumed copy; a pending pod
// with status.nominatedNodeName is remembered as nominated; any other pod
// is dropped from the cache.
func (c *Cache) AddPod(pod *corev1.Pod) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.setPodLocked(pod)
}

// UpdatePod records a new version of a pod; see AddPod.
func (c *Cache) UpdatePod(pod *corev1.Pod) { c.AddPod(pod) }

// RemovePod forgets a pod.
func (c *Cache) RemovePod(pod *corev1.Pod) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.removePodLocked(pod.UID)
	c.setNominatedLocked(pod.UID, nil)
}

func (c *Cache) setPodLocked(pod *corev1.Pod) {
	if pod.Spec.NodeName == "" || isTerminal(pod) {
		if cp, ok := c.pods[pod.UID]; ok && !cp.assumed {
			c.removePodLocked(pod.UID)
		}
		var nominee *PodInfo
		if pod.Spec.NodeName == "" && !isTerminal(pod) && pod.Status.NominatedNodeName != "" {
			nominee = NewPodInfo(pod)
		}
		c.setNominatedLocked(pod.UID, nominee)
		return
	}
	c.setNominatedLocked(pod.UID, nil)
	c.removePodLocked(pod.UID)
	c.placeLocked(NewPodInfo(pod), pod.Spec.NodeName, false)
}

func (c *Cache) placeLocked(pi *PodInfo, node string, assumed bool) {
	c.nodeLocked(node).addPod(pi)
	c.pods[pi.Pod.UID] = &cachedPod{info: pi, node: node, assumed: assumed}
	c.dirty[node] = struct{}{}
}

func (c *Cache) removePodLocked(uid types.UID) {
	cp, ok := c.pods[uid]
	if !ok {
		return
	}
	delete(c.pods, uid)
	n, ok := c.nodes[cp.node]
	if !ok {
		return
	}
	n.removePod(cp.info)
	c.dirty[cp.node] = struct{}{}
	if n.node == nil && len(n.pods) == 0 {
		delete(c.nodes, cp.node)
	}
}

func (c *Cache) setNominatedLocked(uid types.UID, pi *PodInfo) {
	old, had := c.nominated[uid]
	switch {
	case pi == nil && !had:
		return
	case pi == nil:
		delete(c.nominated, uid)
	case had && old.Pod.Status.NominatedNodeName == pi.Pod.Status.NominatedNodeName && old.Priority == pi.Priority:
		c.nominated[uid] = pi
		return
	default:
		c.nominated[uid] = pi
	}
	c.nominatedChanged = true
}

// Assume counts pod on node before the binding is confirmed. pod is not
// changed; the cache keeps a copy with spec.nodeName set.
func (c *Cache) Assume(pod *corev1.Pod, node string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cp, ok := c.pods[pod.UID]; ok {
		return fmt.Errorf("pod %s/%s is already on node %q in the cache", pod.Namespace, pod.Name, cp.node)
	}
	p := pod.DeepCopy()
	p.Spec.NodeName = node
	c.setNominatedLocked(pod.UID, nil)
	c.placeLocked(NewPodInfo(p), node, true)
	return nil
}

// Forget undoes Assume after a failed binding. A pod the informer has
// already reported bound is left alone.
func (c *Cache) Forget(pod *corev1.Pod) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cp, ok := c.pods[pod.UID]; ok && cp.assumed {
		c.removePodLocked(pod.UID)
	}
}

// Nominate records that preemption has promised node to pod, ahead of the
// informer reporting status.nominatedNodeName, so the room being freed is
// not given to others meanwhile. An empty node clears it.
func (c *Cache) Nominate(pod *corev1.Pod, node string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if node == "" {
		c.setNominatedLocked(pod.UID, nil)
		return
	}
	p := pod.DeepCopy()
	p.Status.NominatedNodeName = node
	c.setNominatedLocked(pod.UID, NewPodInfo(p))
}

// IsPlaced reports whether the cache counts the pod on a node (assumed or
// bound): such a pod must not be scheduled again.
func (c *Cache) IsPlaced(uid types.UID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.pods[uid]
	return ok
}

// UpdateSnapshot brings s up to date: it replaces the nodes that changed
// since the previous call with fresh copies, and rebuilds the visiting
// order and the inter-pod lists only when they may have changed.
func (c *Cache) UpdateSnapshot(s *Snapshot) {
	c.mu.Lock()
	defer c.mu.Unlock()
	structural := false
	if s.byName == nil {
		s.byName = map[string]*NodeInfo{}
		s.index = map[string]int{}
		s.ownerZones = map[types.UID]map[string]int64{}
		structural = true
	}
	affinity := false
	for name := range c.dirty {
		old := s.byName[name]
		if old != nil && old.affinityPods > 0 {
			affinity = true
		}
		s.countOwners(old, -1)
		n := c.nodes[name]
		if n == nil || n.node == nil {
			if old != nil {
				delete(s.byName, name)
				structural = true
			}
			continue
		}
		cl := n.clone()
		s.countOwners(cl, 1)
		if cl.affinityPods > 0 {
			affinity = true
		}
		s.byName[name] = cl
		if old == nil || old.zone != cl.zone {
			structural = true
		} else if !structural {
			s.nodes[s.index[name]] = cl
		}
	}
	clear(c.dirty)
	if structural {
		s.order()
	}
	if structural || affinity {
		s.listAffinity()
	}
	if c.nominatedChanged || s.nominated == nil {
		s.nominated = make(map[string][]*PodInfo, len(c.nominated))
		for _, pi := range c.nominated {
			node := pi.Pod.Status.NominatedNodeName
			s.nominated[node] = append(s.nominated[node], pi)
		}
		c.nominatedChanged = false
	}
	s.imageNodes = c.imageNodes
	c.imagesOwned = false
}

// countImages adds delta to the node count of every image in images.
func (c *Cache) countImages(images map[string]int64, delta int) {
	if len(images) == 0 {
		return
	}
	if !c.imagesOwned {
		m := make(map[string]int, len(c.imageNodes)+len(images))
		for k, v := range c.imageNodes {
			m[k] = v
		}
		c.imageNodes, c.imagesOwned = m, true
	}
	for name := range images {
		if v := c.imageNodes[name] + delta; v > 0 {
			c.imageNodes[name] = v
		} else {
			delete(c.imageNodes, name)
		}
	}
}

func sameMap(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	if len(a) == 0 {
		return true
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			return false
		}
	}
	return true
}
