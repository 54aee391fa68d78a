package proxy

import (
	"context"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"sigs.k8s.io/knftables"
)

type world struct {
	services []*corev1.Service
	slices   []*discoveryv1.EndpointSlice
}

func (w world) rules() *ruleset { return buildRuleset(testNode, w.services, w.slices) }

type transition struct {
	name     string
	from, to world
}

// transitions are the state changes incremental syncs are tested with.
func transitions() []transition {
	other := svc("default", "other", "10.43.0.7", webPorts())
	otherSlice := slice("default", "other", "other-1", []discoveryv1.EndpointPort{eport("http", 8080)}, ep("10.42.1.20", "node1", ready))
	web := svc("default", "web", webIP, webPorts())
	base := world{services: []*corev1.Service{web, other}, slices: []*discoveryv1.EndpointSlice{bothReady, otherSlice}}

	with := func(services []*corev1.Service, slices ...*discoveryv1.EndpointSlice) world {
		return world{services: append(services, other), slices: append(slices, otherSlice)}
	}
	return []transition{
		{"endpoint removed", base, with([]*corev1.Service{web}, webSlice(ep("10.42.1.3", "node2", ready)))},
		{"endpoint added", with([]*corev1.Service{web}, webSlice(ep("10.42.1.3", "node2", ready))), base},
		{"endpoint becomes unready", base, with([]*corev1.Service{web}, webSlice(ep("10.42.1.2", "node1", ready), ep("10.42.1.3", "node2", notReady)))},
		{"last endpoint goes: reject instead", base, with([]*corev1.Service{web})},
		{"endpoints come back", with([]*corev1.Service{web}), base},
		{"service deleted", base, with(nil)},
		{"service added", with(nil), base},
		{"affinity switched on", base, with([]*corev1.Service{svc("default", "web", webIP, webPorts(), affinity(60))}, bothReady)},
		{"affinity timeout changed", with([]*corev1.Service{svc("default", "web", webIP, webPorts(), affinity(60))}, bothReady), with([]*corev1.Service{svc("default", "web", webIP, webPorts(), affinity(90))}, bothReady)},
		{"affinity switched off", with([]*corev1.Service{svc("default", "web", webIP, webPorts(), affinity(60))}, bothReady), base},
		{"became NodePort", base, with([]*corev1.Service{svc("default", "web", webIP, webPorts(), nodePort(30080))}, bothReady)},
		{"NodePort renumbered", with([]*corev1.Service{svc("default", "web", webIP, webPorts(), nodePort(30080))}, bothReady), with([]*corev1.Service{svc("default", "web", webIP, webPorts(), nodePort(30099))}, bothReady)},
		{"externalTrafficPolicy Local", with([]*corev1.Service{svc("default", "web", webIP, webPorts(), loadBalancer(30080))}, bothReady), with([]*corev1.Service{svc("default", "web", webIP, webPorts(), loadBalancer(30080), etpLocal)}, bothReady)},
		{"LoadBalancer ingress assigned", with([]*corev1.Service{svc("default", "web", webIP, webPorts(), loadBalancer(30080))}, bothReady), with([]*corev1.Service{svc("default", "web", webIP, webPorts(), loadBalancer(30080), lbIngress("203.0.113.5", nil))}, bothReady)},
		{"clusterIP changed (recreated service)", base, with([]*corev1.Service{svc("default", "web", "10.43.0.99", webPorts())}, bothReady)},
		{"everything removed", base, world{}},
	}
}

// TestIncrementalMatchesFull moves a table from one state to another with
// an incremental sync and checks the result equals a full sync of the new
// state into an empty table, and that the transaction leaves unrelated
// services alone.
func TestIncrementalMatchesFull(t *testing.T) {
	for _, c := range transitions() {
		t.Run(c.name, func(t *testing.T) {
			fromRS, toRS := c.from.rules(), c.to.rules()
			fake := programFake(t, fromRS)
			tx := syncFake(t, fake, syncIncremental, fromRS, toRS)
			got := stateOf(fake)
			want := stateOf(programFake(t, toRS))
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("incremental result differs from a full sync\nincremental: %+v\nfull:        %+v\ntransaction:\n%s", got, want, tx)
			}
			// The untouched service's chains are not rewritten.
			if len(c.to.services) > 0 && strings.Contains(tx.String(), "default/other/") {
				t.Errorf("transaction touches the unrelated service:\n%s", tx)
			}
		})
	}
}

func TestIncrementalWithoutChangesIsEmpty(t *testing.T) {
	rs := world{services: []*corev1.Service{svc("default", "web", webIP, webPorts(), affinity(0))}, slices: []*discoveryv1.EndpointSlice{bothReady}}.rules()
	fake := programFake(t, rs)
	tx := fake.NewTransaction()
	plan(tx, syncIncremental, rs, rs, nil)
	if tx.NumOperations() != 1 { // "add table" only
		t.Errorf("no-op incremental sync has %d operations:\n%s", tx.NumOperations(), tx)
	}
}

// TestFullSyncRemovesStaleAndKeepsAffinity: a full sync (as after a restart,
// with prev unknown) deletes objects a previous run left behind, rewrites
// everything else, and does not flush session-affinity sets.
func TestFullSyncRemovesStaleAndKeepsAffinity(t *testing.T) {
	old := world{
		services: []*corev1.Service{svc("default", "gone", "10.43.0.5", webPorts(), affinity(0)), svc("default", "web", webIP, webPorts(), affinity(0))},
		slices:   []*discoveryv1.EndpointSlice{slice("default", "gone", "gone-1", []discoveryv1.EndpointPort{eport("http", 80)}, ep("10.42.1.50", "node1", ready)), bothReady},
	}.rules()
	fake := programFake(t, old)
	// Something else in the table that the proxy does not know about.
	tx := fake.NewTransaction()
	tx.Add(&knftables.Chain{Name: "leftover"})
	tx.Add(&knftables.Rule{Chain: "leftover", Rule: "drop"})
	tx.Add(&knftables.Set{Name: "leftover-set", Type: "ipv4_addr"})
	if err := fake.Run(context.Background(), tx); err != nil {
		t.Fatal(err)
	}

	want := world{services: []*corev1.Service{svc("default", "web", webIP, webPorts(), affinity(0))}, slices: []*discoveryv1.EndpointSlice{bothReady}}.rules()
	ftx := syncFake(t, fake, syncFull, nil, want)
	if got, exp := stateOf(fake), stateOf(programFake(t, want)); !reflect.DeepEqual(got, exp) {
		t.Fatalf("full sync left %+v, want %+v", got, exp)
	}
	text := ftx.String()
	if strings.Contains(text, "flush set ip skiff-test aff-") {
		t.Errorf("full sync flushes affinity sets:\n%s", text)
	}
	for _, gone := range []string{"delete chain ip skiff-test leftover", "delete set ip skiff-test leftover-set", "default/gone/"} {
		if !strings.Contains(text, gone) {
			t.Errorf("full sync does not mention %q", gone)
		}
	}
}

func TestRecreateDeletesTableFirst(t *testing.T) {
	rs := world{services: []*corev1.Service{svc("default", "web", webIP, webPorts())}, slices: []*discoveryv1.EndpointSlice{bothReady}}.rules()
	fake := programFake(t, rs)
	// A set with the proxy's name but another definition would make "add
	// set" fail on a real kernel; recreate starts from an empty table.
	tx := syncFake(t, fake, syncRecreate, nil, rs)
	lines := strings.Split(tx.String(), "\n")
	if len(lines) < 3 || !strings.HasPrefix(lines[0], "add table") || !strings.HasPrefix(lines[1], "delete table") {
		t.Errorf("recreate transaction does not start with add+delete table:\n%s", strings.Join(lines[:min(3, len(lines))], "\n"))
	}
	if got, exp := stateOf(fake), stateOf(programFake(t, rs)); !reflect.DeepEqual(got, exp) {
		t.Errorf("recreate left %+v, want %+v", got, exp)
	}
}
