package clusterdns

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// loadQueryTimeout bounds one query of Load.
const loadQueryTimeout = 2 * time.Second

// Load queries the DNS server at addr (host:port, UDP) for the A record of
// name from concurrency clients, each with its own socket and one query in
// flight, for duration d (or until ctx ends). It returns the rate of answered
// queries per second and the 99th percentile latency of those answers.
// Queries that time out or get SERVFAIL/REFUSED/FORMERR count as failures:
// the figures cover the answered queries and err reports how many failed.
func Load(ctx context.Context, addr, name string, concurrency int, d time.Duration) (qps float64, p99 time.Duration, err error) {
	if concurrency <= 0 {
		concurrency = 1
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	deadline, _ := ctx.Deadline()
	// over reports whether the run has ended: a query cut short by the
	// deadline is not a failure.
	over := func() bool { return ctx.Err() != nil || !time.Now().Before(deadline) }

	type workerResult struct {
		lat      []time.Duration
		failures int
		firstErr error
	}
	results := make([]workerResult, concurrency)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := &results[i]
			c := &dns.Client{Net: "udp", Timeout: loadQueryTimeout}
			conn, err := c.DialContext(ctx, addr)
			if err != nil {
				res.failures++
				res.firstErr = fmt.Errorf("dialing %s: %w", addr, err)
				return
			}
			defer conn.Close()
			q := new(dns.Msg)
			q.SetQuestion(dns.Fqdn(name), dns.TypeA)
			for !over() {
				q.Id = dns.Id()
				t0 := time.Now()
				resp, _, err := c.ExchangeWithConnContext(ctx, q, conn)
				lat := time.Since(t0)
				switch {
				case err != nil && over():
					return // the run ended while this query was in flight
				case err != nil:
					err = fmt.Errorf("query %s: %w", name, err)
				case resp.Rcode != dns.RcodeSuccess && resp.Rcode != dns.RcodeNameError:
					err = fmt.Errorf("query %s: rcode %s", name, dns.RcodeToString[resp.Rcode])
				}
				if err != nil {
					res.failures++
					if res.firstErr == nil {
						res.firstErr = err
					}
					continue
				}
				res.lat = append(res.lat, lat)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)

	var all []time.Duration
	failures := 0
	var firstErr error
	for _, r := range results {
		all = append(all, r.lat...)
		failures += r.failures
		if firstErr == nil {
			firstErr = r.firstErr
		}
	}
	if len(all) > 0 {
		slices.Sort(all)
		p99 = all[min(len(all)-1, len(all)*99/100)]
		qps = float64(len(all)) / elapsed.Seconds()
	}
	switch {
	case failures > 0:
		err = fmt.Errorf("%d of %d queries failed: %w", failures, failures+len(all), firstErr)
	case len(all) == 0:
		err = errors.New("no query was answered")
	}
	return qps, p99, err
}
