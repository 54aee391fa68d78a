package job

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"

	"github.com/skiff-sh/skiff/controllers/reconcile"
)

// Options shape the Job controller. The zero value is usable.
type Options struct {
	// Workers is how many Jobs are reconciled at once; default 5.
	Workers int
	// Clock is the time for decisions (backoff, deadlines, TTL) and the
	// queue's delays; default the real clock.
	Clock clock.WithTicker
	// Recorder receives the Events; default one that writes them through
	// the API as "job-controller", run by Start.
	Recorder record.EventRecorder
	// Log receives errors; default slog.Default().
	Log *slog.Logger
	// BackoffBase is the wait after the first failure before pods are
	// created again, doubled per further failure; default 10s.
	BackoffBase time.Duration
	// BackoffMax caps that wait; default 6m.
	BackoffMax time.Duration
	// ExpectationsTTL is how long an unobserved creation, deletion or
	// finalizer removal holds a Job back; default 5m.
	ExpectationsTTL time.Duration
}

func (o Options) withDefaults() Options {
	if o.Workers <= 0 {
		o.Workers = 5
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.BackoffBase <= 0 {
		o.BackoffBase = 10 * time.Second
	}
	if o.BackoffMax <= 0 {
		o.BackoffMax = 6 * time.Minute
	}
	if o.ExpectationsTTL <= 0 {
		o.ExpectationsTTL = reconcile.DefaultExpectationsTTL
	}
	return o
}

// ownerIndex indexes pods by the "namespace/name" of the Job controlling
// them.
const ownerIndex = "skiff.dev/job-controller-owner"

// orphanPrefix starts the queue keys of pods that hold the tracking
// finalizer but have no Job to count them. Namespaces cannot contain ':',
// so these keys never collide with a Job's.
const orphanPrefix = "pod:"

var jobGroupKind = schema.GroupKind{Group: "batch", Kind: "Job"}

// Controller is the Job controller. Build it with New, run it with Start.
type Controller struct {
	client kubernetes.Interface
	opts   Options
	log    *slog.Logger
	rec    record.EventRecorder
	ownRec *reconcile.EventRecorder // set when the controller runs its own

	jobs     batchlisters.JobLister
	pods     corelisters.PodLister
	podIndex cache.Indexer

	ctrl         *reconcile.Controller
	exp          *reconcile.Expectations
	unfinalizing *unfinalizing
	versions     *versions
	backoffs     *backoffs
}

// New builds a Job controller on the factory's Job and Pod informers;
// start the factory after New (and after building the other controllers
// that share it).
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, opts Options) (*Controller, error) {
	opts = opts.withDefaults()
	c := &Controller{
		client:       client,
		opts:         opts,
		log:          opts.Log.With("controller", "job"),
		rec:          opts.Recorder,
		exp:          reconcile.NewExpectations(opts.ExpectationsTTL),
		unfinalizing: newUnfinalizing(opts.ExpectationsTTL),
		versions:     newVersions(),
		backoffs:     newBackoffs(),
	}
	if c.rec == nil {
		c.ownRec = reconcile.NewEventRecorder(client, "job-controller")
		c.rec = c.ownRec
	}
	jobInformer := factory.Batch().V1().Jobs()
	podInformer := factory.Core().V1().Pods()
	c.jobs = jobInformer.Lister()
	c.pods = podInformer.Lister()
	pi := podInformer.Informer()
	if err := pi.AddIndexers(cache.Indexers{ownerIndex: indexByOwner}); err != nil {
		return nil, fmt.Errorf("job controller: indexing pods: %w", err)
	}
	c.podIndex = pi.GetIndexer()

	ctrl, err := reconcile.New(reconcile.Options{
		Name: "job", Reconciler: c, Workers: opts.Workers, Clock: opts.Clock, Log: opts.Log,
	})
	if err != nil {
		return nil, err
	}
	c.ctrl = ctrl
	if _, err := pi.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.podAdded,
		UpdateFunc: func(_, obj any) { c.podUpdated(obj) },
		DeleteFunc: c.podDeleted,
	}); err != nil {
		return nil, fmt.Errorf("job controller: watching pods: %w", err)
	}
	if err := ctrl.Watch(jobInformer.Informer(), reconcile.ObjectKeys); err != nil {
		return nil, err
	}
	if err := ctrl.Watch(pi, c.podKeys); err != nil {
		return nil, err
	}
	return c, nil
}

// Start runs the controller (and its event recorder, if it made one)
// until ctx ends.
func (c *Controller) Start(ctx context.Context) error {
	if c.ownRec != nil {
		go func() { _ = c.ownRec.Start(ctx) }()
	}
	return c.ctrl.Start(ctx)
}

// indexByOwner is the ownerIndex function.
func indexByOwner(obj any) ([]string, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return nil, nil
	}
	return reconcile.OwnerKeys(pod, jobGroupKind), nil
}

// podKeys maps a pod event to the Jobs that care: its controlling Job;
// for an orphan, every Job whose selector matches it (it may be adopted)
// and, if it still holds the tracking finalizer, its own orphan key.
func (c *Controller) podKeys(obj any) []string {
	pod, ok := reconcile.Untombstone(obj).(*corev1.Pod)
	if !ok {
		return nil
	}
	if keys := reconcile.OwnerKeys(pod, jobGroupKind); len(keys) > 0 {
		return keys
	}
	var keys []string
	if hasTrackingFinalizer(pod) {
		keys = append(keys, orphanPrefix+reconcile.Key(pod.Namespace, pod.Name))
	}
	if metav1.GetControllerOf(pod) != nil || pod.DeletionTimestamp != nil {
		return keys
	}
	jobs, err := c.jobs.Jobs(pod.Namespace).List(labels.Everything())
	if err != nil {
		return keys
	}
	for _, j := range jobs {
		sel, err := metav1.LabelSelectorAsSelector(j.Spec.Selector)
		if err == nil && j.Spec.Selector != nil && !sel.Empty() && sel.Matches(labels.Set(pod.Labels)) {
			keys = append(keys, reconcile.Key(j.Namespace, j.Name))
		}
	}
	return keys
}

// The pod handlers settle expectations; podKeys queues the Jobs.

func (c *Controller) podAdded(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	for _, key := range reconcile.OwnerKeys(pod, jobGroupKind) {
		c.exp.CreationObserved(key)
		if pod.DeletionTimestamp != nil {
			c.exp.DeletionObserved(key, string(pod.UID))
		}
		if !hasTrackingFinalizer(pod) {
			c.unfinalizing.observed(key, pod.UID)
		}
	}
}

func (c *Controller) podUpdated(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	for _, key := range reconcile.OwnerKeys(pod, jobGroupKind) {
		if pod.DeletionTimestamp != nil {
			c.exp.DeletionObserved(key, string(pod.UID))
		}
		if !hasTrackingFinalizer(pod) {
			c.unfinalizing.observed(key, pod.UID)
		}
	}
}

func (c *Controller) podDeleted(obj any) {
	pod, ok := reconcile.Untombstone(obj).(*corev1.Pod)
	if !ok {
		return
	}
	for _, key := range reconcile.OwnerKeys(pod, jobGroupKind) {
		c.exp.DeletionObserved(key, string(pod.UID))
		c.unfinalizing.observed(key, pod.UID)
	}
}

// Reconcile converges one Job (or releases one orphaned pod).
func (c *Controller) Reconcile(ctx context.Context, key string) (reconcile.Result, error) {
	if podKey, ok := strings.CutPrefix(key, orphanPrefix); ok {
		return reconcile.Result{}, c.releaseOrphan(ctx, podKey)
	}
	ns, name, err := reconcile.SplitKey(key)
	if err != nil {
		return reconcile.Result{}, reconcile.Terminal(err)
	}
	job, err := c.jobs.Jobs(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return reconcile.Result{}, c.gone(ctx, key)
	}
	if err != nil {
		return reconcile.Result{}, fmt.Errorf("job %s: reading cache: %w", key, err)
	}
	if job, err = c.current(ctx, key, job); err != nil {
		return reconcile.Result{}, err
	}
	if job == nil {
		return reconcile.Result{}, c.gone(ctx, key)
	}
	now := c.opts.Clock.Now()
	// Another controller may run the Job (spec.managedBy); its TTL is
	// still ours to enforce, as Kubernetes' TTL controller does.
	external := job.Spec.ManagedBy != nil && *job.Spec.ManagedBy != batchv1.JobControllerName
	if finished(job) != nil {
		return c.finishedJob(ctx, key, job, now, external)
	}
	if external {
		return reconcile.Result{}, nil
	}
	if mode := job.Spec.CompletionMode; mode != nil && *mode != batchv1.NonIndexedCompletion && *mode != batchv1.IndexedCompletion {
		c.rec.Event(job, corev1.EventTypeWarning, "UnknownCompletionMode", "Skipped Job sync because completion mode is unknown")
		return reconcile.Result{}, nil
	}
	// Expectations first: a pod that lands in the cache after this check
	// only makes the Job wait for the next reconcile.
	settled := c.exp.Satisfied(key, now)
	pods, err := c.claimPods(ctx, key, job)
	if err != nil {
		return reconcile.Result{}, err
	}
	w := world{
		job: job, pods: pods, now: now, settled: settled,
		unfinalizing: c.unfinalizing.pending(key, now),
		backoff:      c.backoffs.get(key),
		backoffBase:  c.opts.BackoffBase, backoffMax: c.opts.BackoffMax,
	}
	return c.enact(ctx, key, w, decide(w))
}

// current returns the newest state of the Job the controller knows:
// the cached one, unless the controller has since seen another version
// through the API (nil if the Job is gone).
func (c *Controller) current(ctx context.Context, key string, cached *batchv1.Job) (*batchv1.Job, error) {
	if !c.versions.stale(key, cached.UID, cached.ResourceVersion) {
		return cached, nil
	}
	live, err := c.client.BatchV1().Jobs(cached.Namespace).Get(ctx, cached.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("job %s: reading: %w", key, err)
	case live.UID != cached.UID:
		return cached, nil // replaced; the cache will catch up
	}
	c.versions.remember(key, live.UID, live.ResourceVersion)
	return live, nil
}

// gone forgets a deleted Job and releases the pods it left holding the
// tracking finalizer.
func (c *Controller) gone(ctx context.Context, key string) error {
	c.exp.Forget(key)
	c.unfinalizing.forget(key)
	c.versions.forget(key)
	c.backoffs.forget(key)
	objs, err := c.podIndex.ByIndex(ownerIndex, key)
	if err != nil {
		return fmt.Errorf("job %s: listing pods: %w", key, err)
	}
	var errs []error
	for _, o := range objs {
		if pod := o.(*corev1.Pod); hasTrackingFinalizer(pod) {
			errs = append(errs, c.removeFinalizer(ctx, pod))
		}
	}
	return errors.Join(errs...)
}

// releaseOrphan removes the tracking finalizer from a pod that no Job
// controls.
func (c *Controller) releaseOrphan(ctx context.Context, podKey string) error {
	ns, name, err := reconcile.SplitKey(podKey)
	if err != nil {
		return reconcile.Terminal(err)
	}
	pod, err := c.pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("pod %s: reading cache: %w", podKey, err)
	}
	if !hasTrackingFinalizer(pod) || len(reconcile.OwnerKeys(pod, jobGroupKind)) > 0 {
		return nil
	}
	return c.removeFinalizer(ctx, pod)
}

// finishedJob looks after a Job that has finished: pods left holding the
// finalizer are released (unless another controller runs the Job), and a
// Job with ttlSecondsAfterFinished is deleted once that has passed.
func (c *Controller) finishedJob(ctx context.Context, key string, job *batchv1.Job, now time.Time, external bool) (reconcile.Result, error) {
	c.backoffs.forget(key)
	objs, err := c.podIndex.ByIndex(ownerIndex, key)
	if err != nil {
		return reconcile.Result{}, fmt.Errorf("job %s: listing pods: %w", key, err)
	}
	for _, o := range objs {
		if pod := o.(*corev1.Pod); !external && hasTrackingFinalizer(pod) {
			if err := c.removeFinalizer(ctx, pod); err != nil {
				return reconcile.Result{}, err
			}
		}
	}
	at, ok := ttlExpiry(job)
	if !ok || job.DeletionTimestamp != nil {
		return reconcile.Result{}, nil
	}
	if now.Before(at) {
		return reconcile.Result{RequeueAfter: at.Sub(now)}, nil
	}
	return c.expire(ctx, key, job, now)
}

// expire deletes a Job whose TTL has passed, after checking the Job as it
// is now in the API (the TTL may have been changed), with preconditions
// so that a Job changed in between is left alone.
func (c *Controller) expire(ctx context.Context, key string, job *batchv1.Job, now time.Time) (reconcile.Result, error) {
	live, err := c.client.BatchV1().Jobs(job.Namespace).Get(ctx, job.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return reconcile.Result{}, nil
	}
	if err != nil {
		return reconcile.Result{}, fmt.Errorf("job %s: reading: %w", key, err)
	}
	at, ok := ttlExpiry(live)
	if !ok || live.DeletionTimestamp != nil {
		return reconcile.Result{}, nil
	}
	if now.Before(at) {
		return reconcile.Result{RequeueAfter: at.Sub(now)}, nil
	}
	policy := metav1.DeletePropagationBackground
	err = c.client.BatchV1().Jobs(live.Namespace).Delete(ctx, live.Name, metav1.DeleteOptions{
		PropagationPolicy: &policy,
		Preconditions:     &metav1.Preconditions{UID: &live.UID, ResourceVersion: &live.ResourceVersion},
	})
	if err != nil && !apierrors.IsNotFound(err) {
		return reconcile.Result{}, fmt.Errorf("job %s: deleting after its TTL: %w", key, err)
	}
	c.log.Info("deleted finished job after its TTL", "job", key)
	return reconcile.Result{}, nil
}
