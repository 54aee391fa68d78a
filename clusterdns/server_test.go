package clusterdns

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
)

// fakeUpstream is an authoritative server for example.com on a loopback
// port that counts the questions it gets, per transport.
type fakeUpstream struct {
	addr string
	mu   sync.Mutex
	hits map[string]int // "name type net" -> count
}

func (u *fakeUpstream) count(name string, qtype uint16, network string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.hits[fmt.Sprintf("%s %s %s", name, dns.TypeToString[qtype], network)]
}

func (u *fakeUpstream) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	q := r.Question[0]
	network := "tcp"
	if _, ok := w.RemoteAddr().(*net.UDPAddr); ok {
		network = "udp"
	}
	u.mu.Lock()
	u.hits[fmt.Sprintf("%s %s %s", strings.ToLower(q.Name), dns.TypeToString[q.Qtype], network)]++
	u.mu.Unlock()

	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	hdr := func(t uint16, ttl uint32) dns.RR_Header {
		return dns.RR_Header{Name: q.Name, Rrtype: t, Class: dns.ClassINET, Ttl: ttl}
	}
	switch name := strings.ToLower(q.Name); {
	case name == "www.example.com." && q.Qtype == dns.TypeA:
		m.Answer = []dns.RR{&dns.A{Hdr: hdr(dns.TypeA, 60), A: net.ParseIP("192.0.2.10")}}
	case name == "www.example.com.":
		m.Ns = []dns.RR{soaRR("example.com.", 300, 20)}
	case name == "big.example.com." && network == "udp":
		m.Truncated = true
	case name == "big.example.com.":
		for i := range 40 {
			m.Answer = append(m.Answer, &dns.TXT{Hdr: hdr(dns.TypeTXT, 60), Txt: []string{fmt.Sprintf("record %02d %s", i, strings.Repeat("x", 40))}})
		}
	case name == "slow.example.com.":
		time.Sleep(300 * time.Millisecond)
		m.Answer = []dns.RR{&dns.A{Hdr: hdr(dns.TypeA, 60), A: net.ParseIP("192.0.2.11")}}
	case name == "fail.example.com.":
		m.Rcode = dns.RcodeServerFailure
	default:
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{soaRR("example.com.", 300, 20)}
	}
	if opt := r.IsEdns0(); opt != nil {
		m.SetEdns0(opt.UDPSize(), false)
	}
	w.WriteMsg(m)
}

// startUpstream serves the fake upstream on UDP and TCP of one loopback port.
func startUpstream(t testing.TB) *fakeUpstream {
	t.Helper()
	u := &fakeUpstream{hits: map[string]int{}}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	u.addr = pc.LocalAddr().String()
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: u}, {Listener: l, Handler: u}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go srv.ActivateAndServe()
		<-started
		t.Cleanup(func() { srv.Shutdown() })
	}
	return u
}

type testServer struct {
	*Server
	addr   string
	client *fake.Clientset
}

// startServer runs a Server on 127.0.0.1:0 over a fake clientset and waits
// until it answers cluster names.
func startServer(t testing.TB, cfg Config, objs ...runtime.Object) *testServer {
	t.Helper()
	return startServerWith(t, cfg, nil, objs...)
}

// startServerWith is startServer with a hook that adjusts the Server before
// it runs.
func startServerWith(t testing.TB, cfg Config, hook func(*Server), objs ...runtime.Object) *testServer {
	t.Helper()
	client := fake.NewClientset(objs...)
	factory := informers.NewSharedInformerFactory(client, 0)
	cfg.Listen = []string{"127.0.0.1:0"}
	cfg.Log = quietLog()
	s, err := New(factory, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if hook != nil {
		hook(s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		factory.Shutdown()
	})
	waitFor(t, "cache sync", s.synced.Load)
	return &testServer{Server: s, addr: s.Addrs()[0].String(), client: client}
}

// wireLen is the size of a received message as sent (compressed).
func wireLen(m *dns.Msg) int {
	m.Compress = true
	return m.Len()
}

func (ts *testServer) query(t *testing.T, network, name string, qtype uint16, edns uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	if edns > 0 {
		m.SetEdns0(edns, false)
	}
	c := &dns.Client{Net: network, Timeout: 5 * time.Second, UDPSize: edns}
	resp, _, err := c.Exchange(m, ts.addr)
	if err != nil {
		t.Fatalf("%s %s over %s: %v", name, dns.TypeToString[qtype], network, err)
	}
	return resp
}

func TestServerClusterAnswers(t *testing.T) {
	up := startUpstream(t)
	ts := startServer(t, Config{Upstreams: []string{up.addr}}, testObjects()...)

	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			// A of a ClusterIP Service, authoritative.
			r := ts.query(t, network, "kubernetes.default.svc.cluster.local.", dns.TypeA, 0)
			if r.Rcode != dns.RcodeSuccess || !r.Authoritative || len(r.Answer) != 1 ||
				r.Answer[0].(*dns.A).A.String() != "10.43.0.1" || r.Answer[0].Header().Ttl != 5 {
				t.Errorf("A: %v", r)
			}
			// SRV with the target's address in the additional section.
			r = ts.query(t, network, "_sql._tcp.pg.db.svc.cluster.local.", dns.TypeSRV, 1232)
			if len(r.Answer) != 2 || len(r.Extra) != 3 { // two A + OPT
				t.Errorf("SRV: %v", r)
			}
			// PTR of a ClusterIP.
			r = ts.query(t, network, "10.0.43.10.in-addr.arpa.", dns.TypePTR, 0)
			if len(r.Answer) != 1 || r.Answer[0].(*dns.PTR).Ptr != "kube-dns.kube-system.svc.cluster.local." || !r.Authoritative {
				t.Errorf("PTR: %v", r)
			}
			// NXDOMAIN and NODATA both carry the SOA.
			r = ts.query(t, network, "nope.default.svc.cluster.local.", dns.TypeA, 0)
			if r.Rcode != dns.RcodeNameError || !r.Authoritative || len(r.Answer) != 0 || len(r.Ns) != 1 || r.Ns[0].Header().Rrtype != dns.TypeSOA {
				t.Errorf("NXDOMAIN: %v", r)
			}
			r = ts.query(t, network, "kubernetes.default.svc.cluster.local.", dns.TypeAAAA, 0)
			if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 || len(r.Ns) != 1 || r.Ns[0].Header().Rrtype != dns.TypeSOA {
				t.Errorf("NODATA: %v", r)
			}
		})
	}

	// ExternalName: CNAME plus the upstream's A record.
	r := ts.query(t, "udp", "ext.default.svc.cluster.local.", dns.TypeA, 0)
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 2 ||
		r.Answer[0].(*dns.CNAME).Target != "www.example.com." || r.Answer[1].(*dns.A).A.String() != "192.0.2.10" {
		t.Errorf("ExternalName A: %v", r)
	}
	// Asked for CNAME, the target is not chased.
	r = ts.query(t, "udp", "ext.default.svc.cluster.local.", dns.TypeCNAME, 0)
	if len(r.Answer) != 1 {
		t.Errorf("ExternalName CNAME: %v", r)
	}
	// A name without AAAA upstream: CNAME and NODATA from the upstream.
	r = ts.query(t, "udp", "ext.default.svc.cluster.local.", dns.TypeAAAA, 0)
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || len(r.Ns) != 1 {
		t.Errorf("ExternalName AAAA: %v", r)
	}
	// An ExternalName pointing into the cluster is chased without upstream.
	before := up.count("kubernetes.default.svc.cluster.local.", dns.TypeA, "udp")
	r = ts.query(t, "udp", "alias.default.svc.cluster.local.", dns.TypeA, 0)
	if len(r.Answer) != 2 || r.Answer[1].(*dns.A).A.String() != "10.43.0.1" {
		t.Errorf("in-cluster ExternalName: %v", r)
	}
	if up.count("kubernetes.default.svc.cluster.local.", dns.TypeA, "udp") != before {
		t.Error("in-cluster CNAME target was forwarded")
	}
	// A CNAME loop ends in SERVFAIL after a bounded chain.
	r = ts.query(t, "tcp", "loop-a.default.svc.cluster.local.", dns.TypeA, 0)
	if r.Rcode != dns.RcodeServerFailure || len(r.Answer) != maxChase+1 {
		t.Errorf("CNAME loop: rcode %s, %d records", dns.RcodeToString[r.Rcode], len(r.Answer))
	}
	if st := ts.Stats(); st.ClusterAnswers == 0 || st.Queries < st.ClusterAnswers {
		t.Errorf("stats: %+v", st)
	}
}

func TestServerForwardingAndCache(t *testing.T) {
	up := startUpstream(t)
	now := time.Unix(2_000_000, 0)
	var clock sync.Mutex
	ts := startServerWith(t, Config{Upstreams: []string{up.addr}}, func(s *Server) {
		s.fwd.now = func() time.Time { clock.Lock(); defer clock.Unlock(); return now }
	}, testObjects()...)
	advance := func(d time.Duration) { clock.Lock(); now = now.Add(d); clock.Unlock() }

	r := ts.query(t, "udp", "www.example.com.", dns.TypeA, 0)
	if r.Rcode != dns.RcodeSuccess || r.Authoritative || !r.RecursionAvailable || len(r.Answer) != 1 || r.Answer[0].Header().Ttl != 60 {
		t.Fatalf("forwarded A: %v", r)
	}
	advance(15 * time.Second)
	r = ts.query(t, "tcp", "WWW.example.com.", dns.TypeA, 0)
	if len(r.Answer) != 1 || r.Answer[0].Header().Ttl != 45 {
		t.Errorf("cached A: %v", r)
	}
	if n := up.count("www.example.com.", dns.TypeA, "udp"); n != 1 {
		t.Errorf("upstream got %d queries, want 1 (second should be a cache hit)", n)
	}
	if st := ts.Stats(); st.CacheHits != 1 || st.CacheMisses != 1 || st.UpstreamExchanges != 1 {
		t.Errorf("stats after hit: %+v", st)
	}
	// The cache caps TTLs at CacheTTL (30s): expired after 30s in total.
	advance(16 * time.Second)
	ts.query(t, "udp", "www.example.com.", dns.TypeA, 0)
	if n := up.count("www.example.com.", dns.TypeA, "udp"); n != 2 {
		t.Errorf("upstream got %d queries after expiry, want 2", n)
	}

	// Negative answers are cached for the SOA minimum (20s).
	for range 2 {
		r = ts.query(t, "udp", "missing.example.com.", dns.TypeA, 0)
		if r.Rcode != dns.RcodeNameError || len(r.Ns) != 1 {
			t.Fatalf("forwarded NXDOMAIN: %v", r)
		}
	}
	if n := up.count("missing.example.com.", dns.TypeA, "udp"); n != 1 {
		t.Errorf("NXDOMAIN asked upstream %d times, want 1", n)
	}
	advance(21 * time.Second)
	ts.query(t, "udp", "missing.example.com.", dns.TypeA, 0)
	if n := up.count("missing.example.com.", dns.TypeA, "udp"); n != 2 {
		t.Errorf("NXDOMAIN asked upstream %d times after negative TTL, want 2", n)
	}

	// Identical concurrent misses share one upstream exchange.
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := new(dns.Msg).SetQuestion("slow.example.com.", dns.TypeA)
			r, err := dns.Exchange(m, ts.addr)
			if err != nil || len(r.Answer) != 1 {
				t.Errorf("concurrent slow query: %v %v", err, r)
			}
		}()
	}
	wg.Wait()
	if n := up.count("slow.example.com.", dns.TypeA, "udp"); n != 1 {
		t.Errorf("5 concurrent misses made %d upstream queries, want 1", n)
	}

	// SERVFAIL is passed on and not cached.
	for range 2 {
		if r = ts.query(t, "udp", "fail.example.com.", dns.TypeA, 0); r.Rcode != dns.RcodeServerFailure {
			t.Errorf("SERVFAIL: %v", r)
		}
	}
	if n := up.count("fail.example.com.", dns.TypeA, "udp"); n != 2 {
		t.Errorf("SERVFAIL asked upstream %d times, want 2", n)
	}

	// A truncated upstream answer is fetched again over TCP, and the client
	// gets it whole over TCP or with a large EDNS0 buffer.
	r = ts.query(t, "tcp", "big.example.com.", dns.TypeTXT, 0)
	if len(r.Answer) != 40 || r.Truncated {
		t.Errorf("big TXT over tcp: %d records, tc=%v", len(r.Answer), r.Truncated)
	}
	if u, tc := up.count("big.example.com.", dns.TypeTXT, "udp"), up.count("big.example.com.", dns.TypeTXT, "tcp"); u != 1 || tc != 1 {
		t.Errorf("upstream big TXT: udp %d tcp %d, want 1 and 1", u, tc)
	}
	r = ts.query(t, "udp", "big.example.com.", dns.TypeTXT, 0)
	if !r.Truncated || wireLen(r) > 512 {
		t.Errorf("big TXT over udp without EDNS0: tc=%v len=%d", r.Truncated, wireLen(r))
	}
	r = ts.query(t, "udp", "big.example.com.", dns.TypeTXT, 4096)
	if r.Truncated || len(r.Answer) != 40 {
		t.Errorf("big TXT over udp with 4096 buffer: tc=%v records=%d", r.Truncated, len(r.Answer))
	}

	// Reverse names the cluster does not know go upstream.
	r = ts.query(t, "udp", "9.2.0.192.in-addr.arpa.", dns.TypePTR, 0)
	if r.Rcode != dns.RcodeNameError || up.count("9.2.0.192.in-addr.arpa.", dns.TypePTR, "udp") != 1 {
		t.Errorf("unknown PTR: %v", r)
	}
}

func TestServerTruncatesClusterAnswers(t *testing.T) {
	objs := []runtime.Object{headlessService("default", "many", svcPort("http", corev1.ProtocolTCP, 80))}
	var eps []testEndpoint
	for i := range 60 {
		eps = append(eps, testEndpoint{ip: fmt.Sprintf("10.42.0.%d", i+1), hostname: fmt.Sprintf("many-%d", i)})
	}
	objs = append(objs, slice("default", "many", "many-1", discoveryv1.AddressTypeIPv4,
		[]discoveryv1.EndpointPort{epPort("http", corev1.ProtocolTCP, 80)}, eps...))
	ts := startServer(t, Config{Upstreams: []string{}}, objs...)

	r := ts.query(t, "udp", "many.default.svc.cluster.local.", dns.TypeA, 0)
	if !r.Truncated || len(r.Answer) == 0 || len(r.Answer) == 60 || wireLen(r) > 512 {
		t.Errorf("UDP without EDNS0: tc=%v records=%d len=%d", r.Truncated, len(r.Answer), wireLen(r))
	}
	r = ts.query(t, "udp", "many.default.svc.cluster.local.", dns.TypeA, 4096)
	if r.Truncated || len(r.Answer) != 60 || r.IsEdns0() == nil {
		t.Errorf("UDP with EDNS0 4096: tc=%v records=%d", r.Truncated, len(r.Answer))
	}
	r = ts.query(t, "tcp", "_http._tcp.many.default.svc.cluster.local.", dns.TypeSRV, 0)
	if r.Truncated || len(r.Answer) != 60 || len(r.Extra) != 60 {
		t.Errorf("SRV over TCP: tc=%v answer=%d extra=%d", r.Truncated, len(r.Answer), len(r.Extra))
	}
}

func TestServerUpstreamFailover(t *testing.T) {
	up := startUpstream(t)
	// Nothing listens on the first upstream: the kernel refuses, the server
	// moves on.
	dead, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.LocalAddr().String()
	dead.Close()
	ts := startServer(t, Config{Upstreams: []string{deadAddr, up.addr}}, testObjects()...)
	r := ts.query(t, "udp", "www.example.com.", dns.TypeA, 0)
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Errorf("failover: %v", r)
	}
	if st := ts.Stats(); st.UpstreamErrors != 1 || st.UpstreamExchanges != 2 {
		t.Errorf("stats: %+v", st)
	}
}

func TestServerWithoutUpstreams(t *testing.T) {
	ts := startServer(t, Config{Upstreams: []string{}}, testObjects()...)
	if r := ts.query(t, "udp", "www.example.com.", dns.TypeA, 0); r.Rcode != dns.RcodeServerFailure {
		t.Errorf("no upstreams: %v", r)
	}
	// ExternalName chase fails: SERVFAIL with the CNAME.
	if r := ts.query(t, "udp", "ext.default.svc.cluster.local.", dns.TypeA, 0); r.Rcode != dns.RcodeServerFailure || len(r.Answer) != 1 {
		t.Errorf("failed chase: %v", r)
	}
	// Cluster names still work.
	if r := ts.query(t, "udp", "kubernetes.default.svc.cluster.local.", dns.TypeA, 0); r.Rcode != dns.RcodeSuccess {
		t.Errorf("cluster name: %v", r)
	}
}

func TestServerProtocolErrors(t *testing.T) {
	ts := startServer(t, Config{Upstreams: []string{}}, testObjects()...)
	m := new(dns.Msg)
	m.SetQuestion("kubernetes.default.svc.cluster.local.", dns.TypeA)
	m.SetEdns0(1232, false)
	m.IsEdns0().SetVersion(1)
	r, err := dns.Exchange(m, ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	if r.Rcode != dns.RcodeBadVers || r.IsEdns0() == nil {
		t.Errorf("EDNS version 1: rcode %s", dns.RcodeToString[r.Rcode])
	}
	m = new(dns.Msg).SetQuestion("cluster.local.", dns.TypeAXFR)
	if r, _, err := (&dns.Client{Net: "tcp"}).Exchange(m, ts.addr); err != nil || r.Rcode != dns.RcodeRefused {
		t.Errorf("AXFR: %v %v", err, r)
	}
}

func TestServerBeforeSync(t *testing.T) {
	// A Server whose informers have not synced answers cluster names with
	// SERVFAIL and still forwards.
	up := startUpstream(t)
	factory := informers.NewSharedInformerFactory(fake.NewClientset(testObjects()...), 0)
	s, err := New(factory, Config{Listen: []string{"127.0.0.1:0"}, Upstreams: []string{up.addr}, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.closeSockets)
	q := new(dns.Msg)
	q.SetQuestion("kubernetes.default.svc.cluster.local.", dns.TypeA)
	if r := s.answer(context.Background(), q, true); r.Rcode != dns.RcodeServerFailure {
		t.Errorf("cluster name before sync: %v", r)
	}
	q.SetQuestion("www.example.com.", dns.TypeA)
	if r := s.answer(context.Background(), q, true); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Errorf("forwarding before sync: %v", r)
	}
}

func TestServerRunStops(t *testing.T) {
	factory := informers.NewSharedInformerFactory(fake.NewClientset(), 0)
	s, err := New(factory, Config{Listen: []string{"127.0.0.1:0", "127.0.0.1:0"}, Upstreams: []string{}, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Addrs()) != 2 || s.Addrs()[0].String() == s.Addrs()[1].String() {
		t.Fatalf("Addrs: %v", s.Addrs())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	waitFor(t, "sync", s.synced.Load)
	addr := s.Addrs()[1].String()
	if _, err := dns.Exchange(new(dns.Msg).SetQuestion("cluster.local.", dns.TypeSOA), addr); err != nil {
		t.Fatalf("query before stop: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	factory.Shutdown()
	// The TCP port is free again.
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("port still bound after Run: %v", err)
	}
	l.Close()
	if err := s.Run(context.Background()); err == nil {
		t.Error("second Run succeeded")
	}
}
