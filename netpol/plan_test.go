package netpol

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/knftables"

	"github.com/skiff-sh/skiff/internal/nftables"
)

// states is a walk through policy and pod changes.
func states() []*ruleset {
	pods, nss := world()
	morePods := append(append([]*corev1.Pod(nil), pods...),
		pod("default", "a2", "n1", "10.42.1.20", lbl("app", "a"), "http:8080"),
		pod("other", "d2", "n2", "10.42.2.60", lbl("app", "d"), "http:8090"))
	p1 := policy("default", "web", sel("app", "b"),
		ingressRule(peers(podPeer(sel("app", "a")), blockPeer("10.0.0.0/8", "10.42.0.0/16")), port("TCP", 8080), namedPort("TCP", "metrics")))
	p1b := policy("default", "web", sel("app", "b"),
		ingressRule(peers(podPeer(sel("app", "a")), blockPeer("10.0.0.0/8", "10.42.1.0/24")), port("TCP", 8080, 8090)))
	p2 := policy("default", "out", sel(), types(egr),
		egressRule(peers(nsPeer(sel("team", "y"))), namedPort("TCP", "http")),
		egressRule(peers(blockPeer("0.0.0.0/0")), port("UDP", 53)))
	build := func(pods []*corev1.Pod, pols ...*networkingv1.NetworkPolicy) *ruleset {
		m, _ := compile(testNode, pols, pods, nss)
		return buildRuleset(testBridge, m)
	}
	return []*ruleset{
		build(pods),
		build(pods, p1),
		build(morePods, p1),
		build(morePods, p1b),
		build(morePods, p1b, p2),
		build(pods, p2),
		build(pods, p1, p2),
		build(pods),
	}
}

func TestIncrementalMatchesFull(t *testing.T) {
	st := states()
	for i := 1; i < len(st); i++ {
		if st[i-1].String() == st[i].String() {
			t.Fatalf("states %d and %d are the same; the walk tests nothing", i-1, i)
		}
		for j := 0; j < len(st); j++ {
			inc := program(t, st[i-1])
			apply(t, inc, st[i-1], st[j])
			full := program(t, st[j])
			if a, b := sortedDump(inc), sortedDump(full); a != b {
				t.Fatalf("state %d -> %d: incremental differs from full:\n--- incremental\n%s\n--- full\n%s", i-1, j, a, b)
			}
		}
	}
}

func TestIncrementalTouchesOnlyChanges(t *testing.T) {
	st := states()
	fake := program(t, st[1])
	tx := fake.NewTransaction()
	plan(tx, st[1], st[2]) // only pods changed
	ops := tx.String()
	if strings.Contains(ops, "flush") || strings.Contains(ops, "rule") || strings.Contains(ops, "delete table") {
		t.Errorf("pod churn rewrote chains:\n%s", ops)
	}
	if !strings.Contains(ops, "10.42.1.20") {
		t.Errorf("new pod missing:\n%s", ops)
	}
	tx = fake.NewTransaction()
	plan(tx, st[1], st[1])
	if tx.NumOperations() != 1 {
		t.Errorf("no change should be just 'add table', got:\n%s", tx)
	}
}

func TestFullRewriteRemovesStale(t *testing.T) {
	fake := knftables.NewFake(knftables.IPv4Family, "netpol-test")
	tx := fake.NewTransaction()
	tx.Add(&knftables.Table{})
	tx.Add(&knftables.Chain{Name: "leftover"})
	tx.Add(&knftables.Set{Name: "old-set", Type: typeAddr})
	if err := fake.Run(context.Background(), tx); err != nil {
		t.Fatal(err)
	}
	st := states()
	apply(t, fake, nil, st[4])
	if sortedDump(fake) != sortedDump(program(t, st[4])) {
		t.Errorf("full rewrite kept stale objects:\n%s", fake.Dump())
	}
}

func TestCleanup(t *testing.T) {
	fake := program(t, states()[4])
	if err := nftables.DeleteTable(context.Background(), fake, "netpol-test"); err != nil {
		t.Fatal(err)
	}
	if fake.Table != nil {
		t.Errorf("table still there")
	}
	if err := nftables.DeleteTable(context.Background(), fake, "netpol-test"); err != nil {
		t.Errorf("cleanup of a missing table: %v", err)
	}
}
