package routes

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/skiff-sh/skiff/internal/netnstest"
)

// syncerIn builds a Syncer on nodes whose commands run in ns, with its
// informer started and synced, for calling sync directly.
func syncerIn(t *testing.T, ns string, cfg Config, client *fake.Clientset) *Syncer {
	t.Helper()
	f := informers.NewSharedInformerFactory(client, 0)
	s, err := New(f, cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.ip = iproute{run: nsRunner(ns)}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	f.Start(ctx.Done())
	f.WaitForCacheSync(ctx.Done())
	return s
}

func TestVXLANDevice(t *testing.T) {
	netnstest.Require(t, "ip", "bridge", "nsenter")
	ns := newNetns(t, "dev")
	inNS(t, ns, "ip", "link", "add", "lan0", "type", "bridge")
	inNS(t, ns, "ip", "addr", "add", "192.168.5.1/24", "dev", "lan0")
	inNS(t, ns, "ip", "link", "set", "lan0", "mtu", "1400", "up")
	ip := iproute{run: nsRunner(ns)}
	ctx := context.Background()
	client := fake.NewClientset(
		testNode("self", "192.168.5.1", "10.66.1.0/24"),
		testNode("far", "172.16.9.9", "10.66.2.0/24"),
	)
	cfg := func(dev string) Config {
		return Config{NodeName: "self", NodeIP: netip.MustParseAddr("192.168.5.1"),
			ClusterCIDR: netip.MustParsePrefix("10.66.0.0/16"), VXLAN: VXLANConfig{Name: dev}}
	}

	t.Run("a device of another kind under the name is not ours", func(t *testing.T) {
		inNS(t, ns, "ip", "link", "add", "notvx", "type", "bridge")
		s := syncerIn(t, ns, cfg("notvx"), client)
		err := s.sync(ctx)
		if err == nil || !strings.Contains(err.Error(), "not a vxlan device") {
			t.Fatalf("sync = %v, want a refusal", err)
		}
		inNS(t, ns, "ip", "link", "set", "notvx", "up")
		if err := s.sync(ctx); err == nil {
			t.Fatal("second sync succeeded")
		}
		if err := wantRoutes(ip)(); err != nil {
			t.Errorf("route through a device not ours: %v", err)
		}
		if err := cleanup(ctx, cfg("notvx"), ip); err != nil {
			t.Fatal(err)
		}
		if l, err := ip.link(ctx, "notvx"); err != nil || l == nil || l.Kind != "bridge" {
			t.Fatalf("bridge notvx after sync and cleanup: %+v, %v", l, err)
		}
	})

	t.Run("a vxlan device with the wrong settings is recreated", func(t *testing.T) {
		inNS(t, ns, "ip", "link", "add", "oldvx", "type", "vxlan", "id", "9", "dstport", "4789", "local", "192.168.5.1")
		s := syncerIn(t, ns, cfg("oldvx"), client)
		if err := s.sync(ctx); err != nil {
			t.Fatal(err)
		}
		l, err := ip.link(ctx, "oldvx")
		if err != nil || l == nil {
			t.Fatalf("no device: %v", err)
		}
		want := linkState{Kind: "vxlan", VNI: 1, Local: netip.MustParseAddr("192.168.5.1"), Port: 8472, MAC: "0e:4b:0a:42:01:00", Up: true}
		if *l != want {
			t.Errorf("device %+v, want %+v", *l, want)
		}
		if out := inNS(t, ns, "ip", "-o", "link", "show", "oldvx"); !strings.Contains(out, "mtu 1350") {
			t.Errorf("MTU not the underlay's less 50: %s", out)
		}
		if err := wantRoutes(ip, "10.66.2.0/24 via 10.66.2.0 dev oldvx onlink")(); err != nil {
			t.Error(err)
		}
		// A wrong MAC and a stray address are fixed in place.
		inNS(t, ns, "ip", "link", "set", "oldvx", "address", "02:00:00:00:00:07")
		inNS(t, ns, "ip", "addr", "add", "10.66.9.9/32", "dev", "oldvx")
		if err := s.sync(ctx); err != nil {
			t.Fatal(err)
		}
		out := inNS(t, ns, "ip", "-o", "-4", "addr", "show", "dev", "oldvx")
		if strings.Contains(out, "10.66.9.9") || !strings.Contains(out, "10.66.1.0/32") {
			t.Errorf("addresses: %s", out)
		}
		if l, _ := ip.link(ctx, "oldvx"); l == nil || l.MAC != "0e:4b:0a:42:01:00" {
			t.Errorf("MAC not restored: %+v", l)
		}
		if err := cleanup(ctx, cfg("oldvx"), ip); err != nil {
			t.Fatal(err)
		}
		if l, err := ip.link(ctx, "oldvx"); err != nil || l != nil {
			t.Errorf("device after cleanup: %+v, %v", l, err)
		}
		if err := wantRoutes(ip)(); err != nil {
			t.Error(err)
		}
	})

	t.Run("VXLAN disabled: no device, no route", func(t *testing.T) {
		c := cfg("offvx")
		c.VXLAN.Disabled = true
		s := syncerIn(t, ns, c, client)
		if err := s.sync(ctx); err != nil {
			t.Fatal(err)
		}
		if l, err := ip.link(ctx, "offvx"); err != nil || l != nil {
			t.Errorf("device made although disabled: %+v, %v", l, err)
		}
		if err := wantRoutes(ip)(); err != nil {
			t.Error(err)
		}
	})
}
