package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"reflect"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/fake"
	"sigs.k8s.io/knftables"

	"github.com/skiff-sh/skiff/internal/netnstest"
)

// TestDataPlane runs the Proxier against real nftables in a network
// namespace and sends real connections through the rules.
func TestDataPlane(t *testing.T) {
	netnstest.Require(t, "ip", "nft")
	tp := newTopology(t)
	const table = "skiff-proxy-test"
	if netnstest.HostHasTable(t, table) {
		t.Fatalf("the host already has table ip %s", table)
	}
	nft := netnstest.NewNFT(t, tp.nodeT, table)

	http := []corev1.ServicePort{sport("http", 80, intstr.FromString("http"))}
	eps := func(ns, name string, es ...discoveryv1.Endpoint) sliceObj {
		return sliceObj{slice(ns, name, name+"-1", []discoveryv1.EndpointPort{eport("http", 8080)}, es...)}
	}
	objs := []runtimeObject{
		svcObj{svc("default", "web", "10.43.0.100", http, nodePort(30080))},
		eps("default", "web", ep("10.42.1.2", "node1", ready), ep("10.42.1.3", "node1", ready)),
		svcObj{svc("default", "lb", "10.43.0.101", []corev1.ServicePort{sport("http", 8081, intstr.FromString("http"))}, loadBalancer(30085))},
		eps("default", "lb", ep("10.42.1.2", "node1", ready)),
		svcObj{svc("default", "local", "10.43.0.105", http, nodePort(30081), etpLocal)},
		eps("default", "local", ep("10.42.1.2", "node1", ready)),
		svcObj{svc("default", "remote", "10.43.0.106", http, nodePort(30082), etpLocal)},
		eps("default", "remote", ep("10.42.1.3", "node2", ready)),
		svcObj{svc("default", "hairpin", "10.43.0.102", http)},
		eps("default", "hairpin", ep("10.42.1.2", "node1", ready)),
		svcObj{svc("default", "empty", "10.43.0.103", http)},
		svcObj{svc("default", "sticky", "10.43.0.104", http, affinity(60))},
		eps("default", "sticky", ep("10.42.1.2", "node1", ready), ep("10.42.1.3", "node1", ready)),
	}
	cs := fake.NewClientset()
	for _, o := range objs {
		o.create(t, cs)
	}
	p, err := newProxier(cs, nil, Config{
		NodeName:        "node1",
		NodeIPs:         []netip.Addr{netip.MustParseAddr("192.0.2.10")},
		ClusterCIDR:     netip.MustParsePrefix("10.42.0.0/16"),
		TableName:       table,
		MinSyncInterval: 20 * time.Millisecond,
		Log:             quietLog(),
	}, nft)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	stop := func() {
		if cancel != nil {
			cancel()
			cancel = nil
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	}
	t.Cleanup(stop)
	waitProgrammed(t, p, "all services", func(rs *ruleset) bool {
		return len(rs.maps[mapServiceIPs].elems) >= 7 && len(rs.maps[mapNoEndpointServices].elems) == 1
	})
	if netnstest.HostHasTable(t, table) {
		t.Fatal("rules went to the host's ruleset instead of the test namespace")
	}

	const timeout = 3 * time.Second
	// spread makes n requests and counts the answering endpoints; every
	// answer must see the client address wantClient.
	spread := func(t *testing.T, th *netnstest.Thread, laddr, target string, n int, wantClient string) map[string]int {
		t.Helper()
		seen := map[string]int{}
		for range n {
			server, client, err := get(th, laddr, target, timeout)
			if err != nil {
				t.Fatalf("GET %s: %v", target, err)
			}
			if hostOf(client) != wantClient {
				t.Fatalf("GET %s: server saw client %s, want %s", target, client, wantClient)
			}
			seen[hostOf(server)]++
		}
		return seen
	}

	t.Run("clusterIP from the node spreads and masquerades", func(t *testing.T) {
		seen := spread(t, tp.nodeT, "", "10.43.0.100:80", 30, "10.42.1.1")
		if seen["10.42.1.2"] == 0 || seen["10.42.1.3"] == 0 {
			t.Errorf("30 connections reached %v; want both endpoints", seen)
		}
	})
	t.Run("clusterIP from a pod keeps the pod address", func(t *testing.T) {
		seen := spread(t, tp.cliT, "", "10.43.0.100:80", 30, "10.42.2.5")
		if seen["10.42.1.2"] == 0 || seen["10.42.1.3"] == 0 {
			t.Errorf("30 connections reached %v; want both endpoints", seen)
		}
	})
	t.Run("NodePort from outside is masqueraded", func(t *testing.T) {
		seen := spread(t, tp.extT, "", "192.0.2.10:30080", 30, "10.42.1.1")
		if seen["10.42.1.2"] == 0 || seen["10.42.1.3"] == 0 {
			t.Errorf("30 connections reached %v; want both endpoints", seen)
		}
	})
	t.Run("NodePort from a pod keeps the pod address", func(t *testing.T) {
		spread(t, tp.cliT, "", "192.0.2.10:30081", 2, "10.42.2.5")
	})
	t.Run("NodePort from the node itself", func(t *testing.T) {
		spread(t, tp.nodeT, "", "192.0.2.10:30080", 4, "10.42.1.1")
	})
	t.Run("LoadBalancer port on the node address", func(t *testing.T) {
		spread(t, tp.extT, "", "192.0.2.10:8081", 4, "10.42.1.1")
	})
	t.Run("externalTrafficPolicy Local keeps the client address", func(t *testing.T) {
		spread(t, tp.extT, "", "192.0.2.10:30081", 4, "192.0.2.20")
	})
	t.Run("externalTrafficPolicy Local without local endpoint drops", func(t *testing.T) {
		if _, _, err := get(tp.extT, "", "192.0.2.10:30082", time.Second); err == nil {
			t.Error("connection through a node without local endpoints succeeded")
		}
		// The node itself still reaches the remote endpoint.
		spread(t, tp.nodeT, "", "192.0.2.10:30082", 2, "10.42.1.1")
	})
	t.Run("hairpin", func(t *testing.T) {
		seen := spread(t, tp.podT, "10.42.1.2", "10.43.0.102:80", 4, "10.42.1.1")
		if seen["10.42.1.2"] != 4 {
			t.Errorf("hairpin reached %v", seen)
		}
	})
	t.Run("service without endpoints refuses", func(t *testing.T) {
		for _, target := range []string{"10.43.0.103:80", "10.43.0.100:81"} {
			_, _, err := get(tp.nodeT, "", target, timeout)
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("GET %s: %v; want connection refused", target, err)
			}
		}
		_, _, err := get(tp.cliT, "", "10.43.0.103:80", timeout)
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("GET from a pod: %v; want connection refused", err)
		}
	})
	t.Run("session affinity", func(t *testing.T) {
		if seen := spread(t, tp.nodeT, "", "10.43.0.104:80", 20, "10.42.1.1"); len(seen) != 1 {
			t.Errorf("ClientIP affinity spread one client over %v", seen)
		}
	})
	t.Run("removed endpoint leaves the rotation", func(t *testing.T) {
		s := slice("default", "web", "web-1", []discoveryv1.EndpointPort{eport("http", 8080)}, ep("10.42.1.3", "node1", ready))
		if _, err := cs.DiscoveryV1().EndpointSlices("default").Update(context.Background(), s, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitProgrammed(t, p, "endpoint removal", func(rs *ruleset) bool {
			for name, c := range rs.chains {
				if strings.Contains(name, "default/web/") && strings.HasPrefix(name, prefixCluster) {
					return !strings.Contains(strings.Join(c.rules, "\n"), "10.42.1.2")
				}
			}
			return false
		})
		if seen := spread(t, tp.nodeT, "", "10.43.0.100:80", 20, "10.42.1.1"); seen["10.42.1.2"] != 0 {
			t.Errorf("removed endpoint still reached: %v", seen)
		}
		st := p.Stats()
		if st.LastProgrammingLatency <= 0 || st.LastSyncMode != "incremental" {
			t.Errorf("stats after an endpoint change: %+v", st)
		}
		t.Logf("endpoint change to live rule: %v (sync %v, %d operations)", st.LastProgrammingLatency, st.LastSyncDuration, st.LastOperations)
	})

	t.Run("cleanup removes the table", func(t *testing.T) {
		stop()
		listed := func() string {
			out, err := exec.Command("ip", "netns", "exec", tp.node, "nft", "list", "ruleset").CombinedOutput()
			if err != nil {
				t.Fatalf("nft list ruleset: %v\n%s", err, out)
			}
			return string(out)
		}
		if !strings.Contains(listed(), "table ip "+table) {
			t.Fatal("table missing before cleanup")
		}
		for range 2 { // the second call finds nothing and must succeed
			var err error
			tp.nodeT.Do(func() { err = Cleanup(context.Background(), table) })
			if err != nil {
				t.Fatalf("Cleanup: %v", err)
			}
		}
		if out := listed(); strings.Contains(out, table) {
			t.Errorf("ruleset still has the table after Cleanup:\n%s", out)
		}
		if _, _, err := get(tp.nodeT, "", "10.43.0.100:80", time.Second); err == nil {
			t.Error("ClusterIP still answers after Cleanup")
		}
	})
}

// TestIncrementalOnRealNFT replays the incremental transitions against the
// kernel, which (unlike knftables' fake) refuses to delete a chain or set
// that something still refers to, and checks the objects left match those
// a full sync creates. Full resyncs over the live table must succeed too
// (re-adding existing sets and base chains).
func TestIncrementalOnRealNFT(t *testing.T) {
	netnstest.Require(t, "ip", "nft")
	name := fmt.Sprintf("skpi%d", os.Getpid()%100000)
	netnstest.Create(t, name)
	const table = "skiff-proxy-incr"
	nft := netnstest.NewNFT(t, netnstest.Enter(t, name), table)
	p := &Proxier{cfg: Config{TableName: table}, node: testNode, nft: nft}
	ctx := context.Background()
	names := func() map[string][]string {
		all, err := nft.ListAll(ctx)
		if err != nil {
			t.Fatalf("ListAll: %v", err)
		}
		for k := range all {
			sort.Strings(all[k])
		}
		delete(all, "table")
		return all
	}
	for _, c := range transitions() {
		t.Run(c.name, func(t *testing.T) {
			from, to := c.from.rules(), c.to.rules()
			if _, err := p.apply(ctx, syncRecreate, nil, from); err != nil {
				t.Fatalf("programming the start state: %v", err)
			}
			if _, err := p.apply(ctx, syncIncremental, from, to); err != nil {
				t.Fatalf("incremental sync: %v", err)
			}
			got := names()
			// Periodic resync (previous state known) and resync after a
			// restart (table listed) over the live table change nothing.
			for _, prev := range []*ruleset{to, nil} {
				if _, err := p.apply(ctx, syncFull, prev, to); err != nil {
					t.Fatalf("full resync (prev known: %v): %v", prev != nil, err)
				}
				if again := names(); !reflect.DeepEqual(got, again) {
					t.Errorf("full resync changed the objects:\n%v\n%v", got, again)
				}
			}
			if _, err := p.apply(ctx, syncRecreate, nil, to); err != nil {
				t.Fatalf("programming the end state: %v", err)
			}
			if want := names(); !reflect.DeepEqual(got, want) {
				t.Errorf("objects after the incremental sync:\n%v\nafter a full one:\n%v", got, want)
			}
		})
	}
	tx := nft.NewTransaction()
	tx.Delete(&knftables.Table{})
	if err := nft.Run(ctx, tx); err != nil {
		t.Errorf("deleting the test table: %v", err)
	}
}
