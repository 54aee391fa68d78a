// Package namespace finishes the deletion of namespaces, as Kubernetes'
// namespace controller does. Deleting a namespace only marks it: the API
// server sets its deletionTimestamp and phase Terminating, and keeps it
// while spec.finalizers holds "kubernetes". This controller then empties
// it of every namespaced object discovery knows of, waits until nothing
// is left (objects held by finalizers, pods waiting for their node to
// confirm their end), and removes the "kubernetes" finalizer through the
// namespaces/NAME/finalize subresource, after which the API server deletes
// the namespace.
//
//	Active ──delete──> Terminating ──pass: deletecollection every resource,──┐
//	                        ^          list what is left, write conditions   │
//	                        │                                                │
//	                        └── something left, or discovery/deletion failed ┤
//	                            (look again later, sooner when pods go)      │
//	                                                                         │
//	          gone <── API server <── finalize: drop "kubernetes" <── empty ─┘
//
// While work remains the namespace's status carries the conditions kubectl
// users know from Kubernetes: NamespaceDeletionDiscoveryFailure,
// NamespaceDeletionGroupVersionParsingFailure,
// NamespaceDeletionContentFailure, NamespaceContentRemaining and
// NamespaceFinalizersRemaining.
//
// Objects are read and deleted through the metadata API, so the controller
// needs no types for them and works for any resource the server serves.
package namespace

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/utils/clock"

	"github.com/skiff-sh/skiff/controllers/reconcile"
)

// Options shape the controller; the zero value works.
type Options struct {
	// Workers delete namespaces in parallel; default 5.
	Workers int
	// Clock is the time source; default the real clock.
	Clock clock.WithTicker
	// Log receives errors; default slog.Default().
	Log *slog.Logger
	// MinRecheck and MaxRecheck bound how long the controller waits before
	// another pass over a namespace that is not empty yet; the wait grows
	// with the time the deletion has taken. Defaults 200ms and 15s.
	MinRecheck, MaxRecheck time.Duration
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
	if o.MinRecheck <= 0 {
		o.MinRecheck = 200 * time.Millisecond
	}
	if o.MaxRecheck <= 0 {
		o.MaxRecheck = 15 * time.Second
	}
	return o
}

// Controller empties and finalizes terminating namespaces.
type Controller struct {
	client kubernetes.Interface
	meta   metadata.Interface
	opts   Options
	ctrl   *reconcile.Controller

	namespaces corelisters.NamespaceLister
	pods       corelisters.PodLister
}

// New builds the controller and registers its informers (Namespaces, Pods)
// with factory; start the factory after. meta reads and deletes the
// namespaces' content.
func New(client kubernetes.Interface, meta metadata.Interface, factory informers.SharedInformerFactory, opts Options) (*Controller, error) {
	if meta == nil {
		return nil, fmt.Errorf("namespace controller: a metadata client is required")
	}
	opts = opts.withDefaults()
	c := &Controller{client: client, meta: meta, opts: opts}
	ctrl, err := reconcile.New(reconcile.Options{
		Name: "namespace", Reconciler: c, Workers: opts.Workers, Clock: opts.Clock, Log: opts.Log,
	})
	if err != nil {
		return nil, err
	}
	c.ctrl = ctrl
	nsInf := factory.Core().V1().Namespaces()
	podInf := factory.Core().V1().Pods()
	c.namespaces, c.pods = nsInf.Lister(), podInf.Lister()
	if err := ctrl.Watch(nsInf.Informer(), c.terminatingKeys); err != nil {
		return nil, err
	}
	if err := ctrl.Watch(podInf.Informer(), c.lastPodKeys); err != nil {
		return nil, err
	}
	return c, nil
}

// Start runs the controller until ctx ends.
func (c *Controller) Start(ctx context.Context) error { return c.ctrl.Start(ctx) }

// terminatingKeys queues namespaces that are being deleted.
func (c *Controller) terminatingKeys(obj any) []string {
	ns, ok := reconcile.Untombstone(obj).(*corev1.Namespace)
	if !ok || ns.DeletionTimestamp == nil {
		return nil
	}
	return []string{ns.Name}
}

// lastPodKeys queues a terminating namespace when its last pod is gone:
// pods that wait for their node are what a namespace most often waits on.
func (c *Controller) lastPodKeys(obj any) []string {
	pod, ok := reconcile.Untombstone(obj).(*corev1.Pod)
	if !ok {
		return nil
	}
	ns, err := c.namespaces.Get(pod.Namespace)
	if err != nil || ns.DeletionTimestamp == nil {
		return nil
	}
	left, err := c.pods.Pods(pod.Namespace).List(labels.Everything())
	if err != nil || len(left) > 0 {
		return nil
	}
	return []string{pod.Namespace}
}

// Reconcile makes one deletion pass over a terminating namespace and
// finalizes it once it is empty.
func (c *Controller) Reconcile(ctx context.Context, key string) (reconcile.Result, error) {
	ns, err := c.namespaces.Get(key)
	if apierrors.IsNotFound(err) {
		return reconcile.Result{}, nil
	}
	if err != nil {
		return reconcile.Result{}, err
	}
	if ns.DeletionTimestamp == nil || !slices.Contains(ns.Spec.Finalizers, corev1.FinalizerKubernetes) {
		return reconcile.Result{}, nil
	}
	p := c.emptyNamespace(ctx, ns.Name)
	if ctx.Err() != nil {
		return reconcile.Result{}, ctx.Err()
	}
	now := c.opts.Clock.Now()
	if err := c.writeConditions(ctx, ns, conditions(p), now); err != nil {
		return reconcile.Result{}, err
	}
	if !p.done() {
		wait := recheckAfter(ns.DeletionTimestamp.Time, now, c.opts.MinRecheck, c.opts.MaxRecheck)
		c.opts.Log.Debug("namespace not empty yet", "namespace", ns.Name, "remaining", p.Remaining,
			"discoveryErr", p.DiscoveryErr, "deleteErrs", p.DeleteErrs, "recheck", wait)
		return reconcile.Result{RequeueAfter: wait}, nil
	}
	return reconcile.Result{}, c.finalize(ctx, ns.Name)
}

// writeConditions records the pass on the namespace's status when the
// conditions changed.
func (c *Controller) writeConditions(ctx context.Context, ns *corev1.Namespace, want []corev1.NamespaceCondition, now time.Time) error {
	merged := mergeConditions(ns.Status.Conditions, want, now)
	if conditionsEqual(merged, ns.Status.Conditions) {
		return nil
	}
	next := ns.DeepCopy()
	next.Status.Conditions = merged
	_, err := c.client.CoreV1().Namespaces().UpdateStatus(ctx, next, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("namespace %s: writing conditions: %w", ns.Name, err)
	}
	return nil
}

// finalize removes the "kubernetes" finalizer from the live namespace.
func (c *Controller) finalize(ctx context.Context, name string) error {
	ns, err := c.client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("namespace %s: %w", name, err)
	}
	if !slices.Contains(ns.Spec.Finalizers, corev1.FinalizerKubernetes) {
		return nil
	}
	ns.Spec.Finalizers = slices.DeleteFunc(ns.Spec.Finalizers, func(f corev1.FinalizerName) bool { return f == corev1.FinalizerKubernetes })
	_, err = c.client.CoreV1().Namespaces().Finalize(ctx, ns, metav1.UpdateOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("namespace %s: removing the %q finalizer: %w", name, corev1.FinalizerKubernetes, err)
	}
	return nil
}
