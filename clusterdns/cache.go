package clusterdns

import (
	"container/list"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// cacheKey identifies a forwarded question. DO and CD change what an
// upstream returns (signatures, unvalidated data), so they are part of it.
type cacheKey struct {
	name   string // lower case
	qtype  uint16
	qclass uint16
	do, cd bool
}

func keyOf(q dns.Question, do, cd bool) cacheKey {
	return cacheKey{name: strings.ToLower(q.Name), qtype: q.Qtype, qclass: q.Qclass, do: do, cd: cd}
}

type cacheEntry struct {
	key     cacheKey
	msg     *dns.Msg // answer, authority and additional sections, no OPT
	stored  time.Time
	expires time.Time
}

// cache is a size-bounded LRU of upstream answers that expire with their
// TTLs. Times are inputs so that expiry is testable.
type cache struct {
	maxTTL time.Duration

	mu    sync.Mutex
	size  int
	ll    *list.List // front = most recently used; values are *cacheEntry
	items map[cacheKey]*list.Element
}

func newCache(size int, maxTTL time.Duration) *cache {
	return &cache{maxTTL: maxTTL, size: size, ll: list.New(), items: map[cacheKey]*list.Element{}}
}

// cacheTTL says how long an upstream answer may be cached: the smallest TTL
// of its answer and authority records for a positive answer, the negative TTL
// of the SOA (min of its TTL and MINIMUM field, RFC 2308) for NXDOMAIN and
// NODATA, capped by maxTTL. Zero means "do not cache": errors, truncated
// answers, negative answers without SOA, zero TTLs.
func cacheTTL(m *dns.Msg, maxTTL time.Duration) time.Duration {
	if m.Truncated {
		return 0
	}
	var ttl uint32
	switch {
	case m.Rcode == dns.RcodeNameError || (m.Rcode == dns.RcodeSuccess && len(m.Answer) == 0):
		found := false
		for _, rr := range m.Ns {
			if soa, ok := rr.(*dns.SOA); ok {
				ttl = min(soa.Hdr.Ttl, soa.Minttl)
				found = true
				break
			}
		}
		if !found {
			return 0
		}
	case m.Rcode == dns.RcodeSuccess:
		ttl = ^uint32(0)
		for _, sec := range [][]dns.RR{m.Answer, m.Ns} {
			for _, rr := range sec {
				ttl = min(ttl, rr.Header().Ttl)
			}
		}
	default:
		return 0
	}
	d := time.Duration(ttl) * time.Second
	return min(d, maxTTL)
}

// put stores an upstream answer received at now, if it is cacheable.
func (c *cache) put(k cacheKey, m *dns.Msg, now time.Time) {
	ttl := cacheTTL(m, c.maxTTL)
	if ttl <= 0 || c.size <= 0 {
		return
	}
	stored := &dns.Msg{MsgHdr: m.MsgHdr}
	stored.Answer = copyRRs(m.Answer)
	stored.Ns = copyRRs(m.Ns)
	for _, rr := range m.Extra {
		if rr.Header().Rrtype != dns.TypeOPT {
			stored.Extra = append(stored.Extra, dns.Copy(rr))
		}
	}
	e := &cacheEntry{key: k, msg: stored, stored: now, expires: now.Add(ttl)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[k]; ok {
		el.Value = e
		c.ll.MoveToFront(el)
		return
	}
	c.items[k] = c.ll.PushFront(e)
	for c.ll.Len() > c.size {
		last := c.ll.Back()
		c.ll.Remove(last)
		delete(c.items, last.Value.(*cacheEntry).key)
	}
}

// get returns a copy of a live entry with TTLs reduced by the time it spent
// in the cache, or nil.
func (c *cache) get(k cacheKey, now time.Time) *dns.Msg {
	c.mu.Lock()
	el, ok := c.items[k]
	if !ok {
		c.mu.Unlock()
		return nil
	}
	e := el.Value.(*cacheEntry)
	if !now.Before(e.expires) {
		c.ll.Remove(el)
		delete(c.items, k)
		c.mu.Unlock()
		return nil
	}
	c.ll.MoveToFront(el)
	c.mu.Unlock()

	age := uint32(now.Sub(e.stored) / time.Second)
	out := &dns.Msg{MsgHdr: e.msg.MsgHdr}
	out.Answer = agedCopy(e.msg.Answer, age)
	out.Ns = agedCopy(e.msg.Ns, age)
	out.Extra = agedCopy(e.msg.Extra, age)
	return out
}

// len is the number of stored entries (live or not yet evicted).
func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}

func copyRRs(rrs []dns.RR) []dns.RR {
	if len(rrs) == 0 {
		return nil
	}
	out := make([]dns.RR, len(rrs))
	for i, rr := range rrs {
		out[i] = dns.Copy(rr)
	}
	return out
}

func agedCopy(rrs []dns.RR, age uint32) []dns.RR {
	out := copyRRs(rrs)
	for _, rr := range out {
		h := rr.Header()
		if h.Ttl > age {
			h.Ttl -= age
		} else {
			h.Ttl = 0
		}
	}
	return out
}
