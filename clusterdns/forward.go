package clusterdns

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// upstreamUDPSize is the EDNS0 buffer size advertised to upstreams (the DNS
// flag day 2020 value, safe from IP fragmentation).
const upstreamUDPSize = 1232

// errNoUpstreams is returned when there is nowhere to forward to.
var errNoUpstreams = errors.New("no upstream nameservers configured")

// forwarder resolves names outside the cluster zone through the upstreams,
// with a cache in front of them.
type forwarder struct {
	upstreams []string // host:port
	timeout   time.Duration
	cache     *cache // nil when caching is off
	now       func() time.Time
	stats     *counters

	mu       sync.Mutex
	inflight map[cacheKey]*flight
}

// flight is one upstream exchange that identical concurrent misses wait on.
type flight struct {
	done chan struct{}
	msg  *dns.Msg
	err  error
}

// resolve returns the upstream answer (or a cached copy) for q. The returned
// message is the caller's to modify; it carries no OPT record.
func (f *forwarder) resolve(ctx context.Context, q dns.Question, do, cd bool) (*dns.Msg, error) {
	k := keyOf(q, do, cd)
	if f.cache != nil {
		if m := f.cache.get(k, f.now()); m != nil {
			f.stats.cacheHits.Add(1)
			return m, nil
		}
		f.stats.cacheMisses.Add(1)
	}

	f.mu.Lock()
	if fl, ok := f.inflight[k]; ok {
		f.mu.Unlock()
		select {
		case <-fl.done:
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for upstream answer to %s: %w", q.Name, ctx.Err())
		}
		if fl.err != nil {
			return nil, fl.err
		}
		return fl.msg.Copy(), nil
	}
	fl := &flight{done: make(chan struct{})}
	f.inflight[k] = fl
	f.mu.Unlock()

	fl.msg, fl.err = f.exchange(ctx, q, do, cd)
	if fl.err == nil && f.cache != nil {
		f.cache.put(k, fl.msg, f.now())
	}
	f.mu.Lock()
	delete(f.inflight, k)
	f.mu.Unlock()
	close(fl.done)
	if fl.err != nil {
		return nil, fl.err
	}
	return fl.msg.Copy(), nil
}

// exchange asks the upstreams in order until one gives a usable answer.
// SERVFAIL and REFUSED move on to the next upstream; if every upstream
// answers that way the last answer is returned.
func (f *forwarder) exchange(ctx context.Context, q dns.Question, do, cd bool) (*dns.Msg, error) {
	if len(f.upstreams) == 0 {
		return nil, errNoUpstreams
	}
	req := new(dns.Msg)
	req.SetQuestion(q.Name, q.Qtype)
	req.Question[0].Qclass = q.Qclass
	req.CheckingDisabled = cd
	req.SetEdns0(upstreamUDPSize, do)

	var last *dns.Msg
	var errs []error
	for _, up := range f.upstreams {
		f.stats.forwarded.Add(1)
		resp, err := f.exchangeOne(ctx, req, up)
		if err != nil {
			f.stats.upstreamErrors.Add(1)
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		stripOPT(resp)
		if resp.Rcode == dns.RcodeServerFailure || resp.Rcode == dns.RcodeRefused {
			last = resp
			continue
		}
		return resp, nil
	}
	if last != nil {
		return last, nil
	}
	return nil, fmt.Errorf("forwarding %s %s: %w", q.Name, dns.TypeToString[q.Qtype], errors.Join(errs...))
}

// exchangeOne asks one upstream over UDP and repeats the question over TCP
// when the UDP answer is truncated.
func (f *forwarder) exchangeOne(ctx context.Context, req *dns.Msg, up string) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	req = req.Copy()
	req.Id = dns.Id()
	c := &dns.Client{Net: "udp", UDPSize: upstreamUDPSize, Timeout: f.timeout}
	resp, _, err := c.ExchangeContext(ctx, req, up)
	if err != nil {
		return nil, fmt.Errorf("upstream %s over udp: %w", up, err)
	}
	if !resp.Truncated {
		return resp, nil
	}
	req.Id = dns.Id()
	c = &dns.Client{Net: "tcp", Timeout: f.timeout}
	resp, _, err = c.ExchangeContext(ctx, req, up)
	if err != nil {
		return nil, fmt.Errorf("upstream %s over tcp: %w", up, err)
	}
	return resp, nil
}

// stripOPT removes the OPT pseudo-record of an upstream answer; the server
// adds its own for the client.
func stripOPT(m *dns.Msg) {
	out := m.Extra[:0]
	for _, rr := range m.Extra {
		if rr.Header().Rrtype != dns.TypeOPT {
			out = append(out, rr)
		}
	}
	m.Extra = out
}

// counters are the server's statistics.
type counters struct {
	queries        atomic.Uint64
	clusterAnswers atomic.Uint64
	forwardedQs    atomic.Uint64
	cacheHits      atomic.Uint64
	cacheMisses    atomic.Uint64
	forwarded      atomic.Uint64
	upstreamErrors atomic.Uint64
}

// Stats are counters of a Server since it was created.
type Stats struct {
	// Queries is every query handled.
	Queries uint64
	// ClusterAnswers are queries answered from the cluster data.
	ClusterAnswers uint64
	// Forwarded are queries (or CNAME chases) sent to the forwarding path.
	Forwarded uint64
	// CacheHits and CacheMisses count lookups in the forwarding cache.
	CacheHits, CacheMisses uint64
	// UpstreamExchanges counts questions sent to an upstream (one per
	// upstream tried), UpstreamErrors those that failed (timeout, network).
	UpstreamExchanges, UpstreamErrors uint64
}

func (c *counters) snapshot() Stats {
	return Stats{
		Queries:           c.queries.Load(),
		ClusterAnswers:    c.clusterAnswers.Load(),
		Forwarded:         c.forwardedQs.Load(),
		CacheHits:         c.cacheHits.Load(),
		CacheMisses:       c.cacheMisses.Load(),
		UpstreamExchanges: c.forwarded.Load(),
		UpstreamErrors:    c.upstreamErrors.Load(),
	}
}
