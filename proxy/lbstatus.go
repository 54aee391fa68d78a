package proxy

import (
	"net/netip"
	"sort"

	corev1 "k8s.io/api/core/v1"
)

// LabelExcludeFromLB is the well-known node label that keeps a node out of
// external load balancers.
const LabelExcludeFromLB = "node.kubernetes.io/exclude-from-external-load-balancers"

// LoadBalancerIngress computes the status.loadBalancer.ingress list for a
// LoadBalancer Service that Skiff serves itself (see ServesLoadBalancer):
// the proxy serves such ports on every node, so the list holds the nodes'
// addresses. Each node contributes its ExternalIP addresses, or its
// InternalIP addresses when it has no external one. Nodes that are not
// Ready, are being deleted, or carry LabelExcludeFromLB are left out. The
// result is sorted (IPv4 first) and free of duplicates, so callers can
// compare it with the current status to avoid needless writes.
func LoadBalancerIngress(nodes []*corev1.Node) []corev1.LoadBalancerIngress {
	seen := map[netip.Addr]bool{}
	var addrs []netip.Addr
	for _, n := range nodes {
		if n == nil || n.DeletionTimestamp != nil || !nodeReady(n) {
			continue
		}
		if _, excluded := n.Labels[LabelExcludeFromLB]; excluded {
			continue
		}
		pick := nodeAddrs(n, corev1.NodeExternalIP)
		if len(pick) == 0 {
			pick = nodeAddrs(n, corev1.NodeInternalIP)
		}
		for _, a := range pick {
			if !seen[a] {
				seen[a] = true
				addrs = append(addrs, a)
			}
		}
	}
	sort.Slice(addrs, func(i, j int) bool {
		if addrs[i].Is4() != addrs[j].Is4() {
			return addrs[i].Is4()
		}
		return addrs[i].Less(addrs[j])
	})
	out := make([]corev1.LoadBalancerIngress, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, corev1.LoadBalancerIngress{IP: a.String()})
	}
	return out
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func nodeAddrs(n *corev1.Node, typ corev1.NodeAddressType) []netip.Addr {
	var out []netip.Addr
	for _, a := range n.Status.Addresses {
		if a.Type != typ {
			continue
		}
		if ip, err := netip.ParseAddr(a.Address); err == nil {
			out = append(out, ip.Unmap())
		}
	}
	return out
}
