package job

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
)

// The controller's short-term memory. unfinalizing and versions bridge the
// moment between a write and the informer event that shows it, and are
// not needed after a restart, when the caches start from a fresh list;
// backoffs hold what Kubernetes also keeps only in memory.

// unfinalizing remembers, per Job key, the pods whose tracking finalizer
// the controller removed (having counted them) until the pod informer
// shows the pod without it, so that a stale cache never counts a pod
// twice. Entries older than ttl are presumed lost events and dropped.
type unfinalizing struct {
	ttl time.Duration

	mu sync.Mutex
	m  map[string]map[types.UID]time.Time
}

func newUnfinalizing(ttl time.Duration) *unfinalizing {
	return &unfinalizing{ttl: ttl, m: map[string]map[types.UID]time.Time{}}
}

// expect records that the finalizers of these pods are being removed.
func (u *unfinalizing) expect(key string, uids []types.UID, now time.Time) {
	if len(uids) == 0 {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	m := u.m[key]
	if m == nil {
		m = map[types.UID]time.Time{}
		u.m[key] = m
	}
	for _, uid := range uids {
		m[uid] = now
	}
}

// observed records that the pod no longer holds the finalizer (or is gone,
// or its removal failed).
func (u *unfinalizing) observed(key string, uid types.UID) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if m := u.m[key]; m != nil {
		delete(m, uid)
		if len(m) == 0 {
			delete(u.m, key)
		}
	}
}

// pending returns the pods of key still expected to lose the finalizer.
func (u *unfinalizing) pending(key string, now time.Time) sets.Set[types.UID] {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := sets.New[types.UID]()
	for uid, at := range u.m[key] {
		if now.Sub(at) > u.ttl {
			delete(u.m[key], uid)
			continue
		}
		out.Insert(uid)
	}
	return out
}

// forget drops key's entries (its Job is gone).
func (u *unfinalizing) forget(key string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.m, key)
}

// versions remembers, per Job key, the last version of the Job the
// controller wrote or read from the API. When the informer's copy differs,
// it may be older than what the controller itself wrote a moment ago, and
// acting on an old status could create pods twice; the controller then
// reads the Job from the API instead.
type versions struct {
	mu sync.Mutex
	m  map[string]version
}

type version struct {
	uid types.UID
	rv  string
}

func newVersions() *versions { return &versions{m: map[string]version{}} }

// stale says whether the cached uid/rv may be older than what was last
// seen through the API.
func (v *versions) stale(key string, uid types.UID, rv string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	last, ok := v.m[key]
	return ok && last.uid == uid && last.rv != rv
}

func (v *versions) remember(key string, uid types.UID, rv string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.m[key] = version{uid: uid, rv: rv}
}

func (v *versions) forget(key string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.m, key)
}

// backoffs keeps each running Job's backoffRecord.
type backoffs struct {
	mu sync.Mutex
	m  map[string]backoffRecord
}

func newBackoffs() *backoffs { return &backoffs{m: map[string]backoffRecord{}} }

func (b *backoffs) get(key string) backoffRecord {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.m[key]
}

func (b *backoffs) set(key string, r backoffRecord) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if r == (backoffRecord{}) {
		delete(b.m, key)
		return
	}
	b.m[key] = r
}

func (b *backoffs) forget(key string) { b.set(key, backoffRecord{}) }
