package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
)

// Options shape a Controller.
type Options struct {
	// Name identifies the controller in logs and queue metrics. Required.
	Name string
	// Reconciler does the work. Required.
	Reconciler Reconciler
	// Workers is how many keys are reconciled at once; default 1. One key
	// is never reconciled by two workers at the same time.
	Workers int
	// RateLimiter decides how long a failed key waits before its retry;
	// default DefaultRateLimiter().
	RateLimiter workqueue.TypedRateLimiter[string]
	// Clock drives the queue's delays (RequeueAfter, EnqueueAfter, retry
	// backoff) and reconcile timings; default the real clock.
	Clock clock.WithTicker
	// CacheSyncTimeout bounds Start's wait for the watched informers'
	// caches; zero waits until ctx ends.
	CacheSyncTimeout time.Duration
	// Log receives errors and terminal failures; default slog.Default().
	Log *slog.Logger
	// Observe, if set, hears about every reconcile (for metrics): the key,
	// how long it took, and what came of it.
	Observe func(key string, took time.Duration, res Result, err error)
	// MetricsProvider, if set, receives the queue's metrics (depth,
	// latency, retries) under Name.
	MetricsProvider workqueue.MetricsProvider
}

// DefaultRateLimiter is the retry policy of Kubernetes' controllers: a
// failed key waits 5ms, doubling with each consecutive failure up to 1000s,
// and all retries together pass a token bucket of 10 per second with a
// burst of 100. The longer of the two waits wins.
func DefaultRateLimiter() workqueue.TypedRateLimiter[string] {
	return workqueue.DefaultTypedControllerRateLimiter[string]()
}

// Controller feeds keys from informer events (and direct Enqueue calls) to a
// Reconciler through a rate-limited, de-duplicating work queue. Build one with
// New, wire it with Watch, and run it with Start.
type Controller struct {
	name    string
	rec     Reconciler
	workers int
	clock   clock.WithTicker
	syncTO  time.Duration
	log     *slog.Logger
	observe func(string, time.Duration, Result, error)
	queue   workqueue.TypedRateLimitingInterface[string]

	mu      sync.Mutex
	synced  []cache.InformerSynced
	started bool
}

// New builds a Controller. Its queue exists from here on, so Enqueue and
// informer events before Start are kept; Start must be called for the queue
// to be shut down.
func New(opts Options) (*Controller, error) {
	if opts.Name == "" {
		return nil, errors.New("reconcile: controller needs a name")
	}
	if opts.Reconciler == nil {
		return nil, fmt.Errorf("reconcile: controller %s needs a reconciler", opts.Name)
	}
	if opts.Workers <= 0 {
		opts.Workers = 1
	}
	if opts.RateLimiter == nil {
		opts.RateLimiter = DefaultRateLimiter()
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	q := workqueue.NewTypedRateLimitingQueueWithConfig(opts.RateLimiter, workqueue.TypedRateLimitingQueueConfig[string]{
		Name:            opts.Name,
		Clock:           opts.Clock,
		MetricsProvider: opts.MetricsProvider,
	})
	return &Controller{
		name:    opts.Name,
		rec:     opts.Reconciler,
		workers: opts.Workers,
		clock:   opts.Clock,
		syncTO:  opts.CacheSyncTimeout,
		log:     opts.Log.With("controller", opts.Name),
		observe: opts.Observe,
		queue:   q,
	}, nil
}

// Name is the controller's name.
func (c *Controller) Name() string { return c.name }

// Enqueue asks for key to be reconciled. A key already waiting is not
// queued twice.
func (c *Controller) Enqueue(key string) { c.queue.Add(key) }

// EnqueueAfter asks for key to be reconciled once d has passed. If the key
// is already waiting for a later time, the earlier time wins.
func (c *Controller) EnqueueAfter(key string, d time.Duration) { c.queue.AddAfter(key, d) }

// KeyFunc maps an object from an informer to the keys to reconcile: itself
// (ObjectKeys), its controlling owner (MapToOwner), or anything else. It
// receives the object itself, never a deletion tombstone, and returns nil
// for objects the controller does not care about.
type KeyFunc func(obj any) []string

// Watch enqueues keyFunc's keys for every add, update and delete the
// informer delivers (for an update, the keys of both the old and the new
// object, so a change of owner reaches both). Start waits for this
// handler to have seen the informer's initial list. Watch must be called
// before Start.
func (c *Controller) Watch(informer cache.SharedIndexInformer, keyFunc KeyFunc) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started {
		return fmt.Errorf("reconcile: controller %s: Watch after Start", c.name)
	}
	reg, err := informer.AddEventHandler(c.handler(keyFunc))
	if err != nil {
		return fmt.Errorf("reconcile: controller %s: adding event handler: %w", c.name, err)
	}
	c.synced = append(c.synced, reg.HasSynced)
	return nil
}

// handler turns informer notifications into keys.
func (c *Controller) handler(keyFunc KeyFunc) cache.ResourceEventHandler {
	add := func(obj any) {
		for _, k := range keyFunc(obj) {
			c.queue.Add(k)
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc: add,
		UpdateFunc: func(oldObj, newObj any) {
			add(oldObj)
			add(newObj)
		},
		DeleteFunc: func(obj any) { add(Untombstone(obj)) },
	}
}

// Untombstone returns the last known state inside a deletion tombstone
// (cache.DeletedFinalStateUnknown, delivered when the watch missed the
// delete), or obj itself.
func Untombstone(obj any) any {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		return t.Obj
	}
	return obj
}

// Start waits for the watched informers' handlers to sync, runs the workers,
// and blocks until ctx ends; then it shuts the queue down and waits for every
// worker to finish its current key. It returns nil on a normal stop and an
// error when the caches do not sync within CacheSyncTimeout or when called
// twice.
func (c *Controller) Start(ctx context.Context) error {
	c.mu.Lock()
	if c.started {
		c.mu.Unlock()
		return fmt.Errorf("reconcile: controller %s started twice", c.name)
	}
	c.started = true
	synced := c.synced
	c.mu.Unlock()
	defer c.queue.ShutDown()

	if len(synced) > 0 {
		syncCtx := ctx
		if c.syncTO > 0 {
			var cancel context.CancelFunc
			syncCtx, cancel = context.WithTimeout(ctx, c.syncTO)
			defer cancel()
		}
		if !cache.WaitForCacheSync(syncCtx.Done(), synced...) {
			if ctx.Err() != nil {
				return nil // stopped before the caches synced: a normal stop
			}
			return fmt.Errorf("reconcile: controller %s: caches did not sync within %v", c.name, c.syncTO)
		}
	}

	var wg sync.WaitGroup
	for i := 0; i < c.workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c.processNext(ctx) {
			}
		}()
	}
	<-ctx.Done()
	c.queue.ShutDown()
	wg.Wait()
	return nil
}

// processNext reconciles one key and applies the retry policy to the
// outcome. It returns false once the queue is shut down.
func (c *Controller) processNext(ctx context.Context) bool {
	key, shutdown := c.queue.Get()
	if shutdown {
		return false
	}
	defer c.queue.Done(key)
	if ctx.Err() != nil {
		return false // stopping: keys still queued are not worth starting
	}
	start := c.clock.Now()
	res, err := c.reconcile(ctx, key)
	if c.observe != nil {
		c.observe(key, c.clock.Since(start), res, err)
	}
	switch {
	case err == nil:
		c.queue.Forget(key)
		if res.RequeueAfter > 0 {
			c.queue.AddAfter(key, res.RequeueAfter)
		}
	case IsTerminal(err):
		c.queue.Forget(key)
		c.log.Error("reconcile failed; not retrying", "key", key, "err", err)
	case ctx.Err() != nil:
		// Stopping: the error is most likely the cancellation itself.
	default:
		// A write that lost an optimistic-concurrency race (409) is the
		// normal way a level-triggered controller learns its cache was
		// behind: retry it quietly.
		level := slog.LevelInfo
		if apierrors.IsConflict(err) {
			level = slog.LevelDebug
		}
		c.log.Log(ctx, level, "reconcile failed; retrying", "key", key, "retries", c.queue.NumRequeues(key), "err", err)
		c.queue.AddRateLimited(key)
	}
	return true
}

// reconcile runs the Reconciler, turning a panic into an error so that one
// bad object cannot take the process down; the key is then retried like any
// other failure.
func (c *Controller) reconcile(ctx context.Context, key string) (res Result, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("reconcile %s: panic: %v", key, r)
		}
	}()
	return c.rec.Reconcile(ctx, key)
}
