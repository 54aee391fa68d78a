package reconcile

import (
	"testing"
	"time"
)

func TestExpectations(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	const ttl = time.Minute
	type step struct {
		do        func(e *Expectations)
		satisfied bool
		now       time.Duration // when Satisfied is asked
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"nothing expected", []step{{func(*Expectations) {}, true, 0}}},
		{"creations pending then observed", []step{
			{func(e *Expectations) { e.ExpectCreations("rs", 2, at(0)) }, false, 0},
			{func(e *Expectations) { e.CreationObserved("rs") }, false, time.Second},
			{func(e *Expectations) { e.CreationObserved("rs") }, true, time.Second},
		}},
		{"observations beyond expectations do not go negative", []step{
			{func(e *Expectations) { e.CreationObserved("rs"); e.CreationObserved("rs") }, true, 0},
			{func(e *Expectations) { e.ExpectCreations("rs", 1, at(0)) }, false, 0},
		}},
		{"deletions counted once per id", []step{
			{func(e *Expectations) { e.ExpectDeletions("rs", []string{"a", "b"}, at(0)) }, false, 0},
			{func(e *Expectations) { e.DeletionObserved("rs", "a"); e.DeletionObserved("rs", "a") }, false, 0},
			{func(e *Expectations) { e.DeletionObserved("rs", "unknown") }, false, 0},
			{func(e *Expectations) { e.DeletionObserved("rs", "b") }, true, 0},
		}},
		{"creations and deletions together", []step{
			{func(e *Expectations) {
				e.ExpectCreations("rs", 1, at(0))
				e.ExpectDeletions("rs", []string{"a"}, at(0))
			}, false, 0},
			{func(e *Expectations) { e.CreationObserved("rs") }, false, 0},
			{func(e *Expectations) { e.DeletionObserved("rs", "a") }, true, 0},
		}},
		{"raising adds to what is pending", []step{
			{func(e *Expectations) { e.ExpectCreations("rs", 1, at(0)); e.ExpectCreations("rs", 1, at(time.Second)) }, false, time.Second},
			{func(e *Expectations) { e.CreationObserved("rs") }, false, time.Second},
			{func(e *Expectations) { e.CreationObserved("rs") }, true, time.Second},
		}},
		{"expired expectations are satisfied", []step{
			{func(e *Expectations) { e.ExpectCreations("rs", 3, at(0)) }, false, ttl},
			{func(e *Expectations) {}, true, ttl + time.Nanosecond},
		}},
		{"raising after expiry starts afresh", []step{
			{func(e *Expectations) { e.ExpectCreations("rs", 3, at(0)); e.ExpectCreations("rs", 1, at(2*ttl)) }, false, 2 * ttl},
			{func(e *Expectations) { e.CreationObserved("rs") }, true, 2 * ttl},
		}},
		{"keys are independent", []step{
			{func(e *Expectations) { e.ExpectCreations("other", 1, at(0)) }, true, 0},
		}},
		{"forget", []step{
			{func(e *Expectations) { e.ExpectCreations("rs", 5, at(0)); e.Forget("rs") }, true, 0},
		}},
		{"zero expectations are no-ops", []step{
			{func(e *Expectations) { e.ExpectCreations("rs", 0, at(0)); e.ExpectDeletions("rs", nil, at(0)) }, true, 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := NewExpectations(ttl)
			for i, s := range tt.steps {
				s.do(e)
				if got := e.Satisfied("rs", at(s.now)); got != s.satisfied {
					adds, dels := e.Pending("rs")
					t.Fatalf("step %d: Satisfied = %v, want %v (pending adds %d, dels %d)", i, got, s.satisfied, adds, dels)
				}
			}
		})
	}
}

func TestExpectationsPending(t *testing.T) {
	e := NewExpectations(0)
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	e.ExpectCreations("rs", 2, now)
	e.ExpectDeletions("rs", []string{"a", "b", "c"}, now)
	e.CreationObserved("rs")
	e.DeletionObserved("rs", "b")
	if adds, dels := e.Pending("rs"); adds != 1 || dels != 2 {
		t.Errorf("Pending = %d, %d, want 1, 2", adds, dels)
	}
	if !e.Satisfied("rs", now.Add(DefaultExpectationsTTL+time.Second)) {
		t.Error("default TTL not applied")
	}
}
