package netpol

import (
	"context"
	"net/netip"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/knftables"
)

const testBridge = "br0"

var testNode = nodeView{name: "n1", podCIDR: netip.MustParsePrefix("10.42.1.0/24")}

func ptr[T any](v T) *T { return &v }

// pod builds a running pod; ports are "name:port[/PROTO]".
func pod(ns, name, node, ip string, lbls map[string]string, ports ...string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: lbls},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c"}}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning},
	}
	if ip != "" {
		p.Status.PodIP = ip
		p.Status.PodIPs = []corev1.PodIP{{IP: ip}}
	}
	for _, s := range ports {
		name, rest, _ := strings.Cut(s, ":")
		num, proto, _ := strings.Cut(rest, "/")
		cp := corev1.ContainerPort{Name: name, ContainerPort: int32(atoi(num))}
		if proto != "" {
			cp.Protocol = corev1.Protocol(proto)
		}
		p.Spec.Containers[0].Ports = append(p.Spec.Containers[0].Ports, cp)
	}
	return p
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

func namespace(name string, lbls map[string]string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls}}
}

func sel(kv ...string) *metav1.LabelSelector {
	s := &metav1.LabelSelector{MatchLabels: map[string]string{}}
	for i := 0; i+1 < len(kv); i += 2 {
		s.MatchLabels[kv[i]] = kv[i+1]
	}
	return s
}

func lbl(kv ...string) map[string]string { return sel(kv...).MatchLabels }

// policy builds a NetworkPolicy selecting podSel in ns; mods fill it.
func policy(ns, name string, podSel *metav1.LabelSelector, mods ...func(*networkingv1.NetworkPolicy)) *networkingv1.NetworkPolicy {
	p := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       networkingv1.NetworkPolicySpec{PodSelector: *podSel},
	}
	for _, m := range mods {
		m(p)
	}
	return p
}

func types(ts ...networkingv1.PolicyType) func(*networkingv1.NetworkPolicy) {
	return func(p *networkingv1.NetworkPolicy) { p.Spec.PolicyTypes = ts }
}

const (
	ing = networkingv1.PolicyTypeIngress
	egr = networkingv1.PolicyTypeEgress
)

func ingressRule(from []networkingv1.NetworkPolicyPeer, ports ...networkingv1.NetworkPolicyPort) func(*networkingv1.NetworkPolicy) {
	return func(p *networkingv1.NetworkPolicy) {
		p.Spec.Ingress = append(p.Spec.Ingress, networkingv1.NetworkPolicyIngressRule{From: from, Ports: ports})
	}
}

func egressRule(to []networkingv1.NetworkPolicyPeer, ports ...networkingv1.NetworkPolicyPort) func(*networkingv1.NetworkPolicy) {
	return func(p *networkingv1.NetworkPolicy) {
		p.Spec.Egress = append(p.Spec.Egress, networkingv1.NetworkPolicyEgressRule{To: to, Ports: ports})
	}
}

func peers(ps ...networkingv1.NetworkPolicyPeer) []networkingv1.NetworkPolicyPeer { return ps }

func podPeer(s *metav1.LabelSelector) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{PodSelector: s}
}

func nsPeer(s *metav1.LabelSelector) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{NamespaceSelector: s}
}

func bothPeer(ns, pod *metav1.LabelSelector) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{NamespaceSelector: ns, PodSelector: pod}
}

func blockPeer(cidr string, except ...string) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: cidr, Except: except}}
}

func port(proto string, p int, end ...int32) networkingv1.NetworkPolicyPort {
	pp := networkingv1.NetworkPolicyPort{Protocol: ptr(corev1.Protocol(proto)), Port: ptr(intstr.FromInt32(int32(p)))}
	if len(end) > 0 {
		pp.EndPort = ptr(end[0])
	}
	return pp
}

func namedPort(proto, name string) networkingv1.NetworkPolicyPort {
	return networkingv1.NetworkPolicyPort{Protocol: ptr(corev1.Protocol(proto)), Port: ptr(intstr.FromString(name))}
}

func protoOnly(proto string) networkingv1.NetworkPolicyPort {
	return networkingv1.NetworkPolicyPort{Protocol: ptr(corev1.Protocol(proto))}
}

// program writes rs into a new fake table.
func program(t testing.TB, rs *ruleset) *knftables.Fake {
	t.Helper()
	fake := knftables.NewFake(knftables.IPv4Family, "netpol-test")
	apply(t, fake, nil, rs)
	return fake
}

func apply(t testing.TB, fake *knftables.Fake, prev, want *ruleset) {
	t.Helper()
	tx := fake.NewTransaction()
	plan(tx, prev, want)
	if err := fake.Run(context.Background(), tx); err != nil {
		t.Fatalf("transaction: %v", err)
	}
}

// sortedDump is the fake's content, order-insensitive (elements added
// incrementally come in another order than in a full write).
func sortedDump(fake *knftables.Fake) string {
	lines := strings.Split(strings.TrimSpace(fake.Dump()), "\n")
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// flow is a TCP packet starting a connection; interfaces follow from the
// addresses: this node's pods (10.42.1.0/24) sit behind br0, everything
// else behind eth0.
func flow(src, dst string, dport int) packet {
	return flowProto(src, dst, "tcp", dport)
}

func flowProto(src, dst, proto string, dport int) packet {
	p := packet{src: netip.MustParseAddr(src), dst: netip.MustParseAddr(dst), proto: proto, dport: dport, iif: "eth0", oif: "eth0"}
	if testNode.podCIDR.Contains(p.src) {
		p.iif = testBridge
	}
	if testNode.podCIDR.Contains(p.dst) {
		p.oif = testBridge
	}
	return p
}

func established(p packet) packet { p.established = true; return p }
