package netpol

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// This file turns NetworkPolicies, Pods and Namespaces into a model of what
// this node enforces: for every policy that selects at least one local pod,
// the addresses it selects and, per policy type, its allow rules reduced to
// address spans, port ranges and resolved named ports. It is pure: the same
// objects give the same model.

// nodeView is what compiling needs to know about this node.
type nodeView struct {
	name string
	// podCIDR, when valid, is where local pods' addresses must lie; a pod
	// claiming to be local with another address is not policed here.
	podCIDR netip.Prefix
}

// podView is a pod as policies see it: only pods that have an IPv4
// address, share the pod network (not hostNetwork) and have not finished.
type podView struct {
	ns, name string
	labels   labels.Set
	ip       netip.Addr
	local    bool
	ports    []containerPort
}

type containerPort struct {
	name  string
	proto string // tcp, udp or sctp
	port  int32
}

// model is the compiled policy state for one node.
type model struct {
	policies []*compiledPolicy // sorted by key
}

// compiledPolicy is one NetworkPolicy that selects local pods.
type compiledPolicy struct {
	key     string       // namespace/name
	targets []netip.Addr // selected local pods, sorted
	// ingress and egress are nil when the policy is not of that type.
	ingress, egress []compiledRule
}

// compiledRule is one entry of spec.ingress or spec.egress: traffic
// matching any peer and any port is allowed.
type compiledRule struct {
	anyPeer bool
	peers   []span // merged; empty with !anyPeer: no peer exists (yet)
	anyPort bool
	ports   []portRange
	// named holds the named ports resolved on the destination pods: the
	// selected pods for ingress, the peer pods for egress.
	named []portTuple
	// hasNamed says the rule names ports, even if none resolves now.
	hasNamed bool
}

// portRange is a protocol and a port range; lo == 0 means every port.
type portRange struct {
	proto  string
	lo, hi int32
}

// portTuple is one resolved named port: destination address, protocol, port.
type portTuple struct {
	ip    netip.Addr
	proto string
	port  int32
}

// compile builds the model. Policies with selectors that do not parse are
// skipped and reported in the returned warnings.
func compile(node nodeView, policies []*networkingv1.NetworkPolicy, pods []*corev1.Pod, namespaces []*corev1.Namespace) (*model, []string) {
	c := &compiler{node: node, nsLabels: map[string]labels.Set{}}
	for _, ns := range namespaces {
		c.nsLabels[ns.Name] = namespaceLabels(ns.Name, ns.Labels)
	}
	for _, p := range pods {
		if v, ok := viewPod(node, p); ok {
			c.pods = append(c.pods, v)
		}
	}
	sort.Slice(c.pods, func(i, j int) bool {
		if c.pods[i].ns != c.pods[j].ns {
			return c.pods[i].ns < c.pods[j].ns
		}
		return c.pods[i].name < c.pods[j].name
	})

	sorted := append([]*networkingv1.NetworkPolicy(nil), policies...)
	sort.Slice(sorted, func(i, j int) bool {
		if sorted[i].Namespace != sorted[j].Namespace {
			return sorted[i].Namespace < sorted[j].Namespace
		}
		return sorted[i].Name < sorted[j].Name
	})
	m := &model{}
	var warnings []string
	for _, pol := range sorted {
		cp, err := c.policy(pol)
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("NetworkPolicy %s/%s ignored: %v", pol.Namespace, pol.Name, err))
			continue
		}
		if cp != nil {
			m.policies = append(m.policies, cp)
		}
	}
	return m, warnings
}

// namespaceLabels adds the label the API server sets on every namespace,
// so selectors on it work even for a namespace not (yet) in the cache.
func namespaceLabels(name string, l map[string]string) labels.Set {
	out := labels.Set{}
	for k, v := range l {
		out[k] = v
	}
	out[corev1.LabelMetadataName] = name
	return out
}

// viewPod reduces a pod to what policies need; false: policies ignore it.
func viewPod(node nodeView, p *corev1.Pod) (*podView, bool) {
	if p.Spec.HostNetwork || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return nil, false
	}
	ip, ok := podIPv4(p)
	if !ok {
		return nil, false
	}
	v := &podView{ns: p.Namespace, name: p.Name, labels: labels.Set(p.Labels), ip: ip}
	v.local = node.name != "" && p.Spec.NodeName == node.name &&
		(!node.podCIDR.IsValid() || node.podCIDR.Contains(ip))
	for _, list := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
		for _, ctr := range list {
			for _, cp := range ctr.Ports {
				if cp.Name == "" || cp.ContainerPort <= 0 {
					continue
				}
				v.ports = append(v.ports, containerPort{name: cp.Name, proto: protoName(cp.Protocol), port: cp.ContainerPort})
			}
		}
	}
	return v, true
}

func podIPv4(p *corev1.Pod) (netip.Addr, bool) {
	cands := make([]string, 0, len(p.Status.PodIPs)+1)
	for _, pip := range p.Status.PodIPs {
		cands = append(cands, pip.IP)
	}
	cands = append(cands, p.Status.PodIP)
	for _, s := range cands {
		if a, err := netip.ParseAddr(s); err == nil {
			if a = a.Unmap(); a.Is4() && !a.IsUnspecified() {
				return a, true
			}
		}
	}
	return netip.Addr{}, false
}

// protoName is the nft name of a Kubernetes protocol; empty means TCP.
func protoName(p corev1.Protocol) string {
	if p == "" {
		return "tcp"
	}
	return strings.ToLower(string(p))
}

type compiler struct {
	node     nodeView
	pods     []*podView
	nsLabels map[string]labels.Set
}

func (c *compiler) namespaceLabels(ns string) labels.Set {
	if l, ok := c.nsLabels[ns]; ok {
		return l
	}
	return namespaceLabels(ns, nil)
}

// policyTypes applies the API's defaulting: Ingress always, Egress when
// the policy has egress rules.
func policyTypes(spec *networkingv1.NetworkPolicySpec) (ingress, egress bool) {
	if len(spec.PolicyTypes) == 0 {
		return true, len(spec.Egress) > 0
	}
	for _, t := range spec.PolicyTypes {
		switch t {
		case networkingv1.PolicyTypeIngress:
			ingress = true
		case networkingv1.PolicyTypeEgress:
			egress = true
		}
	}
	return ingress, egress
}

// policy compiles one policy; nil when it selects no local pod.
func (c *compiler) policy(pol *networkingv1.NetworkPolicy) (*compiledPolicy, error) {
	sel, err := metav1.LabelSelectorAsSelector(&pol.Spec.PodSelector)
	if err != nil {
		return nil, fmt.Errorf("podSelector: %w", err)
	}
	var targets []*podView
	for _, p := range c.pods {
		if p.local && p.ns == pol.Namespace && sel.Matches(p.labels) {
			targets = append(targets, p)
		}
	}
	ingress, egress := policyTypes(&pol.Spec)
	if len(targets) == 0 || (!ingress && !egress) {
		return nil, nil
	}
	cp := &compiledPolicy{key: pol.Namespace + "/" + pol.Name}
	for _, t := range targets {
		cp.targets = append(cp.targets, t.ip)
	}
	sortAddrs(cp.targets)
	cp.targets = uniqueAddrs(cp.targets)

	if ingress {
		cp.ingress = []compiledRule{}
		for i, r := range pol.Spec.Ingress {
			cr, err := c.rule(pol.Namespace, r.From, r.Ports, targets, false)
			if err != nil {
				return nil, fmt.Errorf("ingress rule %d: %w", i, err)
			}
			cp.ingress = append(cp.ingress, cr)
		}
	}
	if egress {
		cp.egress = []compiledRule{}
		for i, r := range pol.Spec.Egress {
			cr, err := c.rule(pol.Namespace, r.To, r.Ports, nil, true)
			if err != nil {
				return nil, fmt.Errorf("egress rule %d: %w", i, err)
			}
			cp.egress = append(cp.egress, cr)
		}
	}
	return cp, nil
}

// rule compiles one ingress or egress rule. Named ports resolve on the
// destination: the policy's targets for ingress, for egress every pod
// inside the rule's peers.
func (c *compiler) rule(ns string, peers []networkingv1.NetworkPolicyPeer, ports []networkingv1.NetworkPolicyPort, targets []*podView, egress bool) (compiledRule, error) {
	var cr compiledRule
	if len(peers) == 0 {
		cr.anyPeer = true
	} else {
		spans, err := c.peerSpans(ns, peers)
		if err != nil {
			return cr, err
		}
		cr.peers = spans
	}

	var named []networkingv1.NetworkPolicyPort
	if len(ports) == 0 {
		cr.anyPort = true
	} else {
		allPorts := map[string]bool{} // protocols allowed on every port
		for _, p := range ports {
			proto := "tcp"
			if p.Protocol != nil {
				proto = protoName(*p.Protocol)
			}
			switch {
			case p.Port == nil:
				allPorts[proto] = true
			case p.Port.Type == intstr.String:
				named = append(named, p)
			case p.Port.IntVal > 0 && p.Port.IntVal <= 65535:
				hi := p.Port.IntVal
				if p.EndPort != nil && *p.EndPort > hi && *p.EndPort <= 65535 {
					hi = *p.EndPort
				}
				cr.ports = append(cr.ports, portRange{proto: proto, lo: p.Port.IntVal, hi: hi})
			}
		}
		var kept []portRange
		for proto := range allPorts {
			kept = append(kept, portRange{proto: proto})
		}
		for _, pr := range cr.ports {
			if !allPorts[pr.proto] {
				kept = append(kept, pr)
			}
		}
		cr.ports = uniquePortRanges(kept)
	}

	if len(named) > 0 {
		cr.hasNamed = true
		dests := targets
		if egress {
			dests = nil
			for _, p := range c.pods {
				if cr.anyPeer || spansContain(cr.peers, addrNum(p.ip)) {
					dests = append(dests, p)
				}
			}
		}
		for _, np := range named {
			proto := "tcp"
			if np.Protocol != nil {
				proto = protoName(*np.Protocol)
			}
			for _, d := range dests {
				for _, cport := range d.ports {
					if cport.name == np.Port.StrVal && cport.proto == proto {
						cr.named = append(cr.named, portTuple{ip: d.ip, proto: proto, port: cport.port})
					}
				}
			}
		}
		cr.named = uniqueTuples(cr.named)
	}
	return cr, nil
}

// peerSpans is the union of the addresses the peers select.
func (c *compiler) peerSpans(ns string, peers []networkingv1.NetworkPolicyPeer) ([]span, error) {
	var spans []span
	for i, peer := range peers {
		if peer.IPBlock != nil {
			s, err := ipBlockSpans(peer.IPBlock)
			if err != nil {
				return nil, fmt.Errorf("peer %d: %w", i, err)
			}
			spans = append(spans, s...)
			continue
		}
		if peer.PodSelector == nil && peer.NamespaceSelector == nil {
			continue // invalid; the API rejects it
		}
		podSel := labels.Everything()
		if peer.PodSelector != nil {
			s, err := metav1.LabelSelectorAsSelector(peer.PodSelector)
			if err != nil {
				return nil, fmt.Errorf("peer %d podSelector: %w", i, err)
			}
			podSel = s
		}
		var nsSel labels.Selector
		if peer.NamespaceSelector != nil {
			s, err := metav1.LabelSelectorAsSelector(peer.NamespaceSelector)
			if err != nil {
				return nil, fmt.Errorf("peer %d namespaceSelector: %w", i, err)
			}
			nsSel = s
		}
		for _, p := range c.pods {
			if nsSel == nil {
				if p.ns != ns {
					continue
				}
			} else if !nsSel.Matches(c.namespaceLabels(p.ns)) {
				continue
			}
			if podSel.Matches(p.labels) {
				spans = append(spans, addrSpan(p.ip))
			}
		}
	}
	return mergeSpans(spans), nil
}

// ipBlockSpans is an IPv4 ipBlock's CIDR minus its exceptions; IPv6
// blocks select nothing here (only IPv4 is policed).
func ipBlockSpans(b *networkingv1.IPBlock) ([]span, error) {
	p, err := netip.ParsePrefix(b.CIDR)
	if err != nil {
		return nil, fmt.Errorf("ipBlock cidr %q: %w", b.CIDR, err)
	}
	if !p.Addr().Is4() {
		return nil, nil
	}
	var cut []span
	for _, e := range b.Except {
		ep, err := netip.ParsePrefix(e)
		if err != nil {
			return nil, fmt.Errorf("ipBlock except %q: %w", e, err)
		}
		if ep.Addr().Is4() {
			cut = append(cut, prefixSpan(ep))
		}
	}
	return subtractSpans([]span{prefixSpan(p)}, cut), nil
}

func sortAddrs(a []netip.Addr) {
	sort.Slice(a, func(i, j int) bool { return a[i].Less(a[j]) })
}

func uniqueAddrs(sorted []netip.Addr) []netip.Addr {
	var out []netip.Addr
	for i, a := range sorted {
		if i == 0 || a != sorted[i-1] {
			out = append(out, a)
		}
	}
	return out
}

func uniquePortRanges(in []portRange) []portRange {
	sort.Slice(in, func(i, j int) bool {
		if in[i].proto != in[j].proto {
			return in[i].proto < in[j].proto
		}
		if in[i].lo != in[j].lo {
			return in[i].lo < in[j].lo
		}
		return in[i].hi < in[j].hi
	})
	var out []portRange
	for i, p := range in {
		if i == 0 || p != in[i-1] {
			out = append(out, p)
		}
	}
	return out
}

func uniqueTuples(in []portTuple) []portTuple {
	sort.Slice(in, func(i, j int) bool {
		if in[i].ip != in[j].ip {
			return in[i].ip.Less(in[j].ip)
		}
		if in[i].proto != in[j].proto {
			return in[i].proto < in[j].proto
		}
		return in[i].port < in[j].port
	})
	var out []portTuple
	for i, t := range in {
		if i == 0 || t != in[i-1] {
			out = append(out, t)
		}
	}
	return out
}
