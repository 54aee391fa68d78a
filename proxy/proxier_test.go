package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"sigs.k8s.io/knftables"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// programmed returns the ruleset of the last successful transaction.
func (p *Proxier) programmed() *ruleset {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.prev
}

// waitProgrammed polls until cond holds for the live ruleset.
func waitProgrammed(t testing.TB, p *Proxier, what string, cond func(*ruleset) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if rs := p.programmed(); rs != nil && cond(rs) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s; stats %+v", what, p.Stats())
}

func hasServiceIP(key string) func(*ruleset) bool {
	return func(rs *ruleset) bool { _, ok := rs.maps[mapServiceIPs].elems[key]; return ok }
}

// flakyNFT fails the transactions it is told to.
type flakyNFT struct {
	knftables.Interface
	failRuns atomic.Int32
}

func (f *flakyNFT) Run(ctx context.Context, tx *knftables.Transaction) error {
	if f.failRuns.Add(-1) >= 0 {
		return errors.New("injected failure")
	}
	return f.Interface.Run(ctx, tx)
}

func startProxier(t *testing.T, nft knftables.Interface, cfg Config, objs ...runtimeObject) (*Proxier, *fake.Clientset) {
	t.Helper()
	cs := fake.NewClientset()
	for _, o := range objs {
		o.create(t, cs)
	}
	cfg.Log = quietLog()
	p, err := newProxier(cs, nil, cfg, nft)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return p, cs
}

type runtimeObject interface {
	create(t testing.TB, cs *fake.Clientset)
}

type svcObj struct{ *corev1.Service }
type sliceObj struct{ *discoveryv1.EndpointSlice }

func (o svcObj) create(t testing.TB, cs *fake.Clientset) {
	t.Helper()
	if _, err := cs.CoreV1().Services(o.Namespace).Create(context.Background(), o.Service, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func (o sliceObj) create(t testing.TB, cs *fake.Clientset) {
	t.Helper()
	if _, err := cs.DiscoveryV1().EndpointSlices(o.Namespace).Create(context.Background(), o.EndpointSlice, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestProxierFollowsInformers(t *testing.T) {
	nft := knftables.NewFake(knftables.IPv4Family, "skiff-test")
	p, cs := startProxier(t, nft, Config{NodeName: "node1", ClusterCIDR: netip.MustParsePrefix("10.42.0.0/16"), TableName: "skiff-test"},
		svcObj{svc("default", "web", webIP, webPorts())})
	key := webIP + " . tcp . 80"
	waitProgrammed(t, p, "reject for the endpoint-less service", func(rs *ruleset) bool {
		_, ok := rs.maps[mapNoEndpointServices].elems[key]
		return ok
	})

	sliceObj{bothReady.DeepCopy()}.create(t, cs)
	waitProgrammed(t, p, "service map entry", hasServiceIP(key))
	st := p.Stats()
	if st.ProgrammingSamples == 0 || st.LastProgrammingLatency <= 0 {
		t.Errorf("no programming latency recorded: %+v", st)
	}
	if st.LastSync.IsZero() || !p.LastSync().Equal(st.LastSync) {
		t.Errorf("LastSync %v, stats %v", p.LastSync(), st.LastSync)
	}
	if st.LastSyncMode != "incremental" {
		t.Errorf("endpoint change applied by a %s sync", st.LastSyncMode)
	}
	if _, ok := stateOf(nft).maps[mapServiceIPs]; !ok {
		t.Fatal("fake table has no service map")
	}
	ev := &evaluator{t: t, st: stateOf(nft)}
	if got := summary(ev.route(pkt(podSrc, webIP, 80))); got != both {
		t.Errorf("table routes %q, want %q", got, both)
	}

	if err := cs.CoreV1().Services("default").Delete(context.Background(), "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitProgrammed(t, p, "service removal", func(rs *ruleset) bool { return len(rs.maps[mapServiceIPs].elems) == 0 })
	if n := len(stateOf(nft).chains); n != len(buildRuleset(testNode, nil, nil).chains) {
		t.Errorf("%d chains left after the only service went", n)
	}
}

func TestProxierBatchesChanges(t *testing.T) {
	nft := knftables.NewFake(knftables.IPv4Family, "skiff-test")
	p, cs := startProxier(t, nft, Config{NodeName: "node1", TableName: "skiff-test", MinSyncInterval: time.Second},
		svcObj{svc("default", "web", webIP, webPorts())}, sliceObj{webSlice(ep("10.42.1.2", "node1", ready))})
	waitProgrammed(t, p, "first sync", hasServiceIP(webIP+" . tcp . 80"))
	before := p.Stats().Syncs

	const changes = 20
	for i := range changes {
		s := webSlice(ep("10.42.1.2", "node1", ready), ep(fmt.Sprintf("10.42.1.%d", 100+i), "node1", ready))
		if _, err := cs.DiscoveryV1().EndpointSlices("default").Update(context.Background(), s, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	last := fmt.Sprintf("10.42.1.%d", 100+changes-1)
	waitProgrammed(t, p, "last change", func(rs *ruleset) bool {
		for name := range rs.chains {
			if strings.Contains(name, "/"+last+"/") {
				return true
			}
		}
		return false
	})
	if n := p.Stats().Syncs - before; n >= changes/2 {
		t.Errorf("%d changes took %d syncs; batching should merge them", changes, n)
	}
}

func TestProxierPeriodicFullResync(t *testing.T) {
	nft := knftables.NewFake(knftables.IPv4Family, "skiff-test")
	p, _ := startProxier(t, nft, Config{NodeName: "node1", TableName: "skiff-test", SyncPeriod: 50 * time.Millisecond,
		FullSyncPeriod: 150 * time.Millisecond, MinSyncInterval: 10 * time.Millisecond},
		svcObj{svc("default", "web", webIP, webPorts())}, sliceObj{bothReady.DeepCopy()})
	waitProgrammed(t, p, "first sync", hasServiceIP(webIP+" . tcp . 80"))
	deadline := time.Now().Add(20 * time.Second)
	for p.Stats().FullSyncs < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("no periodic full resyncs: %+v", p.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestProxierRepairsDeletedTable: a table deleted behind the proxy's back
// (a firewall reload) is back within a SyncPeriod, long before the next
// scheduled full resync.
func TestProxierRepairsDeletedTable(t *testing.T) {
	nft := knftables.NewFake(knftables.IPv4Family, "skiff-test")
	p, _ := startProxier(t, nft, Config{NodeName: "node1", TableName: "skiff-test", SyncPeriod: 50 * time.Millisecond, MinSyncInterval: 10 * time.Millisecond},
		svcObj{svc("default", "web", webIP, webPorts())}, sliceObj{bothReady.DeepCopy()})
	waitProgrammed(t, p, "first sync", hasServiceIP(webIP+" . tcp . 80"))
	full := p.Stats().FullSyncs
	tx := nft.NewTransaction()
	tx.Delete(&knftables.Table{})
	if err := nft.Run(context.Background(), tx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if elems, err := nft.ListElements(context.Background(), "map", mapServiceIPs); err == nil && len(elems) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the deleted table was not rewritten: %+v", p.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st := p.Stats(); st.FullSyncs == full || st.Failures != 0 {
		t.Errorf("the table came back without a full sync, or after a failed one: %+v", st)
	}
}

func TestProxierRecoversFromFailures(t *testing.T) {
	nft := &flakyNFT{Interface: knftables.NewFake(knftables.IPv4Family, "skiff-test")}
	nft.failRuns.Store(2) // the first full sync and its retry fail
	p, _ := startProxier(t, nft, Config{NodeName: "node1", TableName: "skiff-test", MinSyncInterval: 10 * time.Millisecond},
		svcObj{svc("default", "web", webIP, webPorts())}, sliceObj{bothReady.DeepCopy()})
	waitProgrammed(t, p, "sync after failures", hasServiceIP(webIP+" . tcp . 80"))
	st := p.Stats()
	if st.Failures != 2 || st.LastSyncMode != "recreate" || st.LastError != "" {
		t.Errorf("after two failures: %+v; want 2 failures then a recreate", st)
	}
}
