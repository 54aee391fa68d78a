package cronjob

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	// The zone database, so spec.timeZone works on hosts without one.
	_ "time/tzdata"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"

	"github.com/skiff-sh/skiff/controllers/reconcile"
)

// Options shape the CronJob controller. The zero value is usable.
type Options struct {
	// Workers is how many CronJobs are reconciled at once; default 5.
	Workers int
	// Clock is the time for schedules and the queue's delays; default the
	// real clock. Tests drive it with k8s.io/utils/clock/testing.
	Clock clock.WithTicker
	// Recorder receives the Events; default one that writes them through
	// the API as "cronjob-controller", run by Start.
	Recorder record.EventRecorder
	// Log receives errors; default slog.Default().
	Log *slog.Logger
	// Location is the time zone of CronJobs without spec.timeZone; default
	// time.Local, as Kubernetes uses its controller manager's zone.
	Location *time.Location
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
	if o.Location == nil {
		o.Location = time.Local
	}
	return o
}

// ownerIndex indexes Jobs by the "namespace/name" of the CronJob
// controlling them.
const ownerIndex = "skiff.dev/cronjob-controller-owner"

var cronJobGroupKind = schema.GroupKind{Group: "batch", Kind: "CronJob"}

// Controller is the CronJob controller. Build it with New, run it with
// Start.
type Controller struct {
	client kubernetes.Interface
	opts   Options
	rec    record.EventRecorder
	ownRec *reconcile.EventRecorder

	cronJobs batchlisters.CronJobLister
	jobIndex cache.Indexer
	ctrl     *reconcile.Controller

	// written remembers the version of each CronJob the controller last
	// wrote, so a reconcile right after a write reads the CronJob from the
	// API rather than act on a cache that has not caught up (and start a
	// run twice, or call its own Job unexpected).
	mu      sync.Mutex
	written map[string]string
}

// New builds a CronJob controller on the factory's CronJob and Job
// informers; start the factory after New.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, opts Options) (*Controller, error) {
	opts = opts.withDefaults()
	c := &Controller{
		client:  client,
		opts:    opts,
		rec:     opts.Recorder,
		written: map[string]string{},
	}
	if c.rec == nil {
		c.ownRec = reconcile.NewEventRecorder(client, "cronjob-controller")
		c.rec = c.ownRec
	}
	cjInformer := factory.Batch().V1().CronJobs()
	jobInformer := factory.Batch().V1().Jobs().Informer()
	c.cronJobs = cjInformer.Lister()
	if err := jobInformer.AddIndexers(cache.Indexers{ownerIndex: func(obj any) ([]string, error) {
		j, ok := obj.(*batchv1.Job)
		if !ok {
			return nil, nil
		}
		return reconcile.OwnerKeys(j, cronJobGroupKind), nil
	}}); err != nil {
		return nil, fmt.Errorf("cronjob controller: indexing jobs: %w", err)
	}
	c.jobIndex = jobInformer.GetIndexer()
	ctrl, err := reconcile.New(reconcile.Options{
		Name: "cronjob", Reconciler: c, Workers: opts.Workers, Clock: opts.Clock, Log: opts.Log,
	})
	if err != nil {
		return nil, err
	}
	c.ctrl = ctrl
	if err := ctrl.Watch(cjInformer.Informer(), reconcile.ObjectKeys); err != nil {
		return nil, err
	}
	if err := ctrl.Watch(jobInformer, reconcile.MapToOwner(cronJobGroupKind)); err != nil {
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

// Reconcile converges one CronJob: it reads the CronJob and its Jobs,
// confirms with the API which active Jobs are really gone, lets decide
// choose, and acts.
func (c *Controller) Reconcile(ctx context.Context, key string) (reconcile.Result, error) {
	ns, name, err := reconcile.SplitKey(key)
	if err != nil {
		return reconcile.Result{}, reconcile.Terminal(err)
	}
	cj, err := c.cronJobs.CronJobs(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.forget(key)
		return reconcile.Result{}, nil
	}
	if err != nil {
		return reconcile.Result{}, fmt.Errorf("cronjob %s: reading cache: %w", key, err)
	}
	if cj, err = c.current(ctx, key, cj); err != nil || cj == nil {
		return reconcile.Result{}, err
	}
	jobs, err := c.jobsOf(key, cj)
	if err != nil {
		return reconcile.Result{}, err
	}
	gone, err := c.goneJobs(ctx, cj, jobs)
	if err != nil {
		return reconcile.Result{}, err
	}
	p := decide(world{cj: cj, jobs: jobs, gone: gone, now: c.opts.Clock.Now(), local: c.opts.Location})
	return c.enact(ctx, key, cj, p)
}

// jobsOf lists the Jobs the CronJob controls.
func (c *Controller) jobsOf(key string, cj *batchv1.CronJob) ([]*batchv1.Job, error) {
	objs, err := c.jobIndex.ByIndex(ownerIndex, key)
	if err != nil {
		return nil, fmt.Errorf("cronjob %s: listing jobs: %w", key, err)
	}
	var jobs []*batchv1.Job
	for _, o := range objs {
		if j := o.(*batchv1.Job); metav1.IsControlledBy(j, cj) {
			jobs = append(jobs, j)
		}
	}
	return jobs, nil
}

// goneJobs asks the API about Jobs in status.active that the cache does
// not have: only those really gone may leave the list.
func (c *Controller) goneJobs(ctx context.Context, cj *batchv1.CronJob, jobs []*batchv1.Job) (sets.Set[types.UID], error) {
	have := sets.New[types.UID]()
	for _, j := range jobs {
		have.Insert(j.UID)
	}
	gone := sets.New[types.UID]()
	for _, r := range cj.Status.Active {
		if have.Has(r.UID) {
			continue
		}
		j, err := c.client.BatchV1().Jobs(cmp.Or(r.Namespace, cj.Namespace)).Get(ctx, r.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			gone.Insert(r.UID)
		case err != nil:
			return nil, fmt.Errorf("cronjob %s/%s: reading job %s: %w", cj.Namespace, cj.Name, r.Name, err)
		case j.UID != r.UID:
			gone.Insert(r.UID) // replaced by a namesake
		}
	}
	return gone, nil
}

// enact carries out a plan.
func (c *Controller) enact(ctx context.Context, key string, cj *batchv1.CronJob, p plan) (reconcile.Result, error) {
	for _, e := range p.events {
		c.rec.Event(cj, e.kind, e.reason, e.message)
	}
	st := p.status
	var errs []error
	for _, r := range p.replace {
		if err := c.deleteJob(ctx, cj, cmp.Or(r.Namespace, cj.Namespace), r.Name, r.UID); err != nil {
			// Keep the old Job listed and try the whole run again.
			return reconcile.Result{}, err
		}
	}
	if p.create != nil {
		ref, err := c.createJob(ctx, cj, p.create)
		switch {
		case err != nil:
			st.LastScheduleTime = cj.Status.LastScheduleTime
			errs = append(errs, err)
		case ref != nil:
			if !containsUID(st.Active, ref.UID) {
				st.Active = append(st.Active, *ref)
			}
		default: // a namesake the CronJob does not control
			st.LastScheduleTime = cj.Status.LastScheduleTime
		}
	}
	for _, j := range p.prune {
		if err := c.deleteJob(ctx, cj, j.Namespace, j.Name, j.UID); err != nil {
			errs = append(errs, err)
		}
	}
	if !equality.Semantic.DeepEqual(cj.Status, st) {
		next := cj.DeepCopy()
		next.Status = st
		written, err := c.client.BatchV1().CronJobs(cj.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{})
		if err != nil {
			return reconcile.Result{}, errors.Join(append(errs, fmt.Errorf("cronjob %s: writing status: %w", key, err))...)
		}
		c.remember(key, written.ResourceVersion)
	}
	return reconcile.Result{RequeueAfter: p.requeueAfter}, errors.Join(errs...)
}

// createJob creates the run's Job and returns its reference; nil, nil if
// a Job of that name exists that the CronJob does not control.
func (c *Controller) createJob(ctx context.Context, cj *batchv1.CronJob, j *batchv1.Job) (*corev1.ObjectReference, error) {
	created, err := c.client.BatchV1().Jobs(cj.Namespace).Create(ctx, j, metav1.CreateOptions{})
	switch {
	case apierrors.IsAlreadyExists(err):
		// Created before, and the status write was lost; or someone
		// else's Job.
		existing, err := c.client.BatchV1().Jobs(cj.Namespace).Get(ctx, j.Name, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("cronjob %s/%s: reading job %s: %w", cj.Namespace, cj.Name, j.Name, err)
		}
		if !metav1.IsControlledBy(existing, cj) {
			return nil, nil
		}
		ref := jobRef(existing)
		return &ref, nil
	case apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause):
		return nil, fmt.Errorf("cronjob %s/%s: namespace terminating: %w", cj.Namespace, cj.Name, err)
	case err != nil:
		c.rec.Eventf(cj, corev1.EventTypeWarning, reconcile.ReasonFailedCreate, "Error creating job: %v", err)
		return nil, fmt.Errorf("cronjob %s/%s: creating job: %w", cj.Namespace, cj.Name, err)
	}
	c.rec.Eventf(cj, corev1.EventTypeNormal, reconcile.ReasonSuccessfulCreate, "Created job %s", created.Name)
	ref := jobRef(created)
	return &ref, nil
}

// deleteJob deletes one of the CronJob's Jobs in the background (the
// garbage collector takes its pods).
func (c *Controller) deleteJob(ctx context.Context, cj *batchv1.CronJob, ns, name string, uid types.UID) error {
	policy := metav1.DeletePropagationBackground
	opts := metav1.DeleteOptions{PropagationPolicy: &policy}
	if uid != "" {
		opts.Preconditions = &metav1.Preconditions{UID: &uid}
	}
	err := c.client.BatchV1().Jobs(ns).Delete(ctx, name, opts)
	switch {
	case apierrors.IsNotFound(err) || apierrors.IsConflict(err):
		return nil // gone already, or a namesake that is not ours
	case err != nil:
		c.rec.Eventf(cj, corev1.EventTypeWarning, reconcile.ReasonFailedDelete, "Error deleting job: %v", err)
		return fmt.Errorf("cronjob %s/%s: deleting job %s: %w", cj.Namespace, cj.Name, name, err)
	}
	c.rec.Eventf(cj, corev1.EventTypeNormal, reconcile.ReasonSuccessfulDelete, "Deleted job %s", name)
	return nil
}

// current returns the CronJob as the controller last knew it: the cached
// copy, unless the controller wrote a version the cache does not show
// yet; then the API's (nil if it is gone).
func (c *Controller) current(ctx context.Context, key string, cached *batchv1.CronJob) (*batchv1.CronJob, error) {
	c.mu.Lock()
	rv, ok := c.written[key]
	c.mu.Unlock()
	if !ok || rv == cached.ResourceVersion {
		return cached, nil
	}
	live, err := c.client.BatchV1().CronJobs(cached.Namespace).Get(ctx, cached.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("cronjob %s: reading: %w", key, err)
	}
	c.remember(key, live.ResourceVersion)
	return live, nil
}

func (c *Controller) remember(key, rv string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.written[key] = rv
}

func (c *Controller) forget(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.written, key)
}

func containsUID(refs []corev1.ObjectReference, uid types.UID) bool {
	for _, r := range refs {
		if r.UID == uid {
			return true
		}
	}
	return false
}
