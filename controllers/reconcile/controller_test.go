package reconcile

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	clocktesting "k8s.io/utils/clock/testing"
)

// recorder is a Reconciler that records each call and answers from a script.
type recorder struct {
	mu     sync.Mutex
	calls  []call
	answer func(key string, n int) (Result, error) // n: calls for key so far, from 1
	seen   chan string
}

type call struct {
	key string
	at  time.Time
}

func newRecorder(answer func(string, int) (Result, error)) *recorder {
	if answer == nil {
		answer = func(string, int) (Result, error) { return Result{}, nil }
	}
	return &recorder{answer: answer, seen: make(chan string, 1000)}
}

func (r *recorder) Reconcile(_ context.Context, key string) (Result, error) {
	r.mu.Lock()
	r.calls = append(r.calls, call{key: key, at: time.Now()})
	n := 0
	for _, c := range r.calls {
		if c.key == key {
			n++
		}
	}
	r.mu.Unlock()
	res, err := r.answer(key, n)
	r.seen <- key
	return res, err
}

func (r *recorder) callsFor(key string) []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []call
	for _, c := range r.calls {
		if c.key == key {
			out = append(out, c)
		}
	}
	return out
}

// waitFor waits until the reconciler has finished a call for key.
func (r *recorder) waitFor(t *testing.T, key string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case k := <-r.seen:
			if k == key {
				return
			}
		case <-deadline:
			t.Fatalf("no reconcile of %q within 10s", key)
		}
	}
}

// run starts c and returns a stop function that cancels it and waits for
// Start to return, failing the test if it returns an error or hangs.
func run(t *testing.T, c *Controller) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Start(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Start: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("Start did not return within 10s of cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func mustNew(t *testing.T, opts Options) *Controller {
	t.Helper()
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNewRejectsIncompleteOptions(t *testing.T) {
	if _, err := New(Options{Reconciler: newRecorder(nil)}); err == nil {
		t.Error("New without a name: no error")
	}
	if _, err := New(Options{Name: "x"}); err == nil {
		t.Error("New without a reconciler: no error")
	}
}

func TestKeysAreDeduplicated(t *testing.T) {
	rec := newRecorder(nil)
	c := mustNew(t, Options{Name: "dedup", Reconciler: rec, Workers: 4})
	for range 10 {
		c.Enqueue("ns/a")
		c.Enqueue("ns/b")
	}
	stop := run(t, c)
	rec.waitFor(t, "ns/a")
	c.Enqueue("ns/sentinel")
	rec.waitFor(t, "ns/sentinel")
	stop()
	if n := len(rec.callsFor("ns/a")); n != 1 {
		t.Errorf("ns/a reconciled %d times, want 1", n)
	}
	if n := len(rec.callsFor("ns/b")); n != 1 {
		t.Errorf("ns/b reconciled %d times, want 1", n)
	}
}

func TestErrorsAreRetriedWithBackoffUntilSuccess(t *testing.T) {
	const base = 20 * time.Millisecond
	rec := newRecorder(func(_ string, n int) (Result, error) {
		if n <= 3 {
			return Result{}, errors.New("not yet")
		}
		return Result{}, nil
	})
	c := mustNew(t, Options{
		Name: "retry", Reconciler: rec,
		RateLimiter: workqueue.NewTypedItemExponentialFailureRateLimiter[string](base, time.Second),
	})
	run(t, c)
	c.Enqueue("k")
	for range 4 {
		rec.waitFor(t, "k")
	}
	calls := rec.callsFor("k")
	if len(calls) != 4 {
		t.Fatalf("%d calls, want 4", len(calls))
	}
	// The waits double: 20ms, 40ms, 80ms.
	for i := 1; i < len(calls); i++ {
		want := base << (i - 1)
		if got := calls[i].at.Sub(calls[i-1].at); got < want {
			t.Errorf("retry %d came after %v, want at least %v", i, got, want)
		}
	}
	// Success forgets the failures: no further calls.
	c.EnqueueAfter("sentinel", 200*time.Millisecond)
	rec.waitFor(t, "sentinel")
	if n := len(rec.callsFor("k")); n != 4 {
		t.Errorf("k reconciled %d times after success, want 4", n)
	}
}

func TestTerminalErrorsAreNotRetried(t *testing.T) {
	rec := newRecorder(func(key string, _ int) (Result, error) {
		if key == "bad" {
			return Result{}, Terminal(errors.New("spec can never work"))
		}
		return Result{}, nil
	})
	c := mustNew(t, Options{
		Name: "terminal", Reconciler: rec,
		RateLimiter: workqueue.NewTypedItemExponentialFailureRateLimiter[string](time.Millisecond, time.Millisecond),
	})
	run(t, c)
	c.Enqueue("bad")
	rec.waitFor(t, "bad")
	// A retry would come after 1ms; the sentinel comes after 100ms.
	c.EnqueueAfter("sentinel", 100*time.Millisecond)
	rec.waitFor(t, "sentinel")
	if n := len(rec.callsFor("bad")); n != 1 {
		t.Errorf("terminal key reconciled %d times, want 1", n)
	}
	// A new event for the key reconciles it again.
	c.Enqueue("bad")
	rec.waitFor(t, "bad")
}

func TestRequeueAfterIsHonoured(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	rec := newRecorder(func(key string, n int) (Result, error) {
		if key == "lease" && n == 1 {
			return Result{RequeueAfter: 10 * time.Second}, nil
		}
		return Result{}, nil
	})
	c := mustNew(t, Options{Name: "requeue", Reconciler: rec, Clock: clk})
	run(t, c)
	c.Enqueue("lease")
	rec.waitFor(t, "lease")

	clk.Step(9 * time.Second)
	c.Enqueue("sentinel")
	rec.waitFor(t, "sentinel")
	time.Sleep(50 * time.Millisecond) // give a wrong early requeue its chance
	if n := len(rec.callsFor("lease")); n != 1 {
		t.Fatalf("lease reconciled %d times 9s after RequeueAfter 10s, want 1", n)
	}
	clk.Step(time.Second)
	rec.waitFor(t, "lease")
}

func TestPanicIsRetriedLikeAnError(t *testing.T) {
	rec := newRecorder(func(_ string, n int) (Result, error) {
		if n == 1 {
			panic("boom")
		}
		return Result{}, nil
	})
	var mu sync.Mutex
	var errs []error
	c := mustNew(t, Options{
		Name: "panic", Reconciler: Func(func(ctx context.Context, key string) (Result, error) {
			defer func() {
				if r := recover(); r != nil {
					rec.seen <- key
					panic(r)
				}
			}()
			return rec.Reconcile(ctx, key)
		}),
		RateLimiter: workqueue.NewTypedItemExponentialFailureRateLimiter[string](time.Millisecond, time.Millisecond),
		Observe: func(_ string, _ time.Duration, _ Result, err error) {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		},
	})
	run(t, c)
	c.Enqueue("k")
	rec.waitFor(t, "k")
	rec.waitFor(t, "k")
	mu.Lock()
	defer mu.Unlock()
	if len(errs) < 2 || errs[0] == nil || !strings.Contains(errs[0].Error(), "panic: boom") || errs[1] != nil {
		t.Errorf("observed errors %v, want [panic, nil]", errs)
	}
}

func testPod(name string, owner *metav1.OwnerReference) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}}
	if owner != nil {
		p.OwnerReferences = []metav1.OwnerReference{*owner}
	}
	return p
}

func rsRef(name string) *metav1.OwnerReference {
	yes := true
	return &metav1.OwnerReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: name, UID: types.UID("u-" + name), Controller: &yes}
}

func TestWatchMapsInformerEventsToOwnerKeys(t *testing.T) {
	client := fake.NewClientset(
		testPod("a-1", rsRef("a")),
		testPod("a-2", rsRef("a")),
		testPod("orphan", nil),
	)
	factory := informers.NewSharedInformerFactory(client, 0)
	rec := newRecorder(nil)
	c := mustNew(t, Options{Name: "owners", Reconciler: rec})
	rsKind := schema.GroupKind{Group: "apps", Kind: "ReplicaSet"}
	if err := c.Watch(factory.Core().V1().Pods().Informer(), MapToOwner(rsKind)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); factory.Shutdown() }()
	factory.Start(ctx.Done())
	stop := run(t, c)

	rec.waitFor(t, "ns/a")
	if _, err := client.CoreV1().Pods("ns").Create(ctx, testPod("b-1", rsRef("b")), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, "ns/b")
	if err := client.CoreV1().Pods("ns").Delete(ctx, "b-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, "ns/b")
	stop()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, c := range rec.calls {
		if c.key != "ns/a" && c.key != "ns/b" {
			t.Errorf("reconciled %q; only owner keys were expected", c.key)
		}
	}
}

func TestDeleteTombstonesAreUnwrapped(t *testing.T) {
	c := mustNew(t, Options{Name: "tombstone", Reconciler: newRecorder(nil)})
	defer c.queue.ShutDown()
	h := c.handler(MapToOwner(schema.GroupKind{Group: "apps", Kind: "ReplicaSet"}))
	h.OnDelete(cache.DeletedFinalStateUnknown{Key: "ns/x-1", Obj: testPod("x-1", rsRef("x"))})
	h.OnDelete(testPod("y-1", rsRef("y")))
	var got []string
	for c.queue.Len() > 0 {
		k, _ := c.queue.Get()
		got = append(got, k)
		c.queue.Done(k)
	}
	slices.Sort(got)
	if want := []string{"ns/x", "ns/y"}; !slices.Equal(got, want) {
		t.Errorf("keys %v, want %v", got, want)
	}
}

func TestWatchAfterStartFails(t *testing.T) {
	rec := newRecorder(nil)
	c := mustNew(t, Options{Name: "late", Reconciler: rec})
	stop := run(t, c)
	defer stop()
	c.Enqueue("k")
	rec.waitFor(t, "k") // the workers run, so Start has begun
	factory := informers.NewSharedInformerFactory(fake.NewClientset(), 0)
	if err := c.Watch(factory.Core().V1().Pods().Informer(), ObjectKeys); err == nil {
		t.Error("Watch after Start: no error")
	}
}

func TestStartFailsWhenCachesDoNotSync(t *testing.T) {
	factory := informers.NewSharedInformerFactory(fake.NewClientset(), 0)
	c := mustNew(t, Options{Name: "nosync", Reconciler: newRecorder(nil), CacheSyncTimeout: 100 * time.Millisecond})
	if err := c.Watch(factory.Core().V1().Pods().Informer(), ObjectKeys); err != nil {
		t.Fatal(err)
	}
	// The factory is never started, so the cache never syncs.
	if err := c.Start(context.Background()); err == nil {
		t.Error("Start with caches that never sync: no error")
	}
}

func TestStartLeavesNoGoroutinesBehind(t *testing.T) {
	client := fake.NewClientset(testPod("p", nil))
	factory := informers.NewSharedInformerFactory(client, 0)
	rec := newRecorder(func(string, int) (Result, error) { return Result{RequeueAfter: time.Hour}, nil })
	c := mustNew(t, Options{Name: "leak", Reconciler: rec, Workers: 8})
	if err := c.Watch(factory.Core().V1().Pods().Informer(), ObjectKeys); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	factory.Start(ctx.Done())
	done := make(chan error, 1)
	go func() { done <- c.Start(ctx) }()
	rec.waitFor(t, "ns/p")
	c.EnqueueAfter("later", time.Hour)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Start: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Start did not return within 10s of cancel")
	}
	factory.Shutdown()
	checkNoGoroutines(t, "k8s.io/client-go/util/workqueue.", "controllers/reconcile.(*Controller)")
}

// checkNoGoroutines fails if, after a grace period for exiting goroutines,
// any goroutine's stack still has a frame matching one of the markers.
func checkNoGoroutines(t *testing.T, markers ...string) {
	t.Helper()
	var left []string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		left = left[:0]
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		for _, g := range strings.Split(string(buf), "\n\n") {
			for _, m := range markers {
				if strings.Contains(g, m) {
					left = append(left, g)
					break
				}
			}
		}
		if len(left) == 0 {
			return
		}
	}
	t.Errorf("%d goroutines left behind:\n%s", len(left), strings.Join(left, "\n\n"))
}
