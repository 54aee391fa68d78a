package clusterdns

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// BenchmarkServerQueries measures queries/s of a real server over UDP on
// loopback, for a cluster name and for a forwarded name served from cache.
func BenchmarkServerQueries(b *testing.B) {
	up := startUpstream(b)
	ts := startServer(b, Config{Upstreams: []string{up.addr}}, testObjects()...)
	for _, bc := range []struct{ name, qname string }{
		{"cluster", "kubernetes.default.svc.cluster.local."},
		{"headless-srv", "_sql._tcp.pg.db.svc.cluster.local."},
		{"forwarded-cached", "www.example.com."},
	} {
		b.Run(bc.name, func(b *testing.B) {
			qtype := dns.TypeA
			if bc.name == "headless-srv" {
				qtype = dns.TypeSRV
			}
			b.RunParallel(func(pb *testing.PB) {
				c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
				conn, err := c.Dial(ts.addr)
				if err != nil {
					b.Error(err)
					return
				}
				defer conn.Close()
				m := new(dns.Msg).SetQuestion(bc.qname, qtype)
				for pb.Next() {
					m.Id = dns.Id()
					r, _, err := c.ExchangeWithConn(m, conn)
					if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
						b.Errorf("query %s: %v %v", bc.qname, err, r)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "queries/s")
		})
	}
}

// BenchmarkZoneLookup measures the in-memory lookup alone.
func BenchmarkZoneLookup(b *testing.B) {
	z, _ := startSyncer(b, testObjects()...)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if r := z.lookup("kubernetes.default.svc.cluster.local.", dns.TypeA); len(r.answer) != 1 {
				b.Error("no answer")
				return
			}
		}
	})
}

func TestLoad(t *testing.T) {
	up := startUpstream(t)
	ts := startServer(t, Config{Upstreams: []string{up.addr}}, testObjects()...)
	qps, p99, err := Load(context.Background(), ts.addr, "kubernetes.default.svc.cluster.local", 4, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if qps <= 0 || p99 <= 0 || p99 > 2*time.Second {
		t.Errorf("qps %.0f p99 %v", qps, p99)
	}
	if got := ts.Stats().Queries; float64(got) < qps*0.3*0.5 {
		t.Errorf("server saw %d queries, Load claims %.0f/s over 0.3s", got, qps)
	}
	t.Logf("cluster A: %.0f queries/s, p99 %v", qps, p99)

	// SERVFAILs (no upstream answers this) are failures.
	_, _, err = Load(context.Background(), ts.addr, "fail.example.com", 1, 100*time.Millisecond)
	if err == nil {
		t.Error("Load of a SERVFAIL name reported no error")
	}
	// Nobody listening.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := pc.LocalAddr().String()
	pc.Close()
	if _, _, err := Load(context.Background(), dead, "x.", 1, 100*time.Millisecond); err == nil {
		t.Error("Load of a dead address reported no error")
	}
}
