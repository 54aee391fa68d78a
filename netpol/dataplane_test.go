package netpol

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/knftables"

	"github.com/skiff-sh/skiff/internal/netnstest"
	"github.com/skiff-sh/skiff/internal/nftables"
)

// topology is a node with three local pods on its bridge and a remote
// machine standing for another node (with a pod address) and the outside:
//
//	a (10.42.1.2) ─┐
//	b (10.42.1.3) ─┼─ pbr0 (10.42.1.1) node (192.0.2.10) ── remote (192.0.2.20; pod 10.42.2.5)
//	c (10.42.1.4) ─┘
//
// The node routes 10.42.2.0/24 to remote (host-gw); a test nat table in
// the node DNATs the "Service" 10.43.0.20:80 to b:8080.
type topology struct {
	node, a, b, c, remote string
	nodeT                 *netnstest.Thread
}

const (
	dpBridge  = "pbr0"
	dpA       = "10.42.1.2"
	dpB       = "10.42.1.3"
	dpC       = "10.42.1.4"
	dpRemote  = "10.42.2.5"
	dpOutside = "192.0.2.20"
	dpService = "10.43.0.20"
)

func newDataplaneTopology(t *testing.T) *topology {
	t.Helper()
	id := fmt.Sprintf("snp%d", os.Getpid()%100000)
	tp := &topology{node: id + "-node", a: id + "-a", b: id + "-b", c: id + "-c", remote: id + "-r"}
	for _, n := range []string{tp.node, tp.a, tp.b, tp.c, tp.remote} {
		netnstest.Create(t, n)
	}
	cmds := [][]string{
		{"ip", "-n", tp.node, "link", "add", dpBridge, "type", "bridge"},
		{"ip", "-n", tp.node, "addr", "add", "10.42.1.1/24", "dev", dpBridge},
		{"ip", "-n", tp.node, "link", "set", dpBridge, "up"},
		{"ip", "-n", tp.node, "link", "add", "vr", "type", "veth", "peer", "name", "eth0", "netns", tp.remote},
		{"ip", "-n", tp.node, "addr", "add", "192.0.2.10/24", "dev", "vr"},
		{"ip", "-n", tp.node, "link", "set", "vr", "up"},
		{"ip", "-n", tp.node, "route", "add", "10.42.2.0/24", "via", dpOutside},
		{"ip", "netns", "exec", tp.node, "sysctl", "-qw", "net.ipv4.ip_forward=1"},
		// Run must turn this back on (it is on by default in a new namespace).
		{"ip", "netns", "exec", tp.node, "sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=0"},
		{"ip", "-n", tp.remote, "addr", "add", dpOutside + "/24", "dev", "eth0"},
		{"ip", "-n", tp.remote, "addr", "add", dpRemote + "/32", "dev", "lo"},
		{"ip", "-n", tp.remote, "link", "set", "eth0", "up"},
		{"ip", "-n", tp.remote, "route", "add", "10.42.1.0/24", "via", "192.0.2.10"},
	}
	for _, p := range []struct{ ns, veth, ip string }{{tp.a, "va", dpA}, {tp.b, "vb", dpB}, {tp.c, "vc", dpC}} {
		cmds = append(cmds,
			[]string{"ip", "-n", tp.node, "link", "add", p.veth, "type", "veth", "peer", "name", "eth0", "netns", p.ns},
			[]string{"ip", "-n", tp.node, "link", "set", p.veth, "master", dpBridge, "up"},
			// As the CNI bridge plugin's hairpinMode, which Skiff sets: a pod
			// reaching itself through a Service goes back out its own port.
			[]string{"ip", "-n", tp.node, "link", "set", p.veth, "type", "bridge_slave", "hairpin", "on"},
			[]string{"ip", "-n", p.ns, "addr", "add", p.ip + "/24", "dev", "eth0"},
			[]string{"ip", "-n", p.ns, "link", "set", "eth0", "up"},
			[]string{"ip", "-n", p.ns, "route", "add", "default", "via", "10.42.1.1"},
		)
	}
	for _, c := range cmds {
		netnstest.Run(t, c...)
	}
	// The "service proxy": DNAT, and masquerade for a pod reaching itself.
	nat := exec.Command("ip", "netns", "exec", tp.node, "nft", "-f", "-")
	nat.Stdin = strings.NewReader(`table ip netpol-test-nat {
	chain pre {
		type nat hook prerouting priority dstnat; policy accept;
		ip daddr ` + dpService + ` tcp dport 80 dnat to ` + dpB + `:8080
	}
	chain post {
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr ` + dpB + ` ip daddr ` + dpB + ` masquerade
	}
}
`)
	if out, err := nat.CombinedOutput(); err != nil {
		t.Fatalf("nat table: %v\n%s", err, out)
	}
	tp.nodeT = netnstest.Enter(t, tp.node)
	for _, p := range []struct{ ns, ip string }{{tp.a, dpA}, {tp.b, dpB}, {tp.c, dpC}} {
		serveEcho(t, p.ns, p.ip+":8080")
		serveEcho(t, p.ns, p.ip+":9090")
	}
	serveEcho(t, tp.remote, dpRemote+":8080")
	serveEcho(t, tp.remote, dpOutside+":8080")
	return tp
}

// conn describes one connection attempt: from a namespace (from laddr
// when set) to target.
type conn struct {
	name   string
	ns     string
	laddr  string
	target string
	pass   bool
}

// expect makes every connection at once and checks which get through. A
// dropped SYN shows as a dial timeout; anything else (refused, reset) is a
// broken test setup.
func (tp *topology) expect(t *testing.T, step string, conns ...conn) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, len(conns))
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			timeout := 3 * time.Second
			if !c.pass {
				timeout = 600 * time.Millisecond
			}
			cn, err := dial(c.ns, c.laddr, c.target, timeout)
			if err == nil {
				err = echo(cn, 3*time.Second)
				cn.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, c := range conns {
		err := errs[i]
		switch {
		case c.pass && err != nil:
			t.Errorf("%s: %s (%s): want through, got %v", step, c.name, c.target, err)
		case !c.pass && err == nil:
			t.Errorf("%s: %s (%s): want dropped, got through", step, c.name, c.target)
		case !c.pass && !isTimeout(err):
			t.Errorf("%s: %s (%s): want a timeout, got %v", step, c.name, c.target, err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() && !errors.Is(err, unix.ECONNREFUSED)
}

// TestDataPlane runs the Enforcer against real nftables in a namespace
// standing for a node, with real TCP connections between pods.
func TestDataPlane(t *testing.T) {
	netnstest.Require(t, "ip", "nft")
	const table = "skiff-netpol-test"
	if netnstest.HostHasTable(t, table) {
		t.Fatalf("the host already has table ip %s", table)
	}
	tp := newDataplaneTopology(t)

	c := newCluster(t)
	c.addNamespace(namespace("default", lbl("team", "x")))
	c.addNamespace(namespace("other", lbl("team", "y")))
	c.addPod(pod("default", "a", "n1", dpA, lbl("app", "a"), "http:8080"))
	c.addPod(pod("default", "b", "n1", dpB, lbl("app", "b"), "http:8080", "metrics:9090"))
	c.addPod(pod("other", "c", "n1", dpC, lbl("app", "c")))
	c.addPod(pod("default", "r", "n2", dpRemote, lbl("app", "a"), "http:8080"))

	nft := netnstest.NewNFT(t, tp.nodeT, table)
	bridgeNF := func() (err error) {
		tp.nodeT.Do(func() { err = ensureBridgeNetfilter() })
		return err
	}
	e := startEnforcer(t, c, nft, Config{
		NodeName: "n1", Bridge: dpBridge, PodCIDR: netip.MustParsePrefix("10.42.1.0/24"),
		TableName: table, MinSyncInterval: 10 * time.Millisecond,
	}, bridgeNF)
	waitProgrammed(t, e, c)
	if netnstest.HostHasTable(t, table) {
		t.Fatalf("the enforcer programmed the host's ruleset")
	}
	if got := strings.TrimSpace(netnstest.Run(t, "ip", "netns", "exec", tp.node, "cat", bridgeNFSysctl)); got != "1" {
		t.Fatalf("bridge-nf-call-iptables in the node namespace is %q after Run, want 1", got)
	}

	a := func(target string, pass bool) conn { return conn{"a->" + target, tp.a, "", target, pass} }
	b := func(target string, pass bool) conn { return conn{"b->" + target, tp.b, "", target, pass} }
	cc := func(target string, pass bool) conn { return conn{"c->" + target, tp.c, "", target, pass} }
	r := func(target string, pass bool) conn {
		return conn{"remote pod->" + target, tp.remote, dpRemote, target, pass}
	}
	node := func(target string, pass bool) conn { return conn{"node->" + target, tp.node, "", target, pass} }
	hp := func(ip string, port int) string { return fmt.Sprintf("%s:%d", ip, port) }

	tp.expect(t, "no policy",
		a(hp(dpB, 8080), true), cc(hp(dpB, 8080), true), r(hp(dpB, 8080), true),
		a(hp(dpRemote, 8080), true), a(hp(dpOutside, 8080), true), b(hp(dpA, 8080), true),
		a(hp(dpService, 80), true), b(hp(dpService, 80), true))

	// A connection made now must survive the policies that follow.
	long, err := dial(tp.c, "", hp(dpB, 8080), 3*time.Second)
	if err != nil {
		t.Fatalf("long-lived connection: %v", err)
	}
	defer long.Close()

	c.setPolicy(policy("default", "deny-b", sel("app", "b")))
	waitProgrammed(t, e, c)
	tp.expect(t, "b isolated for ingress",
		a(hp(dpB, 8080), false), cc(hp(dpB, 8080), false), r(hp(dpB, 8080), false),
		a(hp(dpService, 80), false),
		node(hp(dpB, 8080), true), // the node always reaches its pods
		b(hp(dpA, 8080), true), b(hp(dpRemote, 8080), true), a(hp(dpC, 8080), true))
	if err := echo(long, 3*time.Second); err != nil {
		t.Errorf("established connection cut by a new policy: %v", err)
	}

	c.setPolicy(policy("default", "allow.from-a", sel("app", "b"),
		ingressRule(peers(podPeer(sel("app", "a"))), namedPort("TCP", "http"))))
	waitProgrammed(t, e, c)
	tp.expect(t, "b open to app=a on its http port",
		a(hp(dpB, 8080), true), a(hp(dpB, 9090), false), r(hp(dpB, 8080), true),
		cc(hp(dpB, 8080), false), a(hp(dpService, 80), true))

	c.setPolicy(policy("default", "from-team-y", sel("app", "b"),
		ingressRule(peers(nsPeer(sel("team", "y"))), port("TCP", 9000, 9100))))
	waitProgrammed(t, e, c)
	tp.expect(t, "policies add up",
		cc(hp(dpB, 9090), true), cc(hp(dpB, 8080), false), cc(hp(dpService, 80), false),
		a(hp(dpB, 8080), true), a(hp(dpB, 9090), false))

	c.setPolicy(policy("default", "a-egress", sel("app", "a"), types(egr),
		egressRule(peers(podPeer(sel("app", "b"))), port("TCP", 8080)),
		egressRule(peers(blockPeer("192.0.2.0/24")))))
	waitProgrammed(t, e, c)
	tp.expect(t, "a isolated for egress",
		a(hp(dpB, 8080), true), a(hp(dpService, 80), true), a(hp(dpB, 9090), false),
		a(hp(dpC, 8080), false), a(hp(dpRemote, 8080), false), a(hp(dpOutside, 8080), true),
		b(hp(dpA, 8080), true), r(hp(dpA, 8080), true))

	c.setPolicy(policy("default", "a-egress", sel("app", "a"), types(egr),
		egressRule(peers(podPeer(sel("app", "b"))), port("TCP", 8080)),
		egressRule(peers(blockPeer("192.0.2.0/24", "192.0.2.16/28"), blockPeer("10.42.2.0/24")))))
	waitProgrammed(t, e, c)
	tp.expect(t, "a's ipBlock changed",
		a(hp(dpOutside, 8080), false), a(hp(dpRemote, 8080), true), a(hp(dpB, 8080), true))

	c.setPolicy(policy("default", "b-egress", sel("app", "b"), types(egr)))
	waitProgrammed(t, e, c)
	tp.expect(t, "b isolated both ways",
		a(hp(dpB, 8080), true), // replies always pass
		b(hp(dpA, 8080), false), b(hp(dpRemote, 8080), false), b(hp(dpOutside, 8080), false),
		b(hp(dpService, 80), true)) // a pod reaching itself through a Service
	if err := echo(long, 3*time.Second); err != nil {
		t.Errorf("established connection cut by a new policy: %v", err)
	}

	for _, name := range []string{"deny-b", "allow.from-a", "from-team-y", "a-egress", "b-egress"} {
		c.deletePolicy("default", name)
	}
	waitProgrammed(t, e, c)
	tp.expect(t, "policies deleted",
		a(hp(dpB, 9090), true), cc(hp(dpB, 8080), true), b(hp(dpA, 8080), true),
		a(hp(dpC, 8080), true), b(hp(dpOutside, 8080), true))

	if err := nftables.DeleteTable(context.Background(), nft, table); err != nil {
		t.Fatalf("cleanup: %v", err)
	}
	if out := netnstest.Run(t, "ip", "netns", "exec", tp.node, "nft", "list", "tables"); strings.Contains(out, table) {
		t.Errorf("table left after cleanup:\n%s", out)
	}
	if netnstest.HostHasTable(t, table) {
		t.Errorf("the host has table %s", table)
	}
}

// TestRealIncrementalSync applies a walk of rulesets to a real table, the
// incremental way, and checks after each step that the kernel holds what
// was wanted: pod addresses next to each other come and go, so interval
// set elements are split and joined.
func TestRealIncrementalSync(t *testing.T) {
	netnstest.Require(t, "ip", "nft")
	const table = "skiff-netpol-plan-test"
	ns := fmt.Sprintf("snp%d-plan", os.Getpid()%100000)
	netnstest.Create(t, ns)
	nft := netnstest.NewNFT(t, netnstest.Enter(t, ns), table)
	_, nss := world()
	pol := policy("default", "p", sel("app", "b"),
		ingressRule(peers(podPeer(sel("app", "a")), blockPeer("10.43.0.0/16", "10.43.7.0/24"))),
		egressRule(peers(podPeer(sel("app", "a"))), namedPort("TCP", "http")))
	pol.Spec.PolicyTypes = []networkingv1.PolicyType{ing, egr}
	target := pod("default", "b", "n1", "10.42.1.100", lbl("app", "b"))
	var prev *ruleset
	for step, peerIPs := range [][]int{{}, {2}, {2, 3}, {2, 3, 4, 5}, {3, 4}, {2, 4, 6}, {1, 2, 3, 4, 5, 6, 7, 8}, {5}, {}} {
		pods := []*corev1.Pod{target}
		for _, n := range peerIPs {
			pods = append(pods, pod("default", fmt.Sprintf("a%d", n), "n2", fmt.Sprintf("10.42.2.%d", n), lbl("app", "a"), "http:8080"))
		}
		m, _ := compile(testNode, []*networkingv1.NetworkPolicy{pol}, pods, nss)
		want := buildRuleset(dpBridge, m)
		tx := nft.NewTransaction()
		plan(tx, prev, want)
		if err := nft.Run(context.Background(), tx); err != nil {
			t.Fatalf("step %d: %v\n%s", step, err, tx)
		}
		prev = want
		for name, s := range want.sets {
			elems, err := nft.ListElements(context.Background(), "set", name)
			if err != nil {
				t.Fatalf("step %d: listing %s: %v", step, name, err)
			}
			if got, exp := coverage(t, s.interval, elems), coverage(t, s.interval, wantElements(s)); got != exp {
				t.Errorf("step %d: set %s holds %s, want %s", step, name, got, exp)
			}
		}
	}
	if err := nftables.DeleteTable(context.Background(), nft, table); err != nil {
		t.Fatal(err)
	}
}

func wantElements(s *setSpec) []*knftables.Element {
	var out []*knftables.Element
	for _, k := range s.elems {
		out = append(out, &knftables.Element{Key: k})
	}
	return out
}

// coverage describes a set's content independently of how nft splits or
// prints it: merged address spans for interval sets, sorted keys otherwise.
func coverage(t testing.TB, interval bool, elems []*knftables.Element) string {
	t.Helper()
	var keys []string
	var spans []span
	for _, e := range elems {
		k := strings.Join(e.Key, " . ")
		if !interval {
			keys = append(keys, k)
			continue
		}
		switch lo, hi, isRange := strings.Cut(k, "-"); {
		case isRange:
			spans = append(spans, span{addrNum(netip.MustParseAddr(lo)), addrNum(netip.MustParseAddr(hi))})
		case strings.Contains(k, "/"):
			spans = append(spans, prefixSpan(netip.MustParsePrefix(k)))
		default:
			spans = append(spans, addrSpan(netip.MustParseAddr(k)))
		}
	}
	if interval {
		return fmt.Sprint(mergeSpans(spans))
	}
	sort.Strings(keys)
	return fmt.Sprint(keys)
}
