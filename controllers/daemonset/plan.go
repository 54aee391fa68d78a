package daemonset

import (
	"sort"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/kubectl/pkg/util/podutils"

	"github.com/skiff-sh/skiff/controllers/history"
)

// world is everything one decision about a DaemonSet reads.
type world struct {
	ds    *appsv1.DaemonSet
	nodes []*corev1.Node
	// pods are the DaemonSet's own pods, terminating ones included.
	pods []*corev1.Pod
	// hash is the update revision's hash (the controller-revision-hash of
	// pods made from the current template).
	hash string
	now  time.Time
}

// plan is what the controller should do next, and the status it should
// report. create and delete are never both the result of a rolling
// update step and of a placement fix: placement goes first.
type plan struct {
	// create lists the nodes that need a new pod from the current template.
	create []string
	// delete lists the pods to delete, with why.
	delete []deletion
	// status is the DaemonSet's new status (observedGeneration included).
	status appsv1.DaemonSetStatus
	// recheck, when positive, is when a pod's availability will change
	// (minReadySeconds), so the status must be recomputed.
	recheck time.Duration
}

// deletion is one pod to delete and the reason.
type deletion struct {
	pod    *corev1.Pod
	reason deleteReason
}

type deleteReason int

const (
	reasonMisplaced deleteReason = iota // node no longer fits, or node is gone
	reasonFailed                        // pod failed or succeeded: replace it
	reasonExcess                        // more than one pod on a node
	reasonUpdate                        // old revision replaced by the rollout
)

// nodePods is the DaemonSet's pods on one node, split.
type nodePods struct {
	node    *corev1.Node
	place   placement
	all     []*corev1.Pod // every pod, oldest first
	live    []*corev1.Pod // not terminating, oldest first
	running []*corev1.Pod // live and not finished
}

// decide is the DaemonSet controller's whole decision: which pods to add
// or remove so that every eligible node runs exactly one pod (two for a
// moment during a surge) and no other node runs one, then (only once
// placement needs nothing) which old pods to replace under the update
// strategy, and the status to report.
func decide(w world) plan {
	byNode := map[string][]*corev1.Pod{}
	for _, p := range w.pods {
		byNode[targetNode(p)] = append(byNode[targetNode(p)], p)
	}
	known := map[string]bool{}
	nodes := make([]nodePods, 0, len(w.nodes))
	for _, n := range sortedNodes(w.nodes) {
		known[n.Name] = true
		np := nodePods{node: n, place: eligibility(w.ds, n), all: byNode[n.Name]}
		byAge(np.all)
		for _, p := range np.all {
			if p.DeletionTimestamp != nil {
				continue
			}
			np.live = append(np.live, p)
			if p.Status.Phase != corev1.PodFailed && p.Status.Phase != corev1.PodSucceeded {
				np.running = append(np.running, p)
			}
		}
		nodes = append(nodes, np)
	}

	var pl plan
	surge := allowsSurge(w.ds)
	for _, np := range nodes {
		create, del := placeOnNode(w, np, surge)
		if create {
			pl.create = append(pl.create, np.node.Name)
		}
		pl.delete = append(pl.delete, del...)
	}
	// Pods pinned to nodes that do not exist (and never bound) can never run.
	for _, p := range w.pods {
		if n := targetNode(p); p.Spec.NodeName == "" && p.DeletionTimestamp == nil && !known[n] {
			pl.delete = append(pl.delete, deletion{pod: p, reason: reasonMisplaced})
		}
	}

	if len(pl.create) == 0 && len(pl.delete) == 0 && w.ds.DeletionTimestamp == nil &&
		w.ds.Spec.UpdateStrategy.Type != appsv1.OnDeleteDaemonSetStrategyType {
		desired := 0
		for _, np := range nodes {
			if np.place.shouldRun {
				desired++
			}
		}
		maxSurge, maxUnavailable := rolloutLimits(w.ds, desired)
		if surge {
			pl.create, pl.delete = surgeStep(w, nodes, maxSurge)
		} else {
			pl.delete = replaceStep(w, nodes, maxUnavailable)
		}
	}
	if w.ds.DeletionTimestamp != nil {
		pl.create, pl.delete = nil, nil
	}
	pl.status, pl.recheck = computeStatus(w, nodes)
	return pl
}

// placeOnNode fixes one node: create the missing pod, drop finished and
// excess pods, or remove pods from a node that no longer fits.
func placeOnNode(w world, np nodePods, surge bool) (create bool, del []deletion) {
	switch {
	case np.place.shouldRun && len(np.all) == 0:
		return true, nil
	case np.place.shouldRun:
		for _, p := range np.live {
			if p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded {
				del = append(del, deletion{pod: p, reason: reasonFailed})
			}
		}
		if len(np.running) == 0 {
			// Everything here is finished or going: a replacement comes
			// once they are gone (without surge), or now (with surge).
			return surge, del
		}
		if !surge || len(np.running) == 1 {
			for _, p := range np.running[1:] {
				del = append(del, deletion{pod: p, reason: reasonExcess})
			}
			return false, del
		}
		return false, append(del, pruneSurged(w, np.running)...)
	case !np.place.shouldContinueRunning:
		for _, p := range np.live {
			del = append(del, deletion{pod: p, reason: reasonMisplaced})
		}
	}
	return false, del
}

// pruneSurged keeps at most two pods on a surging node: the oldest
// updated pod while it is not yet ready next to the oldest old pod while
// that one still serves; one pod otherwise (the updated one, if any).
func pruneSurged(w world, running []*corev1.Pod) []deletion {
	var newest, oldest *corev1.Pod // oldest updated, oldest outdated
	for _, p := range running {
		if isUpdated(w.ds, p, w.hash) {
			if newest == nil {
				newest = p
			}
		} else if oldest == nil {
			oldest = p
		}
	}
	keep := map[*corev1.Pod]bool{}
	switch {
	case newest == nil:
		keep[oldest] = true
	case oldest == nil:
		keep[newest] = true
	case !podutils.IsPodReady(newest) && podutils.IsPodReady(oldest):
		keep[newest], keep[oldest] = true, true
	default:
		keep[newest] = true
	}
	var del []deletion
	for _, p := range running {
		if !keep[p] {
			del = append(del, deletion{pod: p, reason: reasonExcess})
		}
	}
	return del
}

// allowsSurge: the rollout starts new pods before stopping old ones.
func allowsSurge(ds *appsv1.DaemonSet) bool {
	ru := ds.Spec.UpdateStrategy.RollingUpdate
	if ds.Spec.UpdateStrategy.Type == appsv1.OnDeleteDaemonSetStrategyType || ru == nil || ru.MaxSurge == nil {
		return false
	}
	v, err := intstr.GetScaledValueFromIntOrPercent(ru.MaxSurge, 1, true)
	return err == nil && v > 0
}

// rolloutLimits resolves maxSurge and maxUnavailable against the number of
// nodes that should run a pod, rounding percentages up; when both come to
// zero, one pod may be unavailable so the rollout can move.
func rolloutLimits(ds *appsv1.DaemonSet, desired int) (maxSurge, maxUnavailable int) {
	ru := ds.Spec.UpdateStrategy.RollingUpdate
	unavail := intstr.FromInt32(1)
	surge := intstr.FromInt32(0)
	if ru != nil {
		if ru.MaxUnavailable != nil {
			unavail = *ru.MaxUnavailable
		}
		if ru.MaxSurge != nil {
			surge = *ru.MaxSurge
		}
	}
	maxUnavailable, err := intstr.GetScaledValueFromIntOrPercent(&unavail, desired, true)
	if err != nil {
		maxUnavailable = 1
	}
	maxSurge, err = intstr.GetScaledValueFromIntOrPercent(&surge, desired, true)
	if err != nil {
		maxSurge = 0
	}
	if maxSurge == 0 && maxUnavailable == 0 {
		maxUnavailable = 1
	}
	return maxSurge, maxUnavailable
}

// isUpdated: the pod was made from the current template.
func isUpdated(ds *appsv1.DaemonSet, pod *corev1.Pod, hash string) bool {
	if h, ok := pod.Labels[history.HashLabel]; ok {
		return h == hash
	}
	g, ok := pod.Labels[labelTemplateGeneration]
	return ok && g == strconv.FormatInt(ds.Generation, 10)
}

// splitRevisions finds the one updated and the one outdated live pod on a
// node; ok is false when there are more of either (placement fixes that).
func splitRevisions(w world, np nodePods) (newPod, oldPod *corev1.Pod, ok bool) {
	for _, p := range np.running {
		if isUpdated(w.ds, p, w.hash) {
			if newPod != nil {
				return nil, nil, false
			}
			newPod = p
		} else {
			if oldPod != nil {
				return nil, nil, false
			}
			oldPod = p
		}
	}
	return newPod, oldPod, true
}

func available(ds *appsv1.DaemonSet, pod *corev1.Pod, now time.Time) bool {
	return podutils.IsPodAvailable(pod, ds.Spec.MinReadySeconds, metav1Time(now))
}

// replaceStep is a rolling update without surge: old pods are deleted
// (and recreated by placement on the next pass) while at most
// maxUnavailable nodes lack an available pod. Old pods that are not
// available anyway are replaced at once.
func replaceStep(w world, nodes []nodePods, maxUnavailable int) []deletion {
	unavailable := 0
	var free, candidates []deletion
	for _, np := range nodes {
		if len(np.all) == 0 {
			continue
		}
		newPod, oldPod, ok := splitRevisions(w, np)
		switch {
		case !ok, newPod == nil && oldPod == nil, newPod != nil && oldPod != nil:
			unavailable++
		case newPod != nil:
			if !available(w.ds, newPod, w.now) {
				unavailable++
			}
		case !available(w.ds, oldPod, w.now):
			free = append(free, deletion{pod: oldPod, reason: reasonUpdate})
		default:
			candidates = append(candidates, deletion{pod: oldPod, reason: reasonUpdate})
		}
	}
	room := min(max(maxUnavailable-unavailable, 0), len(candidates))
	return append(free, candidates[:room]...)
}

// surgeStep is a rolling update with surge: a new pod is started beside
// each old one (at most maxSurge at a time, immediately where the old pod
// is unavailable anyway), and the old pod is deleted once its replacement
// is available.
func surgeStep(w world, nodes []nodePods, maxSurge int) (create []string, del []deletion) {
	surged := 0
	var free, candidates []string
	for _, np := range nodes {
		if len(np.all) == 0 {
			continue
		}
		newPod, oldPod, ok := splitRevisions(w, np)
		switch {
		case !ok:
			surged++
		case oldPod == nil:
		case newPod == nil:
			switch {
			case !np.place.shouldRun:
			case !available(w.ds, oldPod, w.now):
				free = append(free, np.node.Name)
			default:
				candidates = append(candidates, np.node.Name)
			}
		case !available(w.ds, newPod, w.now):
			surged++
		default:
			del = append(del, deletion{pod: oldPod, reason: reasonUpdate})
		}
	}
	room := min(max(maxSurge-surged, 0), len(candidates))
	return append(free, candidates[:room]...), del
}

func sortedNodes(nodes []*corev1.Node) []*corev1.Node {
	out := append([]*corev1.Node(nil), nodes...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
