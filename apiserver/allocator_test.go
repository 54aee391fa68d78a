package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"testing"

	"github.com/skiff-sh/skiff/storage/etcd"
	"github.com/skiff-sh/skiff/storage/etcdtest"
)

// TestAllocateSmallRange fills service ranges no bigger than the static
// band: every address but the network, the first (kept for the kubernetes
// Service) and the broadcast is handed out once, then the range is full.
func TestAllocateSmallRange(t *testing.T) {
	st := etcd.New(etcdtest.StartEmbedded(t).Client())
	for _, cidr := range []string{"10.96.0.0/28", "10.97.0.0/29"} {
		a, err := newAllocators(st, netip.MustParsePrefix(cidr), 30000, 32767)
		if err != nil {
			t.Fatal(err)
		}
		size := int(a.size.Int64())
		seen := map[netip.Addr]bool{}
		for i := 0; i < size-3; i++ {
			ip, err := a.allocateIP(context.Background(), netip.Addr{}, fmt.Sprintf("default/s%d", i))
			if err != nil {
				t.Fatalf("%s: allocation %d: %v", cidr, i, err)
			}
			if seen[ip] || !a.cidr.Contains(ip) {
				t.Fatalf("%s: allocation %d gave %s again or outside the range", cidr, i, ip)
			}
			seen[ip] = true
		}
		if ip, err := a.allocateIP(context.Background(), netip.Addr{}, "default/extra"); !errors.Is(err, errFull) {
			t.Errorf("%s: allocation beyond the range gave %s, %v; want errFull", cidr, ip, err)
		}
	}
}
