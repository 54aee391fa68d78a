package validation

import (
	"fmt"
	"math"
	"reflect"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

const podUpdateForbidden = "pod updates may not change fields other than `spec.containers[*].image`," +
	"`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations)," +
	"`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"

// validatePodUpdate allows only the few spec changes Kubernetes allows on a
// running pod. Ephemeral containers are changed through their own
// subresource and are not compared here.
func validatePodUpdate(p, old *corev1.Pod) field.ErrorList {
	errs := validateMetaUpdate(&p.ObjectMeta, &old.ObjectMeta)
	sp := field.NewPath("spec")
	errs = append(errs, validatePodSpec(&p.Spec, sp)...)
	if p.Spec.HostNetwork {
		errs = append(errs, hostNetworkPorts(&p.Spec, sp)...)
	}
	if len(p.Spec.Containers) != len(old.Spec.Containers) {
		return append(errs, field.Forbidden(sp.Child("containers"), "pod updates may not add or remove containers"))
	}
	if len(p.Spec.InitContainers) != len(old.Spec.InitContainers) {
		return append(errs, field.Forbidden(sp.Child("initContainers"), "pod updates may not add or remove containers"))
	}
	if d := p.Spec.ActiveDeadlineSeconds; d != nil {
		switch {
		case *d < 0 || *d > math.MaxInt32:
			return append(errs, field.Invalid(sp.Child("activeDeadlineSeconds"), *d, validation.InclusiveRangeError(0, math.MaxInt32)))
		case old.Spec.ActiveDeadlineSeconds != nil && *old.Spec.ActiveDeadlineSeconds < *d:
			return append(errs, field.Invalid(sp.Child("activeDeadlineSeconds"), *d, "must be less than or equal to previous value"))
		}
	} else if old.Spec.ActiveDeadlineSeconds != nil {
		errs = append(errs, field.Invalid(sp.Child("activeDeadlineSeconds"), p.Spec.ActiveDeadlineSeconds, "must not update from a positive integer to nil value"))
	}
	errs = append(errs, onlyAddedTolerations(p.Spec.Tolerations, old.Spec.Tolerations, sp.Child("tolerations"))...)
	errs = append(errs, onlyRemovedGates(p.Spec.SchedulingGates, old.Spec.SchedulingGates, sp.Child("schedulingGates"))...)

	// Take every change that is allowed from the new spec; anything still
	// different from the old spec is forbidden.
	munged := p.Spec.DeepCopy()
	for i := range munged.Containers {
		munged.Containers[i].Image = old.Spec.Containers[i].Image
	}
	for i := range munged.InitContainers {
		munged.InitContainers[i].Image = old.Spec.InitContainers[i].Image
	}
	munged.ActiveDeadlineSeconds = old.Spec.ActiveDeadlineSeconds
	munged.Tolerations = old.Spec.Tolerations
	munged.SchedulingGates = old.Spec.SchedulingGates
	munged.EphemeralContainers = old.Spec.EphemeralContainers
	if g, og := p.Spec.TerminationGracePeriodSeconds, old.Spec.TerminationGracePeriodSeconds; g != nil && og != nil && *og < 0 && *g == 1 {
		munged.TerminationGracePeriodSeconds = og
	}
	if len(old.Spec.SchedulingGates) > 0 {
		// A pod that is not yet schedulable may still get more node
		// constraints.
		if addsOnly(p.Spec.NodeSelector, old.Spec.NodeSelector) {
			munged.NodeSelector = old.Spec.NodeSelector
		}
		if old.Spec.Affinity == nil || old.Spec.Affinity.NodeAffinity == nil {
			if munged.Affinity != nil {
				a := munged.Affinity.DeepCopy()
				if old.Spec.Affinity == nil && a.PodAffinity == nil && a.PodAntiAffinity == nil {
					a = nil
				} else {
					a.NodeAffinity = nil
				}
				munged.Affinity = a
			}
		}
	}
	if !apiequality.Semantic.DeepEqual(*munged, old.Spec) {
		errs = append(errs, field.Forbidden(sp, podUpdateForbidden+"\n"+changedFieldList(old.Spec, *munged, "spec")))
	}
	return errs
}

func addsOnly(m, old map[string]string) bool {
	for k, v := range old {
		if nv, ok := m[k]; !ok || nv != v {
			return false
		}
	}
	return true
}

// onlyAddedTolerations: existing tolerations stay, except for their
// tolerationSeconds.
func onlyAddedTolerations(ts, old []corev1.Toleration, p *field.Path) field.ErrorList {
	for _, o := range old {
		found := false
		for _, t := range ts {
			c := o
			c.TolerationSeconds = t.TolerationSeconds
			if reflect.DeepEqual(c, t) {
				found = true
				break
			}
		}
		if !found {
			return field.ErrorList{field.Forbidden(p, "existing toleration can not be modified except its tolerationSeconds")}
		}
	}
	return nil
}

// onlyRemovedGates: scheduling gates may be removed, never added.
func onlyRemovedGates(gs, old []corev1.PodSchedulingGate, p *field.Path) field.ErrorList {
	had := sets.New[string]()
	for _, g := range old {
		had.Insert(g.Name)
	}
	for _, g := range gs {
		if !had.Has(g.Name) {
			return field.ErrorList{field.Forbidden(p, fmt.Sprintf("only deletion is allowed, but found new scheduling gate '%s'", g.Name))}
		}
	}
	return nil
}

// changedFieldList names, one a line, the fields of two structs of the same
// type that differ, going one level into lists of structs of equal length.
func changedFieldList(old, cur any, prefix string) string {
	var out []string
	changedFields(reflect.ValueOf(old), reflect.ValueOf(cur), prefix, 0, &out)
	return strings.Join(out, "\n")
}

func changedFields(o, n reflect.Value, prefix string, depth int, out *[]string) {
	t := o.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := strings.Split(f.Tag.Get("json"), ",")[0]
		if name == "" || name == "-" {
			name = f.Name
		}
		ov, nv := o.Field(i), n.Field(i)
		if apiequality.Semantic.DeepEqual(ov.Interface(), nv.Interface()) {
			continue
		}
		fp := prefix + "." + name
		if depth == 0 && ov.Kind() == reflect.Slice && ov.Len() == nv.Len() && ov.Type().Elem().Kind() == reflect.Struct {
			for j := 0; j < ov.Len(); j++ {
				if !apiequality.Semantic.DeepEqual(ov.Index(j).Interface(), nv.Index(j).Interface()) {
					changedFields(ov.Index(j), nv.Index(j), fmt.Sprintf("%s[%d]", fp, j), depth+1, out)
				}
			}
			continue
		}
		*out = append(*out, "  "+fp+": changed")
	}
}
