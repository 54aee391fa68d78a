package proxy

import (
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// defaultAffinityTimeout is the ClientIP session affinity timeout Kubernetes
// uses when the Service does not set one (three hours).
const defaultAffinityTimeout = 10800 * time.Second

// nodeView is what rule generation needs to know about the node it runs on.
type nodeView struct {
	name        string
	nodeIPs     []netip.Addr // IPv4 addresses NodePorts and LoadBalancer ports are served on
	clusterCIDR netip.Prefix // pod network; invalid when unknown
	// noNodePorts: the node's only addresses are loopback ones, so node
	// ports are served nowhere (rather than on every local address).
	noNodePorts bool
}

// servicePort is one port of one Service, with everything the rules need.
type servicePort struct {
	namespace, name string
	portName        string
	protocol        corev1.Protocol

	clusterIP netip.Addr // always valid: headless Services are skipped
	port      int32
	nodePort  int32        // 0 when the Service has none
	extIPs    []netip.Addr // externalIPs, LoadBalancer ingress IPs, node IPs for our LoadBalancers

	externalLocal   bool          // externalTrafficPolicy: Local
	internalLocal   bool          // internalTrafficPolicy: Local
	affinityTimeout time.Duration // 0: no session affinity
	publishNotReady bool

	endpoints []endpoint // candidates from the EndpointSlices, sorted, deduplicated
}

// key names the service port uniquely and readably: ns/name/proto/port.
func (sp *servicePort) key() string {
	p := sp.portName
	if p == "" {
		p = strconv.Itoa(int(sp.port))
	}
	return sp.namespace + "/" + sp.name + "/" + strings.ToLower(string(sp.protocol)) + "/" + p
}

// hasExternal reports whether the port is reachable other than by ClusterIP.
func (sp *servicePort) hasExternal() bool { return sp.nodePort != 0 || len(sp.extIPs) > 0 }

// endpoint is one backend address of a service port.
type endpoint struct {
	ip          netip.Addr
	port        int32
	ready       bool
	serving     bool
	terminating bool
	local       bool // on this node
}

func (e endpoint) String() string { return netip.AddrPortFrom(e.ip, uint16(e.port)).String() }

// ServesLoadBalancer reports whether Skiff's own LoadBalancer implementation
// handles svc: it is of type LoadBalancer and names no loadBalancerClass
// (a class hands the Service to another implementation). Such Services have
// their ports served on every node's addresses.
func ServesLoadBalancer(svc *corev1.Service) bool {
	return svc.Spec.Type == corev1.ServiceTypeLoadBalancer &&
		(svc.Spec.LoadBalancerClass == nil || *svc.Spec.LoadBalancerClass == "")
}

// serviceIPv4 returns the Service's IPv4 ClusterIP, if it has one.
func serviceIPv4(svc *corev1.Service) (netip.Addr, bool) {
	ips := svc.Spec.ClusterIPs
	if len(ips) == 0 && svc.Spec.ClusterIP != "" {
		ips = []string{svc.Spec.ClusterIP}
	}
	for _, s := range ips {
		if a, err := netip.ParseAddr(s); err == nil && a.Is4() {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// servicePorts turns one Service and its EndpointSlices into service ports.
// ExternalName and headless Services (and Services without an IPv4 ClusterIP)
// have none: the proxy does nothing for them.
func servicePorts(svc *corev1.Service, slices []*discoveryv1.EndpointSlice, node nodeView) []*servicePort {
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return nil
	}
	cip, ok := serviceIPv4(svc)
	if !ok {
		return nil
	}
	var ext []netip.Addr
	for _, s := range svc.Spec.ExternalIPs {
		if a, err := netip.ParseAddr(s); err == nil && a.Is4() {
			ext = append(ext, a)
		}
	}
	if svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		for _, ing := range svc.Status.LoadBalancer.Ingress {
			if ing.IPMode != nil && *ing.IPMode == corev1.LoadBalancerIPModeProxy {
				continue // the load balancer delivers to the node, not to this IP
			}
			if a, err := netip.ParseAddr(ing.IP); err == nil && a.Is4() {
				ext = append(ext, a)
			}
		}
		if ServesLoadBalancer(svc) {
			ext = append(ext, node.nodeIPs...)
		}
	}
	ext = uniqueAddrs(ext)

	affinity := time.Duration(0)
	if svc.Spec.SessionAffinity == corev1.ServiceAffinityClientIP {
		affinity = defaultAffinityTimeout
		if c := svc.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil && *c.ClientIP.TimeoutSeconds > 0 {
			affinity = time.Duration(*c.ClientIP.TimeoutSeconds) * time.Second
		}
	}
	hasNodePorts := svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer

	var out []*servicePort
	for _, p := range svc.Spec.Ports {
		proto := p.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		sp := &servicePort{
			namespace:       svc.Namespace,
			name:            svc.Name,
			portName:        p.Name,
			protocol:        proto,
			clusterIP:       cip,
			port:            p.Port,
			extIPs:          ext,
			externalLocal:   svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal,
			internalLocal:   svc.Spec.InternalTrafficPolicy != nil && *svc.Spec.InternalTrafficPolicy == corev1.ServiceInternalTrafficPolicyLocal,
			affinityTimeout: affinity,
			publishNotReady: svc.Spec.PublishNotReadyAddresses,
		}
		if hasNodePorts {
			sp.nodePort = p.NodePort
		}
		sp.endpoints = endpointsFor(sp, slices, node.name)
		out = append(out, sp)
	}
	return out
}

// endpointsFor collects the IPv4 endpoints of sp from the Service's slices.
// The slice port is matched by name and protocol (its number is the resolved
// targetPort). An address listed twice keeps its best conditions.
func endpointsFor(sp *servicePort, slices []*discoveryv1.EndpointSlice, nodeName string) []endpoint {
	byAddr := map[netip.AddrPort]endpoint{}
	for _, sl := range slices {
		if sl.AddressType != discoveryv1.AddressTypeIPv4 {
			continue
		}
		port, ok := slicePort(sl, sp.portName, sp.protocol)
		if !ok {
			continue
		}
		for _, e := range sl.Endpoints {
			if len(e.Addresses) == 0 {
				continue
			}
			ip, err := netip.ParseAddr(e.Addresses[0])
			if err != nil || !ip.Is4() {
				continue
			}
			ep := endpoint{
				ip:          ip,
				port:        port,
				ready:       e.Conditions.Ready == nil || *e.Conditions.Ready,
				terminating: e.Conditions.Terminating != nil && *e.Conditions.Terminating,
				local:       e.NodeName != nil && *e.NodeName == nodeName && nodeName != "",
			}
			// serving defaults to ready when the slice's writer did not set it.
			ep.serving = ep.ready
			if e.Conditions.Serving != nil {
				ep.serving = *e.Conditions.Serving
			}
			k := netip.AddrPortFrom(ip, uint16(port))
			if old, dup := byAddr[k]; dup && rank(old) >= rank(ep) {
				continue
			}
			byAddr[k] = ep
		}
	}
	out := make([]endpoint, 0, len(byAddr))
	for _, e := range byAddr {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool {
		if c := out[i].ip.Compare(out[j].ip); c != 0 {
			return c < 0
		}
		return out[i].port < out[j].port
	})
	return out
}

func rank(e endpoint) int {
	switch {
	case e.ready:
		return 2
	case e.serving:
		return 1
	}
	return 0
}

// slicePort finds the port number a slice gives for the named service port.
func slicePort(sl *discoveryv1.EndpointSlice, name string, proto corev1.Protocol) (int32, bool) {
	for _, p := range sl.Ports {
		pname := ""
		if p.Name != nil {
			pname = *p.Name
		}
		pproto := corev1.ProtocolTCP
		if p.Protocol != nil {
			pproto = *p.Protocol
		}
		if pname == name && pproto == proto && p.Port != nil && *p.Port > 0 && *p.Port < 65536 {
			return *p.Port, true
		}
	}
	return 0, false
}

// usable picks the endpoints traffic may go to among eps: the ready ones;
// if there are none, the ones that are still serving while terminating (so
// connections drain instead of failing during a rollout). With
// publishNotReadyAddresses every endpoint is used.
func usable(eps []endpoint, publishNotReady bool) []endpoint {
	if publishNotReady {
		return eps
	}
	var ready, draining []endpoint
	for _, e := range eps {
		switch {
		case e.ready:
			ready = append(ready, e)
		case e.serving && e.terminating:
			draining = append(draining, e)
		}
	}
	if len(ready) > 0 {
		return ready
	}
	return draining
}

func localOnly(eps []endpoint) []endpoint {
	var out []endpoint
	for _, e := range eps {
		if e.local {
			out = append(out, e)
		}
	}
	return out
}

// endpointSets is the traffic-policy decision for one service port.
type endpointSets struct {
	any      bool       // some endpoint is usable cluster-wide; without one, traffic is rejected
	cluster  []endpoint // for ClusterIP traffic (internalTrafficPolicy)
	external []endpoint // for NodePort/LoadBalancer/externalIP traffic (externalTrafficPolicy)
}

// selectEndpoints applies readiness and traffic policies. The terminating
// fallback is applied after the node filter, so a Local policy falls back to
// this node's terminating endpoints rather than to remote ready ones.
func selectEndpoints(sp *servicePort) endpointSets {
	all := usable(sp.endpoints, sp.publishNotReady)
	s := endpointSets{any: len(all) > 0, cluster: all, external: all}
	if sp.internalLocal {
		s.cluster = usable(localOnly(sp.endpoints), sp.publishNotReady)
	}
	if sp.externalLocal {
		s.external = usable(localOnly(sp.endpoints), sp.publishNotReady)
	}
	return s
}

func uniqueAddrs(in []netip.Addr) []netip.Addr {
	seen := map[netip.Addr]bool{}
	var out []netip.Addr
	for _, a := range in {
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out
}
