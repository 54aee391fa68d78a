package endpoints

import (
	"strconv"
	"strings"
	"sync"
	"time"
)

// writes remembers, per Service, the objects the controller wrote that its
// informers have not delivered back yet. Acting on a cache that lacks its
// own last write would create a second slice where one was just created,
// or send an update bound to fail with a conflict; so while a Service has
// unseen writes of a kind, that part of its reconcile waits for the event
// that will queue it again. The informer's event may come before the API's
// answer, so the caller checks its cache right after recording a write. An entry older than the TTL counts as seen, so
// a lost event delays a Service but never wedges it.
//
// Objects are named "slice/NAME" and "endpoints". A write is seen when the
// informer shows the object at the written resourceVersion or later (the
// API server's versions are etcd revisions, so they compare as numbers; a
// version that is not a number must match exactly), or shows it gone.
type writes struct {
	ttl time.Duration

	mu sync.Mutex
	m  map[string]map[string]pendingWrite // service key -> object -> write
}

type pendingWrite struct {
	rv      string // "" for a deletion
	deleted bool
	at      time.Time
}

func newWrites(ttl time.Duration) *writes {
	return &writes{ttl: ttl, m: map[string]map[string]pendingWrite{}}
}

// wrote records a create or update of obj for svc, at version rv.
func (w *writes) wrote(svc, obj, rv string, now time.Time) {
	w.set(svc, obj, pendingWrite{rv: rv, at: now})
}

// deleted records a delete of obj for svc.
func (w *writes) deleted(svc, obj string, now time.Time) {
	w.set(svc, obj, pendingWrite{deleted: true, at: now})
}

func (w *writes) set(svc, obj string, p pendingWrite) {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := w.m[svc]
	if m == nil {
		m = map[string]pendingWrite{}
		w.m[svc] = m
	}
	m[obj] = p
}

// observe records what an informer delivered: obj of svc at version rv,
// or gone. It reports whether this settled a pending write.
func (w *writes) observe(svc, obj, rv string, gone bool) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := w.m[svc]
	p, ok := m[obj]
	if !ok {
		return false
	}
	if !gone && (p.deleted || !atLeast(rv, p.rv)) {
		return false
	}
	delete(m, obj)
	if len(m) == 0 {
		delete(w.m, svc)
	}
	return true
}

// pending says whether svc has unseen writes of objects whose names start
// with prefix; expired ones are dropped.
func (w *writes) pending(svc, prefix string, now time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := w.m[svc]
	found := false
	for obj, p := range m {
		if now.Sub(p.at) > w.ttl {
			delete(m, obj)
			continue
		}
		if strings.HasPrefix(obj, prefix) {
			found = true
		}
	}
	if len(m) == 0 {
		delete(w.m, svc)
	}
	return found
}

// atLeast says whether resource version got is at or past want.
func atLeast(got, want string) bool {
	if got == want {
		return true
	}
	g, err1 := strconv.ParseUint(got, 10, 64)
	v, err2 := strconv.ParseUint(want, 10, 64)
	return err1 == nil && err2 == nil && g >= v
}
