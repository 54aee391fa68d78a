package routes

import (
	"net/netip"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func addr(s string) netip.Addr  { return netip.MustParseAddr(s) }

func node(name, ip string, cidrs ...string) nodeInfo {
	n := nodeInfo{Name: name}
	if ip != "" {
		n.IP = addr(ip)
	}
	for _, c := range cidrs {
		n.PodCIDRs = append(n.PodCIDRs, pfx(c))
	}
	return n
}

func testConfig() Config {
	return Config{
		NodeName:    "a",
		NodeIP:      addr("192.168.1.1"),
		ClusterCIDR: pfx("10.42.0.0/16"),
		VXLAN:       VXLANConfig{Name: "vx"},
	}.withDefaults()
}

// lan is a machine with a LAN address, a pod bridge and loopback.
var lan = []hostAddr{
	{Dev: "lo", Prefix: pfx("127.0.0.1/8"), Scope: "host", Up: true, MTU: 65536},
	{Dev: "eth0", Prefix: pfx("192.168.1.1/24"), Scope: "global", Up: true, MTU: 1500},
	{Dev: "skiff0", Prefix: pfx("10.42.1.1/24"), Scope: "global", Up: true, MTU: 1500},
}

func TestMakePlan(t *testing.T) {
	self := node("a", "192.168.1.1", "10.42.1.0/24")
	tests := []struct {
		name   string
		cfg    func(*Config)
		nodes  []nodeInfo
		addrs  []hostAddr
		routes []route
		peers  []vxlanPeer
		// noOverlay: this node has no podCIDR, so no overlay address;
		// otherwise it is 10.42.1.0.
		noOverlay bool
		skipped   []string
	}{{
		name:   "peer on the LAN: host-gw",
		nodes:  []nodeInfo{self, node("b", "192.168.1.2", "10.42.2.0/24")},
		routes: []route{{Dst: pfx("10.42.2.0/24"), Gateway: addr("192.168.1.2"), Dev: "eth0"}},
	}, {
		name:  "peer elsewhere: vxlan through the peer's podCIDR network address",
		nodes: []nodeInfo{self, node("c", "172.16.0.3", "10.42.3.0/24")},
		routes: []route{
			{Dst: pfx("10.42.3.0/24"), Gateway: addr("10.42.3.0"), Dev: "vx", OnLink: true},
		},
		peers: []vxlanPeer{{Node: "c", IP: addr("172.16.0.3"), Gateway: addr("10.42.3.0"), MAC: "0e:4b:0a:2a:03:00"}},
	}, {
		name:    "vxlan disabled: peer elsewhere is skipped",
		cfg:     func(c *Config) { c.VXLAN.Disabled = true },
		nodes:   []nodeInfo{self, node("b", "192.168.1.2", "10.42.2.0/24"), node("c", "172.16.0.3", "10.42.3.0/24")},
		routes:  []route{{Dst: pfx("10.42.2.0/24"), Gateway: addr("192.168.1.2"), Dev: "eth0"}},
		skipped: []string{"c"},
	}, {
		name:  "mixed, routes sorted by destination, own node never routed",
		nodes: []nodeInfo{node("z", "172.16.0.9", "10.42.0.0/24"), node("b", "192.168.1.2", "10.42.2.0/24"), self},
		routes: []route{
			{Dst: pfx("10.42.0.0/24"), Gateway: addr("10.42.0.0"), Dev: "vx", OnLink: true},
			{Dst: pfx("10.42.2.0/24"), Gateway: addr("192.168.1.2"), Dev: "eth0"},
		},
		peers: []vxlanPeer{{Node: "z", IP: addr("172.16.0.9"), Gateway: addr("10.42.0.0"), MAC: "0e:4b:0a:2a:00:00"}},
	}, {
		name:      "own node without podCIDR: overlay has no address",
		nodes:     []nodeInfo{node("a", "192.168.1.1"), node("c", "172.16.0.3", "10.42.3.0/24")},
		addrs:     lan[:2],
		routes:    []route{{Dst: pfx("10.42.3.0/24"), Gateway: addr("10.42.3.0"), Dev: "vx", OnLink: true}},
		peers:     []vxlanPeer{{Node: "c", IP: addr("172.16.0.3"), Gateway: addr("10.42.3.0"), MAC: "0e:4b:0a:2a:03:00"}},
		noOverlay: true,
	}, {
		name: "nodes lacking podCIDR, in-cluster podCIDR or InternalIP are skipped",
		nodes: []nodeInfo{self,
			node("nocidr", "192.168.1.5"),
			node("outside", "192.168.1.6", "10.99.0.0/24"),
			node("wider", "192.168.1.7", "10.0.0.0/8"),
			node("noip", "", "10.42.8.0/24"),
		},
		skipped: []string{"nocidr", "noip", "outside", "wider"},
	}, {
		name: "peer address is this machine's: skipped",
		nodes: []nodeInfo{self,
			node("same", "192.168.1.1", "10.42.5.0/24"),
			node("loop", "127.0.0.2", "10.42.6.0/24"),
		},
		skipped: []string{"loop", "same"},
	}, {
		name:  "peer pod network already on a local interface (agents sharing a netns): skipped",
		nodes: []nodeInfo{self, node("b", "192.168.1.2", "10.42.2.0/24")},
		addrs: append(append([]hostAddr{}, lan...),
			hostAddr{Dev: "skiff1", Prefix: pfx("10.42.2.1/24"), Scope: "global", Up: true}),
		skipped: []string{"b"},
	}, {
		name:  "the vxlan device's own address does not hide a peer",
		nodes: []nodeInfo{self, node("b", "192.168.1.2", "10.42.2.0/24")},
		addrs: append(append([]hostAddr{}, lan...),
			hostAddr{Dev: "vx", Prefix: pfx("10.42.2.0/32"), Scope: "global", Up: true}),
		routes: []route{{Dst: pfx("10.42.2.0/24"), Gateway: addr("192.168.1.2"), Dev: "eth0"}},
	}, {
		name: "overlapping podCIDRs: own wins, then the first by name",
		nodes: []nodeInfo{self,
			node("b", "192.168.1.2", "10.42.1.0/25"),
			node("c", "192.168.1.3", "10.42.4.0/24"),
			node("d", "192.168.1.4", "10.42.4.0/23"),
		},
		routes:  []route{{Dst: pfx("10.42.4.0/24"), Gateway: addr("192.168.1.3"), Dev: "eth0"}},
		skipped: []string{"b", "d"},
	}, {
		name:  "longest matching subnet wins; down interfaces and /32s are not links",
		nodes: []nodeInfo{self, node("b", "10.9.1.2", "10.42.2.0/24"), node("c", "10.8.0.3", "10.42.3.0/24")},
		addrs: append(append([]hostAddr{}, lan...),
			hostAddr{Dev: "wide", Prefix: pfx("10.9.0.1/16"), Scope: "global", Up: true},
			hostAddr{Dev: "narrow", Prefix: pfx("10.9.1.1/24"), Scope: "global", Up: true},
			hostAddr{Dev: "down", Prefix: pfx("10.8.0.1/24"), Scope: "global", Up: false},
			hostAddr{Dev: "host", Prefix: pfx("10.8.0.3/32"), Scope: "global", Up: true}),
		skipped: []string{"c"}, // 10.8.0.3 is a local address
		routes:  []route{{Dst: pfx("10.42.2.0/24"), Gateway: addr("10.9.1.2"), Dev: "narrow"}},
	}, {
		name:  "down interface: vxlan",
		nodes: []nodeInfo{self, node("c", "10.8.0.3", "10.42.3.0/24")},
		addrs: append(append([]hostAddr{}, lan...),
			hostAddr{Dev: "down", Prefix: pfx("10.8.0.1/24"), Scope: "global", Up: false}),
		routes: []route{{Dst: pfx("10.42.3.0/24"), Gateway: addr("10.42.3.0"), Dev: "vx", OnLink: true}},
		peers:  []vxlanPeer{{Node: "c", IP: addr("10.8.0.3"), Gateway: addr("10.42.3.0"), MAC: "0e:4b:0a:2a:03:00"}},
	}, {
		name:  "a LAN prefix wider than the cluster CIDR is no obstacle",
		nodes: []nodeInfo{node("a", "10.0.0.1", "10.42.1.0/24"), node("b", "10.0.0.2", "10.42.2.0/24")},
		addrs: []hostAddr{
			{Dev: "eth0", Prefix: pfx("10.0.0.1/8"), Scope: "global", Up: true},
			{Dev: "skiff0", Prefix: pfx("10.42.1.1/24"), Scope: "global", Up: true},
		},
		routes: []route{{Dst: pfx("10.42.2.0/24"), Gateway: addr("10.0.0.2"), Dev: "eth0"}},
	}, {
		name:  "several podCIDRs: only those in the cluster CIDR, all via one gateway",
		nodes: []nodeInfo{self, node("c", "172.16.0.3", "10.42.3.0/24", "10.99.0.0/24", "10.42.30.0/24")},
		routes: []route{
			{Dst: pfx("10.42.3.0/24"), Gateway: addr("10.42.3.0"), Dev: "vx", OnLink: true},
			{Dst: pfx("10.42.30.0/24"), Gateway: addr("10.42.3.0"), Dev: "vx", OnLink: true},
		},
		peers: []vxlanPeer{{Node: "c", IP: addr("172.16.0.3"), Gateway: addr("10.42.3.0"), MAC: "0e:4b:0a:2a:03:00"}},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			addrs := tc.addrs
			if addrs == nil {
				addrs = lan
			}
			p := makePlan(cfg, tc.nodes, addrs)
			if !reflect.DeepEqual(p.Routes, tc.routes) {
				t.Errorf("routes:\n got %v\nwant %v", p.Routes, tc.routes)
			}
			if !reflect.DeepEqual(p.Peers, tc.peers) {
				t.Errorf("peers:\n got %+v\nwant %+v", p.Peers, tc.peers)
			}
			wantOverlay, wantMAC := addr("10.42.1.0"), "0e:4b:0a:2a:01:00"
			if tc.noOverlay {
				wantOverlay, wantMAC = netip.Addr{}, vxlanMAC(cfg.NodeIP)
			}
			if p.OverlayAddr != wantOverlay || p.DeviceMAC != wantMAC {
				t.Errorf("overlay address %v MAC %s, want %v %s", p.OverlayAddr, p.DeviceMAC, wantOverlay, wantMAC)
			}
			var skipped []string
			for _, n := range tc.nodes {
				if _, ok := p.Skipped[n.Name]; ok {
					skipped = append(skipped, n.Name)
				}
			}
			want := map[string]bool{}
			for _, s := range tc.skipped {
				want[s] = true
			}
			if len(skipped) != len(tc.skipped) {
				t.Errorf("skipped %v (%v), want %v", skipped, p.Skipped, tc.skipped)
			}
			for _, s := range skipped {
				if !want[s] {
					t.Errorf("skipped %v (%v), want %v", skipped, p.Skipped, tc.skipped)
				}
			}
		})
	}
}

func TestNodeInfoFrom(t *testing.T) {
	mk := func(cidr string, cidrs []string, addrs ...corev1.NodeAddress) *corev1.Node {
		return &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: "n"},
			Spec:       corev1.NodeSpec{PodCIDR: cidr, PodCIDRs: cidrs},
			Status:     corev1.NodeStatus{Addresses: addrs},
		}
	}
	internal := func(a string) corev1.NodeAddress { return corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: a} }
	external := func(a string) corev1.NodeAddress { return corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: a} }
	tests := []struct {
		name string
		node *corev1.Node
		want nodeInfo
	}{
		{"podCIDRs preferred", mk("10.1.0.0/24", []string{"10.2.0.0/24"}, internal("192.168.0.1")),
			node("n", "192.168.0.1", "10.2.0.0/24")},
		{"legacy podCIDR", mk("10.1.0.0/24", nil, internal("192.168.0.1")),
			node("n", "192.168.0.1", "10.1.0.0/24")},
		{"IPv6 and junk ignored, masked, deduplicated", mk("", []string{"fd00::/64", "10.3.0.7/24", "junk", "10.3.0.0/24"},
			internal("fd00::1"), internal("bad"), external("1.2.3.4"), internal("192.168.0.2"), internal("192.168.0.3")),
			node("n", "192.168.0.2", "10.3.0.0/24")},
		{"external address only", mk("10.1.0.0/24", nil, external("1.2.3.4")), node("n", "", "10.1.0.0/24")},
		{"IPv4-mapped InternalIP", mk("", nil, internal("::ffff:192.168.0.9")), node("n", "192.168.0.9")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := nodeInfoFrom(tc.node)
			if !got.equal(tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestVXLANMAC(t *testing.T) {
	for ip, want := range map[string]string{
		"10.251.0.3":      "0e:4b:0a:fb:00:03",
		"192.168.1.200":   "0e:4b:c0:a8:01:c8",
		"255.255.255.255": "0e:4b:ff:ff:ff:ff",
	} {
		if got := vxlanMAC(addr(ip)); got != want {
			t.Errorf("vxlanMAC(%s) = %s, want %s", ip, got, want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	good := Config{NodeName: "a", NodeIP: addr("192.168.1.1"), ClusterCIDR: pfx("10.42.0.0/16")}
	tests := []struct {
		name string
		mod  func(*Config)
		ok   bool
	}{
		{"defaults", func(*Config) {}, true},
		{"no node name", func(c *Config) { c.NodeName = "" }, false},
		{"IPv6 node IP", func(c *Config) { c.NodeIP = addr("fd00::1") }, false},
		{"no node IP", func(c *Config) { c.NodeIP = netip.Addr{} }, false},
		{"no cluster CIDR", func(c *Config) { c.ClusterCIDR = netip.Prefix{} }, false},
		{"IPv6 cluster CIDR", func(c *Config) { c.ClusterCIDR = pfx("fd00::/48") }, false},
		{"long device name", func(c *Config) { c.VXLAN.Name = "a-very-long-name" }, false},
		{"15-byte device name", func(c *Config) { c.VXLAN.Name = "a-very-long-nam" }, true},
		{"slash in device name", func(c *Config) { c.VXLAN.Name = "vx/1" }, false},
		{"VNI too big", func(c *Config) { c.VXLAN.VNI = 1 << 24 }, false},
		{"negative port", func(c *Config) { c.VXLAN.Port = -1 }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.mod(&c)
			err := c.withDefaults().validate()
			if (err == nil) != tc.ok {
				t.Errorf("validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
	d := good.withDefaults()
	if d.VXLAN.Name != DefaultVXLANName || d.VXLAN.VNI != 1 || d.VXLAN.Port != 8472 || d.ResyncPeriod != DefaultResyncPeriod || d.Log == nil {
		t.Errorf("defaults not applied: %+v", d)
	}
	if got := (Config{ClusterCIDR: pfx("10.42.7.0/16")}).withDefaults().ClusterCIDR; got != pfx("10.42.0.0/16") {
		t.Errorf("cluster CIDR not masked: %v", got)
	}
}
