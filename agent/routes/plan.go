package routes

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// This file is the pure decision: from the Nodes and this machine's
// interface addresses, which routes, overlay peers and overlay address the
// node should have.

// nodeInfo is what routing needs from a Node.
type nodeInfo struct {
	Name     string
	IP       netip.Addr     // first IPv4 InternalIP; invalid when none
	PodCIDRs []netip.Prefix // IPv4 podCIDRs, masked
}

// nodeInfoFrom extracts a Node's routing facts. Unparsable and IPv6
// podCIDRs and addresses are ignored.
func nodeInfoFrom(n *corev1.Node) nodeInfo {
	info := nodeInfo{Name: n.Name}
	cidrs := n.Spec.PodCIDRs
	if len(cidrs) == 0 && n.Spec.PodCIDR != "" {
		cidrs = []string{n.Spec.PodCIDR}
	}
	for _, c := range cidrs {
		p, err := netip.ParsePrefix(c)
		if err != nil || !p.Addr().Is4() {
			continue
		}
		p = p.Masked()
		if !slices.Contains(info.PodCIDRs, p) {
			info.PodCIDRs = append(info.PodCIDRs, p)
		}
	}
	for _, a := range n.Status.Addresses {
		if a.Type != corev1.NodeInternalIP {
			continue
		}
		ip, err := netip.ParseAddr(a.Address)
		if err == nil && ip.Unmap().Is4() {
			info.IP = ip.Unmap()
			break
		}
	}
	return info
}

// equal reports whether two nodeInfos route the same way.
func (n nodeInfo) equal(o nodeInfo) bool {
	return n.Name == o.Name && n.IP == o.IP && slices.Equal(n.PodCIDRs, o.PodCIDRs)
}

// hostAddr is an IPv4 address on one of this machine's interfaces.
type hostAddr struct {
	Dev    string
	Prefix netip.Prefix // the address with its prefix length, unmasked
	Scope  string       // "global", "link", "host", ...
	Up     bool         // the interface is administratively up
	MTU    int          // the interface's MTU
}

// route is one IPv4 route in the main table.
type route struct {
	Dst     netip.Prefix
	Gateway netip.Addr
	Dev     string
	OnLink  bool
	Metric  int
}

func (r route) String() string {
	s := fmt.Sprintf("%s via %s dev %s", r.Dst, r.Gateway, r.Dev)
	if r.OnLink {
		s += " onlink"
	}
	if r.Metric != 0 {
		s += fmt.Sprintf(" metric %d", r.Metric)
	}
	return s
}

// vxlanPeer is a node reached through the overlay.
type vxlanPeer struct {
	Node    string
	IP      netip.Addr // the peer's InternalIP: the tunnel's remote end
	Gateway netip.Addr // network address of the peer's first podCIDR
	MAC     string     // the peer's vxlan device address, vxlanMAC(Gateway)
}

// plan is the wanted routing state.
type plan struct {
	Routes []route     // sorted by destination
	Peers  []vxlanPeer // overlay peers, sorted by node name
	// OverlayAddr is the address the vxlan device carries: the network
	// address of this node's own (first) podCIDR. Invalid when the node
	// has no podCIDR in the cluster CIDR.
	OverlayAddr netip.Addr
	// DeviceMAC is the vxlan device's address: vxlanMAC(OverlayAddr), or
	// when that is invalid vxlanMAC of the node IP (no peer can route to
	// a node without podCIDR, so then the address matters to no one).
	DeviceMAC string
	// Skipped gives, per node not routed (this node aside), why.
	Skipped map[string]string
}

// vxlanMAC is the address of the vxlan device of the node whose podCIDR
// has the network address ip: 0e:4b followed by the address's four bytes
// (a locally administered unicast address). Peers compute it from the
// same Node field the owner does, instead of exchanging it.
func vxlanMAC(ip netip.Addr) string {
	b := ip.As4()
	return net.HardwareAddr{0x0e, 0x4b, b[0], b[1], b[2], b[3]}.String()
}

// makePlan decides the routes for this node (cfg, defaulted) given every
// Node and the machine's addresses.
func makePlan(cfg Config, nodes []nodeInfo, addrs []hostAddr) plan {
	p := plan{Skipped: map[string]string{}}
	vx := cfg.VXLAN.Name
	nodes = slices.Clone(nodes)
	slices.SortFunc(nodes, func(a, b nodeInfo) int { return strings.Compare(a.Name, b.Name) })

	inCluster := func(c netip.Prefix) bool {
		return c.Bits() >= cfg.ClusterCIDR.Bits() && cfg.ClusterCIDR.Contains(c.Addr())
	}
	// claimed holds the podCIDRs already given a route (or this node's
	// own), so a node overlapping an earlier one is not routed.
	var claimed, own []netip.Prefix
	for _, n := range nodes {
		if n.Name == cfg.NodeName {
			for _, c := range n.PodCIDRs {
				if inCluster(c) {
					own = append(own, c)
				}
			}
		}
	}
	claimed = append(claimed, own...)

	for _, n := range nodes {
		if n.Name == cfg.NodeName {
			continue
		}
		if len(n.PodCIDRs) == 0 {
			p.Skipped[n.Name] = "no IPv4 podCIDR"
			continue
		}
		var cidrs []netip.Prefix
		for _, c := range n.PodCIDRs {
			if inCluster(c) {
				cidrs = append(cidrs, c)
			}
		}
		if len(cidrs) == 0 {
			p.Skipped[n.Name] = fmt.Sprintf("podCIDR %s is outside the cluster CIDR %s", n.PodCIDRs[0], cfg.ClusterCIDR)
			continue
		}
		if !n.IP.IsValid() {
			p.Skipped[n.Name] = "no IPv4 InternalIP"
			continue
		}
		if a, ok := localAddr(addrs, n.IP, vx); ok {
			p.Skipped[n.Name] = fmt.Sprintf("InternalIP %s is an address of this machine (dev %s)", n.IP, a.Dev)
			continue
		}
		if reason := overlap(cidrs, addrs, claimed, vx); reason != "" {
			p.Skipped[n.Name] = reason
			continue
		}
		if a, ok := connected(addrs, n.IP, vx); ok {
			for _, c := range cidrs {
				p.Routes = append(p.Routes, route{Dst: c, Gateway: n.IP, Dev: a.Dev})
			}
		} else if cfg.VXLAN.Disabled {
			p.Skipped[n.Name] = fmt.Sprintf("InternalIP %s is not on a shared subnet and VXLAN is disabled", n.IP)
			continue
		} else {
			gw := cidrs[0].Addr()
			p.Peers = append(p.Peers, vxlanPeer{Node: n.Name, IP: n.IP, Gateway: gw, MAC: vxlanMAC(gw)})
			for _, c := range cidrs {
				p.Routes = append(p.Routes, route{Dst: c, Gateway: gw, Dev: vx, OnLink: true})
			}
		}
		claimed = append(claimed, cidrs...)
	}
	p.DeviceMAC = vxlanMAC(cfg.NodeIP)
	if len(own) > 0 {
		p.OverlayAddr = own[0].Addr()
		p.DeviceMAC = vxlanMAC(p.OverlayAddr)
	}
	slices.SortFunc(p.Routes, func(a, b route) int { return comparePrefix(a.Dst, b.Dst) })
	return p
}

// localAddr finds ip among the machine's addresses: an exact match, or
// inside a host-scope prefix such as 127.0.0.0/8.
func localAddr(addrs []hostAddr, ip netip.Addr, skipDev string) (hostAddr, bool) {
	for _, a := range addrs {
		if a.Dev == skipDev {
			continue
		}
		if a.Prefix.Addr() == ip || (a.Scope == "host" && a.Prefix.Masked().Contains(ip)) {
			return a, true
		}
	}
	return hostAddr{}, false
}

// connected finds the interface whose subnet holds ip (the longest such
// prefix), among interfaces that are up, ignoring host-scope addresses,
// host (/32) prefixes and the vxlan device.
func connected(addrs []hostAddr, ip netip.Addr, skipDev string) (hostAddr, bool) {
	var best hostAddr
	found := false
	for _, a := range addrs {
		if a.Dev == skipDev || !a.Up || a.Scope == "host" || a.Prefix.Bits() >= 32 {
			continue
		}
		if a.Prefix.Masked().Contains(ip) && (!found || a.Prefix.Bits() > best.Prefix.Bits()) {
			best, found = a, true
		}
	}
	return best, found
}

// overlap says why cidrs cannot be routed: a local interface prefix lies
// inside one (that pod network, or part of it, is on this machine already)
// or one overlaps a podCIDR already claimed. A wider local prefix holding a
// podCIDR, such as a 10.0.0.0/8 LAN, is no obstacle: the podCIDR's route is
// more specific.
func overlap(cidrs []netip.Prefix, addrs []hostAddr, claimed []netip.Prefix, skipDev string) string {
	for _, c := range cidrs {
		for _, a := range addrs {
			if a.Dev != skipDev && a.Scope != "host" && a.Prefix.Bits() >= c.Bits() && c.Contains(a.Prefix.Addr()) {
				return fmt.Sprintf("podCIDR %s overlaps %s on local interface %s", c, a.Prefix, a.Dev)
			}
		}
		for _, o := range claimed {
			if o.Overlaps(c) {
				return fmt.Sprintf("podCIDR %s overlaps podCIDR %s of another node", c, o)
			}
		}
	}
	return ""
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}
