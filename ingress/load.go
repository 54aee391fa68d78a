package ingress

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Load is a small benchmark helper: concurrency clients send GET url back
// to back for d (or until ctx ends), each reusing its connections. It
// returns the completed requests per second, whatever their status, and
// the 99th percentile latency of those requests. Requests that fail at the
// transport are not counted. HTTPS certificates are not verified.
func Load(ctx context.Context, url string, concurrency int, d time.Duration) (rps float64, p99 time.Duration) {
	if concurrency < 1 {
		concurrency = 1
	}
	tr := &http.Transport{
		MaxIdleConns:        concurrency,
		MaxIdleConnsPerHost: concurrency,
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // a benchmark client
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()

	start := time.Now()
	lat := make([][]time.Duration, concurrency)
	var wg sync.WaitGroup
	for i := range concurrency {
		wg.Go(func() {
			for ctx.Err() == nil {
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
				if err != nil {
					return
				}
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					// Do not spin on a refused connection.
					select {
					case <-ctx.Done():
					case <-time.After(10 * time.Millisecond):
					}
					continue
				}
				_, err = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if err != nil {
					continue
				}
				lat[i] = append(lat[i], time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	all := slices.Concat(lat...)
	if len(all) == 0 || elapsed <= 0 {
		return 0, 0
	}
	slices.Sort(all)
	idx := (len(all)*99+99)/100 - 1
	return float64(len(all)) / elapsed.Seconds(), all[min(idx, len(all)-1)]
}
