package validation

import (
	"net/netip"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

const ingressClassAnnotation = "kubernetes.io/ingress.class"

func validateIngress(ing *networkingv1.Ingress) field.ErrorList {
	return append(validateMeta(&ing.ObjectMeta, true, nameIsSubdomain), validateIngressSpec(ing)...)
}

var pathTypes = []networkingv1.PathType{networkingv1.PathTypeExact, networkingv1.PathTypeImplementationSpecific, networkingv1.PathTypePrefix}

func validateIngressSpec(ing *networkingv1.Ingress) field.ErrorList {
	s := &ing.Spec
	var errs field.ErrorList
	if len(s.Rules) == 0 && s.DefaultBackend == nil {
		errs = append(errs, field.Invalid(specPath, s.Rules, "either `defaultBackend` or `rules` must be specified"))
	}
	if s.DefaultBackend != nil {
		errs = append(errs, validateIngressBackend(s.DefaultBackend, specPath.Child("defaultBackend"))...)
	}
	for i, r := range s.Rules {
		rp := specPath.Child("rules").Index(i)
		if r.Host != "" {
			errs = append(errs, ingressHost(r.Host, rp.Child("host"))...)
		}
		if r.HTTP == nil {
			continue
		}
		pp := rp.Child("http", "paths")
		if len(r.HTTP.Paths) == 0 {
			errs = append(errs, field.Required(pp, ""))
		}
		for j, path := range r.HTTP.Paths {
			errs = append(errs, validateIngressPath(path, pp.Index(j))...)
		}
	}
	for i, tls := range s.TLS {
		tp := specPath.Child("tls").Index(i)
		for j, h := range tls.Hosts {
			errs = append(errs, ingressHost(h, tp.Child("hosts").Index(j))...)
		}
		if tls.SecretName != "" {
			errs = append(errs, dnsSubdomain(tls.SecretName, tp.Child("secretName"))...)
		}
	}
	if s.IngressClassName != nil {
		errs = append(errs, dnsSubdomain(*s.IngressClassName, specPath.Child("ingressClassName"))...)
		if v, ok := ing.Annotations[ingressClassAnnotation]; ok {
			errs = append(errs, field.Invalid(metadataPath.Child("annotations").Key(ingressClassAnnotation), v,
				"can not be set when the class field is also set"))
		}
	}
	return errs
}

func ingressHost(h string, p *field.Path) field.ErrorList {
	if _, err := netip.ParseAddr(h); err == nil {
		return field.ErrorList{field.Invalid(p, h, "must be a DNS name, not an IP address")}
	}
	if strings.Contains(h, "*") {
		return msgs(p, h, validation.IsWildcardDNS1123Subdomain(h))
	}
	return dnsSubdomain(h, p)
}

func validateIngressPath(path networkingv1.HTTPIngressPath, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	pp := p.Child("path")
	if path.PathType == nil {
		errs = append(errs, field.Required(p.Child("pathType"), "pathType must be specified"))
	} else {
		errs = append(errs, oneOf(*path.PathType, p.Child("pathType"), pathTypes...)...)
		switch *path.PathType {
		case networkingv1.PathTypeExact, networkingv1.PathTypePrefix:
			if !strings.HasPrefix(path.Path, "/") {
				errs = append(errs, field.Invalid(pp, path.Path, "must be an absolute path"))
			}
			for _, seq := range []string{"//", "/./", "/../", "%2f", "%2F"} {
				if strings.Contains(path.Path, seq) {
					errs = append(errs, field.Invalid(pp, path.Path, "must not contain '"+seq+"'"))
				}
			}
			for _, suf := range []string{"/..", "/."} {
				if strings.HasSuffix(path.Path, suf) {
					errs = append(errs, field.Invalid(pp, path.Path, "cannot end with '"+suf+"'"))
				}
			}
		case networkingv1.PathTypeImplementationSpecific:
			if path.Path != "" && !strings.HasPrefix(path.Path, "/") {
				errs = append(errs, field.Invalid(pp, path.Path, "must be an absolute path"))
			}
		}
	}
	return append(errs, validateIngressBackend(&path.Backend, p.Child("backend"))...)
}

func validateIngressBackend(b *networkingv1.IngressBackend, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch {
	case b.Resource != nil && b.Service != nil:
		errs = append(errs, field.Invalid(p, "", "cannot set both resource and service backends"))
	case b.Resource != nil:
		rp := p.Child("resource")
		if b.Resource.Kind == "" {
			errs = append(errs, field.Required(rp.Child("kind"), ""))
		}
		if b.Resource.Name == "" {
			errs = append(errs, field.Required(rp.Child("name"), ""))
		}
		if g := b.Resource.APIGroup; g != nil && *g != "" {
			errs = append(errs, dnsSubdomain(*g, rp.Child("apiGroup"))...)
		}
	case b.Service != nil:
		sp := p.Child("service")
		if b.Service.Name == "" {
			errs = append(errs, field.Required(sp.Child("name"), ""))
		} else {
			errs = append(errs, msgs(sp.Child("name"), b.Service.Name, nameIs1035Label(b.Service.Name, false))...)
		}
		port := b.Service.Port
		pp := sp.Child("port")
		switch {
		case port.Name != "" && port.Number != 0:
			errs = append(errs, field.Invalid(pp, "", "cannot set both port name & port number"))
		case port.Name != "":
			errs = append(errs, msgs(pp.Child("name"), port.Name, validation.IsValidPortName(port.Name))...)
		case port.Number != 0:
			errs = append(errs, portNum(port.Number, pp.Child("number"))...)
		default:
			errs = append(errs, field.Required(pp, "port name or number is required"))
		}
	default:
		errs = append(errs, field.Invalid(p, "", "resource or service backend is required"))
	}
	return errs
}

const maxControllerLength = 250

func validateIngressClass(ic *networkingv1.IngressClass) field.ErrorList {
	return append(validateMeta(&ic.ObjectMeta, false, nameIsSubdomain), validateIngressClassSpec(ic)...)
}

func validateIngressClassSpec(ic *networkingv1.IngressClass) field.ErrorList {
	var errs field.ErrorList
	cp := specPath.Child("controller")
	switch c := ic.Spec.Controller; {
	case c == "":
		errs = append(errs, field.Required(cp, ""))
	case len(c) > maxControllerLength:
		errs = append(errs, field.TooLong(cp, c, maxControllerLength))
	default:
		errs = append(errs, validation.IsDomainPrefixedPath(cp, c)...)
	}
	pr := ic.Spec.Parameters
	if pr == nil {
		return errs
	}
	pp := specPath.Child("parameters")
	if pr.Kind == "" {
		errs = append(errs, field.Required(pp.Child("kind"), ""))
	}
	if pr.Name == "" {
		errs = append(errs, field.Required(pp.Child("name"), ""))
	}
	if pr.APIGroup != nil && *pr.APIGroup != "" {
		errs = append(errs, dnsSubdomain(*pr.APIGroup, pp.Child("apiGroup"))...)
	}
	if pr.Scope == nil {
		return append(errs, field.Required(pp.Child("scope"), ""))
	}
	errs = append(errs, oneOf(*pr.Scope, pp.Child("scope"), networkingv1.IngressClassParametersReferenceScopeCluster,
		networkingv1.IngressClassParametersReferenceScopeNamespace)...)
	switch *pr.Scope {
	case networkingv1.IngressClassParametersReferenceScopeNamespace:
		if pr.Namespace == nil {
			errs = append(errs, field.Required(pp.Child("namespace"), "`parameters.scope` is set to 'Namespace'"))
		} else {
			errs = append(errs, dnsLabel(*pr.Namespace, pp.Child("namespace"))...)
		}
	case networkingv1.IngressClassParametersReferenceScopeCluster:
		if pr.Namespace != nil {
			errs = append(errs, field.Forbidden(pp.Child("namespace"), "`parameters.scope` is set to 'Cluster'"))
		}
	}
	return errs
}

func validateIngressClassUpdate(ic, old *networkingv1.IngressClass) field.ErrorList {
	errs := withMetaUpdate(&ic.ObjectMeta, &old.ObjectMeta, validateIngressClassSpec(ic))
	return append(errs, immutable(ic.Spec.Controller, old.Spec.Controller, specPath.Child("controller"))...)
}

func validateNetworkPolicy(np *networkingv1.NetworkPolicy) field.ErrorList {
	return append(validateMeta(&np.ObjectMeta, true, nameIsSubdomain), validateNetworkPolicySpec(np)...)
}

func validateNetworkPolicySpec(np *networkingv1.NetworkPolicy) field.ErrorList {
	s := &np.Spec
	errs := labelSelector(&s.PodSelector, specPath.Child("podSelector"))
	for i, r := range s.Ingress {
		rp := specPath.Child("ingress").Index(i)
		for j, port := range r.Ports {
			errs = append(errs, validatePolicyPort(port, rp.Child("ports").Index(j))...)
		}
		for j, peer := range r.From {
			errs = append(errs, validatePolicyPeer(peer, rp.Child("from").Index(j))...)
		}
	}
	for i, r := range s.Egress {
		rp := specPath.Child("egress").Index(i)
		for j, port := range r.Ports {
			errs = append(errs, validatePolicyPort(port, rp.Child("ports").Index(j))...)
		}
		for j, peer := range r.To {
			errs = append(errs, validatePolicyPeer(peer, rp.Child("to").Index(j))...)
		}
	}
	for i, t := range s.PolicyTypes {
		errs = append(errs, oneOf(t, specPath.Child("policyTypes").Index(i), networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress)...)
	}
	if len(s.PolicyTypes) > 2 {
		errs = append(errs, field.Forbidden(specPath.Child("policyTypes"), "may not specify more than two policyTypes"))
	}
	return errs
}

func validatePolicyPort(port networkingv1.NetworkPolicyPort, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if port.Protocol != nil {
		errs = append(errs, oneOf(*port.Protocol, p.Child("protocol"), protocols...)...)
	}
	if port.Port != nil {
		errs = append(errs, portNumOrName(*port.Port, p.Child("port"))...)
	}
	if port.EndPort != nil {
		ep := p.Child("endPort")
		switch {
		case port.Port == nil:
			errs = append(errs, field.Required(p.Child("port"), "must be specified when endPort is specified"))
		case port.Port.Type == intstr.String:
			errs = append(errs, field.Forbidden(ep, "may not be specified when `port` is non-numeric"))
		case *port.EndPort < port.Port.IntVal:
			errs = append(errs, field.Invalid(ep, *port.EndPort, "must be greater than or equal to `port`"))
		}
	}
	return errs
}

func validatePolicyPeer(peer networkingv1.NetworkPolicyPeer, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	n := 0
	if peer.PodSelector != nil {
		n++
		errs = append(errs, labelSelector(peer.PodSelector, p.Child("podSelector"))...)
	}
	if peer.NamespaceSelector != nil {
		n++
		errs = append(errs, labelSelector(peer.NamespaceSelector, p.Child("namespaceSelector"))...)
	}
	if b := peer.IPBlock; b != nil {
		if n > 0 {
			errs = append(errs, field.Forbidden(p, "may not specify both ipBlock and another peer"))
		}
		n++
		bp := p.Child("ipBlock")
		if b.CIDR == "" {
			errs = append(errs, field.Required(bp.Child("cidr"), ""))
		} else if cidrErrs := validation.IsValidCIDR(bp.Child("cidr"), b.CIDR); len(cidrErrs) > 0 {
			errs = append(errs, cidrErrs...)
		} else {
			outer, _ := netip.ParsePrefix(b.CIDR)
			for k, e := range b.Except {
				xp := bp.Child("except").Index(k)
				inner, err := netip.ParsePrefix(e)
				if err != nil {
					errs = append(errs, validation.IsValidCIDR(xp, e)...)
					continue
				}
				if inner.Bits() <= outer.Bits() || !outer.Contains(inner.Addr()) {
					errs = append(errs, field.Invalid(xp, e, "must be a strict subset of `cidr`"))
				}
			}
		}
	}
	if n == 0 {
		errs = append(errs, field.Required(p, "must specify a peer"))
	}
	return errs
}
