package pods

import (
	"testing"
	"time"
)

func TestBackoffDoublesCapsAndResets(t *testing.T) {
	b := newBackoff()
	t0 := time.Unix(1000, 0)
	now := t0
	var delays []time.Duration
	for i := 0; i < 7; i++ {
		until := b.failed("k", now)
		delays = append(delays, until.Sub(now))
		now = until.Add(time.Second) // restarted after the delay, failed 1s later
	}
	want := []time.Duration{10, 20, 40, 80, 160, 300, 300}
	for i, w := range want {
		if delays[i] != w*time.Second {
			t.Fatalf("delay %d = %v, want %vs (all %v)", i, delays[i], w, delays)
		}
	}
	// The same failure recorded twice does not double the delay.
	until := b.failed("k", now)
	if again := b.failed("k", now); !again.Equal(until) {
		t.Fatalf("repeat record moved the deadline: %v vs %v", again, until)
	}
	if w, _, _ := b.waiting("k", until.Add(-time.Millisecond)); !w {
		t.Fatal("not waiting inside the delay")
	}
	if w, _, _ := b.waiting("k", until); w {
		t.Fatal("still waiting at the deadline")
	}
	// A long clean run resets to the initial delay.
	later := until.Add(backoffReset + backoffMax + time.Second)
	if d := b.failed("k", later).Sub(later); d != backoffInitial {
		t.Fatalf("after a long run delay = %v, want %v", d, backoffInitial)
	}
	b.forgetPrefix("k")
	if w, _, _ := b.waiting("k", later); w {
		t.Fatal("forgotten key still waiting")
	}
}
