package routes

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/skiff-sh/skiff/internal/netnstest"
)

// The network test builds three machines as network namespaces. m1 and m2
// share LAN A, m3 sits on LAN B; a router namespace joins the LANs with
// two bridges but knows nothing of pods. Each machine has a pod bridge on
// its podCIDR with one "pod" namespace behind it. m1 and m2 reach each
// other's pods by host-gw; m3 is reached only through VXLAN.
//
//	pod1 -- m1 (172.30.1.1, 10.77.1.0/24) --+
//	pod2 -- m2 (172.30.1.2, 10.77.2.0/24) --+-- lanA [router] lanB -- m3 (172.30.2.3, 10.77.3.0/24) -- pod3

const (
	testCluster = "10.77.0.0/16"
	testVX      = "skvx"
)

type machine struct {
	name, ns, pod string // node name, machine and pod namespaces
	ip            string // LAN address
	lan, gw       string // router bridge and the router's address on it
	podCIDR       string
	podIP         string
	podTh         *netnstest.Thread
}

func (m *machine) cfg() Config {
	return Config{
		NodeName:     m.name,
		NodeIP:       netip.MustParseAddr(m.ip),
		ClusterCIDR:  netip.MustParsePrefix(testCluster),
		VXLAN:        VXLANConfig{Name: testVX},
		ResyncPeriod: 300 * time.Millisecond,
	}
}

func (m *machine) cmds() iproute { return iproute{run: nsRunner(m.ns)} }

func testNode(name, ip string, cidrs ...string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if len(cidrs) > 0 {
		n.Spec.PodCIDR = cidrs[0]
		n.Spec.PodCIDRs = cidrs
	}
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: name}}
	if ip != "" {
		n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: ip})
	}
	return n
}

// buildLab makes the namespaces and links of the picture above.
func buildLab(t *testing.T) (router string, ms []*machine) {
	router = newNetns(t, "r")
	for _, br := range []struct{ name, addr string }{{"lanA", "172.30.1.254/24"}, {"lanB", "172.30.2.254/24"}} {
		inNS(t, router, "ip", "link", "add", br.name, "type", "bridge")
		inNS(t, router, "ip", "addr", "add", br.addr, "dev", br.name)
		inNS(t, router, "ip", "link", "set", br.name, "up")
	}
	inNS(t, router, "sysctl", "-qw", "net.ipv4.ip_forward=1")

	ms = []*machine{
		{name: "n1", ip: "172.30.1.1", lan: "lanA", gw: "172.30.1.254", podCIDR: "10.77.1.0/24", podIP: "10.77.1.10"},
		{name: "n2", ip: "172.30.1.2", lan: "lanA", gw: "172.30.1.254", podCIDR: "10.77.2.0/24", podIP: "10.77.2.10"},
		{name: "n3", ip: "172.30.2.3", lan: "lanB", gw: "172.30.2.254", podCIDR: "10.77.3.0/24", podIP: "10.77.3.10"},
	}
	for i, m := range ms {
		m.ns = newNetns(t, fmt.Sprintf("m%d", i+1))
		m.pod = newNetns(t, fmt.Sprintf("p%d", i+1))
		port := fmt.Sprintf("port%d", i+1)
		netnstest.Run(t, "ip", "-n", router, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", m.ns)
		inNS(t, router, "ip", "link", "set", port, "master", m.lan, "up")
		inNS(t, m.ns, "ip", "addr", "add", m.ip+"/24", "dev", "eth0")
		inNS(t, m.ns, "ip", "link", "set", "eth0", "up")
		inNS(t, m.ns, "ip", "route", "add", "default", "via", m.gw)
		inNS(t, m.ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")

		gwIP := strings.TrimSuffix(m.podCIDR, "0/24") + "1"
		inNS(t, m.ns, "ip", "link", "add", "pods", "type", "bridge")
		inNS(t, m.ns, "ip", "addr", "add", gwIP+"/24", "dev", "pods")
		inNS(t, m.ns, "ip", "link", "set", "pods", "up")
		netnstest.Run(t, "ip", "-n", m.ns, "link", "add", "vpod", "type", "veth", "peer", "name", "eth0", "netns", m.pod)
		inNS(t, m.ns, "ip", "link", "set", "vpod", "master", "pods", "up")
		inNS(t, m.pod, "ip", "addr", "add", m.podIP+"/24", "dev", "eth0")
		inNS(t, m.pod, "ip", "link", "set", "eth0", "up")
		inNS(t, m.pod, "ip", "route", "add", "default", "via", gwIP)

		m.podTh = netnstest.Enter(t, m.pod)
		serveWho(t, m.podTh, "pod"+fmt.Sprint(i+1))
	}
	return router, ms
}

// startSyncer runs a Syncer for m on client until the test ends (it is
// stopped by the returned function, or at cleanup, before the namespaces
// go).
func startSyncer(t *testing.T, client kubernetes.Interface, ns string, cfg Config) (stop func()) {
	t.Helper()
	cfg.Log = testLogger(t, cfg.NodeName)
	s, err := New(informers.NewSharedInformerFactory(client, 0), cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.ip = iproute{run: nsRunner(ns)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run of %s: %v", cfg.NodeName, err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// routeSet lists the namespace's routes of our protocol as strings.
func routeSet(ip iproute) ([]string, error) {
	rs, err := ip.ourRoutes(context.Background())
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range rs {
		out = append(out, r.String())
	}
	slices.Sort(out)
	return out, nil
}

func wantRoutes(ip iproute, want ...string) func() error {
	slices.Sort(want)
	return func() error {
		got, err := routeSet(ip)
		if err != nil {
			return err
		}
		if !slices.Equal(got, want) {
			return fmt.Errorf("routes %q, want %q", got, want)
		}
		return nil
	}
}

func wantAnswer(th *netnstest.Thread, ip, want string) func() error {
	return func() error {
		got, err := ask(th, ip)
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("answer %q, want %q", got, want)
		}
		return nil
	}
}

func TestPodNetwork(t *testing.T) {
	netnstest.Require(t, "ip", "bridge", "nsenter")
	_, ms := buildLab(t)
	m1, m2, m3 := ms[0], ms[1], ms[2]

	// Routes in m1 that are not the Syncer's, or are stale: one inside the
	// cluster CIDR of another protocol, one of our protocol outside it,
	// and one of ours for a podCIDR no node has.
	inNS(t, m1.ns, "ip", "route", "add", "10.77.200.0/24", "via", "172.30.1.2", "proto", "boot")
	inNS(t, m1.ns, "ip", "route", "add", "10.99.0.0/24", "via", "172.30.1.2", "proto", "221")
	inNS(t, m1.ns, "ip", "route", "add", "10.77.50.0/24", "via", "172.30.1.2", "proto", "221")

	client := fake.NewClientset(
		testNode("n1", m1.ip, m1.podCIDR),
		testNode("n2", m2.ip, m2.podCIDR),
		testNode("n3", m3.ip, m3.podCIDR),
		testNode("pending", "172.30.1.9"), // no podCIDR yet
	)
	stops := map[string]func(){}
	for _, m := range ms {
		stops[m.name] = startSyncer(t, client, m.ns, m.cfg())
	}

	// Another cluster's agent in m1's namespace, with its own CIDR and
	// device name: the two must leave each other's routes alone.
	other := fake.NewClientset(
		testNode("x1", m1.ip, "10.88.1.0/24"),
		testNode("x2", m2.ip, "10.88.2.0/24"),
	)
	otherCfg := Config{NodeName: "x1", NodeIP: netip.MustParseAddr(m1.ip), ClusterCIDR: netip.MustParsePrefix("10.88.0.0/16"),
		VXLAN: VXLANConfig{Name: "skvx-other", VNI: 2}, ResyncPeriod: 300 * time.Millisecond}
	startSyncer(t, other, m1.ns, otherCfg)

	// foreign is listed among m1's routes of our protocol throughout.
	foreign := "10.99.0.0/24 via 172.30.1.2 dev eth0"
	hostgw12 := "10.77.2.0/24 via 172.30.1.2 dev eth0"
	hostgw21 := "10.77.1.0/24 via 172.30.1.1 dev eth0"
	vx := func(cidr string) string {
		return cidr + " via " + strings.TrimSuffix(cidr, "/24") + " dev " + testVX + " onlink"
	}
	eventually(t, "m1 routes", wantRoutes(m1.cmds(), hostgw12, vx("10.77.3.0/24"), "10.88.2.0/24 via 172.30.1.2 dev eth0", foreign))
	eventually(t, "m2 routes", wantRoutes(m2.cmds(), hostgw21, vx("10.77.3.0/24")))
	eventually(t, "m3 routes", wantRoutes(m3.cmds(), vx("10.77.1.0/24"), vx("10.77.2.0/24")))
	if out := inNS(t, m1.ns, "ip", "route", "show", "10.77.200.0/24"); !strings.Contains(out, "10.77.200.0/24") {
		t.Errorf("foreign route in the cluster CIDR was removed: %q", out)
	}

	t.Run("pods reach each other", func(t *testing.T) {
		eventually(t, "pod1 to pod2 (host-gw)", wantAnswer(m1.podTh, m2.podIP, "pod2 saw "+m1.podIP))
		eventually(t, "pod2 to pod1 (host-gw)", wantAnswer(m2.podTh, m1.podIP, "pod1 saw "+m2.podIP))
		eventually(t, "pod1 to pod3 (vxlan)", wantAnswer(m1.podTh, m3.podIP, "pod3 saw "+m1.podIP))
		eventually(t, "pod3 to pod2 (vxlan)", wantAnswer(m3.podTh, m2.podIP, "pod2 saw "+m3.podIP))
		// The node itself enters the overlay from its gateway address.
		node1 := netnstest.Enter(t, m1.ns)
		eventually(t, "node m1 to pod3", wantAnswer(node1, m3.podIP, "pod3 saw 10.77.1.0"))
	})

	t.Run("the overlay device", func(t *testing.T) {
		l, err := m3.cmds().link(context.Background(), testVX)
		if err != nil || l == nil {
			t.Fatalf("no vxlan device in m3: %v", err)
		}
		want := linkState{Kind: "vxlan", VNI: 1, Local: netip.MustParseAddr(m3.ip), Port: 8472, MAC: "0e:4b:0a:4d:03:00", Up: true}
		if *l != want {
			t.Errorf("device %+v, want %+v", *l, want)
		}
		if out := inNS(t, m3.ns, "ip", "-o", "link", "show", testVX); !strings.Contains(out, "mtu 1450") {
			t.Errorf("vxlan MTU is not the LAN's less 50: %s", out)
		}
		if out := inNS(t, m3.ns, "ip", "-o", "-4", "addr", "show", "dev", testVX); !strings.Contains(out, "10.77.3.0/32") {
			t.Errorf("vxlan device lacks the gateway address: %s", out)
		}
		// m1's other cluster has no overlay peer, so no device.
		if l, err := m1.cmds().link(context.Background(), "skvx-other"); err != nil || l != nil {
			t.Errorf("unneeded device skvx-other: %+v, %v", l, err)
		}
	})

	t.Run("resync repairs removed state", func(t *testing.T) {
		inNS(t, m1.ns, "ip", "route", "del", "10.77.2.0/24")
		inNS(t, m1.ns, "bridge", "fdb", "del", "0e:4b:0a:4d:03:00", "dev", testVX, "dst", m3.ip, "self")
		inNS(t, m1.ns, "ip", "neigh", "del", "10.77.3.0", "dev", testVX)
		inNS(t, m3.ns, "ip", "link", "del", testVX)
		eventually(t, "m1 routes", wantRoutes(m1.cmds(), hostgw12, vx("10.77.3.0/24"), "10.88.2.0/24 via 172.30.1.2 dev eth0", foreign))
		eventually(t, "m3 routes", wantRoutes(m3.cmds(), vx("10.77.1.0/24"), vx("10.77.2.0/24")))
		eventually(t, "pod1 to pod2", wantAnswer(m1.podTh, m2.podIP, "pod2 saw "+m1.podIP))
		eventually(t, "pod1 to pod3", wantAnswer(m1.podTh, m3.podIP, "pod3 saw "+m1.podIP))
		eventually(t, "pod3 to pod1", wantAnswer(m3.podTh, m1.podIP, "pod1 saw "+m3.podIP))
	})

	t.Run("a node's address changes", func(t *testing.T) {
		inNS(t, m2.ns, "ip", "addr", "add", "172.30.1.22/24", "dev", "eth0")
		n2, err := client.CoreV1().Nodes().Get(context.Background(), "n2", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		n2.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "172.30.1.22"}}
		if _, err := client.CoreV1().Nodes().Update(context.Background(), n2, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "m1 route replaced", wantRoutes(m1.cmds(), "10.77.2.0/24 via 172.30.1.22 dev eth0", vx("10.77.3.0/24"),
			"10.88.2.0/24 via 172.30.1.2 dev eth0", foreign))
		eventually(t, "m3 forwarding entry replaced", func() error {
			fdb, err := m3.cmds().fdb(context.Background(), testVX)
			if err != nil {
				return err
			}
			if !slices.Contains(fdb, fdbEntry{MAC: "0e:4b:0a:4d:02:00", Dst: netip.MustParseAddr("172.30.1.22"), Permanent: true}) ||
				slices.ContainsFunc(fdb, func(e fdbEntry) bool { return e.Dst == netip.MustParseAddr(m2.ip) }) {
				return fmt.Errorf("fdb %v", fdb)
			}
			return nil
		})
		eventually(t, "pod1 to pod2", wantAnswer(m1.podTh, m2.podIP, "pod2 saw "+m1.podIP))
		eventually(t, "pod3 to pod2", wantAnswer(m3.podTh, m2.podIP, "pod2 saw "+m3.podIP))
	})

	t.Run("a deleted node loses its routes", func(t *testing.T) {
		if err := client.CoreV1().Nodes().Delete(context.Background(), "n3", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "m1 routes", wantRoutes(m1.cmds(), "10.77.2.0/24 via 172.30.1.22 dev eth0", "10.88.2.0/24 via 172.30.1.2 dev eth0", foreign))
		eventually(t, "m2 routes", wantRoutes(m2.cmds(), hostgw21))
		// No overlay peer is left for m1 and m2: their devices go.
		for _, m := range []*machine{m1, m2} {
			eventually(t, m.name+" vxlan device removed", func() error {
				l, err := m.cmds().link(context.Background(), testVX)
				if err != nil || l != nil {
					return fmt.Errorf("device %+v, err %v", l, err)
				}
				return nil
			})
		}
		eventually(t, "pod1 to pod2", wantAnswer(m1.podTh, m2.podIP, "pod2 saw "+m1.podIP))
	})

	t.Run("routes outlive the syncer; Cleanup removes only ours", func(t *testing.T) {
		for _, stop := range stops {
			stop()
		}
		time.Sleep(200 * time.Millisecond)
		if err := wantRoutes(m3.cmds(), vx("10.77.1.0/24"), vx("10.77.2.0/24"))(); err != nil {
			t.Errorf("after Run returned: %v", err)
		}
		for _, m := range ms {
			if err := cleanup(context.Background(), m.cfg(), m.cmds()); err != nil {
				t.Fatalf("cleanup %s: %v", m.name, err)
			}
		}
		// m1 keeps the other cluster's route; nothing else of ours is left.
		if err := wantRoutes(m1.cmds(), "10.88.2.0/24 via 172.30.1.2 dev eth0", foreign)(); err != nil {
			t.Error(err)
		}
		for _, m := range ms[1:] {
			if err := wantRoutes(m.cmds())(); err != nil {
				t.Errorf("%s: %v", m.name, err)
			}
		}
		if l, err := m3.cmds().link(context.Background(), testVX); err != nil || l != nil {
			t.Errorf("m3 vxlan device after cleanup: %+v, %v", l, err)
		}
		if out := inNS(t, m1.ns, "ip", "route", "show", "10.77.200.0/24"); !strings.Contains(out, "10.77.200.0/24") {
			t.Errorf("cleanup removed a route of another protocol: %q", out)
		}
		// Cleanup twice is fine.
		if err := cleanup(context.Background(), m3.cfg(), m3.cmds()); err != nil {
			t.Errorf("second cleanup: %v", err)
		}
		if err := cleanup(context.Background(), otherCfg, m1.cmds()); err != nil {
			t.Fatal(err)
		}
		if err := wantRoutes(m1.cmds(), foreign)(); err != nil {
			t.Error(err)
		}
	})
}
