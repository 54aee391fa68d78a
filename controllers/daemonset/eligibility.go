package daemonset

import (
	"sort"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	schedcorev1 "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	"k8s.io/klog/v2"
)

// Taint keys the default daemon tolerations name.
const (
	taintNotReady           = corev1.TaintNodeNotReady
	taintUnreachable        = corev1.TaintNodeUnreachable
	taintDiskPressure       = corev1.TaintNodeDiskPressure
	taintMemoryPressure     = corev1.TaintNodeMemoryPressure
	taintPIDPressure        = corev1.TaintNodePIDPressure
	taintUnschedulable      = corev1.TaintNodeUnschedulable
	taintNetworkUnavailable = corev1.TaintNodeNetworkUnavailable
)

// defaultTolerations are what every daemon pod tolerates, as in
// Kubernetes: it stays on nodes that are not ready or unreachable (no
// tolerationSeconds: forever), and lands on nodes under pressure or
// cordoned; a host-network pod also lands where the pod network is down.
func defaultTolerations(hostNetwork bool) []corev1.Toleration {
	ts := []corev1.Toleration{
		{Key: taintNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
		{Key: taintUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
		{Key: taintDiskPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
		{Key: taintMemoryPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
		{Key: taintPIDPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
		{Key: taintUnschedulable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	}
	if hostNetwork {
		ts = append(ts, corev1.Toleration{Key: taintNetworkUnavailable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule})
	}
	return ts
}

// withDefaultTolerations returns the pod spec's tolerations plus the
// default ones it lacks; a toleration the template already has for the
// same key and effect is replaced by the default, as Kubernetes does.
func withDefaultTolerations(spec *corev1.PodSpec) []corev1.Toleration {
	defaults := defaultTolerations(spec.HostNetwork)
	out := make([]corev1.Toleration, 0, len(spec.Tolerations)+len(defaults))
	for _, t := range spec.Tolerations {
		replaced := false
		for _, d := range defaults {
			if t.Key == d.Key && t.Effect == d.Effect {
				replaced = true
			}
		}
		if !replaced {
			out = append(out, t)
		}
	}
	return append(out, defaults...)
}

// pinnedAffinity is the template's affinity with its required node terms
// replaced by one term naming node by metadata.name, which is how a daemon
// pod is placed: the scheduler binds it there and nowhere else.
func pinnedAffinity(affinity *corev1.Affinity, node string) *corev1.Affinity {
	var out *corev1.Affinity
	if affinity != nil {
		out = affinity.DeepCopy()
	} else {
		out = &corev1.Affinity{}
	}
	if out.NodeAffinity == nil {
		out.NodeAffinity = &corev1.NodeAffinity{}
	}
	out.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution = &corev1.NodeSelector{
		NodeSelectorTerms: []corev1.NodeSelectorTerm{{
			MatchFields: []corev1.NodeSelectorRequirement{{
				Key: metav1.ObjectNameField, Operator: corev1.NodeSelectorOpIn, Values: []string{node},
			}},
		}},
	}
	return out
}

// targetNode is the node a daemon pod is for: spec.nodeName once bound,
// else the single name its required node affinity pins it to.
func targetNode(pod *corev1.Pod) string {
	if pod.Spec.NodeName != "" {
		return pod.Spec.NodeName
	}
	a := pod.Spec.Affinity
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return ""
	}
	terms := a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	if len(terms) != 1 {
		return ""
	}
	for _, r := range terms[0].MatchFields {
		if r.Key == metav1.ObjectNameField && r.Operator == corev1.NodeSelectorOpIn && len(r.Values) == 1 {
			return r.Values[0]
		}
	}
	return ""
}

// placement is whether a DaemonSet wants a pod on a node.
type placement struct {
	// shouldRun: a pod belongs here (selector, affinity and every
	// NoSchedule/NoExecute taint tolerated).
	shouldRun bool
	// shouldContinueRunning: a pod already here may stay (it fails only
	// the NoSchedule taints, or nothing).
	shouldContinueRunning bool
}

// eligibility decides the placement of ds's pods on node: the template's
// nodeName (if any) must name the node, its nodeSelector and required
// node affinity must match the node's labels and fields, and its
// tolerations plus the defaults must tolerate the node's taints. A pod
// that only fails on NoSchedule taints may keep running where it is.
func eligibility(ds *appsv1.DaemonSet, node *corev1.Node) placement {
	spec := &ds.Spec.Template.Spec
	if spec.NodeName != "" && spec.NodeName != node.Name {
		return placement{}
	}
	fits, err := nodeaffinity.NewRequiredNodeAffinity(spec.NodeSelector, spec.Affinity).Match(node)
	if err != nil || !fits {
		return placement{}
	}
	tolerations := withDefaultTolerations(spec)
	logger := klog.Background()
	_, untolerated := schedcorev1.FindMatchingUntoleratedTaint(logger, node.Spec.Taints, tolerations, func(t *corev1.Taint) bool {
		return t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute
	}, false)
	if !untolerated {
		return placement{shouldRun: true, shouldContinueRunning: true}
	}
	_, evicting := schedcorev1.FindMatchingUntoleratedTaint(logger, node.Spec.Taints, tolerations, func(t *corev1.Taint) bool {
		return t.Effect == corev1.TaintEffectNoExecute
	}, false)
	return placement{shouldContinueRunning: !evicting}
}

// byAge orders pods oldest first (then by name), Running before others
// of the same age, so "keep the first" keeps the longest-lived pod.
func byAge(pods []*corev1.Pod) {
	sort.SliceStable(pods, func(i, j int) bool {
		a, b := pods[i], pods[j]
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.CreationTimestamp.Before(&b.CreationTimestamp)
		}
		if ar, br := a.Status.Phase == corev1.PodRunning, b.Status.Phase == corev1.PodRunning; ar != br {
			return ar
		}
		return a.Name < b.Name
	})
}

// labelTemplateGeneration is the older way daemon pods carried their
// template's version (the DaemonSet's generation); still set, and read for
// pods without a revision hash.
const labelTemplateGeneration = "pod-template-generation"
