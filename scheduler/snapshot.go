package scheduler

import (
	"sort"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Snapshot is the cluster as one scheduling decision sees it: every node
// with the pods assigned to it and their summed requests. Nothing in a
// Snapshot changes while a decision runs; between decisions the loop brings
// it up to date from the Cache, copying only the nodes that changed.
type Snapshot struct {
	// nodes is the order in which decisions visit nodes: zones
	// interleaved, so that a sample of the cluster covers every zone.
	nodes  []*NodeInfo
	byName map[string]*NodeInfo
	index  map[string]int

	// affinityNodes hold pods with any inter-pod term, antiAffinityNodes
	// pods with a required anti-affinity term: the only nodes whose pods
	// can object to an incoming pod.
	affinityNodes, antiAffinityNodes []*NodeInfo

	// nominated lists, per node, pending pods that preemption has promised
	// that node to (status.nominatedNodeName).
	nominated map[string][]*PodInfo
	// imageNodes counts the nodes holding each image name.
	imageNodes map[string]int
	// zones is the number of distinct zones (0 when no node has one).
	zones int
	// ownerZones counts, per controller UID, its pods (not terminating)
	// in each zone: system-default spreading reads it instead of walking
	// every node.
	ownerZones map[types.UID]map[string]int64

	objects Objects
	// start is where the next decision starts visiting nodes; decisions
	// that look at a sample move it on so every node gets its turn.
	start int
}

// Objects gives decisions read access to the cluster objects other than
// nodes and pods: claims and volumes for volume node affinity, namespaces
// for namespaceSelector. The loop backs it with informer listers; tests
// with an ObjectSet. A nil result means "not found".
type Objects interface {
	PersistentVolumeClaim(namespace, name string) *corev1.PersistentVolumeClaim
	PersistentVolume(name string) *corev1.PersistentVolume
	StorageClass(name string) *storagev1.StorageClass
	Namespace(name string) *corev1.Namespace
}

// ObjectSet is an Objects held in memory.
type ObjectSet struct {
	Claims        []*corev1.PersistentVolumeClaim
	Volumes       []*corev1.PersistentVolume
	Classes       []*storagev1.StorageClass
	NamespaceList []*corev1.Namespace
}

// PersistentVolumeClaim implements Objects.
func (o *ObjectSet) PersistentVolumeClaim(namespace, name string) *corev1.PersistentVolumeClaim {
	for _, c := range o.Claims {
		if c.Namespace == namespace && c.Name == name {
			return c
		}
	}
	return nil
}

// PersistentVolume implements Objects.
func (o *ObjectSet) PersistentVolume(name string) *corev1.PersistentVolume {
	for _, v := range o.Volumes {
		if v.Name == name {
			return v
		}
	}
	return nil
}

// StorageClass implements Objects.
func (o *ObjectSet) StorageClass(name string) *storagev1.StorageClass {
	for _, c := range o.Classes {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Namespace implements Objects.
func (o *ObjectSet) Namespace(name string) *corev1.Namespace {
	for _, n := range o.NamespaceList {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// NewSnapshot builds a snapshot from plain objects: pods with a nodeName
// count on that node; pending pods with status.nominatedNodeName are
// nominated to it; others are ignored. objs may be nil.
func NewSnapshot(nodes []*corev1.Node, pods []*corev1.Pod, objs Objects) *Snapshot {
	c := NewCache()
	for _, n := range nodes {
		c.AddNode(n)
	}
	for _, p := range pods {
		c.AddPod(p)
	}
	s := &Snapshot{}
	c.UpdateSnapshot(s)
	s.objects = objs
	return s
}

// SetObjects sets where the snapshot looks up claims, volumes and
// namespaces.
func (s *Snapshot) SetObjects(objs Objects) { s.objects = objs }

// Nodes returns the nodes in visiting order. The caller must not change it.
func (s *Snapshot) Nodes() []*NodeInfo { return s.nodes }

// Node returns the node called name, or nil.
func (s *Snapshot) Node(name string) *NodeInfo { return s.byName[name] }

// NumNodes is the number of nodes.
func (s *Snapshot) NumNodes() int { return len(s.nodes) }

// Advance moves the starting point of the next decision on by the number
// of nodes the last one visited (Decision.Visited).
func (s *Snapshot) Advance(visited int) {
	if len(s.nodes) > 0 {
		s.start = (s.start + visited) % len(s.nodes)
	}
}

// order rebuilds the visiting order: nodes grouped by zone (zones and the
// nodes within one sorted by name), then taken one per zone in turn.
func (s *Snapshot) order() {
	byZone := map[string][]*NodeInfo{}
	var zones []string
	for _, n := range s.byName {
		if _, ok := byZone[n.zone]; !ok {
			zones = append(zones, n.zone)
		}
		byZone[n.zone] = append(byZone[n.zone], n)
	}
	sort.Strings(zones)
	for _, z := range zones {
		list := byZone[z]
		sort.Slice(list, func(i, j int) bool { return list[i].node.Name < list[j].node.Name })
	}
	s.nodes = s.nodes[:0]
	for i := 0; len(s.nodes) < len(s.byName); i++ {
		for _, z := range zones {
			if list := byZone[z]; i < len(list) {
				s.nodes = append(s.nodes, list[i])
			}
		}
	}
	s.index = make(map[string]int, len(s.nodes))
	for i, n := range s.nodes {
		s.index[n.node.Name] = i
	}
	s.zones = len(zones)
	if len(zones) == 1 && zones[0] == "" {
		s.zones = 0
	}
	if len(s.nodes) > 0 {
		s.start %= len(s.nodes)
	} else {
		s.start = 0
	}
}

// countOwners adds (delta 1) or removes (-1) the pods of node n to or
// from ownerZones.
func (s *Snapshot) countOwners(n *NodeInfo, delta int64) {
	if n == nil || n.zone == "" {
		return
	}
	for _, p := range n.pods {
		if p.Controller == "" || p.Pod.DeletionTimestamp != nil {
			continue
		}
		zones := s.ownerZones[p.Controller]
		if zones == nil {
			zones = map[string]int64{}
			s.ownerZones[p.Controller] = zones
		}
		if v := zones[n.zone] + delta; v != 0 {
			zones[n.zone] = v
		} else if delete(zones, n.zone); len(zones) == 0 {
			delete(s.ownerZones, p.Controller)
		}
	}
}

// listAffinity rebuilds the lists of nodes whose pods have inter-pod terms.
func (s *Snapshot) listAffinity() {
	s.affinityNodes = s.affinityNodes[:0]
	s.antiAffinityNodes = s.antiAffinityNodes[:0]
	for _, n := range s.nodes {
		if n.affinityPods > 0 {
			s.affinityNodes = append(s.affinityNodes, n)
		}
		if n.antiAffinityPods > 0 {
			s.antiAffinityNodes = append(s.antiAffinityNodes, n)
		}
	}
}
