package proxy

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/skiff-sh/skiff/internal/netnstest"
)

// syntheticCluster makes n Services with one port and two ready endpoints
// each; every tenth is a NodePort and every twentieth has ClientIP
// affinity.
func syntheticCluster(n int) ([]*corev1.Service, []*discoveryv1.EndpointSlice) {
	var svcs []*corev1.Service
	var slices []*discoveryv1.EndpointSlice
	for i := range n {
		name := fmt.Sprintf("svc-%05d", i)
		ip := netip.AddrFrom4([4]byte{10, 43, byte(1 + i/250), byte(1 + i%250)})
		var mods []func(*corev1.Service)
		if i%10 == 0 {
			mods = append(mods, nodePort(int32(30000+i/10)))
		}
		if i%20 == 0 {
			mods = append(mods, affinity(0))
		}
		svcs = append(svcs, svc("bench", name, ip.String(), []corev1.ServicePort{sport("http", 80, intstr.FromInt32(8080))}, mods...))
		slices = append(slices, syntheticSlice(name, i, 0))
	}
	return svcs, slices
}

// syntheticSlice gives service i two endpoints; gen shifts the second
// address so successive generations differ by one endpoint.
func syntheticSlice(name string, i, gen int) *discoveryv1.EndpointSlice {
	a := netip.AddrFrom4([4]byte{10, 42, byte(i / 250), byte(1 + i%250)})
	b := netip.AddrFrom4([4]byte{10, 44, byte(gen % 250), byte(1 + i%250)})
	return slice("bench", name, name+"-1", []discoveryv1.EndpointPort{eport("http", 8080)},
		ep(a.String(), "node1", ready), ep(b.String(), "node2", ready))
}

// BenchmarkSync reports how long rule generation and nft transactions take
// for 1,000 and 10,000 Services: "build" is pure generation; "full" the
// periodic full resync of an existing table (first-sync-ms: the initial
// load, which also lists the table); "endpoint-change" the incremental sync of
// one changed EndpointSlice (generation included, as in the proxier). The
// nft cases need root and program a table in a private network namespace.
func BenchmarkSync(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		svcs, slices := syntheticCluster(n)
		b.Run(fmt.Sprintf("services=%d/build", n), func(b *testing.B) {
			for b.Loop() {
				buildRuleset(testNode, svcs, slices)
			}
		})
		if os.Geteuid() != 0 {
			continue
		}
		b.Run(fmt.Sprintf("services=%d/full", n), func(b *testing.B) {
			p := benchProxier(b)
			want := buildRuleset(testNode, svcs, slices)
			start := time.Now()
			if _, err := p.apply(context.Background(), syncFull, nil, want); err != nil {
				b.Fatal(err)
			}
			first := time.Since(start)
			ops := 0
			for b.Loop() {
				var err error
				if ops, err = p.apply(context.Background(), syncFull, want, want); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(ops), "nft-ops/sync")
			b.ReportMetric(float64(first.Milliseconds()), "first-sync-ms")
		})
		b.Run(fmt.Sprintf("services=%d/endpoint-change", n), func(b *testing.B) {
			p := benchProxier(b)
			prev := buildRuleset(testNode, svcs, slices)
			if _, err := p.apply(context.Background(), syncFull, nil, prev); err != nil {
				b.Fatal(err)
			}
			cur := append([]*discoveryv1.EndpointSlice(nil), slices...)
			ops, gen := 0, 0
			for b.Loop() {
				gen++
				i := (gen * 7919) % n
				cur[i] = syntheticSlice(svcs[i].Name, i, gen)
				want := buildRuleset(testNode, svcs, cur)
				var err error
				if ops, err = p.apply(context.Background(), syncIncremental, prev, want); err != nil {
					b.Fatal(err)
				}
				prev = want
			}
			b.ReportMetric(float64(ops), "nft-ops/sync")
		})
	}
}

// benchProxier is a Proxier reduced to its nftables side, bound to a fresh
// network namespace.
func benchProxier(b *testing.B) *Proxier {
	b.Helper()
	name := fmt.Sprintf("skpb%d", os.Getpid()%100000)
	netnstest.Create(b, name)
	th := netnstest.Enter(b, name)
	const table = "skiff-proxy-bench"
	return &Proxier{cfg: Config{TableName: table}, node: testNode, nft: netnstest.NewNFT(b, th, table)}
}
