package etcd

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/skiff-sh/skiff/storage"
)

func TestCompactTarget(t *testing.T) {
	cases := []struct {
		name                               string
		previous, current, keep, compacted int64
		want                               int64
		ok                                 bool
	}{
		{"first tick has no previous revision", 0, 50, 0, 0, 0, false},
		{"compacts to the previous tick", 40, 50, 0, 0, 40, true},
		{"nothing new since last compaction", 40, 50, 0, 40, 0, false},
		{"idle store stays put", 40, 40, 0, 40, 0, false},
		{"keep holds back further", 40, 50, 20, 0, 30, true},
		{"keep smaller than the interval's writes", 40, 50, 5, 0, 40, true},
		{"keep larger than history", 40, 50, 100, 0, 0, false},
		{"keep leaves only already compacted history", 40, 50, 15, 35, 0, false},
		{"previous beyond current never happens but is clamped", 60, 50, 0, 0, 50, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := compactTarget(tc.previous, tc.current, tc.keep, tc.compacted)
			if got != tc.want || ok != tc.ok {
				t.Fatalf("compactTarget(%d, %d, %d, %d) = %d, %v; want %d, %v",
					tc.previous, tc.current, tc.keep, tc.compacted, got, ok, tc.want, tc.ok)
			}
		})
	}
}

// scriptedStore answers Revision from a script and records Compact calls.
type scriptedStore struct {
	storage.Interface // nil: calling anything else panics the test
	mu                sync.Mutex
	revisions         []int64
	compactErr        map[int64]error
	compacted         []int64
	done              func()
}

func (s *scriptedStore) Revision(context.Context) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.revisions) == 0 {
		s.done()
		return 0, errors.New("script over")
	}
	r := s.revisions[0]
	s.revisions = s.revisions[1:]
	if r < 0 {
		return 0, fmt.Errorf("scripted failure")
	}
	return r, nil
}

func (s *scriptedStore) Compact(_ context.Context, rev int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.compacted = append(s.compacted, rev)
	return s.compactErr[rev]
}

func TestRunCompactorCompactsToPreviousTick(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s := &scriptedStore{
		// -1 is a failed read, which must not count as a tick's revision.
		revisions:  []int64{10, 25, 25, -1, 40, 41, 60},
		compactErr: map[int64]error{25: fmt.Errorf("someone beat us: %w", storage.ErrCompacted)},
		done:       cancel,
	}
	var logs []string
	var logMu sync.Mutex
	RunCompactor(ctx, s, time.Millisecond, 0, func(f string, args ...any) {
		logMu.Lock()
		defer logMu.Unlock()
		logs = append(logs, fmt.Sprintf(f, args...))
	})
	// 10: nothing before. 25: compact to 10. 25: compact to 25 (already
	// done elsewhere). failure: skipped. 40: previous is 25, done. 41:
	// compact to 40. 60: compact to 41.
	want := []int64{10, 25, 40, 41}
	if !slices.Equal(s.compacted, want) {
		t.Fatalf("compacted to %v, want %v (logs %q)", s.compacted, want, logs)
	}
	if len(logs) == 0 {
		t.Fatal("compactor logged nothing")
	}
}

func TestRunCompactorKeep(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s := &scriptedStore{revisions: []int64{100, 200, 210, 400}, done: cancel}
	RunCompactor(ctx, s, time.Millisecond, 150, nil)
	// 200: min(100, 50) = 50. 210: min(200, 60) = 60. 400: min(210, 250).
	want := []int64{50, 60, 210}
	if !slices.Equal(s.compacted, want) {
		t.Fatalf("compacted to %v, want %v", s.compacted, want)
	}
}

func TestRunCompactorStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		RunCompactor(ctx, &scriptedStore{revisions: []int64{1}, done: func() {}}, time.Hour, 0, nil)
		close(done)
	}()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("RunCompactor did not return after its context ended")
	}
}
