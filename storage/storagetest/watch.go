package storagetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/skiff-sh/skiff/storage"
)

var watchCases = []testCase{
	{"WatchFromRevision", testWatchFromRevision},
	{"WatchOrderedExactlyOnce", testWatchOrderedExactlyOnce},
	{"WatchFromNow", testWatchFromNow},
	{"WatchCompacted", testWatchCompacted},
	{"WatchCancel", testWatchCancel},
	{"WatchProgress", testWatchProgress},
}

// nextEvent returns the next event, failing on a timeout or a closed
// channel.
func nextEvent(t *testing.T, ch <-chan storage.Event) storage.Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("watch channel closed, want an event")
		}
		return ev
	case <-time.After(eventWait):
		t.Fatalf("no watch event within %v", eventWait)
	}
	return storage.Event{}
}

// nextChange returns the next event that is not a Progress event.
func nextChange(t *testing.T, ch <-chan storage.Event) storage.Event {
	t.Helper()
	for {
		ev := nextEvent(t, ch)
		if ev.Err != nil {
			t.Fatalf("watch failed: %v", ev.Err)
		}
		if !ev.Progress {
			return ev
		}
	}
}

// expectClosed waits for the channel to close, failing on any event other
// than Progress.
func expectClosed(t *testing.T, ch <-chan storage.Event) {
	t.Helper()
	deadline := time.After(eventWait)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				return
			}
			if !ev.Progress {
				t.Fatalf("got %s event for %q (err %v), want the channel closed", ev.Type, ev.KV.Key, ev.Err)
			}
		case <-deadline:
			t.Fatalf("watch channel still open after %v", eventWait)
		}
	}
}

// eventWant is what a test expects of one change event.
type eventWant struct {
	typ  storage.EventType
	kv   kvWant
	prev *kvWant
}

func checkEvent(t *testing.T, what string, got storage.Event, want eventWant) {
	t.Helper()
	if got.Err != nil || got.Progress {
		t.Fatalf("%s: got err=%v progress=%v, want a %s event", what, got.Err, got.Progress, want.typ)
	}
	if got.Type != want.typ {
		t.Fatalf("%s: got %s of %q at %d, want %s of %q", what, got.Type, got.KV.Key, got.KV.Revision, want.typ, want.kv.key)
	}
	checkKV(t, what, got.KV, want.kv)
	switch {
	case want.prev == nil && got.Prev != nil:
		t.Errorf("%s: unexpected previous value %q", what, got.Prev.Value)
	case want.prev != nil && got.Prev == nil:
		t.Errorf("%s: no previous value, want %q", what, want.prev.value)
	case want.prev != nil:
		checkKV(t, what+" (previous)", *got.Prev, *want.prev)
	}
}

func testWatchFromRevision(t *testing.T, s storage.Interface, p string) {
	ctx := testContext(t)
	pp := p + "w/"
	start := mustRevision(ctx, t, s)
	rA := mustCreate(ctx, t, s, pp+"a", "a1")
	mustCreate(ctx, t, s, p+"outside", "x")
	rA2 := mustUpdate(ctx, t, s, pp+"a", "a2", rA)
	rB := mustCreate(ctx, t, s, pp+"b", "b1")
	_, rD := mustDelete(ctx, t, s, pp+"a", rA2)
	rB2 := mustUpdate(ctx, t, s, pp+"b", "b2", rB)

	want := []eventWant{
		{storage.Added, kvWant{pp + "a", "a1", rA, rA}, nil},
		{storage.Modified, kvWant{pp + "a", "a2", rA2, rA}, &kvWant{pp + "a", "a1", rA, rA}},
		{storage.Added, kvWant{pp + "b", "b1", rB, rB}, nil},
		{storage.Deleted, kvWant{pp + "a", "", rD, 0}, &kvWant{pp + "a", "a2", rA2, rA}},
		{storage.Modified, kvWant{pp + "b", "b2", rB2, rB}, &kvWant{pp + "b", "b1", rB, rB}},
	}
	ch := s.Watch(ctx, pp, start, false)
	for i, w := range want {
		checkEvent(t, fmt.Sprintf("event %d", i), nextChange(t, ch), w)
	}
	// The next event is the next write: nothing is repeated.
	rC := mustCreate(ctx, t, s, pp+"c", "c1")
	checkEvent(t, "event after replay", nextChange(t, ch), eventWant{storage.Added, kvWant{pp + "c", "c1", rC, rC}, nil})

	// A watch from the middle of that history starts right after it.
	ch = s.Watch(ctx, pp, rA2, false)
	for i, w := range want[2:] {
		checkEvent(t, fmt.Sprintf("event %d from the middle", i), nextChange(t, ch), w)
	}
	checkEvent(t, "last event from the middle", nextChange(t, ch), eventWant{storage.Added, kvWant{pp + "c", "c1", rC, rC}, nil})

	// A watch from the last write sees nothing until the next one.
	ch = s.Watch(ctx, pp, rC, false)
	rC2 := mustUpdate(ctx, t, s, pp+"c", "c2", rC)
	checkEvent(t, "event from the last write", nextChange(t, ch),
		eventWant{storage.Modified, kvWant{pp + "c", "c2", rC2, rC}, &kvWant{pp + "c", "c1", rC, rC}})
}

func testWatchOrderedExactlyOnce(t *testing.T, s storage.Interface, p string) {
	ctx := testContext(t)
	start := mustRevision(ctx, t, s)
	const (
		writers = 4
		keys    = 5
		rounds  = 10
	)
	// Half the writes land before the watch starts, half while it runs.
	var (
		mu   sync.Mutex
		revs []int64
	)
	write := func(w, from, to int) error {
		for r := from; r < to; r++ {
			for k := range keys {
				key := fmt.Sprintf("%sw%d/k%d", p, w, k)
				var rev int64
				var err error
				if r == 0 {
					rev, err = s.Create(ctx, key, []byte("0"))
				} else {
					var kv storage.KV
					if kv, err = s.Get(ctx, key); err == nil {
						rev, err = s.Update(ctx, key, []byte(fmt.Sprint(r)), kv.Revision)
					}
				}
				if err != nil {
					return fmt.Errorf("write %s round %d: %w", key, r, err)
				}
				mu.Lock()
				revs = append(revs, rev)
				mu.Unlock()
			}
		}
		return nil
	}
	runWriters := func(from, to int) <-chan error {
		errc := make(chan error, writers)
		for w := range writers {
			go func() { errc <- write(w, from, to) }()
		}
		return errc
	}
	wait := func(errc <-chan error) {
		for range writers {
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
		}
	}
	wait(runWriters(0, rounds/2))
	ch := s.Watch(ctx, p, start, false)
	errc := runWriters(rounds/2, rounds)
	total := writers * keys * rounds
	var got []int64
	for len(got) < total {
		ev := nextChange(t, ch)
		if n := len(got); n > 0 && ev.KV.Revision <= got[n-1] {
			t.Fatalf("event %d at revision %d after one at %d", n, ev.KV.Revision, got[n-1])
		}
		got = append(got, ev.KV.Revision)
	}
	wait(errc)
	slices.Sort(revs)
	if !slices.Equal(got, revs) {
		t.Fatalf("watch delivered revisions %v, writes were at %v", got, revs)
	}
	// And nothing more: the next event is the next write.
	rev := mustCreate(ctx, t, s, p+"last", "x")
	if ev := nextChange(t, ch); ev.KV.Revision != rev {
		t.Fatalf("after all writes got an event at %d, want the next write at %d", ev.KV.Revision, rev)
	}
}

func testWatchFromNow(t *testing.T, s storage.Interface, p string) {
	ctx := testContext(t)
	old := mustCreate(ctx, t, s, p+"a", "old")
	mustUpdate(ctx, t, s, p+"a", "older", old)
	ch := s.Watch(ctx, p, 0, false)
	rB := mustCreate(ctx, t, s, p+"b", "new")
	checkEvent(t, "first event from now", nextChange(t, ch), eventWant{storage.Added, kvWant{p + "b", "new", rB, rB}, nil})
}

func testWatchCompacted(t *testing.T, s storage.Interface, p string) {
	ctx := testContext(t)
	r1 := mustCreate(ctx, t, s, p+"a", "1")
	r2 := mustUpdate(ctx, t, s, p+"a", "2", r1)
	r3 := mustUpdate(ctx, t, s, p+"a", "3", r2)
	if err := s.Compact(ctx, r3); err != nil {
		t.Fatalf("Compact(%d): %v", r3, err)
	}
	for _, from := range []int64{r1 - 1, r1, r2 - 1} {
		ch := s.Watch(ctx, p, from, false)
		ev := nextEvent(t, ch)
		wantErr(t, fmt.Sprintf("Watch from %d after Compact(%d)", from, r3), ev.Err, storage.ErrCompacted)
		expectClosed(t, ch)
	}
	// From the compacted revision on, history is whole.
	ch := s.Watch(ctx, p, r3, false)
	r4 := mustUpdate(ctx, t, s, p+"a", "4", r3)
	checkEvent(t, "watch from the compacted revision", nextChange(t, ch),
		eventWant{storage.Modified, kvWant{p + "a", "4", r4, r1}, &kvWant{p + "a", "3", r3, r1}})
}

func testWatchCancel(t *testing.T, s storage.Interface, p string) {
	ctx := testContext(t)
	// An idle watch closes when its context ends.
	wctx, cancel := context.WithCancel(ctx)
	ch := s.Watch(wctx, p, 0, true)
	cancel()
	expectClosed(t, ch)

	// So does one with events nobody reads.
	start := mustRevision(ctx, t, s)
	for i := range 20 {
		mustCreate(ctx, t, s, fmt.Sprintf("%sk%02d", p, i), "v")
	}
	wctx, cancel = context.WithCancel(ctx)
	ch = s.Watch(wctx, p, start, false)
	first := nextChange(t, ch)
	if first.KV.Key != p+"k00" {
		t.Fatalf("first event is for %q", first.KV.Key)
	}
	cancel()
	deadline := time.After(eventWait)
	for open := true; open; {
		select {
		case _, open = <-ch:
		case <-deadline:
			t.Fatalf("watch with pending events still open %v after cancel", eventWait)
		}
	}
}

func testWatchProgress(t *testing.T, s storage.Interface, p string) {
	ctx := testContext(t)
	start := mustRevision(ctx, t, s)
	withProgress := s.Watch(ctx, p, start, true)
	without := s.Watch(ctx, p, start, false)
	fromNow := s.Watch(ctx, p, 0, true)

	// Idle: a Progress event comes, at or after the start.
	ev := nextEvent(t, withProgress)
	if ev.Err != nil || !ev.Progress {
		t.Fatalf("idle watch: got %+v, want a Progress event", ev)
	}
	if ev.KV.Revision < start {
		t.Fatalf("Progress at revision %d, before the watch's start %d", ev.KV.Revision, start)
	}
	// A watch from now knows where now was.
	if ev := nextEvent(t, fromNow); ev.Err != nil || !ev.Progress || ev.KV.Revision < start {
		t.Fatalf("idle watch from now: got %+v, want a Progress event at %d or later", ev, start)
	}

	rev := mustCreate(ctx, t, s, p+"a", "v")
	last := ev.KV.Revision
	sawWrite := false
	deadline := time.After(ProgressWait + eventWait)
	for {
		var ev storage.Event
		select {
		case e, ok := <-withProgress:
			if !ok {
				t.Fatal("progress watch closed")
			}
			ev = e
		case <-deadline:
			t.Fatalf("no Progress event after the write at %d", rev)
		}
		if ev.Err != nil {
			t.Fatalf("progress watch failed: %v", ev.Err)
		}
		if ev.KV.Revision < last {
			t.Fatalf("event at revision %d (progress %v) after progress to %d", ev.KV.Revision, ev.Progress, last)
		}
		if !ev.Progress {
			if ev.KV.Revision == last {
				t.Fatalf("event at revision %d after a Progress event at that revision", ev.KV.Revision)
			}
			if ev.KV.Revision != rev || sawWrite {
				t.Fatalf("unexpected event %s of %q at %d", ev.Type, ev.KV.Key, ev.KV.Revision)
			}
			sawWrite = true
		}
		last = ev.KV.Revision
		if sawWrite && ev.Progress {
			break
		}
	}

	// The watch that did not ask saw the write and no Progress.
	ev = nextEvent(t, without)
	if ev.Progress || ev.Err != nil || ev.KV.Revision != rev {
		t.Fatalf("watch without progress: got %+v, want the write at %d", ev, rev)
	}
	select {
	case ev := <-without:
		t.Fatalf("watch without progress got another event: %+v", ev)
	case <-time.After(200 * time.Millisecond):
	}
}
