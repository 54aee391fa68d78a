package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"

	"github.com/skiff-sh/skiff/clusterdns"
)

// The dns measurement: the cluster DNS server (package clusterdns) run in
// this process against a real server with dnsServices Services, on a free
// loopback UDP port, loaded by dnsClients concurrent UDP clients (each its
// own socket, one query in flight) for a few seconds per kind of query:
// cluster Service names (A), an external name forwarded once and then
// answered from the cache (the upstream is a small server the benchmark
// runs on loopback), and NXDOMAIN in the cluster zone. The load generator
// shares the machine's two cores with the DNS server.
const (
	dnsServices     = 1000
	dnsNamespace    = "dns-bench"
	dnsClients      = 16
	dnsQueryTimeout = 2 * time.Second
	dnsExternalTTL  = 300
	// dnsExternalNames are the external names queried, round robin.
	dnsExternalNames = 10
)

// dnsKind is one kind of query the measurement loads the server with.
type dnsKind struct {
	label string
	// query is the question a client asks for its seq-th query, and the
	// response code it must get (with an answer, for NOERROR).
	query func(worker, seq int) (name string, rcode int)
}

var dnsKinds = []dnsKind{
	{"cluster Service A", func(w, seq int) (string, int) {
		return fmt.Sprintf("svc-%04d.%s.svc.cluster.local.", (w*7919+seq)%dnsServices, dnsNamespace), dns.RcodeSuccess
	}},
	{"external A from cache", func(w, seq int) (string, int) {
		return fmt.Sprintf("host-%d.bench.example.", (w+seq)%dnsExternalNames), dns.RcodeSuccess
	}},
	{"cluster NXDOMAIN", func(w, seq int) (string, int) {
		return fmt.Sprintf("missing-%d-%d.%s.svc.cluster.local.", w, seq, dnsNamespace), dns.RcodeNameError
	}},
}

func measureDNS(ctx context.Context, e *env) error {
	d := 3 * time.Second
	if e.rep.Meta.Quick {
		d = time.Second
	}
	runs := e.opts.heavyRuns
	rates := make([][]float64, len(dnsKinds))
	p50s := make([][]float64, len(dnsKinds))
	p99s := make([][]float64, len(dnsKinds))
	maxes := make([][]float64, len(dnsKinds))
	var final clusterdns.Stats
	var upstreamQueries int64
	err := withServer(ctx, e, "dns", []string{"--service-cidr", benchServiceCIDR, "--disable-scheduler"}, func(s *Server) error {
		cfg, err := s.RESTConfig()
		if err != nil {
			return err
		}
		writer, err := newClient(cfg)
		if err != nil {
			return err
		}
		if err := createNamespace(ctx, writer, dnsNamespace); err != nil {
			return err
		}
		t0 := time.Now()
		err = workersFor(ctx, dnsServices, proxyCreators, func(ctx context.Context, i int) error {
			svc := &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("svc-%04d", i)},
				Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80}}},
			}
			if _, err := writer.CoreV1().Services(dnsNamespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
				return fmt.Errorf("create service %s: %w", svc.Name, err)
			}
			return nil
		}, 0, nil)
		if err != nil {
			return err
		}
		e.progress("dns: %d services created in %.1f s", dnsServices, time.Since(t0).Seconds())

		up, err := startUpstream()
		if err != nil {
			return err
		}
		defer up.stop()
		reader, err := newClient(cfg)
		if err != nil {
			return err
		}
		factory := informers.NewSharedInformerFactory(reader, 0)
		srv, err := clusterdns.New(factory, clusterdns.Config{
			Listen:    []string{"127.0.0.1:0"},
			Upstreams: []string{up.addr},
			Log:       benchLogger(e.lab.logs, "clusterdns"),
		})
		if err != nil {
			return err
		}
		sctx, stopDNS := context.WithCancel(ctx)
		bg := runInBackground(sctx, srv.Run)
		defer func() {
			stopDNS()
			<-bg.done
		}()
		addr := srv.Addrs()[0].String()
		if err := waitDNSReady(ctx, addr, bg); err != nil {
			return err
		}
		// Warm the cache: each external name is fetched upstream once.
		for i := range dnsExternalNames {
			name, _ := dnsKinds[1].query(0, i)
			if _, err := dnsAsk(addr, name); err != nil {
				return fmt.Errorf("warming the cache with %s: %w", name, err)
			}
		}

		// Warm up (first-use allocations, GC pacing), not measured.
		for _, kind := range dnsKinds {
			if _, err := dnsLoad(ctx, addr, dnsClients, d/2, kind.query); err != nil {
				return fmt.Errorf("warm-up, %s: %w", kind.label, err)
			}
		}
		for run := range runs {
			for k, kind := range dnsKinds {
				res, err := dnsLoad(ctx, addr, dnsClients, d, kind.query)
				if err != nil {
					return fmt.Errorf("%s: %w", kind.label, err)
				}
				lat := Distribution(res.latencies)
				rate := float64(len(res.latencies)) / res.wall.Seconds()
				rates[k] = append(rates[k], rate)
				p50s[k], p99s[k], maxes[k] = append(p50s[k], ms(lat.P50)), append(p99s[k], ms(lat.P99)), append(maxes[k], ms(lat.Max))
				e.progress("dns run %d/%d: %-22s %6.0f queries/s  p50 %s ms  p99 %s ms  max %s ms",
					run+1, runs, kind.label, rate, fmtMs(ms(lat.P50)), fmtMs(ms(lat.P99)), fmtMs(ms(lat.Max)))
			}
		}
		final = srv.Stats()
		upstreamQueries = up.queries.Load()
		return nil
	})
	if err != nil {
		return err
	}
	for k, kind := range dnsKinds {
		e.rep.add(fmt.Sprintf("dns %s, %d clients", kind.label, dnsClients), "%s   %s",
			rateLine(Summarize(rates[k]), "queries/s"), latencyLine(Summarize(p50s[k]), Summarize(p99s[k]), Summarize(maxes[k])))
	}
	e.rep.add("dns server counters", "%d queries, %d cluster answers, %d forwarded: %d cache hits, %d misses; upstream saw %d",
		final.Queries, final.ClusterAnswers, final.Forwarded, final.CacheHits, final.CacheMisses, upstreamQueries)
	return nil
}

// upstream is a tiny authoritative-for-everything DNS server on loopback:
// every A question gets 192.0.2.1 with a long TTL.
type upstream struct {
	addr    string
	srv     *dns.Server
	queries atomic.Int64
}

func startUpstream() (*upstream, error) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("upstream DNS listen: %w", err)
	}
	u := &upstream{addr: pc.LocalAddr().String()}
	started := make(chan struct{})
	u.srv = &dns.Server{PacketConn: pc, NotifyStartedFunc: func() { close(started) },
		Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
			u.queries.Add(1)
			m := new(dns.Msg).SetReply(r)
			m.Authoritative = true
			if len(r.Question) == 1 && r.Question[0].Qtype == dns.TypeA {
				m.Answer = []dns.RR{&dns.A{
					Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: dnsExternalTTL},
					A:   net.IPv4(192, 0, 2, 1),
				}}
			}
			_ = w.WriteMsg(m)
		})}
	failed := make(chan error, 1)
	go func() { failed <- u.srv.ActivateAndServe() }()
	select {
	case <-started:
		return u, nil
	case err := <-failed:
		pc.Close()
		return nil, fmt.Errorf("upstream DNS: %w", err)
	}
}

func (u *upstream) stop() { _ = u.srv.Shutdown() }

// dnsAsk sends one A question and returns the response code.
func dnsAsk(addr, name string) (int, error) {
	c := &dns.Client{Net: "udp", Timeout: dnsQueryTimeout}
	r, _, err := c.Exchange(new(dns.Msg).SetQuestion(name, dns.TypeA), addr)
	if err != nil {
		return 0, err
	}
	if r.Rcode == dns.RcodeSuccess && len(r.Answer) == 0 {
		return 0, fmt.Errorf("%s: NOERROR without an answer", name)
	}
	return r.Rcode, nil
}

// waitDNSReady waits until the server answers the last Service's name:
// its caches have synced and hold every Service.
func waitDNSReady(ctx context.Context, addr string, bg *background) error {
	name := fmt.Sprintf("svc-%04d.%s.svc.cluster.local.", dnsServices-1, dnsNamespace)
	deadline := time.Now().Add(time.Minute)
	for {
		rcode, err := dnsAsk(addr, name)
		if err == nil && rcode == dns.RcodeSuccess {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cluster DNS does not answer %s after a minute (rcode %d, %v)", name, rcode, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-bg.done:
			return bg.stopped("cluster DNS")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// dnsLoad runs clients concurrent UDP clients against addr for d, each
// asking query(worker, seq) with one query in flight. A timeout or a
// wrong answer is an error: on loopback there should be none.
func dnsLoad(ctx context.Context, addr string, clients int, d time.Duration, query func(worker, seq int) (string, int)) (loadRun, error) {
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	deadline, _ := ctx.Deadline()
	// over: the run has ended. The clock can pass the deadline before the
	// context's timer fires; a query cut short then is no failure.
	over := func() bool { return ctx.Err() != nil || !time.Now().Before(deadline) }
	lats := make([][]time.Duration, clients)
	var failures errorTail
	conns := make([]*dns.Conn, clients)
	c := &dns.Client{Net: "udp", Timeout: dnsQueryTimeout}
	for i := range conns {
		conn, err := c.Dial(addr)
		if err != nil {
			for _, cn := range conns[:i] {
				cn.Close()
			}
			return loadRun{}, fmt.Errorf("dial %s: %w", addr, err)
		}
		conns[i] = conn
	}
	start := time.Now()
	var wg sync.WaitGroup
	for w := range clients {
		wg.Go(func() {
			defer conns[w].Close()
			m := new(dns.Msg)
			for seq := 0; !over(); seq++ {
				name, want := query(w, seq)
				m.SetQuestion(name, dns.TypeA)
				m.Id = dns.Id()
				t0 := time.Now()
				r, _, err := c.ExchangeWithConnContext(ctx, m, conns[w])
				took := time.Since(t0)
				switch {
				case err != nil && over():
					return // cut short by the end of the run
				case err != nil:
					failures.add(err)
				case r.Rcode != want:
					failures.add(fmt.Errorf("%s: rcode %s, want %s", name, dns.RcodeToString[r.Rcode], dns.RcodeToString[want]))
				case want == dns.RcodeSuccess && len(r.Answer) == 0:
					failures.add(errors.New(name + ": no answer"))
				default:
					lats[w] = append(lats[w], took)
				}
			}
		})
	}
	wg.Wait()
	return finishLoad(parent, start, lats, &failures, "queries")
}
