package framework

import (
	"context"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"
)

// runner runs one in-process component (a server or an agent) in a
// goroutine until it is stopped.
type runner struct {
	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan error
}

// start runs run and waits until it calls ready. It fails t if run
// returns first or ready takes longer than timeout.
func (r *runner) start(t testing.TB, what string, timeout time.Duration, run func(ctx context.Context, ready func()) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	readyCh := make(chan struct{})
	var once sync.Once
	done := make(chan error, 1)
	go func() { done <- run(ctx, func() { once.Do(func() { close(readyCh) }) }) }()
	select {
	case <-readyCh:
	case err := <-done:
		cancel()
		t.Fatalf("framework: %s exited before it was ready: %v", what, err)
	case <-time.After(timeout):
		cancel()
		t.Fatalf("framework: %s not ready after %s", what, timeout)
	}
	r.mu.Lock()
	r.cancel, r.done = cancel, done
	r.mu.Unlock()
}

// stop cancels the component and waits up to timeout for it to return;
// on a timeout the test fails with a goroutine dump. Stopping a stopped
// component does nothing.
func (r *runner) stop(t testing.TB, what string, timeout time.Duration) {
	r.mu.Lock()
	cancel, done := r.cancel, r.done
	r.cancel, r.done = nil, nil
	r.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Logf("framework: %s stopped with: %v", what, err)
		}
	case <-time.After(timeout):
		var buf strings.Builder
		_ = pprof.Lookup("goroutine").WriteTo(&buf, 1)
		t.Errorf("framework: %s did not stop within %s; goroutines:\n%s", what, timeout, buf.String())
	}
}
