package validation

import (
	"fmt"
	"strings"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func validatePodDisruptionBudget(pdb *policyv1.PodDisruptionBudget) field.ErrorList {
	return append(validateMeta(&pdb.ObjectMeta, true, nameIsSubdomain), validatePDBSpec(pdb)...)
}

func validatePDBSpec(pdb *policyv1.PodDisruptionBudget) field.ErrorList {
	s := &pdb.Spec
	var errs field.ErrorList
	if s.MinAvailable != nil && s.MaxUnavailable != nil {
		errs = append(errs, field.Invalid(specPath, s, "minAvailable and maxUnavailable cannot be both set"))
	}
	errs = append(errs, intOrPercent(s.MinAvailable, specPath.Child("minAvailable"))...)
	errs = append(errs, atMost100Percent(s.MinAvailable, specPath.Child("minAvailable"))...)
	errs = append(errs, intOrPercent(s.MaxUnavailable, specPath.Child("maxUnavailable"))...)
	errs = append(errs, atMost100Percent(s.MaxUnavailable, specPath.Child("maxUnavailable"))...)
	errs = append(errs, labelSelector(s.Selector, specPath.Child("selector"))...)
	if s.UnhealthyPodEvictionPolicy != nil {
		errs = append(errs, oneOf(*s.UnhealthyPodEvictionPolicy, specPath.Child("unhealthyPodEvictionPolicy"),
			policyv1.IfHealthyBudget, policyv1.AlwaysAllow)...)
	}
	return errs
}

// Resource names a quota may count without a domain.
var standardQuotaResources = sets.New[corev1.ResourceName](
	corev1.ResourcePods, corev1.ResourceServices, corev1.ResourceReplicationControllers, corev1.ResourceQuotas,
	corev1.ResourceSecrets, corev1.ResourceConfigMaps, corev1.ResourcePersistentVolumeClaims,
	corev1.ResourceServicesNodePorts, corev1.ResourceServicesLoadBalancers,
	corev1.ResourceRequestsCPU, corev1.ResourceRequestsMemory, corev1.ResourceRequestsStorage, corev1.ResourceRequestsEphemeralStorage,
	corev1.ResourceLimitsCPU, corev1.ResourceLimitsMemory, corev1.ResourceLimitsEphemeralStorage,
	corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage, corev1.ResourceStorage,
)

// Object counts a quota holds; their values are whole numbers.
var integerQuotaResources = sets.New[corev1.ResourceName](
	corev1.ResourcePods, corev1.ResourceServices, corev1.ResourceReplicationControllers, corev1.ResourceQuotas,
	corev1.ResourceSecrets, corev1.ResourceConfigMaps, corev1.ResourcePersistentVolumeClaims,
	corev1.ResourceServicesNodePorts, corev1.ResourceServicesLoadBalancers,
)

var quotaScopes = []corev1.ResourceQuotaScope{corev1.ResourceQuotaScopeTerminating, corev1.ResourceQuotaScopeNotTerminating,
	corev1.ResourceQuotaScopeBestEffort, corev1.ResourceQuotaScopeNotBestEffort, corev1.ResourceQuotaScopePriorityClass,
	corev1.ResourceQuotaScopeCrossNamespacePodAffinity, corev1.ResourceQuotaScopeVolumeAttributesClass}

func validateResourceQuota(q *corev1.ResourceQuota) field.ErrorList {
	return append(validateMeta(&q.ObjectMeta, true, nameIsSubdomain), validateResourceQuotaSpec(q)...)
}

func validateResourceQuotaSpec(q *corev1.ResourceQuota) field.ErrorList {
	var errs field.ErrorList
	hp := specPath.Child("hard")
	for _, n := range sortedResourceNames(q.Spec.Hard) {
		fp := hp.Key(string(n))
		errs = append(errs, qualifiedName(string(n), fp)...)
		base := corev1.ResourceName(strings.TrimPrefix(strings.TrimPrefix(string(n), "requests."), "limits."))
		if !strings.Contains(string(n), "/") && !standardQuotaResources.Has(n) && !isHugePages(base) {
			errs = append(errs, field.Invalid(fp, n, "must be a standard resource for quota"))
		}
		v := q.Spec.Hard[n]
		errs = append(errs, nonNegativeQuantity(v, fp)...)
		integer := integerQuotaResources.Has(n) || strings.HasPrefix(string(n), "count/") || isExtendedResource(base)
		if integer && v.MilliValue()%1000 != 0 {
			errs = append(errs, field.Invalid(fp, v.String(), "must be an integer"))
		}
	}
	scopes := sets.New[corev1.ResourceQuotaScope]()
	for i, s := range q.Spec.Scopes {
		errs = append(errs, oneOf(s, specPath.Child("scopes").Index(i), quotaScopes...)...)
		scopes.Insert(s)
	}
	if sel := q.Spec.ScopeSelector; sel != nil {
		for i, r := range sel.MatchExpressions {
			rp := specPath.Child("scopeSelector", "matchExpressions").Index(i)
			errs = append(errs, oneOf(r.ScopeName, rp.Child("scopeName"), quotaScopes...)...)
			errs = append(errs, validateScopeRequirement(r, rp)...)
			scopes.Insert(r.ScopeName)
		}
	}
	for _, pair := range [][2]corev1.ResourceQuotaScope{
		{corev1.ResourceQuotaScopeTerminating, corev1.ResourceQuotaScopeNotTerminating},
		{corev1.ResourceQuotaScopeBestEffort, corev1.ResourceQuotaScopeNotBestEffort},
	} {
		if scopes.Has(pair[0]) && scopes.Has(pair[1]) {
			errs = append(errs, field.Invalid(specPath.Child("scopes"), q.Spec.Scopes, "conflicting scopes"))
		}
	}
	return errs
}

func validateScopeRequirement(r corev1.ScopedResourceSelectorRequirement, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch r.Operator {
	case corev1.ScopeSelectorOpIn, corev1.ScopeSelectorOpNotIn:
		if len(r.Values) == 0 {
			errs = append(errs, field.Required(p.Child("values"), "must be at least one value when `operator` is 'In' or 'NotIn' for scope selector"))
		}
	case corev1.ScopeSelectorOpExists, corev1.ScopeSelectorOpDoesNotExist:
		if len(r.Values) != 0 {
			errs = append(errs, field.Invalid(p.Child("values"), r.Values, "must be no value when `operator` is 'Exist' or 'DoesNotExist' for scope selector"))
		}
	default:
		errs = append(errs, field.Invalid(p.Child("operator"), r.Operator, "not a valid selector operator"))
	}
	return errs
}

var limitTypes = sets.New(corev1.LimitTypePod, corev1.LimitTypeContainer, corev1.LimitTypePersistentVolumeClaim)

func validateLimitRange(lr *corev1.LimitRange) field.ErrorList {
	return append(validateMeta(&lr.ObjectMeta, true, nameIsSubdomain), validateLimitRangeSpec(lr)...)
}

func validateLimitRangeSpec(lr *corev1.LimitRange) field.ErrorList {
	var errs field.ErrorList
	seen := sets.New[corev1.LimitType]()
	for i, l := range lr.Spec.Limits {
		lp := specPath.Child("limits").Index(i)
		tp := lp.Child("type")
		errs = append(errs, qualifiedName(string(l.Type), tp)...)
		if !strings.Contains(string(l.Type), "/") && !limitTypes.Has(l.Type) {
			errs = append(errs, field.Invalid(tp, l.Type, "must be a standard limit type or fully qualified"))
		}
		if seen.Has(l.Type) {
			errs = append(errs, field.Duplicate(tp, l.Type))
		}
		seen.Insert(l.Type)
		if l.Type == corev1.LimitTypePod {
			if len(l.Default) > 0 {
				errs = append(errs, field.Forbidden(lp.Child("default"), "may not be specified when `type` is 'Pod'"))
			}
			if len(l.DefaultRequest) > 0 {
				errs = append(errs, field.Forbidden(lp.Child("defaultRequest"), "may not be specified when `type` is 'Pod'"))
			}
		}
		errs = append(errs, validateLimitRangeItem(l, lp)...)
	}
	return errs
}

// validateLimitRangeItem checks min <= defaultRequest <= default <= max for
// every resource, and ratios of at least 1.
func validateLimitRangeItem(l corev1.LimitRangeItem, lp *field.Path) field.ErrorList {
	var errs field.ErrorList
	lists := []struct {
		name string
		l    corev1.ResourceList
	}{{"max", l.Max}, {"min", l.Min}, {"default", l.Default}, {"defaultRequest", l.DefaultRequest}, {"maxLimitRequestRatio", l.MaxLimitRequestRatio}}
	names := sets.New[corev1.ResourceName]()
	for _, x := range lists {
		for _, n := range sortedResourceNames(x.l) {
			fp := lp.Child(x.name).Key(string(n))
			errs = append(errs, qualifiedName(string(n), fp)...)
			errs = append(errs, nonNegativeQuantity(x.l[n], fp)...)
			names.Insert(n)
		}
	}
	for _, n := range sets.List(names) {
		key := string(n)
		get := func(rl corev1.ResourceList) (resource.Quantity, bool) { q, ok := rl[n]; return q, ok }
		maxQ, hasMax := get(l.Max)
		minQ, hasMin := get(l.Min)
		defQ, hasDef := get(l.Default)
		reqQ, hasReq := get(l.DefaultRequest)
		ratio, hasRatio := get(l.MaxLimitRequestRatio)
		if hasMin && hasMax && minQ.Cmp(maxQ) > 0 {
			errs = append(errs, field.Invalid(lp.Child("min").Key(key), minQ.String(), fmt.Sprintf("min value %s is greater than max value %s", minQ.String(), maxQ.String())))
		}
		if hasReq && hasMin && minQ.Cmp(reqQ) > 0 {
			errs = append(errs, field.Invalid(lp.Child("defaultRequest").Key(key), reqQ.String(), fmt.Sprintf("min value %s is greater than default request value %s", minQ.String(), reqQ.String())))
		}
		if hasReq && hasMax && reqQ.Cmp(maxQ) > 0 {
			errs = append(errs, field.Invalid(lp.Child("defaultRequest").Key(key), reqQ.String(), fmt.Sprintf("default request value %s is greater than max value %s", reqQ.String(), maxQ.String())))
		}
		if hasReq && hasDef && reqQ.Cmp(defQ) > 0 {
			errs = append(errs, field.Invalid(lp.Child("defaultRequest").Key(key), reqQ.String(), fmt.Sprintf("default request value %s is greater than default limit value %s", reqQ.String(), defQ.String())))
		}
		if hasDef && hasMin && minQ.Cmp(defQ) > 0 {
			errs = append(errs, field.Invalid(lp.Child("default").Key(key), defQ.String(), fmt.Sprintf("min value %s is greater than default value %s", minQ.String(), defQ.String())))
		}
		if hasDef && hasMax && defQ.Cmp(maxQ) > 0 {
			errs = append(errs, field.Invalid(lp.Child("default").Key(key), defQ.String(), fmt.Sprintf("default value %s is greater than max value %s", defQ.String(), maxQ.String())))
		}
		if hasRatio && ratio.Cmp(resource.MustParse("1")) < 0 {
			errs = append(errs, field.Invalid(lp.Child("maxLimitRequestRatio").Key(key), ratio.String(), fmt.Sprintf("ratio %s is less than 1", ratio.String())))
		}
	}
	return errs
}

func validateLease(l *coordinationv1.Lease) field.ErrorList {
	return append(validateMeta(&l.ObjectMeta, true, nameIsSubdomain), validateLeaseSpec(l)...)
}

func validateLeaseSpec(l *coordinationv1.Lease) field.ErrorList {
	var errs field.ErrorList
	if d := l.Spec.LeaseDurationSeconds; d != nil && *d <= 0 {
		errs = append(errs, field.Invalid(specPath.Child("leaseDurationSeconds"), *d, "must be greater than 0"))
	}
	errs = append(errs, nonNegativePtr(l.Spec.LeaseTransitions, specPath.Child("leaseTransitions"))...)
	if s := l.Spec.Strategy; s != nil {
		errs = append(errs, oneOf(*s, specPath.Child("strategy"), coordinationv1.OldestEmulationVersion)...)
	}
	if s := l.Spec.PreferredHolder; s != nil && l.Spec.Strategy == nil {
		errs = append(errs, field.Forbidden(specPath.Child("preferredHolder"), "may only be specified if `strategy` is defined"))
	}
	return errs
}
