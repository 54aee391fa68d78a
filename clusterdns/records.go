package clusterdns

import (
	"net/netip"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// tolerateUnreadyAnnotation is the legacy annotation that, like
// spec.publishNotReadyAddresses, makes DNS publish endpoints that are not ready.
const tolerateUnreadyAnnotation = "service.alpha.kubernetes.io/tolerate-unready-endpoints"

// serviceKind says which family of records a Service produces.
type serviceKind int

const (
	kindClusterIP serviceKind = iota
	kindHeadless
	kindExternalName
)

// portInfo is one named port of a Service or an EndpointSlice.
type portInfo struct {
	name  string // port name, lower case; never empty
	proto string // "tcp", "udp" or "sctp"
	port  uint16
}

// endpointInfo is one published address of a headless Service.
type endpointInfo struct {
	host  string // DNS label: the endpoint hostname or the dashed address
	ip    netip.Addr
	ports []portInfo // named ports of the endpoint's slice
}

// serviceEntry holds everything the DNS server needs to know about one
// Service. It is immutable once built.
type serviceEntry struct {
	namespace string // lower case
	name      string // lower case
	kind      serviceKind
	// clusterIPs are the Service's ClusterIPs (kindClusterIP).
	clusterIPs []netip.Addr
	// externalName is the CNAME target as a lower-case FQDN (kindExternalName).
	externalName string
	// ports are the Service's named ports.
	ports []portInfo
	// endpoints are the published endpoints (kindHeadless), sorted by host
	// then address, without duplicates.
	endpoints []endpointInfo
}

// buildServiceEntry turns a Service and, for headless Services, the
// EndpointSlices that belong to it into a serviceEntry. It reports false when
// the Service has no DNS records (no usable ClusterIP, no external name).
func buildServiceEntry(svc *corev1.Service, slices []*discoveryv1.EndpointSlice) (*serviceEntry, bool) {
	e := &serviceEntry{
		namespace: strings.ToLower(svc.Namespace),
		name:      strings.ToLower(svc.Name),
		ports:     servicePorts(svc.Spec.Ports),
	}
	switch {
	case svc.Spec.Type == corev1.ServiceTypeExternalName:
		name := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(svc.Spec.ExternalName)), ".")
		if name == "" {
			return nil, false
		}
		e.kind = kindExternalName
		e.externalName = name + "."
	case svc.Spec.ClusterIP == corev1.ClusterIPNone:
		e.kind = kindHeadless
		e.endpoints = publishedEndpoints(svc, slices)
	default:
		e.kind = kindClusterIP
		ips := svc.Spec.ClusterIPs
		if len(ips) == 0 && svc.Spec.ClusterIP != "" {
			ips = []string{svc.Spec.ClusterIP}
		}
		for _, s := range ips {
			if ip, err := netip.ParseAddr(s); err == nil {
				e.clusterIPs = append(e.clusterIPs, ip.Unmap())
			}
		}
		if len(e.clusterIPs) == 0 {
			return nil, false
		}
	}
	return e, true
}

// servicePorts keeps the named ports of a Service.
func servicePorts(ports []corev1.ServicePort) []portInfo {
	var out []portInfo
	for _, p := range ports {
		if p.Name == "" || p.Port <= 0 || p.Port > 65535 {
			continue
		}
		out = append(out, portInfo{name: strings.ToLower(p.Name), proto: protoName(p.Protocol), port: uint16(p.Port)})
	}
	return out
}

// slicePorts keeps the named ports of an EndpointSlice.
func slicePorts(ports []discoveryv1.EndpointPort) []portInfo {
	var out []portInfo
	for _, p := range ports {
		if p.Name == nil || *p.Name == "" || p.Port == nil || *p.Port <= 0 || *p.Port > 65535 {
			continue
		}
		var proto corev1.Protocol
		if p.Protocol != nil {
			proto = *p.Protocol
		}
		out = append(out, portInfo{name: strings.ToLower(*p.Name), proto: protoName(proto), port: uint16(*p.Port)})
	}
	return out
}

// protoName is the SRV label (without underscore) of a protocol; the API
// default is TCP.
func protoName(p corev1.Protocol) string {
	if p == "" {
		return "tcp"
	}
	return strings.ToLower(string(p))
}

// publishedEndpoints collects the addresses DNS publishes for a headless
// Service: ready endpoints, or all of them when the Service asks for
// not-ready addresses too.
func publishedEndpoints(svc *corev1.Service, slices []*discoveryv1.EndpointSlice) []endpointInfo {
	all := svc.Spec.PublishNotReadyAddresses || svc.Annotations[tolerateUnreadyAnnotation] == "true"
	type key struct {
		host string
		ip   netip.Addr
	}
	seen := map[key]int{}
	var out []endpointInfo
	for _, sl := range slices {
		if sl.AddressType != discoveryv1.AddressTypeIPv4 && sl.AddressType != discoveryv1.AddressTypeIPv6 {
			continue
		}
		ports := slicePorts(sl.Ports)
		for _, ep := range sl.Endpoints {
			if !all && ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				continue
			}
			for _, a := range ep.Addresses {
				ip, err := netip.ParseAddr(a)
				if err != nil {
					continue
				}
				ip = ip.Unmap()
				host := dashedAddr(ip)
				if ep.Hostname != nil && *ep.Hostname != "" && len(validation.IsDNS1123Label(strings.ToLower(*ep.Hostname))) == 0 {
					host = strings.ToLower(*ep.Hostname)
				}
				k := key{host, ip}
				if i, dup := seen[k]; dup {
					out[i].ports = mergePorts(out[i].ports, ports)
					continue
				}
				seen[k] = len(out)
				out = append(out, endpointInfo{host: host, ip: ip, ports: ports})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].host != out[j].host {
			return out[i].host < out[j].host
		}
		return out[i].ip.Less(out[j].ip)
	})
	return out
}

// mergePorts adds the ports of b missing from a (same address listed in two
// slices during a slice rebalance).
func mergePorts(a, b []portInfo) []portInfo {
	out := append([]portInfo(nil), a...)
	for _, p := range b {
		found := false
		for _, q := range a {
			if p == q {
				found = true
				break
			}
		}
		if !found {
			out = append(out, p)
		}
	}
	return out
}

// dashedAddr is the system-assigned host label of an endpoint without a
// hostname: 10.42.0.7 -> 10-42-0-7, fd00::7 -> fd00--7.
func dashedAddr(ip netip.Addr) string {
	s := ip.String()
	if ip.Is4() {
		return strings.ReplaceAll(s, ".", "-")
	}
	return strings.ReplaceAll(s, ":", "-")
}

// parseDashedAddr is the inverse of dashedAddr, used for pod A records.
func parseDashedAddr(label string) (netip.Addr, bool) {
	if strings.Count(label, "-") == 3 {
		ip, err := netip.ParseAddr(strings.ReplaceAll(label, "-", "."))
		if err == nil && ip.Is4() {
			return ip, true
		}
	}
	ip, err := netip.ParseAddr(strings.ReplaceAll(label, "-", ":"))
	if err == nil && ip.Is6() && ip.Zone() == "" {
		return ip.Unmap(), true
	}
	return netip.Addr{}, false
}

// serviceFQDN is <svc>.<ns>.svc.<domain> for a domain ending in a dot.
func (e *serviceEntry) fqdn(domain string) string {
	return e.name + "." + e.namespace + ".svc." + domain
}
