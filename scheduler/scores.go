package scheduler

import (
	"sort"

	corev1 "k8s.io/api/core/v1"
)

// leastAllocated prefers nodes with the most cpu and memory left after
// placing the pod: each resource scores (allocatable - requested) * 100 /
// allocatable, counting requests with the scoring defaults, and the node
// gets their mean.
type leastAllocated struct{}

func (leastAllocated) Name() string { return "NodeResourcesFit" }

func (leastAllocated) PrepareScore(*Cycle, []*NodeInfo) bool { return false }

func (leastAllocated) Score(c *Cycle, n *NodeInfo) int64 {
	cpu := freeShare(n.nonZeroCPU+c.Pod.NonZeroCPU, n.allocatable.MilliCPU)
	mem := freeShare(n.nonZeroMem+c.Pod.NonZeroMem, n.allocatable.Memory)
	return (cpu + mem) / 2
}

func (leastAllocated) Normalize(*Cycle, []int64) {}

func freeShare(requested, allocatable int64) int64 {
	if allocatable <= 0 || requested > allocatable {
		return 0
	}
	return (allocatable - requested) * MaxScore / allocatable
}

// balancedAllocation prefers nodes whose cpu and memory would be used in
// equal proportion after placing the pod: the score is 100 * (1 - the
// standard deviation of the two fractions used). Pods that request neither
// are not scored: they change no fraction.
type balancedAllocation struct{}

func (balancedAllocation) Name() string { return "NodeResourcesBalancedAllocation" }

func (balancedAllocation) PrepareScore(c *Cycle, _ []*NodeInfo) bool {
	return c.Pod.Requests.MilliCPU == 0 && c.Pod.Requests.Memory == 0
}

func (balancedAllocation) Score(c *Cycle, n *NodeInfo) int64 {
	var fractions [2]float64
	k := 0
	if a := n.allocatable.MilliCPU; a > 0 {
		fractions[k] = min(float64(n.requested.MilliCPU+c.Pod.Requests.MilliCPU)/float64(a), 1)
		k++
	}
	if a := n.allocatable.Memory; a > 0 {
		fractions[k] = min(float64(n.requested.Memory+c.Pod.Requests.Memory)/float64(a), 1)
		k++
	}
	std := 0.0
	if k == 2 {
		d := fractions[0] - fractions[1]
		if d < 0 {
			d = -d
		}
		std = d / 2
	}
	return int64((1 - std) * float64(MaxScore))
}

func (balancedAllocation) Normalize(*Cycle, []int64) {}

// Bounds of the image locality score: below imageMinBytes of useful
// images a node scores 0; at imageMaxBytes per container it scores 100.
const (
	imageMinBytes int64 = 23 * 1024 * 1024
	imageMaxBytes int64 = 1000 * 1024 * 1024
)

// imageLocality prefers nodes that already hold the pod's images. Each
// image counts its size scaled by the share of nodes holding it, so an
// image present everywhere does not pull pods together.
type imageLocality struct{}

func (imageLocality) Name() string { return "ImageLocality" }

func (imageLocality) PrepareScore(c *Cycle, _ []*NodeInfo) bool {
	if len(c.Snap.imageNodes) == 0 {
		return true
	}
	spec := &c.Pod.Pod.Spec
	for _, cs := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for i := range cs {
			c.images = append(c.images, normalizeImage(cs[i].Image))
		}
	}
	return false
}

func (imageLocality) Score(c *Cycle, n *NodeInfo) int64 {
	if len(n.images) == 0 {
		return 0
	}
	total := int64(len(c.Snap.nodes))
	var sum int64
	for _, img := range c.images {
		if size, ok := n.images[img]; ok {
			sum += size * int64(c.Snap.imageNodes[img]) / total
		}
	}
	hi := imageMaxBytes * int64(len(c.images))
	switch {
	case sum < imageMinBytes:
		return 0
	case sum > hi:
		return MaxScore
	}
	return MaxScore * (sum - imageMinBytes) / (hi - imageMinBytes)
}

func (imageLocality) Normalize(*Cycle, []int64) {}

// normalizeToMax scales scores so the highest becomes MaxScore.
func normalizeToMax(scores []int64) {
	var hi int64
	for _, s := range scores {
		hi = max(hi, s)
	}
	if hi == 0 {
		return
	}
	for i := range scores {
		scores[i] = scores[i] * MaxScore / hi
	}
}

// normalizeReverse turns counts of something bad into scores: the node
// with the most scores 0, nodes with none score MaxScore.
func normalizeReverse(scores []int64) {
	var hi int64
	for _, s := range scores {
		hi = max(hi, s)
	}
	for i := range scores {
		if hi == 0 {
			scores[i] = MaxScore
		} else {
			scores[i] = MaxScore - scores[i]*MaxScore/hi
		}
	}
}

// normalizeMinMax maps the lowest score to 0 and the highest to MaxScore;
// all equal scores become 0.
func normalizeMinMax(scores []int64) {
	if len(scores) == 0 {
		return
	}
	lo, hi := scores[0], scores[0]
	for _, s := range scores {
		lo, hi = min(lo, s), max(hi, s)
	}
	for i := range scores {
		if hi == lo {
			scores[i] = 0
		} else {
			scores[i] = (scores[i] - lo) * MaxScore / (hi - lo)
		}
	}
}

func sortedScalars(m map[corev1.ResourceName]int64) []corev1.ResourceName {
	out := make([]corev1.ResourceName, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
