package clusterdns

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// testObjects is a small cluster: a ClusterIP Service with named ports, a
// dual-stack one, a StatefulSet-style headless Service, a headless Service
// without hostnames, one without ready endpoints and an ExternalName.
func testObjects() []runtime.Object {
	tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP
	return []runtime.Object{
		clusterIPService("default", "kubernetes", []string{"10.43.0.1"}, svcPort("https", tcp, 443)),
		clusterIPService("kube-system", "kube-dns", []string{"10.43.0.10"},
			svcPort("dns", udp, 53), svcPort("dns-tcp", tcp, 53), svcPort("", tcp, 9153)),
		clusterIPService("default", "dual", []string{"10.43.0.20", "fd00:43::20"}),
		headlessService("db", "pg", svcPort("sql", tcp, 5432)),
		slice("db", "pg", "pg-abc", discoveryv1.AddressTypeIPv4,
			[]discoveryv1.EndpointPort{epPort("sql", tcp, 5432)},
			testEndpoint{ip: "10.42.0.10", hostname: "pg-0"},
			testEndpoint{ip: "10.42.1.11", hostname: "pg-1"},
			testEndpoint{ip: "10.42.1.12", hostname: "pg-2", ready: ptr.To(false)}),
		headlessService("default", "web", svcPort("http", tcp, 80)),
		slice("default", "web", "web-abc", discoveryv1.AddressTypeIPv4,
			[]discoveryv1.EndpointPort{epPort("http", tcp, 8080)},
			testEndpoint{ip: "10.42.0.20"}),
		headlessService("default", "empty", svcPort("http", tcp, 80)),
		externalService("default", "ext", "www.example.com"),
		externalService("default", "alias", "kubernetes.default.svc.cluster.local"),
		externalService("default", "loop-a", "loop-b.default.svc.cluster.local"),
		externalService("default", "loop-b", "loop-a.default.svc.cluster.local"),
	}
}

// startSyncer runs a syncer over a fake clientset until the test ends and
// returns the zone once the initial load is done.
func startSyncer(t testing.TB, objs ...runtime.Object) (*zone, *fake.Clientset) {
	t.Helper()
	client := fake.NewClientset(objs...)
	factory := informers.NewSharedInformerFactory(client, 0)
	z := newZone("cluster.local", 5)
	s, err := newSyncer(factory, z, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.run(ctx, func() { close(ready) })
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		factory.Shutdown()
	})
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("syncer did not become ready")
	}
	return z, client
}

// rrStrings renders records without TTLs, sorted, for comparison.
func rrStrings(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		c := dns.Copy(rr)
		c.Header().Ttl = 0
		if soa, ok := c.(*dns.SOA); ok {
			soa.Serial = 0 // changes with every update
		}
		out = append(out, strings.ReplaceAll(c.String(), "\t", " "))
	}
	slices.Sort(out)
	return out
}

func TestZoneLookup(t *testing.T) {
	z, _ := startSyncer(t, testObjects()...)
	const (
		nx = dns.RcodeNameError
		ok = dns.RcodeSuccess
	)
	tests := []struct {
		name    string
		qname   string
		qtype   uint16
		forward bool
		rcode   int
		answer  []string
		extra   []string
		chase   string
	}{
		{name: "clusterIP A", qname: "kubernetes.default.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{"kubernetes.default.svc.cluster.local. 0 IN A 10.43.0.1"}},
		{name: "case-insensitive, echoes the question's spelling", qname: "Kubernetes.DEFAULT.svc.Cluster.Local.", qtype: dns.TypeA,
			answer: []string{"Kubernetes.DEFAULT.svc.Cluster.Local. 0 IN A 10.43.0.1"}},
		{name: "clusterIP AAAA of IPv4-only service is NODATA", qname: "kubernetes.default.svc.cluster.local.", qtype: dns.TypeAAAA,
			rcode: ok},
		{name: "clusterIP TXT is NODATA", qname: "kubernetes.default.svc.cluster.local.", qtype: dns.TypeTXT, rcode: ok},
		{name: "dual-stack A", qname: "dual.default.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{"dual.default.svc.cluster.local. 0 IN A 10.43.0.20"}},
		{name: "dual-stack AAAA", qname: "dual.default.svc.cluster.local.", qtype: dns.TypeAAAA,
			answer: []string{"dual.default.svc.cluster.local. 0 IN AAAA fd00:43::20"}},
		{name: "clusterIP SRV", qname: "_https._tcp.kubernetes.default.svc.cluster.local.", qtype: dns.TypeSRV,
			answer: []string{"_https._tcp.kubernetes.default.svc.cluster.local. 0 IN SRV 0 100 443 kubernetes.default.svc.cluster.local."},
			extra:  []string{"kubernetes.default.svc.cluster.local. 0 IN A 10.43.0.1"}},
		{name: "clusterIP SRV udp port", qname: "_dns._udp.kube-dns.kube-system.svc.cluster.local.", qtype: dns.TypeSRV,
			answer: []string{"_dns._udp.kube-dns.kube-system.svc.cluster.local. 0 IN SRV 0 100 53 kube-dns.kube-system.svc.cluster.local."},
			extra:  []string{"kube-dns.kube-system.svc.cluster.local. 0 IN A 10.43.0.10"}},
		{name: "SRV with wrong protocol", qname: "_dns._tcp.kube-dns.kube-system.svc.cluster.local.", qtype: dns.TypeSRV, rcode: nx},
		{name: "SRV name asked for A is NODATA", qname: "_https._tcp.kubernetes.default.svc.cluster.local.", qtype: dns.TypeA, rcode: ok},
		{name: "proto empty non-terminal", qname: "_tcp.kubernetes.default.svc.cluster.local.", qtype: dns.TypeSRV, rcode: ok},
		{name: "unused proto", qname: "_sctp.kubernetes.default.svc.cluster.local.", qtype: dns.TypeSRV, rcode: nx},
		{name: "SRV on the bare service name lists named ports once", qname: "kube-dns.kube-system.svc.cluster.local.", qtype: dns.TypeSRV,
			answer: []string{"kube-dns.kube-system.svc.cluster.local. 0 IN SRV 0 100 53 kube-dns.kube-system.svc.cluster.local."},
			extra:  []string{"kube-dns.kube-system.svc.cluster.local. 0 IN A 10.43.0.10"}},
		{name: "SRV on a bare headless name", qname: "pg.db.svc.cluster.local.", qtype: dns.TypeSRV,
			answer: []string{
				"pg.db.svc.cluster.local. 0 IN SRV 0 50 5432 pg-0.pg.db.svc.cluster.local.",
				"pg.db.svc.cluster.local. 0 IN SRV 0 50 5432 pg-1.pg.db.svc.cluster.local.",
			},
			extra: []string{"pg-0.pg.db.svc.cluster.local. 0 IN A 10.42.0.10", "pg-1.pg.db.svc.cluster.local. 0 IN A 10.42.1.11"}},
		{name: "headless A lists ready endpoints", qname: "pg.db.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{"pg.db.svc.cluster.local. 0 IN A 10.42.0.10", "pg.db.svc.cluster.local. 0 IN A 10.42.1.11"}},
		{name: "headless AAAA of IPv4 endpoints is NODATA", qname: "pg.db.svc.cluster.local.", qtype: dns.TypeAAAA, rcode: ok},
		{name: "headless hostname A", qname: "pg-1.pg.db.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{"pg-1.pg.db.svc.cluster.local. 0 IN A 10.42.1.11"}},
		{name: "not-ready hostname does not exist", qname: "pg-2.pg.db.svc.cluster.local.", qtype: dns.TypeA, rcode: nx},
		{name: "headless hostname AAAA is NODATA", qname: "pg-0.pg.db.svc.cluster.local.", qtype: dns.TypeAAAA, rcode: ok},
		{name: "headless SRV targets hostnames", qname: "_sql._tcp.pg.db.svc.cluster.local.", qtype: dns.TypeSRV,
			answer: []string{
				"_sql._tcp.pg.db.svc.cluster.local. 0 IN SRV 0 50 5432 pg-0.pg.db.svc.cluster.local.",
				"_sql._tcp.pg.db.svc.cluster.local. 0 IN SRV 0 50 5432 pg-1.pg.db.svc.cluster.local.",
			},
			extra: []string{"pg-0.pg.db.svc.cluster.local. 0 IN A 10.42.0.10", "pg-1.pg.db.svc.cluster.local. 0 IN A 10.42.1.11"}},
		{name: "headless SRV uses the endpoint port and dashed names", qname: "_http._tcp.web.default.svc.cluster.local.", qtype: dns.TypeSRV,
			answer: []string{"_http._tcp.web.default.svc.cluster.local. 0 IN SRV 0 100 8080 10-42-0-20.web.default.svc.cluster.local."},
			extra:  []string{"10-42-0-20.web.default.svc.cluster.local. 0 IN A 10.42.0.20"}},
		{name: "dashed endpoint name resolves", qname: "10-42-0-20.web.default.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{"10-42-0-20.web.default.svc.cluster.local. 0 IN A 10.42.0.20"}},
		{name: "headless without ready endpoints is NXDOMAIN", qname: "empty.default.svc.cluster.local.", qtype: dns.TypeA, rcode: nx},
		{name: "hostname under a clusterIP service", qname: "pg-0.kubernetes.default.svc.cluster.local.", qtype: dns.TypeA, rcode: nx},
		{name: "externalName CNAME, chase the target", qname: "ext.default.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{"ext.default.svc.cluster.local. 0 IN CNAME www.example.com."}, chase: "www.example.com."},
		{name: "ANY returns every address", qname: "dual.default.svc.cluster.local.", qtype: dns.TypeANY,
			answer: []string{"dual.default.svc.cluster.local. 0 IN A 10.43.0.20", "dual.default.svc.cluster.local. 0 IN AAAA fd00:43::20"}},
		{name: "externalName asked for ANY is not chased", qname: "ext.default.svc.cluster.local.", qtype: dns.TypeANY,
			answer: []string{"ext.default.svc.cluster.local. 0 IN CNAME www.example.com."}},
		{name: "externalName asked for CNAME is not chased", qname: "ext.default.svc.cluster.local.", qtype: dns.TypeCNAME,
			answer: []string{"ext.default.svc.cluster.local. 0 IN CNAME www.example.com."}},
		{name: "externalName has no SRV names", qname: "_http._tcp.ext.default.svc.cluster.local.", qtype: dns.TypeSRV, rcode: nx},
		{name: "PTR of a clusterIP", qname: "1.0.43.10.in-addr.arpa.", qtype: dns.TypePTR,
			answer: []string{"1.0.43.10.in-addr.arpa. 0 IN PTR kubernetes.default.svc.cluster.local."}},
		{name: "PTR of an IPv6 clusterIP", qname: "0.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.3.4.0.0.0.0.d.f.ip6.arpa.", qtype: dns.TypePTR,
			answer: []string{"0.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.3.4.0.0.0.0.d.f.ip6.arpa. 0 IN PTR dual.default.svc.cluster.local."}},
		{name: "PTR of a headless endpoint", qname: "11.1.42.10.in-addr.arpa.", qtype: dns.TypePTR,
			answer: []string{"11.1.42.10.in-addr.arpa. 0 IN PTR pg-1.pg.db.svc.cluster.local."}},
		{name: "PTR of a headless endpoint without hostname", qname: "20.0.42.10.in-addr.arpa.", qtype: dns.TypePTR,
			answer: []string{"20.0.42.10.in-addr.arpa. 0 IN PTR 10-42-0-20.web.default.svc.cluster.local."}},
		{name: "PTR of an unknown address is forwarded", qname: "8.8.8.8.in-addr.arpa.", qtype: dns.TypePTR, forward: true},
		{name: "PTR of a not-ready endpoint is forwarded", qname: "12.1.42.10.in-addr.arpa.", qtype: dns.TypePTR, forward: true},
		{name: "pod A record", qname: "10-42-0-99.default.pod.cluster.local.", qtype: dns.TypeA,
			answer: []string{"10-42-0-99.default.pod.cluster.local. 0 IN A 10.42.0.99"}},
		{name: "pod AAAA of IPv4 pod is NODATA", qname: "10-42-0-99.default.pod.cluster.local.", qtype: dns.TypeAAAA, rcode: ok},
		{name: "IPv6 pod", qname: "fd00--99.default.pod.cluster.local.", qtype: dns.TypeAAAA,
			answer: []string{"fd00--99.default.pod.cluster.local. 0 IN AAAA fd00::99"}},
		{name: "malformed pod name", qname: "10-42-0.default.pod.cluster.local.", qtype: dns.TypeA, rcode: nx},
		{name: "namespace with services is NODATA", qname: "default.svc.cluster.local.", qtype: dns.TypeA, rcode: ok},
		{name: "namespace without services is NXDOMAIN", qname: "nothing.svc.cluster.local.", qtype: dns.TypeA, rcode: nx},
		{name: "unknown service", qname: "nope.default.svc.cluster.local.", qtype: dns.TypeA, rcode: nx},
		{name: "svc subtree", qname: "svc.cluster.local.", qtype: dns.TypeA, rcode: ok},
		{name: "unknown subtree", qname: "foo.cluster.local.", qtype: dns.TypeA, rcode: nx},
		{name: "too deep", qname: "a.b._https._tcp.kubernetes.default.svc.cluster.local.", qtype: dns.TypeA, rcode: nx},
		{name: "apex SOA", qname: "cluster.local.", qtype: dns.TypeSOA,
			answer: []string{"cluster.local. 0 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 0 7200 1800 86400 5"}},
		{name: "apex A is NODATA", qname: "cluster.local.", qtype: dns.TypeA, rcode: ok},
		{name: "schema version", qname: "dns-version.cluster.local.", qtype: dns.TypeTXT,
			answer: []string{`dns-version.cluster.local. 0 IN TXT "1.1.0"`}},
		{name: "outside the zone", qname: "www.example.com.", qtype: dns.TypeA, forward: true},
		{name: "suffix lookalike is outside the zone", qname: "evilcluster.local.", qtype: dns.TypeA, forward: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := z.lookup(tt.qname, tt.qtype)
			if got.forward != tt.forward {
				t.Fatalf("forward = %v, want %v", got.forward, tt.forward)
			}
			if tt.forward {
				return
			}
			if got.rcode != tt.rcode {
				t.Errorf("rcode = %s, want %s", dns.RcodeToString[got.rcode], dns.RcodeToString[tt.rcode])
			}
			if wantSOA := len(tt.answer) == 0; got.soa != wantSOA {
				t.Errorf("soa = %v, want %v", got.soa, wantSOA)
			}
			if a, w := rrStrings(got.answer), tt.answer; !slices.Equal(a, w) {
				t.Errorf("answer:\n got %q\nwant %q", a, w)
			}
			if a, w := rrStrings(got.extra), tt.extra; !slices.Equal(a, w) {
				t.Errorf("extra:\n got %q\nwant %q", a, w)
			}
			if got.chase != tt.chase {
				t.Errorf("chase = %q, want %q", got.chase, tt.chase)
			}
			for _, rr := range got.answer {
				if rr.Header().Ttl != 5 {
					t.Errorf("TTL of %s = %d, want 5", rr, rr.Header().Ttl)
				}
			}
		})
	}
}

// waitFor polls cond until it holds or the test times out.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestZoneFollowsChanges(t *testing.T) {
	z, client := startSyncer(t, testObjects()...)
	ctx := context.Background()
	aRecords := func(name string) []string {
		var out []string
		for _, rr := range z.lookup(name, dns.TypeA).answer {
			out = append(out, rr.(*dns.A).A.String())
		}
		slices.Sort(out)
		return out
	}

	// A new Service appears, with its PTR.
	if _, err := client.CoreV1().Services("default").Create(ctx,
		clusterIPService("default", "new", []string{"10.43.0.99"}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "new service", func() bool { return slices.Equal(aRecords("new.default.svc.cluster.local."), []string{"10.43.0.99"}) })
	if r := z.lookup("99.0.43.10.in-addr.arpa.", dns.TypePTR); len(r.answer) != 1 {
		t.Errorf("PTR of new service: %+v", r)
	}

	// Endpoints of the empty headless Service become ready.
	if _, err := client.DiscoveryV1().EndpointSlices("default").Create(ctx,
		slice("default", "empty", "empty-1", discoveryv1.AddressTypeIPv4, nil, testEndpoint{ip: "10.42.0.50"}),
		metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "endpoint of empty", func() bool { return slices.Equal(aRecords("empty.default.svc.cluster.local."), []string{"10.42.0.50"}) })

	// pg-2 becomes ready.
	sl, err := client.DiscoveryV1().EndpointSlices("db").Get(ctx, "pg-abc", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sl.Endpoints[2].Conditions.Ready = ptr.To(true)
	if _, err := client.DiscoveryV1().EndpointSlices("db").Update(ctx, sl, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "pg-2 ready", func() bool { return slices.Equal(aRecords("pg-2.pg.db.svc.cluster.local."), []string{"10.42.1.12"}) })

	// Deleting a Service removes its names and reverse records.
	if err := client.CoreV1().Services("default").Delete(ctx, "kubernetes", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "kubernetes gone", func() bool {
		return z.lookup("kubernetes.default.svc.cluster.local.", dns.TypeA).rcode == dns.RcodeNameError
	})
	if r := z.lookup("1.0.43.10.in-addr.arpa.", dns.TypePTR); !r.forward {
		t.Errorf("PTR of deleted service still answered: %+v", r)
	}

	// Deleting the slices of a headless Service makes it NXDOMAIN.
	if err := client.DiscoveryV1().EndpointSlices("db").Delete(ctx, "pg-abc", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "pg without endpoints", func() bool {
		return z.lookup("pg.db.svc.cluster.local.", dns.TypeA).rcode == dns.RcodeNameError
	})
	if r := z.lookup("11.1.42.10.in-addr.arpa.", dns.TypePTR); !r.forward {
		t.Errorf("PTR of removed endpoint still answered: %+v", r)
	}
}

func TestZonePTRSharedAddress(t *testing.T) {
	// One pod behind two headless Services has two PTR records; removing one
	// Service keeps the other.
	z := newZone("cluster.local", 5)
	ep := []testEndpoint{{ip: "10.42.0.5", hostname: "p"}}
	for _, name := range []string{"a", "b"} {
		e, _ := buildServiceEntry(headlessService("ns", name),
			[]*discoveryv1.EndpointSlice{slice("ns", name, name, discoveryv1.AddressTypeIPv4, nil, ep...)})
		z.set(serviceKey{"ns", name}, e)
	}
	got := rrStrings(z.lookup("5.0.42.10.in-addr.arpa.", dns.TypePTR).answer)
	want := []string{"5.0.42.10.in-addr.arpa. 0 IN PTR p.a.ns.svc.cluster.local.", "5.0.42.10.in-addr.arpa. 0 IN PTR p.b.ns.svc.cluster.local."}
	if !slices.Equal(got, want) {
		t.Fatalf("PTR: got %q want %q", got, want)
	}
	z.set(serviceKey{"ns", "a"}, nil)
	got = rrStrings(z.lookup("5.0.42.10.in-addr.arpa.", dns.TypePTR).answer)
	if !slices.Equal(got, want[1:]) {
		t.Fatalf("PTR after delete: got %q want %q", got, want[1:])
	}
	if z.namespaces["ns"] != 1 {
		t.Errorf("namespace count = %d, want 1", z.namespaces["ns"])
	}
}
