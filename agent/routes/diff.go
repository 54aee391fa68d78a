package routes

import (
	"fmt"
	"net/netip"
	"slices"
)

// This file compares the kernel's state with a plan: pure functions that
// say what to add, replace and delete.

// routeOps are the route changes that bring the kernel in line.
type routeOps struct {
	Replace []route // "ip route replace": missing or different
	Delete  []route // ours but no longer wanted
}

// diffRoutes compares current (routes of our protocol in the main table)
// with desired. Routes outside cluster are not ours, whatever their
// protocol, and are left alone. A desired route counts as present only
// with the same gateway, device, onlink flag and metric; a route of ours
// whose destination is wanted at another metric is deleted, since
// replacing at the wanted metric would not remove it.
func diffRoutes(cluster netip.Prefix, current, desired []route) routeOps {
	var ops routeOps
	want := map[netip.Prefix]route{}
	for _, r := range desired {
		want[r.Dst] = r
	}
	have := map[netip.Prefix]bool{}
	for _, r := range current {
		if !(r.Dst.Bits() >= cluster.Bits() && cluster.Contains(r.Dst.Addr())) {
			continue
		}
		w, ok := want[r.Dst]
		switch {
		case !ok || r.Metric != w.Metric:
			ops.Delete = append(ops.Delete, r)
		case r == w:
			have[r.Dst] = true
		}
	}
	for _, r := range desired {
		if !have[r.Dst] {
			ops.Replace = append(ops.Replace, r)
		}
	}
	return ops
}

// fdbEntry is a forwarding entry of the vxlan device: frames for MAC go
// to the tunnel endpoint Dst.
type fdbEntry struct {
	MAC       string
	Dst       netip.Addr
	Permanent bool
}

// diffFDB gives the forwarding entries to delete (unwanted MAC and
// destination pairs) and to replace (missing or not permanent).
func diffFDB(current []fdbEntry, peers []vxlanPeer) (del, replace []fdbEntry) {
	want := map[fdbEntry]bool{}
	for _, p := range peers {
		want[fdbEntry{MAC: p.MAC, Dst: p.IP, Permanent: true}] = true
	}
	have := map[fdbEntry]bool{}
	for _, e := range current {
		k := fdbEntry{MAC: e.MAC, Dst: e.Dst, Permanent: true}
		switch {
		case !want[k]:
			del = append(del, e)
		case e.Permanent:
			have[k] = true
		}
	}
	seen := map[fdbEntry]bool{}
	for _, p := range peers {
		k := fdbEntry{MAC: p.MAC, Dst: p.IP, Permanent: true}
		if !have[k] && !seen[k] {
			seen[k] = true
			replace = append(replace, k)
		}
	}
	return del, replace
}

// neighEntry is an IPv4 neighbour entry of the vxlan device.
type neighEntry struct {
	Dst       netip.Addr
	MAC       string
	Permanent bool
}

// diffNeigh gives the neighbour entries to delete (addresses not wanted)
// and to replace (missing, another MAC, or not permanent).
func diffNeigh(current []neighEntry, peers []vxlanPeer) (del, replace []neighEntry) {
	want := map[netip.Addr]string{}
	for _, p := range peers {
		want[p.Gateway] = p.MAC
	}
	have := map[netip.Addr]bool{}
	for _, e := range current {
		mac, ok := want[e.Dst]
		switch {
		case !ok:
			del = append(del, e)
		case e.MAC == mac && e.Permanent:
			have[e.Dst] = true
		}
	}
	for _, p := range peers {
		if !have[p.Gateway] {
			have[p.Gateway] = true
			replace = append(replace, neighEntry{Dst: p.Gateway, MAC: p.MAC, Permanent: true})
		}
	}
	return del, replace
}

// diffAddrs gives the addresses of the vxlan device to delete and whether
// the wanted one (a /32; none when invalid) must be added.
func diffAddrs(current []netip.Prefix, want netip.Addr) (del []netip.Prefix, add bool) {
	wantP := netip.Prefix{}
	if want.IsValid() {
		wantP = netip.PrefixFrom(want, 32)
	}
	for _, p := range current {
		if p != wantP {
			del = append(del, p)
		}
	}
	return del, want.IsValid() && !slices.Contains(current, wantP)
}

// linkState is what the Syncer checks of an existing vxlan device.
type linkState struct {
	Kind     string // "vxlan" for a vxlan device
	VNI      int
	Local    netip.Addr
	Port     int
	Learning bool
	MAC      string
	Up       bool
}

// vxlanMismatch says why an existing device must be recreated, or "" when
// it has the wanted VNI, local address, port and learning off. A device
// that is not a vxlan device is an error: the name belongs to someone else.
func vxlanMismatch(l linkState, cfg Config) (string, error) {
	if l.Kind != "vxlan" {
		return "", fmt.Errorf("device %s exists and is not a vxlan device (kind %q)", cfg.VXLAN.Name, l.Kind)
	}
	switch {
	case l.VNI != cfg.VXLAN.VNI:
		return fmt.Sprintf("VNI %d, want %d", l.VNI, cfg.VXLAN.VNI), nil
	case l.Local != cfg.NodeIP:
		return fmt.Sprintf("local address %v, want %v", l.Local, cfg.NodeIP), nil
	case l.Port != cfg.VXLAN.Port:
		return fmt.Sprintf("port %d, want %d", l.Port, cfg.VXLAN.Port), nil
	case l.Learning:
		return "learning is on", nil
	}
	return "", nil
}
