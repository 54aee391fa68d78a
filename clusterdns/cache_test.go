package clusterdns

import (
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func aRR(name string, ttl uint32, ip string) *dns.A {
	return &dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: ttl}, A: net.ParseIP(ip)}
}

func soaRR(zone string, ttl, minttl uint32) *dns.SOA {
	return &dns.SOA{Hdr: dns.RR_Header{Name: zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: ttl},
		Ns: "ns." + zone, Mbox: "h." + zone, Serial: 1, Refresh: 1, Retry: 1, Expire: 1, Minttl: minttl}
}

func msgWith(rcode int, answer, ns []dns.RR) *dns.Msg {
	m := new(dns.Msg)
	m.Response = true
	m.Rcode = rcode
	m.Answer, m.Ns = answer, ns
	return m
}

func TestCacheTTL(t *testing.T) {
	const maxTTL = 30 * time.Second
	truncated := msgWith(dns.RcodeSuccess, []dns.RR{aRR("a.", 10, "192.0.2.1")}, nil)
	truncated.Truncated = true
	tests := []struct {
		name string
		msg  *dns.Msg
		want time.Duration
	}{
		{"positive: smallest TTL", msgWith(dns.RcodeSuccess,
			[]dns.RR{aRR("a.", 20, "192.0.2.1"), aRR("a.", 7, "192.0.2.2")}, nil), 7 * time.Second},
		{"authority TTL counts too", msgWith(dns.RcodeSuccess,
			[]dns.RR{aRR("a.", 20, "192.0.2.1")}, []dns.RR{&dns.NS{Hdr: dns.RR_Header{Name: "a.", Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: 3}, Ns: "ns.a."}}), 3 * time.Second},
		{"positive capped", msgWith(dns.RcodeSuccess, []dns.RR{aRR("a.", 3600, "192.0.2.1")}, nil), maxTTL},
		{"zero TTL not cached", msgWith(dns.RcodeSuccess, []dns.RR{aRR("a.", 0, "192.0.2.1")}, nil), 0},
		{"NXDOMAIN uses SOA minimum", msgWith(dns.RcodeNameError, nil, []dns.RR{soaRR("a.", 900, 12)}), 12 * time.Second},
		{"NXDOMAIN uses SOA TTL when lower", msgWith(dns.RcodeNameError, nil, []dns.RR{soaRR("a.", 4, 12)}), 4 * time.Second},
		{"NODATA uses SOA", msgWith(dns.RcodeSuccess, nil, []dns.RR{soaRR("a.", 900, 9)}), 9 * time.Second},
		{"negative capped", msgWith(dns.RcodeNameError, nil, []dns.RR{soaRR("a.", 900, 900)}), maxTTL},
		{"negative without SOA not cached", msgWith(dns.RcodeNameError, nil, nil), 0},
		{"SERVFAIL not cached", msgWith(dns.RcodeServerFailure, nil, []dns.RR{soaRR("a.", 900, 9)}), 0},
		{"REFUSED not cached", msgWith(dns.RcodeRefused, nil, nil), 0},
		{"truncated not cached", truncated, 0},
	}
	for _, tt := range tests {
		if got := cacheTTL(tt.msg, maxTTL); got != tt.want {
			t.Errorf("%s: cacheTTL = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestCacheExpiryAndAging(t *testing.T) {
	c := newCache(10, time.Minute)
	t0 := time.Unix(1_000_000, 0)
	k := keyOf(dns.Question{Name: "Example.COM.", Qtype: dns.TypeA, Qclass: dns.ClassINET}, false, false)
	m := msgWith(dns.RcodeSuccess, []dns.RR{aRR("example.com.", 10, "192.0.2.1")}, nil)
	m.SetEdns0(1232, false)
	c.put(k, m, t0)

	// The key is case-insensitive.
	k2 := keyOf(dns.Question{Name: "example.com.", Qtype: dns.TypeA, Qclass: dns.ClassINET}, false, false)
	got := c.get(k2, t0.Add(3500*time.Millisecond))
	if got == nil {
		t.Fatal("miss before expiry")
	}
	if ttl := got.Answer[0].Header().Ttl; ttl != 7 {
		t.Errorf("aged TTL = %d, want 7", ttl)
	}
	if got.IsEdns0() != nil {
		t.Error("OPT record was cached")
	}
	// Modifying the copy does not touch the cache.
	got.Answer[0].Header().Ttl = 999
	if again := c.get(k, t0); again.Answer[0].Header().Ttl != 10 {
		t.Errorf("cache entry was modified through a copy: TTL %d", again.Answer[0].Header().Ttl)
	}
	if c.get(k, t0.Add(10*time.Second)) != nil {
		t.Error("hit at expiry")
	}
	if c.len() != 0 {
		t.Errorf("expired entry not removed: len %d", c.len())
	}
	// DO changes the key.
	c.put(k, m, t0)
	if c.get(keyOf(dns.Question{Name: "example.com.", Qtype: dns.TypeA, Qclass: dns.ClassINET}, true, false), t0) != nil {
		t.Error("DO query hit a non-DO entry")
	}
}

func TestCacheLRU(t *testing.T) {
	c := newCache(2, time.Minute)
	now := time.Unix(1_000_000, 0)
	key := func(n string) cacheKey {
		return keyOf(dns.Question{Name: n, Qtype: dns.TypeA, Qclass: dns.ClassINET}, false, false)
	}
	put := func(n string) {
		c.put(key(n), msgWith(dns.RcodeSuccess, []dns.RR{aRR(n, 60, "192.0.2.1")}, nil), now)
	}
	put("a.")
	put("b.")
	c.get(key("a."), now) // a is now more recent than b
	put("c.")
	if c.get(key("b."), now) != nil {
		t.Error("least recently used entry b was kept")
	}
	if c.get(key("a."), now) == nil || c.get(key("c."), now) == nil {
		t.Error("recent entries were evicted")
	}
	if c.len() != 2 {
		t.Errorf("len = %d, want 2", c.len())
	}
	// Uncacheable answers are not stored.
	c.put(key("d."), msgWith(dns.RcodeServerFailure, nil, nil), now)
	if c.get(key("d."), now) != nil {
		t.Error("SERVFAIL was cached")
	}
}
