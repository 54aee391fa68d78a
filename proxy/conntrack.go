package proxy

import (
	"fmt"
	"net"
	"net/netip"
	"sort"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// A UDP flow's conntrack entry keeps its NAT for as long as packets keep
// coming: a client that reuses its source port (a long-lived socket, a
// tunnel) would go on sending to an endpoint that left the Service, or keep
// being rejected after the Service got endpoints. As kube-proxy does, the
// proxy deletes those entries once its rules have changed: the flows
// answered by an endpoint that is gone, and the flows to a service address
// that had no endpoint and now has some. TCP needs none of this: a new
// connection is a new entry.

// udpStale lists what a sync from prev to want leaves stale: endpoints UDP
// traffic no longer goes to, and UDP service addresses that now have
// endpoints. Both are sorted.
func udpStale(prev, want *ruleset) (endpoints, revived []netip.AddrPort) {
	if prev == nil {
		return nil, nil
	}
	for ep := range prev.udpEndpoints {
		if !want.udpEndpoints[ep] {
			endpoints = append(endpoints, ep)
		}
	}
	for svc := range prev.udpRejected {
		if !want.udpRejected[svc] {
			revived = append(revived, svc)
		}
	}
	less := func(s []netip.AddrPort) func(i, j int) bool {
		return func(i, j int) bool { return s[i].Compare(s[j]) < 0 }
	}
	sort.Slice(endpoints, less(endpoints))
	sort.Slice(revived, less(revived))
	return endpoints, revived
}

// conntrackFilter matches UDP flows whose reply comes from one of the
// endpoints, or whose original destination is one of the service
// addresses.
type conntrackFilter struct {
	endpoints, services map[netip.AddrPort]bool
}

func addrPort(ip net.IP, port uint16) netip.AddrPort {
	a, _ := netip.AddrFromSlice(ip)
	return netip.AddrPortFrom(a.Unmap(), port)
}

// MatchConntrackFlow implements netlink.CustomConntrackFilter.
func (f conntrackFilter) MatchConntrackFlow(flow *netlink.ConntrackFlow) bool {
	if flow.Forward.Protocol != unix.IPPROTO_UDP {
		return false
	}
	return f.endpoints[addrPort(flow.Reverse.SrcIP, flow.Reverse.SrcPort)] ||
		f.services[addrPort(flow.Forward.DstIP, flow.Forward.DstPort)]
}

// flushConntrack deletes the conntrack entries of stale UDP flows in this
// network namespace and returns how many there were.
func flushConntrack(endpoints, revived []netip.AddrPort) (uint, error) {
	if len(endpoints) == 0 && len(revived) == 0 {
		return 0, nil
	}
	f := conntrackFilter{endpoints: map[netip.AddrPort]bool{}, services: map[netip.AddrPort]bool{}}
	for _, e := range endpoints {
		f.endpoints[e] = true
	}
	for _, s := range revived {
		f.services[s] = true
	}
	n, err := netlink.ConntrackDeleteFilters(netlink.ConntrackTable, unix.AF_INET, f)
	if err != nil {
		return n, fmt.Errorf("deleting stale UDP conntrack entries: %w", err)
	}
	return n, nil
}
