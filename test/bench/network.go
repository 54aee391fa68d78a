package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// This file holds what the three service-networking measurements (proxy,
// dns, ingress; network_*.go) share.

// workersFor runs do(i) for i in [0, n) on workers goroutines and returns
// the first error; the others stop taking work once one fails. progress,
// when set, is called every step items done.
func workersFor(ctx context.Context, n, workers int, do func(ctx context.Context, i int) error, step int, progress func(done int)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next, done atomic.Int64
	var once sync.Once
	var firstErr error
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := do(ctx, i); err != nil {
					once.Do(func() { firstErr = err; cancel() })
					return
				}
				if d := done.Add(1); progress != nil && step > 0 && d%int64(step) == 0 {
					progress(int(d))
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

// nthAddr is the i-th address of prefix (0 is the network address). It
// fails when i is outside the prefix.
func nthAddr(prefix netip.Prefix, i int) (netip.Addr, error) {
	if !prefix.Addr().Is4() {
		return netip.Addr{}, fmt.Errorf("%s is not an IPv4 prefix", prefix)
	}
	size := 1 << (32 - prefix.Bits())
	if i < 0 || i >= size {
		return netip.Addr{}, fmt.Errorf("address %d is outside %s (%d addresses)", i, prefix, size)
	}
	b := prefix.Masked().Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v += uint32(i)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), nil
}

// benchLogger is the logger handed to the in-process proxy and DNS
// server: warnings and errors to stderr, or everything to the -v log
// stream.
func benchLogger(logs io.Writer, component string) *slog.Logger {
	if logs != nil {
		return slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})).With("component", component)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("component", component)
}

// latencyLine renders p50, p99 and max medians over runs in milliseconds.
func latencyLine(p50, p99, maxMs Stat) string {
	s := fmt.Sprintf("p50 %s ms  p99 %s ms  max %s ms", fmtMs(p50.Median), fmtMs(p99.Median), fmtMs(maxMs.Median))
	if len(p99.Samples) > 1 {
		s += fmt.Sprintf("   (p99 min %s, max %s)", fmtMs(p99.Min), fmtMs(p99.Max))
	}
	return s
}

// fmtMs prints a millisecond figure with precision that suits its size.
func fmtMs(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// rateLine renders a median rate over runs with its spread.
func rateLine(rate Stat, unit string) string {
	s := fmt.Sprintf("median %.0f %s", rate.Median, unit)
	if len(rate.Samples) > 1 {
		s += fmt.Sprintf(" (min %.0f, max %.0f)", rate.Min, rate.Max)
	}
	return s
}

// kLabel is 1000 -> "1k", 10000 -> "10k", 500 -> "500".
func kLabel(n int) string {
	if n >= 1000 && n%1000 == 0 {
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

// errorTail counts a run's errors and keeps the first few distinct
// messages.
type errorTail struct {
	mu    sync.Mutex
	count int
	first []string
}

func (t *errorTail) add(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.count++
	msg := err.Error()
	for _, m := range t.first {
		if m == msg {
			return
		}
	}
	if len(t.first) < 3 {
		t.first = append(t.first, msg)
	}
}

func (t *errorTail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.first, "; ")
}

// background runs a Run(ctx) error function on a goroutine; done closes
// when it returns, and err is its result from then on.
type background struct {
	done chan struct{}
	err  error
}

func runInBackground(ctx context.Context, run func(context.Context) error) *background {
	b := &background{done: make(chan struct{})}
	go func() {
		defer close(b.done)
		b.err = run(ctx)
	}()
	return b
}

// stopped is the error to report for a background run that ended early.
func (b *background) stopped(what string) error {
	if b.err == nil {
		return fmt.Errorf("%s stopped", what)
	}
	return fmt.Errorf("%s stopped: %w", what, b.err)
}

// loadRun is what one load (of DNS queries, of HTTP requests) measured.
type loadRun struct {
	wall      time.Duration
	latencies []time.Duration // of the correct answers
}

// finishLoad gathers the latencies the workers of a load recorded, and
// fails it when anything went wrong: parent ended, some of what (queries,
// requests) failed, or nothing was answered.
func finishLoad(parent context.Context, start time.Time, perWorker [][]time.Duration, failures *errorTail, what string) (loadRun, error) {
	res := loadRun{wall: time.Since(start)}
	for _, l := range perWorker {
		res.latencies = append(res.latencies, l...)
	}
	if parent.Err() != nil {
		return res, parent.Err()
	}
	if failures.count > 0 {
		return res, fmt.Errorf("%d of %d %s failed: %s", failures.count, failures.count+len(res.latencies), what, failures.String())
	}
	if len(res.latencies) == 0 {
		return res, fmt.Errorf("no %s answered", strings.TrimSuffix(what, "s"))
	}
	return res, nil
}
