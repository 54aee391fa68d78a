package podgc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"

	"github.com/skiff-sh/skiff/controllers/reconcile"
)

// Options shape the pod garbage collector. The zero value is usable.
type Options struct {
	// Workers is how many keys are handled at once; default 2.
	Workers int
	// Clock is the time for the quarantine and the sweeps; default the
	// real clock.
	Clock clock.WithTicker
	// Log receives errors and what was collected; default slog.Default().
	Log *slog.Logger
	// TerminatedPodThreshold is how many terminated (Succeeded or Failed)
	// pods may exist before the oldest are deleted; default 12500, as
	// Kubernetes'. A negative value never deletes them.
	TerminatedPodThreshold int
	// Quarantine is how long a node must have been missing before the
	// pods bound to it are deleted; default 40s.
	Quarantine time.Duration
	// Period is how often the terminated pods are counted (and every
	// pod's node checked, in case an event was missed); default 20s.
	Period time.Duration
}

func (o Options) withDefaults() Options {
	if o.Workers <= 0 {
		o.Workers = 2
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.TerminatedPodThreshold == 0 {
		o.TerminatedPodThreshold = 12500
	}
	if o.Quarantine <= 0 {
		o.Quarantine = 40 * time.Second
	}
	if o.Period <= 0 {
		o.Period = 20 * time.Second
	}
	return o
}

// Queue keys. Node names and "namespace/name" never contain ':'.
const (
	sweepKey   = "sweep"
	nodePrefix = "node:"
	podPrefix  = "pod:"
)

// nodeIndex indexes pods by spec.nodeName.
const nodeIndex = "skiff.dev/podgc-node"

// Controller is the pod garbage collector. Build it with New, run it with
// Start.
type Controller struct {
	client kubernetes.Interface
	opts   Options
	log    *slog.Logger

	nodes    corelisters.NodeLister
	pods     corelisters.PodLister
	podIndex cache.Indexer
	ctrl     *reconcile.Controller

	mu      sync.Mutex
	missing map[string]time.Time // node name -> when first seen missing
}

// New builds the collector on the factory's Pod and Node informers; start
// the factory after New.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, opts Options) (*Controller, error) {
	opts = opts.withDefaults()
	c := &Controller{
		client:  client,
		opts:    opts,
		log:     opts.Log.With("controller", "podgc"),
		missing: map[string]time.Time{},
	}
	nodeInformer := factory.Core().V1().Nodes()
	podInformer := factory.Core().V1().Pods()
	c.nodes = nodeInformer.Lister()
	c.pods = podInformer.Lister()
	pi := podInformer.Informer()
	if err := pi.AddIndexers(cache.Indexers{nodeIndex: func(obj any) ([]string, error) {
		if p, ok := obj.(*corev1.Pod); ok && p.Spec.NodeName != "" {
			return []string{p.Spec.NodeName}, nil
		}
		return nil, nil
	}}); err != nil {
		return nil, fmt.Errorf("podgc: indexing pods: %w", err)
	}
	c.podIndex = pi.GetIndexer()
	ctrl, err := reconcile.New(reconcile.Options{
		Name: "podgc", Reconciler: c, Workers: opts.Workers, Clock: opts.Clock, Log: opts.Log,
	})
	if err != nil {
		return nil, err
	}
	c.ctrl = ctrl
	if err := ctrl.Watch(nodeInformer.Informer(), func(obj any) []string {
		if n, ok := reconcile.Untombstone(obj).(*corev1.Node); ok {
			return []string{nodePrefix + n.Name}
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if err := ctrl.Watch(pi, c.podKeys); err != nil {
		return nil, err
	}
	ctrl.Enqueue(sweepKey)
	return c, nil
}

// Start runs the collector until ctx ends.
func (c *Controller) Start(ctx context.Context) error { return c.ctrl.Start(ctx) }

// podKeys maps a pod event to the work it may need: its node's check
// when it is terminating or its node is unknown, its own when it is
// terminating unscheduled. Terminated pods wait for the sweep.
func (c *Controller) podKeys(obj any) []string {
	p, ok := reconcile.Untombstone(obj).(*corev1.Pod)
	if !ok {
		return nil
	}
	switch {
	case p.Spec.NodeName == "" && p.DeletionTimestamp != nil:
		return []string{podPrefix + reconcile.Key(p.Namespace, p.Name)}
	case p.Spec.NodeName == "":
		return nil
	case p.DeletionTimestamp != nil:
		return []string{nodePrefix + p.Spec.NodeName}
	}
	if _, err := c.nodes.Get(p.Spec.NodeName); apierrors.IsNotFound(err) {
		return []string{nodePrefix + p.Spec.NodeName}
	}
	return nil
}

// Reconcile handles one key: a node's pods, an unscheduled pod, or the
// periodic sweep.
func (c *Controller) Reconcile(ctx context.Context, key string) (reconcile.Result, error) {
	now := c.opts.Clock.Now()
	if name, ok := strings.CutPrefix(key, nodePrefix); ok {
		return c.reconcileNode(ctx, name, now)
	}
	if podKey, ok := strings.CutPrefix(key, podPrefix); ok {
		return reconcile.Result{}, c.reconcileUnscheduled(ctx, podKey)
	}
	if key == sweepKey {
		return c.sweep(ctx)
	}
	return reconcile.Result{}, reconcile.Terminal(fmt.Errorf("podgc: unknown key %q", key))
}

// reconcileNode deletes the pods of a node that is gone (after the
// quarantine, and only once the API confirms it), or the terminating pods
// of a node that is out of service.
func (c *Controller) reconcileNode(ctx context.Context, name string, now time.Time) (reconcile.Result, error) {
	objs, err := c.podIndex.ByIndex(nodeIndex, name)
	if err != nil {
		return reconcile.Result{}, fmt.Errorf("podgc: listing pods of node %s: %w", name, err)
	}
	pods := make([]*corev1.Pod, 0, len(objs))
	for _, o := range objs {
		pods = append(pods, o.(*corev1.Pod))
	}
	node, err := c.nodes.Get(name)
	switch {
	case err == nil:
		c.found(name)
		if !outOfService(node) {
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, c.forceDeleteAll(ctx, terminating(pods), nil, "node "+name+" is out of service")
	case !apierrors.IsNotFound(err):
		return reconcile.Result{}, fmt.Errorf("podgc: reading node %s: %w", name, err)
	case len(pods) == 0:
		c.found(name) // nothing left to collect
		return reconcile.Result{}, nil
	}
	if wait := orphanWait(c.missingSince(name, now), now, c.opts.Quarantine); wait > 0 {
		return reconcile.Result{RequeueAfter: wait}, nil
	}
	// The cache may lag behind a node that was just (re)created: ask.
	if _, err := c.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{}); err == nil {
		c.found(name)
		return reconcile.Result{}, nil
	} else if !apierrors.IsNotFound(err) {
		return reconcile.Result{}, fmt.Errorf("podgc: checking node %s: %w", name, err)
	}
	cond := deletionCondition("PodGC: node no longer exists", now)
	if err := c.forceDeleteAll(ctx, pods, &cond, "node "+name+" is gone"); err != nil {
		return reconcile.Result{}, err
	}
	return reconcile.Result{}, nil
}

// reconcileUnscheduled force-deletes a pod that is being deleted but was
// never bound: no node will ever confirm its deletion.
func (c *Controller) reconcileUnscheduled(ctx context.Context, podKey string) error {
	ns, name, err := reconcile.SplitKey(podKey)
	if err != nil {
		return reconcile.Terminal(err)
	}
	p, err := c.pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("podgc: reading pod %s: %w", podKey, err)
	}
	if p.Spec.NodeName != "" || p.DeletionTimestamp == nil {
		return nil
	}
	return c.forceDeleteAll(ctx, []*corev1.Pod{p}, nil, "it is terminating and unscheduled")
}

// sweep deletes terminated pods over the threshold and queues the nodes
// of pods whose node is unknown, and the unscheduled terminating pods;
// then it waits for the next period.
func (c *Controller) sweep(ctx context.Context) (reconcile.Result, error) {
	next := reconcile.Result{RequeueAfter: c.opts.Period}
	pods, err := c.pods.List(labels.Everything())
	if err != nil {
		return next, fmt.Errorf("podgc: listing pods: %w", err)
	}
	seen := map[string]bool{}
	for _, p := range pods {
		switch {
		case p.Spec.NodeName == "" && p.DeletionTimestamp != nil:
			c.ctrl.Enqueue(podPrefix + reconcile.Key(p.Namespace, p.Name))
		case p.Spec.NodeName != "" && !seen[p.Spec.NodeName]:
			seen[p.Spec.NodeName] = true
			if _, err := c.nodes.Get(p.Spec.NodeName); apierrors.IsNotFound(err) {
				c.ctrl.Enqueue(nodePrefix + p.Spec.NodeName)
			}
		}
	}
	victims := overThreshold(pods, c.opts.TerminatedPodThreshold)
	if len(victims) > 0 {
		c.log.Info("deleting terminated pods over the threshold", "count", len(victims), "threshold", c.opts.TerminatedPodThreshold)
	}
	return next, c.forceDeleteAll(ctx, victims, nil, "terminated pods exceed the threshold")
}

// deleters bounds the deletions one key makes at once.
const deleters = 16

// forceDeleteAll marks each pod Failed (with cond, if given) unless it has
// finished, then deletes it with no grace period.
func (c *Controller) forceDeleteAll(ctx context.Context, pods []*corev1.Pod, cond *corev1.PodCondition, why string) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		sem  = make(chan struct{}, deleters)
	)
	for _, p := range pods {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := c.forceDelete(ctx, p, cond); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				return
			}
			c.log.Info("deleted pod", "pod", reconcile.Key(p.Namespace, p.Name), "reason", why)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (c *Controller) forceDelete(ctx context.Context, p *corev1.Pod, cond *corev1.PodCondition) error {
	pods := c.client.CoreV1().Pods(p.Namespace)
	if !isTerminated(p) {
		status := map[string]any{"phase": corev1.PodFailed}
		if cond != nil {
			status["conditions"] = []corev1.PodCondition{*cond}
		}
		patch, err := json.Marshal(map[string]any{"status": status})
		if err != nil {
			return err
		}
		_, err = pods.Patch(ctx, p.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status")
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("podgc: marking pod %s/%s failed: %w", p.Namespace, p.Name, err)
		}
	}
	err := pods.Delete(ctx, p.Name, metav1.DeleteOptions{
		GracePeriodSeconds: new(int64),
		Preconditions:      &metav1.Preconditions{UID: &p.UID},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("podgc: deleting pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	return nil
}

// missingSince returns when the node was first seen missing, starting
// its quarantine now if it was not.
func (c *Controller) missingSince(name string, now time.Time) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	at, ok := c.missing[name]
	if !ok {
		c.missing[name] = now
		at = now
	}
	return at
}

// found ends a node's quarantine.
func (c *Controller) found(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.missing, name)
}
