package sim

import (
	"fmt"
	"net/netip"
	"sync"

	"k8s.io/apimachinery/pkg/types"
)

// ipam hands out pod addresses from each node's /24: .2 to .254, lowest
// free first. It lives in memory; after a restart of the simulator it
// relearns the addresses of running pods as it sees them (claim).
type ipam struct {
	mu     sync.Mutex
	byNode map[string]map[netip.Addr]string // node -> address -> pod key
	byPod  map[string]lease                 // pod key -> its address
}

type lease struct {
	node string
	uid  types.UID
	addr netip.Addr
}

func newIPAM() *ipam {
	return &ipam{byNode: map[string]map[netip.Addr]string{}, byPod: map[string]lease{}}
}

// assign returns the address of the pod key (with uid) on node n, keeping
// the one it has (have, from its status) when that is free and in range.
func (m *ipam) assign(n simNode, key string, uid types.UID, have string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if l, ok := m.byPod[key]; ok {
		if l.uid == uid && l.node == n.name {
			return l.addr.String(), nil
		}
		m.releaseLocked(key)
	}
	used := m.byNode[n.name]
	if used == nil {
		used = map[netip.Addr]string{}
		m.byNode[n.name] = used
	}
	take := func(a netip.Addr) string {
		used[a] = key
		m.byPod[key] = lease{node: n.name, uid: uid, addr: a}
		return a.String()
	}
	if a, err := netip.ParseAddr(have); err == nil && n.cidr.Contains(a) && hostPart(a) >= 2 && hostPart(a) <= 254 {
		if _, taken := used[a]; !taken {
			return take(a), nil
		}
	}
	for h := uint32(2); h <= 254; h++ {
		a := addToAddr(n.cidr.Addr(), h)
		if _, taken := used[a]; !taken {
			return take(a), nil
		}
	}
	return "", fmt.Errorf("node %s: no free pod address in %s", n.name, n.cidr)
}

// release frees the pod key's address, if it has one.
func (m *ipam) release(key string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.releaseLocked(key)
}

func (m *ipam) releaseLocked(key string) {
	l, ok := m.byPod[key]
	if !ok {
		return
	}
	delete(m.byPod, key)
	if used := m.byNode[l.node]; used != nil && used[l.addr] == key {
		delete(used, l.addr)
	}
}

func hostPart(a netip.Addr) uint32 { return uint32(a.As4()[3]) }
