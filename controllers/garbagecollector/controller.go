// Package garbagecollector deletes objects whose owners are gone and
// carries out the propagation policy of an owner's deletion, as
// Kubernetes' garbage collector does.
//
// It watches the metadata of every resource discovery lists as listable,
// watchable and deletable (events excepted), through metadata informers
// whose caches are indexed by UID and by owner UID: together they are the
// ownership graph. Discovery is refreshed periodically, so resources that
// appear later are watched too.
//
// The unit of work is an object's UID. Reconciling it:
//
//	not being deleted, with owners ──> verify each owner
//	    (cache hit where the reference points, else a live GET: not found or
//	     another UID = absent; namespaced owners only in the dependent's
//	     namespace; a cluster-scoped dependent cannot have a namespaced owner)
//	    some owner present ──────────> keep; drop references to absent owners
//	                                   and to owners waiting on dependents
//	    owners waiting, has dependents > delete in the foreground
//	    every owner gone ────────────> delete (background, or as its own
//	                                   finalizers say)
//
//	being deleted, "orphan" finalizer ──> remove the owner reference from
//	                                      every dependent, then the finalizer
//	being deleted, "foregroundDeletion" ─> dependents are deleted (they see
//	                                      their owner waiting); once none with
//	                                      blockOwnerDeletion=true is left,
//	                                      remove the finalizer
//
// The API server adds those finalizers when a delete asks for the Orphan
// or Foreground propagation policy; Background (the default) adds none:
// the owner goes at once and its dependents follow as their owner
// references dangle.
//
// Before deleting or patching an object the collector reads it afresh and
// decides again on what it read, and deletes with the UID and
// resourceVersion read as preconditions, so a stale cache never deletes an
// object that was just adopted.
package garbagecollector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"
	"k8s.io/utils/lru"

	"github.com/skiff-sh/skiff/controllers/reconcile"
)

// DefaultIgnored are the resources the collector does not watch: events
// churn the most and are never owners worth tracking.
var DefaultIgnored = []schema.GroupResource{
	{Group: "", Resource: "events"},
	{Group: "events.k8s.io", Resource: "events"},
}

// Options shape the collector; the zero value works.
type Options struct {
	// Workers process objects in parallel; default 10.
	Workers int
	// Clock is the time source; default the real clock.
	Clock clock.WithTicker
	// Recorder receives events; default one writing Events through the API
	// as "garbage-collector-controller", run by Start.
	Recorder record.EventRecorder
	// Log receives errors; default slog.Default().
	Log *slog.Logger
	// DiscoveryResync is how often discovery is read again for new
	// resources; default 30s.
	DiscoveryResync time.Duration
	// Ignored resources are not watched; default DefaultIgnored.
	Ignored []schema.GroupResource
	// AbsentCacheSize bounds the memory of owners verified absent, which
	// spares a GET per sibling when many dependents share a dead owner;
	// default 500.
	AbsentCacheSize int
	// UnresolvableRecheck is how often a dependent whose owner reference
	// cannot be resolved (its kind is not served) is looked at again;
	// default 1m.
	UnresolvableRecheck time.Duration
}

func (o Options) withDefaults() Options {
	if o.Workers <= 0 {
		o.Workers = 10
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.DiscoveryResync <= 0 {
		o.DiscoveryResync = 30 * time.Second
	}
	if o.Ignored == nil {
		o.Ignored = DefaultIgnored
	}
	if o.AbsentCacheSize <= 0 {
		o.AbsentCacheSize = 500
	}
	if o.UnresolvableRecheck <= 0 {
		o.UnresolvableRecheck = time.Minute
	}
	return o
}

// Controller is the garbage collector.
type Controller struct {
	client kubernetes.Interface
	meta   metadata.Interface
	opts   Options
	ctrl   *reconcile.Controller
	events *reconcile.EventRecorder // ours to run, when Options.Recorder was nil
	rec    record.EventRecorder
	absent *lru.Cache

	catMu sync.RWMutex
	cat   catalog

	mons monitors
}

// New builds the collector. client serves discovery and events; meta
// reads, watches, patches and deletes objects of any resource. The
// collector makes its own informers (one per resource discovery lists)
// when it starts.
func New(client kubernetes.Interface, meta metadata.Interface, opts Options) (*Controller, error) {
	if meta == nil {
		return nil, errors.New("garbage collector: a metadata client is required")
	}
	opts = opts.withDefaults()
	c := &Controller{
		client: client, meta: meta, opts: opts, rec: opts.Recorder,
		absent: lru.New(opts.AbsentCacheSize),
		cat:    catalog{byKind: map[schema.GroupKind]apiResource{}},
		mons:   monitors{m: map[schema.GroupVersionResource]*monitor{}},
	}
	if c.rec == nil {
		c.events = reconcile.NewEventRecorder(client, "garbage-collector-controller")
		c.rec = c.events
	}
	ctrl, err := reconcile.New(reconcile.Options{
		Name: "garbagecollector", Reconciler: c, Workers: opts.Workers, Clock: opts.Clock, Log: opts.Log,
	})
	if err != nil {
		return nil, err
	}
	c.ctrl = ctrl
	return c, nil
}

// Start discovers the resources, starts a monitor for each, waits for
// their caches, and collects garbage until ctx ends; then it stops the
// monitors and returns.
func (c *Controller) Start(ctx context.Context) error {
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		wg.Wait()        // the discovery loop: no monitor starts after this
		c.mons.wg.Wait() // the monitors
	}()
	if c.events != nil {
		wg.Add(1)
		go func() { defer wg.Done(); _ = c.events.Start(ctx) }()
	}
	// Discovery must work once before anything can be judged.
	for {
		err := c.refresh(ctx)
		if err == nil {
			break
		}
		c.opts.Log.Error("garbage collector: discovery failed; retrying", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-c.opts.Clock.After(time.Second):
		}
	}
	if !cache.WaitForCacheSync(ctx.Done(), c.syncedFuncs()...) {
		return nil // stopped before the caches synced
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := c.opts.Clock.NewTicker(c.opts.DiscoveryResync)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C():
				if err := c.refresh(ctx); err != nil {
					c.opts.Log.Error("garbage collector: discovery failed", "err", err)
				}
			}
		}
	}()
	return c.ctrl.Start(ctx)
}

// changed turns one cache change into the UIDs to look at: the object
// itself when it has owners or a finalizer the collector acts on; its
// owners, which may be waiting on it; and its dependents, when it is gone
// or starts waiting on them. Updates that change none of that queue
// nothing.
func (c *Controller) changed(old, cur *metav1.PartialObjectMetadata) {
	if old != nil && cur != nil && !gcRelevantChange(old, cur) {
		return
	}
	if cur != nil && (len(cur.OwnerReferences) > 0 || (cur.DeletionTimestamp != nil && gcFinalizer(cur.Finalizers))) {
		c.ctrl.Enqueue(string(cur.UID))
	}
	for _, o := range []*metav1.PartialObjectMetadata{old, cur} {
		if o == nil {
			continue
		}
		for _, ref := range o.OwnerReferences {
			c.ctrl.Enqueue(string(ref.UID))
		}
	}
	gone := cur == nil
	startsWaiting := cur != nil && cur.DeletionTimestamp != nil && gcFinalizer(cur.Finalizers) &&
		(old == nil || old.DeletionTimestamp == nil || !slices.Equal(old.Finalizers, cur.Finalizers))
	if gone || startsWaiting {
		subject := cur
		if gone {
			subject = old
		}
		if subject == nil {
			return
		}
		for _, d := range c.dependentsOf(subject.UID) {
			c.ctrl.Enqueue(string(d.obj.UID))
		}
	}
}

// gcRelevantChange says whether an update touched what the collector
// reads: owners, finalizers, deletion.
func gcRelevantChange(old, cur *metav1.PartialObjectMetadata) bool {
	return (old.DeletionTimestamp == nil) != (cur.DeletionTimestamp == nil) ||
		!slices.Equal(old.Finalizers, cur.Finalizers) ||
		!slices.EqualFunc(old.OwnerReferences, cur.OwnerReferences, ownerRefEqual)
}

func ownerRefEqual(a, b metav1.OwnerReference) bool {
	return a.UID == b.UID && a.Name == b.Name && a.Kind == b.Kind && a.APIVersion == b.APIVersion &&
		boolValue(a.BlockOwnerDeletion) == boolValue(b.BlockOwnerDeletion) && boolValue(a.Controller) == boolValue(b.Controller)
}

func boolValue(b *bool) bool { return b != nil && *b }

// Reconcile looks at the object with UID key.
func (c *Controller) Reconcile(ctx context.Context, key string) (reconcile.Result, error) {
	n, ok := c.lookup(types.UID(key))
	if !ok {
		return reconcile.Result{}, nil // gone, or never seen: nothing to collect
	}
	if n.obj.DeletionTimestamp != nil {
		if gcFinalizer(n.obj.Finalizers) {
			return c.processDeleting(ctx, n)
		}
		return reconcile.Result{}, nil // on its way out already
	}
	if len(n.obj.OwnerReferences) == 0 {
		return reconcile.Result{}, nil
	}
	return c.processOwned(ctx, n)
}

// processOwned judges a dependent by its owners and acts on the result.
func (c *Controller) processOwned(ctx context.Context, n node) (reconcile.Result, error) {
	act, vs, err := c.judge(ctx, n)
	if err != nil {
		return reconcile.Result{}, err
	}
	var res reconcile.Result
	if slices.ContainsFunc(vs, func(v verdict) bool { return v.State == ownerUnresolvable }) {
		res.RequeueAfter = c.opts.UnresolvableRecheck
	}
	if !act.Delete && len(act.DropRefs) == 0 {
		return res, nil
	}
	// Decide again on the object as it is now.
	api := c.resourceClient(n.res, n.obj.Namespace)
	live, err := api.Get(ctx, n.obj.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return res, nil
	}
	if err != nil {
		return reconcile.Result{}, fmt.Errorf("reading %s: %w", describe(n), err)
	}
	if live.UID != n.obj.UID || live.DeletionTimestamp != nil {
		return res, nil
	}
	fresh := node{obj: live, res: n.res}
	if act, _, err = c.judge(ctx, fresh); err != nil {
		return reconcile.Result{}, err
	}
	switch {
	case act.Delete:
		uid, rv, policy := live.UID, live.ResourceVersion, act.Policy
		err := api.Delete(ctx, live.Name, metav1.DeleteOptions{
			Preconditions:     &metav1.Preconditions{UID: &uid, ResourceVersion: &rv},
			PropagationPolicy: &policy,
		})
		if apierrors.IsNotFound(err) {
			return res, nil
		}
		if err != nil {
			return reconcile.Result{}, fmt.Errorf("deleting %s: %w", describe(n), err)
		}
		c.opts.Log.Debug("garbage collector: deleted", "object", describe(n), "propagation", policy)
	case len(act.DropRefs) > 0:
		if err := c.patch(ctx, fresh, func(m *metav1.PartialObjectMetadata) []byte {
			return dropOwnerRefsPatch(m.OwnerReferences, act.DropRefs)
		}); err != nil {
			return reconcile.Result{}, fmt.Errorf("removing owner references from %s: %w", describe(n), err)
		}
	}
	return res, nil
}

// judge verifies a dependent's owners and decides.
func (c *Controller) judge(ctx context.Context, n node) (ownedAction, []verdict, error) {
	vs, err := c.verifyOwners(ctx, n)
	if err != nil {
		return ownedAction{}, nil, err
	}
	return decideOwned(vs, n.obj.Finalizers, len(c.dependentsOf(n.obj.UID)) > 0), vs, nil
}

// processDeleting carries out an owner's orphan or foreground deletion.
func (c *Controller) processDeleting(ctx context.Context, n node) (reconcile.Result, error) {
	deps := c.dependentsOf(n.obj.UID)
	view := make([]dependent, len(deps))
	for i, d := range deps {
		view[i] = dependent{UID: d.obj.UID, Deleting: d.obj.DeletionTimestamp != nil}
		for _, ref := range d.obj.OwnerReferences {
			if ref.UID == n.obj.UID && boolValue(ref.BlockOwnerDeletion) {
				view[i].Blocking = true
			}
		}
	}
	// Dependents created just before the owner's deletion may not be in
	// the view yet: conclude nothing until every resource's view has
	// caught up with the owner's deletion.
	act := decideDeleting(n.obj.Finalizers, view, c.synced() && c.caughtUp(n.obj.ResourceVersion))
	if act.Wait {
		return reconcile.Result{RequeueAfter: time.Second}, nil
	}
	for _, uid := range act.Nudge {
		c.ctrl.Enqueue(string(uid))
	}
	for _, d := range deps {
		if !slices.Contains(act.Orphan, d.obj.UID) {
			continue
		}
		owner := n.obj.UID
		if err := c.patch(ctx, d, func(m *metav1.PartialObjectMetadata) []byte {
			return dropOwnerRefsPatch(m.OwnerReferences, []types.UID{owner})
		}); err != nil {
			return reconcile.Result{}, fmt.Errorf("orphaning %s from %s: %w", describe(d), describe(n), err)
		}
	}
	if act.RemoveFinalizer != "" {
		f := act.RemoveFinalizer
		if err := c.patch(ctx, n, func(m *metav1.PartialObjectMetadata) []byte {
			return dropFinalizerPatch(m.Finalizers, f)
		}); err != nil {
			return reconcile.Result{}, fmt.Errorf("removing finalizer %s from %s: %w", f, describe(n), err)
		}
	}
	return reconcile.Result{}, nil
}

// patch applies the JSON patch build makes from the object's metadata:
// first from the cached view; if that view was stale (the patch's tests
// fail, or it conflicts), once more from a fresh read.
func (c *Controller) patch(ctx context.Context, n node, build func(*metav1.PartialObjectMetadata) []byte) error {
	api := c.resourceClient(n.res, n.obj.Namespace)
	body := build(n.obj)
	for attempt := 0; ; attempt++ {
		if body == nil {
			return nil // nothing to change
		}
		_, err := api.Patch(ctx, n.obj.Name, types.JSONPatchType, body, metav1.PatchOptions{})
		if err == nil || apierrors.IsNotFound(err) {
			return nil
		}
		// A failed test answers 422 (Invalid).
		if attempt > 0 || !(apierrors.IsInvalid(err) || apierrors.IsConflict(err)) {
			return err
		}
		live, gerr := api.Get(ctx, n.obj.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(gerr) {
			return nil
		}
		if gerr != nil {
			return gerr
		}
		if live.UID != n.obj.UID {
			return nil // replaced by another object of the same name
		}
		body = build(live)
	}
}

// resourceClient is the metadata client of one resource in namespace ns.
func (c *Controller) resourceClient(r apiResource, ns string) metadata.ResourceInterface {
	if r.Namespaced {
		return c.meta.Resource(r.GVR).Namespace(ns)
	}
	return c.meta.Resource(r.GVR)
}

// describe names an object for logs and errors.
func describe(n node) string {
	if n.obj.Namespace == "" {
		return fmt.Sprintf("%s %s", n.res.GVR.GroupResource(), n.obj.Name)
	}
	return fmt.Sprintf("%s %s/%s", n.res.GVR.GroupResource(), n.obj.Namespace, n.obj.Name)
}
