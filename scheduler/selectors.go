package scheduler

import (
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
)

// nodeRequirement is one compiled matchExpressions or matchFields entry.
type nodeRequirement struct {
	key    string
	op     corev1.NodeSelectorOperator
	values []string
	num    int64 // the single value of Gt and Lt
	field  bool  // matchFields: key is a field (only metadata.name exists)
}

// nodeTerm is one compiled NodeSelectorTerm: all requirements must hold.
type nodeTerm struct {
	reqs []nodeRequirement
}

// nodeSelector is a compiled NodeSelector: any one term must hold. A
// selector with no terms matches no node.
type nodeSelector struct {
	terms []nodeTerm
}

// compileNodeSelector compiles a NodeSelector. A malformed requirement
// (a Gt value that is not an integer, an unknown operator or field) makes
// its term match nothing, as Kubernetes does.
func compileNodeSelector(sel *corev1.NodeSelector) *nodeSelector {
	out := &nodeSelector{terms: make([]nodeTerm, 0, len(sel.NodeSelectorTerms))}
	for i := range sel.NodeSelectorTerms {
		t, ok := compileNodeTerm(&sel.NodeSelectorTerms[i])
		if ok {
			out.terms = append(out.terms, t)
		}
	}
	return out
}

// compileNodeTerm compiles one term; ok is false for a term that can never
// match (empty, or malformed).
func compileNodeTerm(t *corev1.NodeSelectorTerm) (nodeTerm, bool) {
	if len(t.MatchExpressions) == 0 && len(t.MatchFields) == 0 {
		return nodeTerm{}, false
	}
	out := nodeTerm{reqs: make([]nodeRequirement, 0, len(t.MatchExpressions)+len(t.MatchFields))}
	for _, e := range t.MatchExpressions {
		r, err := compileRequirement(e, false)
		if err != nil {
			return nodeTerm{}, false
		}
		out.reqs = append(out.reqs, r)
	}
	for _, e := range t.MatchFields {
		if e.Key != "metadata.name" {
			return nodeTerm{}, false
		}
		r, err := compileRequirement(e, true)
		if err != nil {
			return nodeTerm{}, false
		}
		out.reqs = append(out.reqs, r)
	}
	return out, true
}

func compileRequirement(e corev1.NodeSelectorRequirement, field bool) (nodeRequirement, error) {
	r := nodeRequirement{key: e.Key, op: e.Operator, values: e.Values, field: field}
	switch e.Operator {
	case corev1.NodeSelectorOpIn, corev1.NodeSelectorOpNotIn:
		if len(e.Values) == 0 {
			return r, fmt.Errorf("operator %s needs values", e.Operator)
		}
	case corev1.NodeSelectorOpExists, corev1.NodeSelectorOpDoesNotExist:
		if field || len(e.Values) > 0 {
			return r, fmt.Errorf("operator %s takes no values", e.Operator)
		}
	case corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt:
		if field || len(e.Values) != 1 {
			return r, fmt.Errorf("operator %s needs one value", e.Operator)
		}
		n, err := strconv.ParseInt(e.Values[0], 10, 64)
		if err != nil {
			return r, fmt.Errorf("operator %s: %w", e.Operator, err)
		}
		r.num = n
	default:
		return r, fmt.Errorf("unknown operator %q", e.Operator)
	}
	if field && r.op != corev1.NodeSelectorOpIn && r.op != corev1.NodeSelectorOpNotIn {
		return r, fmt.Errorf("field selector supports In and NotIn only")
	}
	return r, nil
}

func (s *nodeSelector) matches(n *corev1.Node) bool {
	for i := range s.terms {
		if s.terms[i].matches(n) {
			return true
		}
	}
	return false
}

func (t *nodeTerm) matches(n *corev1.Node) bool {
	for i := range t.reqs {
		if !t.reqs[i].matches(n) {
			return false
		}
	}
	return true
}

func (r *nodeRequirement) matches(n *corev1.Node) bool {
	var v string
	var has bool
	if r.field {
		v, has = n.Name, true
	} else {
		v, has = n.Labels[r.key]
	}
	switch r.op {
	case corev1.NodeSelectorOpIn:
		return has && contains(r.values, v)
	case corev1.NodeSelectorOpNotIn:
		return !has || !contains(r.values, v)
	case corev1.NodeSelectorOpExists:
		return has
	case corev1.NodeSelectorOpDoesNotExist:
		return !has
	case corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt:
		if !has {
			return false
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return false
		}
		if r.op == corev1.NodeSelectorOpGt {
			return n > r.num
		}
		return n < r.num
	}
	return false
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// tolerates reports whether toleration t lets a pod stay with taint.
// An empty effect tolerates every effect; an empty key with Exists
// tolerates every taint.
func tolerates(t *corev1.Toleration, taint *corev1.Taint) bool {
	if t.Effect != "" && t.Effect != taint.Effect {
		return false
	}
	if t.Key != "" && t.Key != taint.Key {
		return false
	}
	switch t.Operator {
	case corev1.TolerationOpExists:
		return true
	case corev1.TolerationOpEqual, "":
		return t.Value == taint.Value
	}
	return false
}

func toleratedBy(tols []corev1.Toleration, taint *corev1.Taint) bool {
	for i := range tols {
		if tolerates(&tols[i], taint) {
			return true
		}
	}
	return false
}

// podTerm is a compiled PodAffinityTerm: which pods it selects and over
// what topology.
type podTerm struct {
	selector    labels.Selector
	namespaces  []string        // explicit namespaces (the owner's when none and no selector)
	nsSelector  labels.Selector // nil: only namespaces apply; Everything(): all namespaces
	topologyKey string
	weight      int32 // preferred terms only
}

// compilePodTerm compiles a term owned by pod. matchLabelKeys and
// mismatchLabelKeys take their values from the owner's labels. A term with a
// malformed selector matches nothing.
func compilePodTerm(owner *corev1.Pod, t *corev1.PodAffinityTerm, weight int32) podTerm {
	out := podTerm{topologyKey: t.TopologyKey, weight: weight, namespaces: t.Namespaces}
	sel, err := metav1.LabelSelectorAsSelector(t.LabelSelector)
	if err != nil || t.LabelSelector == nil {
		sel = labels.Nothing()
	}
	if len(t.MatchLabelKeys)+len(t.MismatchLabelKeys) > 0 && t.LabelSelector != nil && err == nil {
		sel = withLabelKeys(sel, owner.Labels, t.MatchLabelKeys, t.MismatchLabelKeys)
	}
	out.selector = sel
	if t.NamespaceSelector != nil {
		ns, err := metav1.LabelSelectorAsSelector(t.NamespaceSelector)
		if err != nil {
			ns = labels.Nothing()
		}
		out.nsSelector = ns
	}
	if len(out.namespaces) == 0 && out.nsSelector == nil {
		out.namespaces = []string{owner.Namespace}
	}
	return out
}

// withLabelKeys narrows sel to pods sharing (match) or not sharing
// (mismatch) the owner's value for each key the owner has.
func withLabelKeys(sel labels.Selector, own map[string]string, match, mismatch []string) labels.Selector {
	for _, k := range match {
		if v, ok := own[k]; ok {
			if r, err := labels.NewRequirement(k, selection.In, []string{v}); err == nil {
				sel = sel.Add(*r)
			}
		}
	}
	for _, k := range mismatch {
		if v, ok := own[k]; ok {
			if r, err := labels.NewRequirement(k, selection.NotIn, []string{v}); err == nil {
				sel = sel.Add(*r)
			}
		}
	}
	return sel
}

// matches reports whether the term selects pod p. objs resolves namespace
// labels for a namespaceSelector.
func (t *podTerm) matches(p *corev1.Pod, objs Objects) bool {
	if !t.matchesNamespace(p.Namespace, objs) {
		return false
	}
	return t.selector.Matches(labels.Set(p.Labels))
}

func (t *podTerm) matchesNamespace(ns string, objs Objects) bool {
	if contains(t.namespaces, ns) {
		return true
	}
	if t.nsSelector == nil {
		return false
	}
	if t.nsSelector.Empty() {
		return true
	}
	if objs == nil {
		return false
	}
	n := objs.Namespace(ns)
	if n == nil {
		return false
	}
	return t.nsSelector.Matches(labels.Set(n.Labels))
}
