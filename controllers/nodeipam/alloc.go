package nodeipam

import (
	"errors"
	"fmt"
	"net/netip"
)

// allocator hands out fixed-size subnets of a cluster CIDR, lowest first.
type allocator struct {
	cluster netip.Prefix
	bits    int // size of each node subnet
	used    map[netip.Prefix]string
}

func newAllocator(cluster netip.Prefix, nodeBits int) (*allocator, error) {
	cluster = cluster.Masked()
	if !cluster.Addr().Is4() {
		return nil, errors.New("nodeipam: only IPv4 cluster CIDRs are supported")
	}
	if nodeBits < cluster.Bits() || nodeBits > 30 {
		return nil, fmt.Errorf("nodeipam: node mask /%d does not fit cluster CIDR %s", nodeBits, cluster)
	}
	return &allocator{cluster: cluster, bits: nodeBits, used: map[netip.Prefix]string{}}, nil
}

// occupy records a subnet a node already has. It reports false when the
// subnet is not one of this allocator's or another node holds it.
func (a *allocator) occupy(p netip.Prefix, node string) bool {
	if p.Bits() != a.bits || !a.cluster.Contains(p.Addr()) || p.Masked() != p {
		return false
	}
	if owner, ok := a.used[p]; ok && owner != node {
		return false
	}
	a.used[p] = node
	return true
}

func (a *allocator) release(p netip.Prefix, node string) {
	if a.used[p] == node {
		delete(a.used, p)
	}
}

// next returns the lowest free subnet and records it for node.
func (a *allocator) next(node string) (netip.Prefix, error) {
	count := 1 << (a.bits - a.cluster.Bits())
	step := uint32(1) << (32 - a.bits)
	base := a.cluster.Addr().As4()
	start := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	for i := 0; i < count; i++ {
		v := start + uint32(i)*step
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), a.bits)
		if _, taken := a.used[p]; !taken {
			a.used[p] = node
			return p, nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("nodeipam: cluster CIDR %s has no free /%d left", a.cluster, a.bits)
}
