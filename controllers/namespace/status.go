package namespace

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// pass is what one deletion pass over a namespace found.
type pass struct {
	// DiscoveryErr: some API groups could not be listed, so the namespace
	// may hold content the pass could not see.
	DiscoveryErr error
	// ParseErrs: group versions discovery returned that could not be read.
	ParseErrs []error
	// DeleteErrs: resources whose content could not be deleted or listed.
	DeleteErrs []error
	// Remaining counts the objects still in the namespace, per resource.
	Remaining map[schema.GroupResource]int
	// Finalizers counts the remaining objects holding each finalizer.
	Finalizers map[string]int
}

// done says whether the namespace is empty and every resource was seen:
// the "kubernetes" finalizer may go.
func (p pass) done() bool {
	return p.DiscoveryErr == nil && len(p.ParseErrs) == 0 && len(p.DeleteErrs) == 0 && len(p.Remaining) == 0
}

// conditionOrder is the order Kubernetes lists the deletion conditions in.
var conditionOrder = []corev1.NamespaceConditionType{
	corev1.NamespaceDeletionDiscoveryFailure,
	corev1.NamespaceDeletionGVParsingFailure,
	corev1.NamespaceDeletionContentFailure,
	corev1.NamespaceContentRemaining,
	corev1.NamespaceFinalizersRemaining,
}

// conditions turns a pass into the namespace's deletion conditions, with
// the reasons and message shapes kubectl users know from Kubernetes.
func conditions(p pass) []corev1.NamespaceCondition {
	cond := func(t corev1.NamespaceConditionType, bad bool, badReason, badMsg, okReason, okMsg string) corev1.NamespaceCondition {
		if bad {
			return corev1.NamespaceCondition{Type: t, Status: corev1.ConditionTrue, Reason: badReason, Message: badMsg}
		}
		return corev1.NamespaceCondition{Type: t, Status: corev1.ConditionFalse, Reason: okReason, Message: okMsg}
	}
	var discMsg string
	if p.DiscoveryErr != nil {
		discMsg = fmt.Sprintf("Discovery failed for some groups: %v", p.DiscoveryErr)
	}
	return []corev1.NamespaceCondition{
		cond(corev1.NamespaceDeletionDiscoveryFailure, p.DiscoveryErr != nil,
			"DiscoveryFailed", discMsg,
			"ResourcesDiscovered", "All resources successfully discovered"),
		cond(corev1.NamespaceDeletionGVParsingFailure, len(p.ParseErrs) > 0,
			"GroupVersionParsingFailed", fmt.Sprintf("Failed to parse group versions: %v", joinErrs(p.ParseErrs)),
			"ParsedGroupVersions", "All legacy kube types successfully parsed"),
		cond(corev1.NamespaceDeletionContentFailure, len(p.DeleteErrs) > 0,
			"ContentDeletionFailed", fmt.Sprintf("Failed to delete all resource types, %d remaining: %v", len(p.DeleteErrs), joinErrs(p.DeleteErrs)),
			"ContentDeleted", "All content successfully deleted, may be waiting on finalization"),
		cond(corev1.NamespaceContentRemaining, len(p.Remaining) > 0,
			"SomeResourcesRemain", "Some resources are remaining: "+remainingMessage(p.Remaining),
			"ContentRemoved", "All content successfully removed"),
		cond(corev1.NamespaceFinalizersRemaining, len(p.Finalizers) > 0,
			"SomeFinalizersRemain", "Some content in the namespace has finalizers remaining: "+finalizersMessage(p.Finalizers),
			"ContentHasNoFinalizers", "All content-preserving finalizers finished"),
	}
}

// remainingMessage lists resources as "pods. has 2 resource instances",
// the resource and group joined by a dot, sorted.
func remainingMessage(m map[schema.GroupResource]int) string {
	parts := make([]string, 0, len(m))
	for gr, n := range m {
		parts = append(parts, fmt.Sprintf("%s.%s has %d resource instances", gr.Resource, gr.Group, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

func finalizersMessage(m map[string]int) string {
	parts := make([]string, 0, len(m))
	for f, n := range m {
		parts = append(parts, fmt.Sprintf("%s in %d resource instances", f, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

func joinErrs(errs []error) string {
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	sort.Strings(msgs)
	return strings.Join(msgs, "; ")
}

// mergeConditions sets want on top of old: the deletion conditions are
// replaced (keeping their transition time when the status did not change),
// conditions of other types are kept, and the result is in a stable order.
func mergeConditions(old, want []corev1.NamespaceCondition, now time.Time) []corev1.NamespaceCondition {
	var out []corev1.NamespaceCondition
	for _, c := range old {
		if !slices.Contains(conditionOrder, c.Type) {
			out = append(out, c)
		}
	}
	for _, w := range want {
		w.LastTransitionTime = metav1.NewTime(now)
		for _, c := range old {
			if c.Type == w.Type && c.Status == w.Status && !c.LastTransitionTime.IsZero() {
				w.LastTransitionTime = c.LastTransitionTime
			}
		}
		out = append(out, w)
	}
	return out
}

// conditionsEqual compares conditions ignoring transition times.
func conditionsEqual(a, b []corev1.NamespaceCondition) bool {
	return slices.EqualFunc(a, b, func(x, y corev1.NamespaceCondition) bool {
		return x.Type == y.Type && x.Status == y.Status && x.Reason == y.Reason && x.Message == y.Message
	})
}

// recheckAfter is how long to wait before looking at a namespace whose
// content is not gone yet: a quarter of the time the deletion has taken
// so far, within [lo, hi]. Early on, when most content vanishes within
// moments, it looks often; a namespace stuck on a finalizer is looked at
// rarely.
func recheckAfter(deletedAt, now time.Time, lo, hi time.Duration) time.Duration {
	return min(max(now.Sub(deletedAt)/4, lo), hi)
}
