package scheduler

import (
	"container/heap"
	"sync"
	"time"
)

// Hint names a kind of cluster change, so that a change wakes only the
// unschedulable pods it could help.
type Hint uint8

const (
	// HintNode: a node was added, or changed in a way that matters.
	HintNode Hint = 1 << iota
	// HintPodGone: an assigned pod was deleted or finished, freeing room.
	HintPodGone
	// HintPodAdded: an assigned pod appeared or changed labels (affinity,
	// spread).
	HintPodAdded
	// HintVolume: a claim, volume or storage class changed.
	HintVolume
	// HintNamespace: a namespace's labels changed (namespaceSelector).
	HintNamespace

	// HintAll wakes every unschedulable pod.
	HintAll Hint = 1<<iota - 1
)

// Queue holds the keys (namespace/name) of pods waiting to be scheduled,
// in three places:
//
//	          Add                 Pop                   Done
//	(new) ----------> active ----------> in flight ---------------> (gone)
//	                  ^   ^                 |
//	    backoff over  |   | Move (hint)     | Failed
//	                  |   |                 v
//	               backoff <--- Move --- unschedulable
//	                  ^    (still backing off)  |
//	                  +-------- after MaxUnschedulableWait
//
// active is ordered by priority (higher first), then creation (older
// first). A pod that fails waits out its backoff (Initial doubling up to
// Max per attempt) and then waits, unschedulable, until a cluster change
// that could help it (a Hint) moves it back; a change that happened while
// it was in flight sends it straight to backoff, so no change is missed.
// Nothing polls: Pop blocks, and only Flush, called by a timer at
// NextWake, moves pods whose backoff is over.
//
// All methods take the current time as an argument; the Queue never
// reads a clock.
type Queue struct {
	mu            sync.Mutex
	cond          *sync.Cond
	items         map[string]*queued
	active        activeHeap
	backoff       backoffHeap
	unschedulable map[string]*queued
	moves         uint64
	// hinted is a superset of the hints of the unschedulable pods, so
	// that a change no pod waits for costs nothing.
	hinted Hint
	closed bool
	wake   chan struct{}

	Initial, Max, MaxUnschedulableWait time.Duration
}

type place uint8

const (
	inActive place = iota + 1
	inBackoff
	inUnschedulable
	inFlight
)

type queued struct {
	key      string
	priority int32
	created  time.Time
	attempts int
	until    time.Time // end of backoff
	since    time.Time // when it became unschedulable
	hints    Hint
	where    place
	index    int
	poppedAt uint64 // moves counter when popped
	changed  bool   // Add while in flight
}

// NewQueue returns an empty queue with Kubernetes' default backoff (1s
// doubling to 10s) and a 5 minute cap on waiting for a helpful change.
func NewQueue() *Queue {
	q := &Queue{
		items:                map[string]*queued{},
		unschedulable:        map[string]*queued{},
		wake:                 make(chan struct{}, 1),
		Initial:              time.Second,
		Max:                  10 * time.Second,
		MaxUnschedulableWait: 5 * time.Minute,
	}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// Add makes a pending pod known, or records that it changed. A new pod
// goes to active; a changed unschedulable pod is moved as if by a
// cluster change; a changed in-flight pod is retried at once if its
// attempt fails.
func (q *Queue) Add(key string, priority int32, created time.Time, now time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	it, ok := q.items[key]
	if !ok {
		it = &queued{key: key, priority: priority, created: created}
		q.items[key] = it
		q.toActive(it)
		return
	}
	if it.priority != priority {
		it.priority = priority
		if it.where == inActive {
			heap.Fix(&q.active, it.index)
		}
	}
	switch it.where {
	case inFlight:
		it.changed = true
	case inUnschedulable:
		q.leaveUnschedulable(it)
		q.requeue(it, now)
	}
}

// Has reports whether the queue knows the pod.
func (q *Queue) Has(key string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	_, ok := q.items[key]
	return ok
}

// Delete forgets a pod (deleted, bound, or no longer ours).
func (q *Queue) Delete(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	it, ok := q.items[key]
	if !ok {
		return
	}
	switch it.where {
	case inActive:
		heap.Remove(&q.active, it.index)
	case inBackoff:
		heap.Remove(&q.backoff, it.index)
	case inUnschedulable:
		q.leaveUnschedulable(it)
	}
	delete(q.items, key)
}

// Pop blocks until a pod is active and returns its key, or returns false
// once the queue is closed.
func (q *Queue) Pop() (string, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.active.Len() == 0 && !q.closed {
		q.cond.Wait()
	}
	if q.closed {
		return "", false
	}
	it := heap.Pop(&q.active).(*queued)
	it.where, it.poppedAt, it.changed = inFlight, q.moves, false
	return it.key, true
}

// Done forgets an in-flight pod that was placed (or needs no placing).
// A pod deleted and created again under the same name during the attempt
// is a new entry and stays.
func (q *Queue) Done(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if it, ok := q.items[key]; ok && it.where == inFlight {
		delete(q.items, key)
	}
}

// Failed records a failed attempt for an in-flight pod: it backs off,
// then waits for a change matching hints. With hints 0 (an error, not a
// verdict) it is retried as soon as its backoff ends.
func (q *Queue) Failed(key string, hints Hint, now time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	it, ok := q.items[key]
	if !ok || it.where != inFlight {
		return
	}
	it.attempts++
	it.until = now.Add(q.backoffFor(it.attempts))
	it.hints = hints
	if hints == 0 || it.changed || q.moves != it.poppedAt {
		q.toBackoff(it)
		return
	}
	it.where, it.since = inUnschedulable, now
	q.unschedulable[key] = it
	q.hinted |= hints
}

// Move sends the unschedulable pods a change of kind hint could help
// back to be retried (to backoff if theirs is not over yet).
func (q *Queue) Move(hint Hint, now time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.moves++
	if q.hinted&hint == 0 {
		return
	}
	var left Hint
	for _, it := range q.unschedulable {
		if it.hints&hint == 0 {
			left |= it.hints
			continue
		}
		q.leaveUnschedulable(it)
		q.requeue(it, now)
	}
	q.hinted = left
}

func (q *Queue) leaveUnschedulable(it *queued) {
	delete(q.unschedulable, it.key)
	if len(q.unschedulable) == 0 {
		q.hinted = 0
	}
}

// Flush moves pods whose backoff is over to active, and pods that have
// waited MaxUnschedulableWait for a helpful change back to be retried.
// It returns when it next needs calling (zero: only after a change).
func (q *Queue) Flush(now time.Time) time.Time {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.backoff.Len() > 0 && !q.backoff[0].until.After(now) {
		q.toActive(heap.Pop(&q.backoff).(*queued))
	}
	var next time.Time
	for _, it := range q.unschedulable {
		deadline := it.since.Add(q.MaxUnschedulableWait)
		if !deadline.After(now) {
			q.leaveUnschedulable(it)
			q.requeue(it, now)
			continue
		}
		if next.IsZero() || deadline.Before(next) {
			next = deadline
		}
	}
	if q.backoff.Len() > 0 && (next.IsZero() || q.backoff[0].until.Before(next)) {
		next = q.backoff[0].until
	}
	return next
}

// Woken is signalled when a pod enters backoff, so the timer calling
// Flush can shorten its wait.
func (q *Queue) Woken() <-chan struct{} { return q.wake }

// Close wakes every Pop with false.
func (q *Queue) Close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	q.cond.Broadcast()
}

// Len reports how many pods are active, backing off and unschedulable.
func (q *Queue) Len() (active, backoff, unschedulable int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.active.Len(), q.backoff.Len(), len(q.unschedulable)
}

func (q *Queue) backoffFor(attempts int) time.Duration {
	d := q.Initial
	for i := 1; i < attempts && d < q.Max; i++ {
		d *= 2
	}
	return min(d, q.Max)
}

func (q *Queue) requeue(it *queued, now time.Time) {
	if it.until.After(now) {
		q.toBackoff(it)
		return
	}
	q.toActive(it)
}

func (q *Queue) toActive(it *queued) {
	it.where = inActive
	heap.Push(&q.active, it)
	q.cond.Signal()
}

func (q *Queue) toBackoff(it *queued) {
	it.where = inBackoff
	heap.Push(&q.backoff, it)
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// activeHeap orders by priority, then age, then key.
type activeHeap []*queued

func (h activeHeap) Len() int { return len(h) }
func (h activeHeap) Less(i, j int) bool {
	a, b := h[i], h[j]
	if a.priority != b.priority {
		return a.priority > b.priority
	}
	if !a.created.Equal(b.created) {
		return a.created.Before(b.created)
	}
	return a.key < b.key
}
func (h activeHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *activeHeap) Push(x any) {
	it := x.(*queued)
	it.index = len(*h)
	*h = append(*h, it)
}
func (h *activeHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return it
}

// backoffHeap orders by end of backoff.
type backoffHeap []*queued

func (h backoffHeap) Len() int           { return len(h) }
func (h backoffHeap) Less(i, j int) bool { return h[i].until.Before(h[j].until) }
func (h backoffHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *backoffHeap) Push(x any) {
	it := x.(*queued)
	it.index = len(*h)
	*h = append(*h, it)
}
func (h *backoffHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return it
}
