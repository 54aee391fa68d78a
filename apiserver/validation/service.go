package validation

import (
	"fmt"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// The node port range of a default Kubernetes API server.
const (
	nodePortMin = 30000
	nodePortMax = 32767
)

// maxClientIPAffinitySeconds bounds a ClientIP session affinity: one day.
const maxClientIPAffinitySeconds = 86400

var serviceTypes = []corev1.ServiceType{corev1.ServiceTypeClusterIP, corev1.ServiceTypeExternalName,
	corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeNodePort}

func validateService(s *corev1.Service) field.ErrorList {
	return append(validateMeta(&s.ObjectMeta, true, nameIs1035Label), validateServiceSpec(s)...)
}

func externallyAccessible(s *corev1.Service) bool {
	switch s.Spec.Type {
	case corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeNodePort:
		return true
	case corev1.ServiceTypeClusterIP:
		return len(s.Spec.ExternalIPs) > 0
	}
	return false
}

func validateServiceSpec(s *corev1.Service) field.ErrorList {
	sp := &s.Spec
	typ := sp.Type
	errs := oneOf(typ, specPath.Child("type"), serviceTypes...)
	headless := sp.ClusterIP == corev1.ClusterIPNone
	isLB := typ == corev1.ServiceTypeLoadBalancer
	if typ == corev1.ServiceTypeExternalName {
		const msg = "may not be set for ExternalName services"
		if sp.ClusterIP != "" {
			errs = append(errs, field.Forbidden(specPath.Child("clusterIP"), msg))
		} else if len(sp.ClusterIPs) > 0 {
			errs = append(errs, field.Forbidden(specPath.Child("clusterIPs"), msg))
		}
		if len(sp.IPFamilies) > 0 {
			errs = append(errs, field.Forbidden(specPath.Child("ipFamilies"), msg))
		}
		if sp.IPFamilyPolicy != nil {
			errs = append(errs, field.Forbidden(specPath.Child("ipFamilyPolicy"), msg))
		}
		name := strings.TrimSuffix(sp.ExternalName, ".")
		if name == "" {
			errs = append(errs, field.Required(specPath.Child("externalName"), ""))
		} else {
			errs = append(errs, dnsSubdomain(name, specPath.Child("externalName"))...)
		}
	} else {
		if len(sp.Ports) == 0 && !headless {
			errs = append(errs, field.Required(specPath.Child("ports"), ""))
		}
		errs = append(errs, validateClusterIPs(sp)...)
	}
	if headless && (isLB || typ == corev1.ServiceTypeNodePort) {
		errs = append(errs, field.Invalid(specPath.Child("clusterIP"), sp.ClusterIP, fmt.Sprintf("may not be set to 'None' for %s services", typ)))
	}
	errs = append(errs, validateServicePorts(sp)...)
	errs = append(errs, oneOf(sp.SessionAffinity, specPath.Child("sessionAffinity"), corev1.ServiceAffinityClientIP, corev1.ServiceAffinityNone)...)
	cfgPath := specPath.Child("sessionAffinityConfig")
	switch sp.SessionAffinity {
	case corev1.ServiceAffinityClientIP:
		c := sp.SessionAffinityConfig
		if c == nil || c.ClientIP == nil || c.ClientIP.TimeoutSeconds == nil {
			errs = append(errs, field.Required(cfgPath.Child("clientIP", "timeoutSeconds"), ""))
		} else if t := *c.ClientIP.TimeoutSeconds; t <= 0 || t > maxClientIPAffinitySeconds {
			errs = append(errs, field.Invalid(cfgPath.Child("clientIP", "timeoutSeconds"), t,
				fmt.Sprintf("must be greater than 0 and less than %d", maxClientIPAffinitySeconds)))
		}
	case corev1.ServiceAffinityNone:
		if sp.SessionAffinityConfig != nil {
			errs = append(errs, field.Forbidden(cfgPath, fmt.Sprintf("must not be set when session affinity is %s", corev1.ServiceAffinityNone)))
		}
	}
	errs = append(errs, labels(sp.Selector, specPath.Child("selector"))...)
	for i, ip := range sp.ExternalIPs {
		errs = append(errs, validation.IsValidIP(specPath.Child("externalIPs").Index(i), ip)...)
	}
	const lbOnly = "may only be used when `type` is 'LoadBalancer'"
	if len(sp.LoadBalancerSourceRanges) > 0 && !isLB {
		errs = append(errs, field.Forbidden(specPath.Child("loadBalancerSourceRanges"), lbOnly))
	}
	for i, r := range sp.LoadBalancerSourceRanges {
		errs = append(errs, validation.IsValidCIDR(specPath.Child("loadBalancerSourceRanges").Index(i), strings.TrimSpace(r))...)
	}
	if sp.LoadBalancerIP != "" {
		if !isLB {
			errs = append(errs, field.Forbidden(specPath.Child("loadBalancerIP"), lbOnly))
		}
		errs = append(errs, validation.IsValidIP(specPath.Child("loadBalancerIP"), sp.LoadBalancerIP)...)
	}
	if sp.LoadBalancerClass != nil {
		if !isLB {
			errs = append(errs, field.Forbidden(specPath.Child("loadBalancerClass"), lbOnly))
		}
		errs = append(errs, qualifiedName(*sp.LoadBalancerClass, specPath.Child("loadBalancerClass"))...)
	}
	switch {
	case isLB && sp.AllocateLoadBalancerNodePorts == nil:
		errs = append(errs, field.Required(specPath.Child("allocateLoadBalancerNodePorts"), ""))
	case !isLB && sp.AllocateLoadBalancerNodePorts != nil:
		errs = append(errs, field.Forbidden(specPath.Child("allocateLoadBalancerNodePorts"), lbOnly))
	}
	etp := specPath.Child("externalTrafficPolicy")
	if !externallyAccessible(s) {
		if sp.ExternalTrafficPolicy != "" {
			errs = append(errs, field.Invalid(etp, sp.ExternalTrafficPolicy, "may only be set for externally-accessible services"))
		}
	} else {
		errs = append(errs, oneOf(sp.ExternalTrafficPolicy, etp, corev1.ServiceExternalTrafficPolicyCluster, corev1.ServiceExternalTrafficPolicyLocal)...)
	}
	if sp.HealthCheckNodePort != 0 {
		hp := specPath.Child("healthCheckNodePort")
		if !isLB || sp.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyLocal {
			errs = append(errs, field.Invalid(hp, sp.HealthCheckNodePort, "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"))
		}
		errs = append(errs, portNum(sp.HealthCheckNodePort, hp)...)
	}
	if typ != corev1.ServiceTypeExternalName {
		if sp.InternalTrafficPolicy == nil {
			errs = append(errs, field.Required(specPath.Child("internalTrafficPolicy"), ""))
		} else {
			errs = append(errs, oneOf(*sp.InternalTrafficPolicy, specPath.Child("internalTrafficPolicy"),
				corev1.ServiceInternalTrafficPolicyCluster, corev1.ServiceInternalTrafficPolicyLocal)...)
		}
	}
	return errs
}

func ipFamily(a netip.Addr) corev1.IPFamily {
	if a.Is4() || a.Is4In6() {
		return corev1.IPv4Protocol
	}
	return corev1.IPv6Protocol
}

func validateClusterIPs(sp *corev1.ServiceSpec) field.ErrorList {
	var errs field.ErrorList
	ipsPath := specPath.Child("clusterIPs")
	if len(sp.ClusterIPs) > 0 && sp.ClusterIP != sp.ClusterIPs[0] {
		errs = append(errs, field.Invalid(ipsPath, sp.ClusterIPs, "first value must match `clusterIP`"))
	}
	if len(sp.ClusterIPs) > 2 {
		errs = append(errs, field.Invalid(ipsPath, sp.ClusterIPs, "may only hold up to 2 values"))
	}
	if sp.ClusterIP == corev1.ClusterIPNone && len(sp.ClusterIPs) > 1 {
		errs = append(errs, field.Invalid(ipsPath, sp.ClusterIPs, "must not have more than one value when the first is 'None'"))
	}
	if sp.IPFamilyPolicy != nil {
		errs = append(errs, oneOf(*sp.IPFamilyPolicy, specPath.Child("ipFamilyPolicy"), corev1.IPFamilyPolicySingleStack,
			corev1.IPFamilyPolicyPreferDualStack, corev1.IPFamilyPolicyRequireDualStack)...)
		if *sp.IPFamilyPolicy == corev1.IPFamilyPolicySingleStack && len(sp.IPFamilies) > 1 {
			errs = append(errs, field.Invalid(specPath.Child("ipFamilyPolicy"), *sp.IPFamilyPolicy,
				"must be 'RequireDualStack' or 'PreferDualStack' when multiple IP families are specified"))
		}
	}
	fams := sets.New[corev1.IPFamily]()
	for i, f := range sp.IPFamilies {
		fp := specPath.Child("ipFamilies").Index(i)
		errs = append(errs, oneOf(f, fp, corev1.IPv4Protocol, corev1.IPv6Protocol)...)
		if fams.Has(f) {
			errs = append(errs, field.Duplicate(fp, f))
		}
		fams.Insert(f)
	}
	if len(sp.IPFamilies) > 2 {
		errs = append(errs, field.Invalid(specPath.Child("ipFamilies"), sp.IPFamilies, "may specify no more than two IP families"))
	}
	seen := sets.New[corev1.IPFamily]()
	for i, ip := range sp.ClusterIPs {
		if ip == corev1.ClusterIPNone {
			continue
		}
		ipp := ipsPath.Index(i)
		if ip == "" {
			errs = append(errs, field.Invalid(ipp, ip, "must be empty when all clusterIPs are empty"))
			continue
		}
		a, err := netip.ParseAddr(ip)
		if err != nil {
			errs = append(errs, validation.IsValidIP(ipp, ip)...)
			continue
		}
		f := ipFamily(a)
		if seen.Has(f) {
			errs = append(errs, field.Invalid(ipsPath, sp.ClusterIPs, "may specify no more than one IP for each IP family"))
		}
		seen.Insert(f)
		if i < len(sp.IPFamilies) && sp.IPFamilies[i] != f {
			errs = append(errs, field.Invalid(ipp, ip, fmt.Sprintf("expected an %s value as indicated by `ipFamilies[%d]`", sp.IPFamilies[i], i)))
		}
	}
	return errs
}

func validateServicePorts(sp *corev1.ServiceSpec) field.ErrorList {
	var errs field.ErrorList
	requireName := len(sp.Ports) > 1
	names := sets.New[string]()
	ports := sets.New[string]()
	nodePorts := sets.New[string]()
	for i, port := range sp.Ports {
		pp := specPath.Child("ports").Index(i)
		switch {
		case port.Name == "" && requireName:
			errs = append(errs, field.Required(pp.Child("name"), ""))
		case port.Name != "":
			errs = append(errs, dnsLabel(port.Name, pp.Child("name"))...)
			if names.Has(port.Name) {
				errs = append(errs, field.Duplicate(pp.Child("name"), port.Name))
			}
			names.Insert(port.Name)
		}
		errs = append(errs, portNum(port.Port, pp.Child("port"))...)
		errs = append(errs, oneOf(port.Protocol, pp.Child("protocol"), protocols...)...)
		errs = append(errs, portNumOrName(port.TargetPort, pp.Child("targetPort"))...)
		if port.AppProtocol != nil {
			errs = append(errs, qualifiedName(*port.AppProtocol, pp.Child("appProtocol"))...)
		}
		key := fmt.Sprintf("%d/%s", port.Port, port.Protocol)
		if ports.Has(key) {
			errs = append(errs, field.Duplicate(pp, key))
		}
		ports.Insert(key)
		if port.NodePort == 0 {
			continue
		}
		np := pp.Child("nodePort")
		if sp.Type == corev1.ServiceTypeClusterIP || sp.Type == corev1.ServiceTypeExternalName {
			errs = append(errs, field.Forbidden(np, fmt.Sprintf("may not be used when `type` is '%s'", sp.Type)))
		}
		if port.NodePort < nodePortMin || port.NodePort > nodePortMax {
			errs = append(errs, field.Invalid(np, port.NodePort,
				fmt.Sprintf("provided port is not in the valid range. The range of valid ports is %d-%d", nodePortMin, nodePortMax)))
		}
		nkey := fmt.Sprintf("%d/%s", port.NodePort, port.Protocol)
		if nodePorts.Has(nkey) {
			errs = append(errs, field.Duplicate(np, port.NodePort))
		}
		nodePorts.Insert(nkey)
	}
	return errs
}

func validateServiceUpdate(s, old *corev1.Service) field.ErrorList {
	errs := withMetaUpdate(&s.ObjectMeta, &old.ObjectMeta, validateServiceSpec(s))
	// A load balancer's implementation is chosen once: the class may be set
	// when a Service becomes a LoadBalancer, not changed while it is one.
	lb := corev1.ServiceTypeLoadBalancer
	if s.Spec.Type == lb && old.Spec.Type == lb && !equalStringPtr(s.Spec.LoadBalancerClass, old.Spec.LoadBalancerClass) {
		errs = append(errs, field.Invalid(specPath.Child("loadBalancerClass"), s.Spec.LoadBalancerClass, "may not change once set"))
	}
	ext := corev1.ServiceTypeExternalName
	if s.Spec.Type == ext || old.Spec.Type == ext {
		return errs
	}
	if old.Spec.ClusterIP != "" && s.Spec.ClusterIP != old.Spec.ClusterIP {
		errs = append(errs, field.Invalid(specPath.Child("clusterIPs").Index(0), s.Spec.ClusterIP, "may not change once set"))
	}
	if len(old.Spec.IPFamilies) > 0 && len(s.Spec.IPFamilies) > 0 && s.Spec.IPFamilies[0] != old.Spec.IPFamilies[0] {
		errs = append(errs, field.Invalid(specPath.Child("ipFamilies").Index(0), s.Spec.IPFamilies[0], "may not change once set"))
	}
	return errs
}

// nonSpecialIP rejects endpoint addresses no pod can have.
func nonSpecialIP(ip string, p *field.Path) field.ErrorList {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return validation.IsValidIP(p, ip)
	}
	switch {
	case a.IsUnspecified():
		return field.ErrorList{field.Invalid(p, ip, fmt.Sprintf("may not be unspecified (%v)", ip))}
	case a.IsLoopback():
		return field.ErrorList{field.Invalid(p, ip, "may not be in the loopback range (127.0.0.0/8, ::1/128)")}
	case a.IsLinkLocalUnicast():
		return field.ErrorList{field.Invalid(p, ip, "may not be in the link-local range (169.254.0.0/16, fe80::/10)")}
	case a.IsLinkLocalMulticast():
		return field.ErrorList{field.Invalid(p, ip, "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)")}
	}
	return nil
}

func validateEndpoints(e *corev1.Endpoints) field.ErrorList {
	return append(validateMeta(&e.ObjectMeta, true, nameIsSubdomain), validateEndpointsSpec(e)...)
}

func validateEndpointsSpec(e *corev1.Endpoints) field.ErrorList {
	var errs field.ErrorList
	for i, ss := range e.Subsets {
		sp := field.NewPath("subsets").Index(i)
		if len(ss.Addresses) == 0 && len(ss.NotReadyAddresses) == 0 {
			errs = append(errs, field.Required(sp, "must specify `addresses` or `notReadyAddresses`"))
		}
		addrs := func(as []corev1.EndpointAddress, ap *field.Path) {
			for j, a := range as {
				p := ap.Index(j)
				errs = append(errs, nonSpecialIP(a.IP, p.Child("ip"))...)
				if a.Hostname != "" {
					errs = append(errs, dnsLabel(a.Hostname, p.Child("hostname"))...)
				}
				if a.NodeName != nil {
					errs = append(errs, dnsSubdomain(*a.NodeName, p.Child("nodeName"))...)
				}
			}
		}
		addrs(ss.Addresses, sp.Child("addresses"))
		addrs(ss.NotReadyAddresses, sp.Child("notReadyAddresses"))
		names := sets.New[string]()
		for j, port := range ss.Ports {
			pp := sp.Child("ports").Index(j)
			switch {
			case port.Name == "" && len(ss.Ports) > 1:
				errs = append(errs, field.Required(pp.Child("name"), ""))
			case port.Name != "":
				errs = append(errs, dnsLabel(port.Name, pp.Child("name"))...)
				if names.Has(port.Name) {
					errs = append(errs, field.Duplicate(pp.Child("name"), port.Name))
				}
				names.Insert(port.Name)
			}
			errs = append(errs, portNum(port.Port, pp.Child("port"))...)
			errs = append(errs, oneOf(port.Protocol, pp.Child("protocol"), protocols...)...)
		}
	}
	return errs
}

const (
	maxSliceEndpoints = 1000
	maxSliceAddresses = 100
	maxSlicePorts     = 20000
)

var addressTypes = []discoveryv1.AddressType{discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6, discoveryv1.AddressTypeFQDN}

func validateEndpointSlice(es *discoveryv1.EndpointSlice) field.ErrorList {
	return append(validateMeta(&es.ObjectMeta, true, nameIsSubdomain), validateEndpointSliceBody(es)...)
}

func validateEndpointSliceBody(es *discoveryv1.EndpointSlice) field.ErrorList {
	errs := oneOf(es.AddressType, field.NewPath("addressType"), addressTypes...)
	ep := field.NewPath("endpoints")
	if len(es.Endpoints) > maxSliceEndpoints {
		errs = append(errs, field.TooMany(ep, len(es.Endpoints), maxSliceEndpoints))
	}
	for i, e := range es.Endpoints {
		p := ep.Index(i)
		ap := p.Child("addresses")
		switch {
		case len(e.Addresses) == 0:
			errs = append(errs, field.Required(ap, "must contain at least 1 address"))
		case len(e.Addresses) > maxSliceAddresses:
			errs = append(errs, field.TooMany(ap, len(e.Addresses), maxSliceAddresses))
		}
		for j, a := range e.Addresses {
			errs = append(errs, sliceAddress(es.AddressType, a, ap.Index(j))...)
		}
		if e.Hostname != nil {
			errs = append(errs, dnsLabel(*e.Hostname, p.Child("hostname"))...)
		}
		if e.NodeName != nil {
			errs = append(errs, dnsSubdomain(*e.NodeName, p.Child("nodeName"))...)
		}
		for _, k := range sortedKeys(e.DeprecatedTopology) {
			errs = append(errs, qualifiedName(k, p.Child("deprecatedTopology").Key(k))...)
		}
	}
	pp := field.NewPath("ports")
	if len(es.Ports) > maxSlicePorts {
		errs = append(errs, field.TooMany(pp, len(es.Ports), maxSlicePorts))
	}
	names := sets.New[string]()
	for i, port := range es.Ports {
		p := pp.Index(i)
		if port.Name != nil && *port.Name != "" {
			errs = append(errs, dnsLabel(*port.Name, p.Child("name"))...)
		}
		name := ""
		if port.Name != nil {
			name = *port.Name
		}
		if names.Has(name) {
			errs = append(errs, field.Duplicate(p.Child("name"), name))
		}
		names.Insert(name)
		if port.Protocol == nil {
			errs = append(errs, field.Required(p.Child("protocol"), ""))
		} else {
			errs = append(errs, oneOf(*port.Protocol, p.Child("protocol"), protocols...)...)
		}
		if port.Port != nil {
			errs = append(errs, portNum(*port.Port, p.Child("port"))...)
		}
		if port.AppProtocol != nil {
			errs = append(errs, qualifiedName(*port.AppProtocol, p.Child("appProtocol"))...)
		}
	}
	return errs
}

func sliceAddress(t discoveryv1.AddressType, a string, p *field.Path) field.ErrorList {
	switch t {
	case discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6:
		ip, err := netip.ParseAddr(a)
		if err != nil || (t == discoveryv1.AddressTypeIPv4) != ip.Is4() {
			return field.ErrorList{field.Invalid(p, a, fmt.Sprintf("must be a valid %s address", t))}
		}
		return nonSpecialIP(a, p)
	case discoveryv1.AddressTypeFQDN:
		return validation.IsFullyQualifiedDomainName(p, a)
	}
	return nil
}

func validateEndpointSliceUpdate(es, old *discoveryv1.EndpointSlice) field.ErrorList {
	errs := withMetaUpdate(&es.ObjectMeta, &old.ObjectMeta, validateEndpointSliceBody(es))
	return append(errs, immutable(es.AddressType, old.AddressType, field.NewPath("addressType"))...)
}

func equalStringPtr(a, b *string) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}
