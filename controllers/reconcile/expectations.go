package reconcile

import (
	"sync"
	"time"
)

// DefaultExpectationsTTL is how long unobserved expectations hold a key
// back before they are presumed lost (a watch event that never came).
const DefaultExpectationsTTL = 5 * time.Minute

// Expectations remembers, per controller key, the creations and deletions
// a controller has asked the API for and has not yet seen in its informer
// cache. A ReplicaSet controller that just created three pods must not
// count "three missing" again on its next reconcile only because the pod
// informer has not delivered them yet; it asks Satisfied first and, while
// false, waits for the events that will requeue the key anyway.
//
// The protocol:
//
//	if !exp.Satisfied(key, now) { return Result{}, nil } // an event will come
//	exp.ExpectCreations(key, n, now)      // before issuing n creates
//	... on each create error:             exp.CreationObserved(key)
//	... pod informer add handler:         exp.CreationObserved(ownerKey)
//	exp.ExpectDeletions(key, uids, now)   // before deleting those pods
//	... on each delete error:             exp.DeletionObserved(key, uid)
//	... pod informer delete handler:      exp.DeletionObserved(ownerKey, uid)
//	exp.Forget(key)                       // when the owner itself is gone
//
// Deletions are tracked by id (usually the pod's UID), so a deletion seen
// twice (an update with deletionTimestamp, then the delete) counts once.
// Expectations older than the TTL count as satisfied, so a lost event
// delays a controller but never wedges it. Time is passed in by the caller.
type Expectations struct {
	ttl time.Duration

	mu sync.Mutex
	m  map[string]*expected
}

type expected struct {
	adds int
	dels map[string]struct{}
	at   time.Time // when the expectations were last raised
}

func (x *expected) done() bool { return x.adds <= 0 && len(x.dels) == 0 }

// NewExpectations makes an empty set; ttl <= 0 means DefaultExpectationsTTL.
func NewExpectations(ttl time.Duration) *Expectations {
	if ttl <= 0 {
		ttl = DefaultExpectationsTTL
	}
	return &Expectations{ttl: ttl, m: map[string]*expected{}}
}

// record returns key's live record, starting a fresh one if there is none
// or the old one expired. Callers hold mu.
func (e *Expectations) record(key string, now time.Time) *expected {
	x := e.m[key]
	if x == nil || now.Sub(x.at) > e.ttl {
		x = &expected{dels: map[string]struct{}{}}
		e.m[key] = x
	}
	x.at = now
	return x
}

// ExpectCreations records that n more creations for key are in flight.
func (e *Expectations) ExpectCreations(key string, n int, now time.Time) {
	if n <= 0 {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.record(key, now).adds += n
}

// CreationObserved records that one expected creation for key was seen
// in the cache, or failed and will not be seen.
func (e *Expectations) CreationObserved(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x := e.m[key]; x != nil && x.adds > 0 {
		x.adds--
	}
}

// ExpectDeletions records that the objects with these ids are being
// deleted on key's behalf.
func (e *Expectations) ExpectDeletions(key string, ids []string, now time.Time) {
	if len(ids) == 0 {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	x := e.record(key, now)
	for _, id := range ids {
		x.dels[id] = struct{}{}
	}
}

// DeletionObserved records that the object with this id is gone from the
// cache (or its deletion failed); unknown ids are ignored.
func (e *Expectations) DeletionObserved(key, id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x := e.m[key]; x != nil {
		delete(x.dels, id)
	}
}

// Satisfied says whether key may act on its cache: nothing it asked for is
// still unobserved, or what is unobserved was raised longer than the TTL ago.
func (e *Expectations) Satisfied(key string, now time.Time) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	x := e.m[key]
	if x == nil {
		return true
	}
	if x.done() || now.Sub(x.at) > e.ttl {
		delete(e.m, key)
		return true
	}
	return false
}

// Pending reports key's outstanding creations and deletions (for logs).
func (e *Expectations) Pending(key string) (adds, dels int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x := e.m[key]; x != nil {
		return max(x.adds, 0), len(x.dels)
	}
	return 0, 0
}

// Forget drops key's expectations (its owner was deleted).
func (e *Expectations) Forget(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.m, key)
}
