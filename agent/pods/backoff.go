package pods

import (
	"sync"
	"time"
)

// Restart back-off, as the kubelet's: 10s doubling to 5 minutes, forgotten
// after a container ran cleanly for 10 minutes.
const (
	backoffInitial = 10 * time.Second
	backoffMax     = 5 * time.Minute
	backoffReset   = 10 * time.Minute
)

// backoff remembers, per key (pod UID/container or image), the current
// delay and when the delay ends.
type backoff struct {
	mu      sync.Mutex
	entries map[string]*backoffEntry
}

type backoffEntry struct {
	delay time.Duration
	until time.Time
	last  time.Time // when the failure was recorded
}

func newBackoff() *backoff { return &backoff{entries: map[string]*backoffEntry{}} }

// failed records a failure at now (for a restart: the container's finish
// time) and returns when the next attempt may start.
func (b *backoff) failed(key string, now time.Time) time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.entries[key]
	switch {
	case e == nil || now.Sub(e.last) > backoffReset+e.delay:
		e = &backoffEntry{delay: backoffInitial}
		b.entries[key] = e
	case !now.After(e.last):
		// The same failure seen again: keep the current delay.
		return e.until
	default:
		e.delay *= 2
		if e.delay > backoffMax {
			e.delay = backoffMax
		}
	}
	e.last = now
	e.until = now.Add(e.delay)
	return e.until
}

// waiting reports whether key is inside its back-off at now, and the delay.
func (b *backoff) waiting(key string, now time.Time) (bool, time.Duration, time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.entries[key]
	if e == nil || !now.Before(e.until) {
		return false, 0, time.Time{}
	}
	return true, e.delay, e.until
}

// forget drops a key (pod deleted).
func (b *backoff) forgetPrefix(prefix string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for k := range b.entries {
		if len(k) >= len(prefix) && k[:len(prefix)] == prefix {
			delete(b.entries, k)
		}
	}
}
