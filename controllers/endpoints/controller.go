package endpoints

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"

	"github.com/skiff-sh/skiff/controllers/reconcile"
)

// Event reasons, as Kubernetes' endpoint controllers record them.
const (
	reasonFailedToCreateEndpoint       = "FailedToCreateEndpoint"
	reasonFailedToUpdateEndpoint       = "FailedToUpdateEndpoint"
	reasonFailedToUpdateEndpointSlices = "FailedToUpdateEndpointSlices"
)

// sliceIndex indexes this controller's slices by "namespace/service".
const sliceIndex = "skiff.sh/endpointslice-service"

// Options shape the controller; the zero value works.
type Options struct {
	// Workers reconcile Services in parallel; default 5.
	Workers int
	// Clock is the time source; default the real clock.
	Clock clock.WithTicker
	// Recorder receives events; default one writing Events through the API
	// as "endpoint-controller", run by Start.
	Recorder record.EventRecorder
	// Log receives errors; default slog.Default().
	Log *slog.Logger
	// MaxEndpointsPerSlice caps a slice; default 100, as Kubernetes.
	MaxEndpointsPerSlice int
	// MaxEndpoints caps the addresses of an Endpoints object; past it the
	// object is trimmed and annotated over capacity. Default 1000.
	MaxEndpoints int
	// WriteTTL is how long a write the informers have not shown yet holds
	// back further writes of its kind for the Service; default 30s.
	WriteTTL time.Duration
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
	if o.MaxEndpointsPerSlice <= 0 {
		o.MaxEndpointsPerSlice = 100
	}
	if o.MaxEndpoints <= 0 {
		o.MaxEndpoints = 1000
	}
	if o.WriteTTL <= 0 {
		o.WriteTTL = 30 * time.Second
	}
	return o
}

// Controller keeps the Endpoints and EndpointSlices of Services with
// selectors.
type Controller struct {
	client kubernetes.Interface
	opts   Options
	ctrl   *reconcile.Controller
	events *reconcile.EventRecorder // ours to run, when Options.Recorder was nil
	rec    record.EventRecorder
	writes *writes

	services  corelisters.ServiceLister
	pods      corelisters.PodLister
	nodes     corelisters.NodeLister
	endpoints corelisters.EndpointsLister
	slices    discoverylisters.EndpointSliceLister
	sliceIdx  cache.Indexer

	synced []cache.InformerSynced // handlers registered outside ctrl.Watch
}

// New builds the controller and registers its informers (Services, Pods,
// Nodes, Endpoints, EndpointSlices) with factory; start the factory after.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, opts Options) (*Controller, error) {
	opts = opts.withDefaults()
	c := &Controller{client: client, opts: opts, rec: opts.Recorder, writes: newWrites(opts.WriteTTL)}
	if c.rec == nil {
		c.events = reconcile.NewEventRecorder(client, "endpoint-controller")
		c.rec = c.events
	}
	ctrl, err := reconcile.New(reconcile.Options{
		Name: "endpoints", Reconciler: c, Workers: opts.Workers, Clock: opts.Clock, Log: opts.Log,
	})
	if err != nil {
		return nil, err
	}
	c.ctrl = ctrl

	svcInf := factory.Core().V1().Services()
	podInf := factory.Core().V1().Pods()
	nodeInf := factory.Core().V1().Nodes()
	epInf := factory.Core().V1().Endpoints()
	sliceInf := factory.Discovery().V1().EndpointSlices()
	c.services, c.pods, c.nodes = svcInf.Lister(), podInf.Lister(), nodeInf.Lister()
	c.endpoints, c.slices = epInf.Lister(), sliceInf.Lister()
	if err := sliceInf.Informer().AddIndexers(cache.Indexers{sliceIndex: sliceServiceIndex}); err != nil {
		return nil, fmt.Errorf("endpoints: indexing slices: %w", err)
	}
	c.sliceIdx = sliceInf.Informer().GetIndexer()

	if err := ctrl.Watch(svcInf.Informer(), reconcile.ObjectKeys); err != nil {
		return nil, err
	}
	handlers := []struct {
		inf cache.SharedIndexInformer
		h   cache.ResourceEventHandler
	}{
		{podInf.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { c.enqueuePodServices(obj, nil) },
			UpdateFunc: func(o, n any) { c.enqueuePodServices(n, o) },
			DeleteFunc: func(obj any) { c.enqueuePodServices(reconcile.Untombstone(obj), nil) },
		}},
		{nodeInf.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    func(any) { c.enqueueAll() },
			UpdateFunc: c.nodeUpdated,
		}},
		{epInf.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { c.endpointsEvent(obj, false) },
			UpdateFunc: func(_, n any) { c.endpointsEvent(n, false) },
			DeleteFunc: func(obj any) { c.endpointsEvent(reconcile.Untombstone(obj), true) },
		}},
		{sliceInf.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { c.sliceEvent(obj, false) },
			UpdateFunc: func(_, n any) { c.sliceEvent(n, false) },
			DeleteFunc: func(obj any) { c.sliceEvent(reconcile.Untombstone(obj), true) },
		}},
	}
	for _, h := range handlers {
		reg, err := h.inf.AddEventHandler(h.h)
		if err != nil {
			return nil, fmt.Errorf("endpoints: adding event handler: %w", err)
		}
		c.synced = append(c.synced, reg.HasSynced)
	}
	return c, nil
}

// Start runs the controller until ctx ends.
func (c *Controller) Start(ctx context.Context) error {
	var wg sync.WaitGroup
	if c.events != nil {
		wg.Add(1)
		go func() { defer wg.Done(); _ = c.events.Start(ctx) }()
	}
	defer wg.Wait()
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		return nil // stopped before the caches synced
	}
	c.sweepEndpoints()
	return c.ctrl.Start(ctx)
}

// sliceServiceIndex indexes slices this controller manages by the key of
// their Service.
func sliceServiceIndex(obj any) ([]string, error) {
	es, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok || es.Labels[discoveryv1.LabelManagedBy] != ManagedBy {
		return nil, nil
	}
	svc := es.Labels[discoveryv1.LabelServiceName]
	if svc == "" {
		return nil, nil
	}
	return []string{reconcile.Key(es.Namespace, svc)}, nil
}

// enqueuePodServices queues the Services selecting pod (or, for an update,
// the old pod), unless the update changed nothing endpoints show.
func (c *Controller) enqueuePodServices(obj, oldObj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	var old *corev1.Pod
	if oldObj != nil {
		if old, ok = oldObj.(*corev1.Pod); ok && !podChanged(old, pod) {
			return
		}
	}
	svcs, err := c.services.Services(pod.Namespace).List(labels.Everything())
	if err != nil {
		return
	}
	for _, svc := range svcs {
		if len(svc.Spec.Selector) == 0 {
			continue
		}
		sel := labels.SelectorFromValidatedSet(svc.Spec.Selector)
		if sel.Matches(labels.Set(pod.Labels)) || (old != nil && sel.Matches(labels.Set(old.Labels))) {
			c.ctrl.Enqueue(reconcile.Key(svc.Namespace, svc.Name))
		}
	}
}

// podChanged says whether an update changed anything a pod's endpoints
// show; status churn that does not (restart counts, other conditions)
// queues nothing.
func podChanged(old, pod *corev1.Pod) bool {
	return !maps.Equal(old.Labels, pod.Labels) ||
		!maps.Equal(podIPs(old), podIPs(pod)) ||
		podReady(old) != podReady(pod) ||
		(old.DeletionTimestamp == nil) != (pod.DeletionTimestamp == nil) ||
		old.Status.Phase != pod.Status.Phase ||
		old.Spec.NodeName != pod.Spec.NodeName ||
		old.Spec.Hostname != pod.Spec.Hostname ||
		old.Spec.Subdomain != pod.Spec.Subdomain
}

// nodeUpdated queues every Service when a node's zone changes.
func (c *Controller) nodeUpdated(oldObj, newObj any) {
	o, ok1 := oldObj.(*corev1.Node)
	n, ok2 := newObj.(*corev1.Node)
	if ok1 && ok2 && o.Labels[corev1.LabelTopologyZone] != n.Labels[corev1.LabelTopologyZone] {
		c.enqueueAll()
	}
}

// enqueueAll queues every Service with a selector.
func (c *Controller) enqueueAll() {
	svcs, err := c.services.List(labels.Everything())
	if err != nil {
		return
	}
	for _, svc := range svcs {
		if len(svc.Spec.Selector) > 0 {
			c.ctrl.Enqueue(reconcile.Key(svc.Namespace, svc.Name))
		}
	}
}

// endpointsEvent settles the controller's own Endpoints writes and queues
// the Service again when its Endpoints were deleted (to put them back) or
// when a pending write of them became visible. Other changes of an
// Endpoints object queue nothing: a user's Endpoints created just before
// its selector-less Service must not be taken for a leftover.
func (c *Controller) endpointsEvent(obj any, gone bool) {
	ep, ok := obj.(*corev1.Endpoints)
	if !ok {
		return
	}
	key := reconcile.Key(ep.Namespace, ep.Name)
	if c.writes.observe(key, "endpoints", ep.ResourceVersion, gone) || gone {
		c.ctrl.Enqueue(key)
	}
}

// sliceEvent settles the controller's own slice writes and queues the
// Service of any slice it manages.
func (c *Controller) sliceEvent(obj any, gone bool) {
	es, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return
	}
	keys, _ := sliceServiceIndex(es)
	for _, key := range keys {
		c.writes.observe(key, "slice/"+es.Name, es.ResourceVersion, gone)
		c.ctrl.Enqueue(key)
	}
}

// sweepEndpoints queues the Services of all Endpoints once, at start, so
// that the Endpoints of Services deleted while the controller was down
// are removed (Endpoints used for leader election are not Services').
func (c *Controller) sweepEndpoints() {
	eps, err := c.endpoints.List(labels.Everything())
	if err != nil {
		return
	}
	for _, ep := range eps {
		if _, ok := ep.Annotations[resourcelock.LeaderElectionRecordAnnotationKey]; ok {
			continue
		}
		c.ctrl.Enqueue(reconcile.Key(ep.Namespace, ep.Name))
	}
}

// zoneOf is a node's zone label, or "".
func (c *Controller) zoneOf(node string) string {
	n, err := c.nodes.Get(node)
	if err != nil {
		return ""
	}
	return n.Labels[corev1.LabelTopologyZone]
}

// Reconcile brings one Service's EndpointSlices and Endpoints in line with
// its pods: slices first, since the service proxy reads them.
func (c *Controller) Reconcile(ctx context.Context, key string) (reconcile.Result, error) {
	ns, name, err := reconcile.SplitKey(key)
	if err != nil {
		return reconcile.Result{}, reconcile.Terminal(err)
	}
	now := c.opts.Clock.Now()
	svc, err := c.services.Services(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return reconcile.Result{}, c.cleanUp(ctx, key, ns, name, now)
	}
	if err != nil {
		return reconcile.Result{}, err
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName || len(svc.Spec.Selector) == 0 {
		// Endpoints of such Services are the user's business.
		return reconcile.Result{}, nil
	}
	pods, err := c.pods.Pods(ns).List(labels.SelectorFromValidatedSet(svc.Spec.Selector))
	if err != nil {
		return reconcile.Result{}, err
	}
	ms := members(svc, pods, c.zoneOf)
	var res reconcile.Result
	var errs []error
	if c.writes.pending(key, "slice/", now) {
		res.RequeueAfter = c.opts.WriteTTL
	} else if err := c.syncSlices(ctx, key, svc, ms, now); err != nil {
		errs = append(errs, err)
	}
	if c.writes.pending(key, "endpoints", now) {
		res.RequeueAfter = c.opts.WriteTTL
	} else if err := c.syncEndpoints(ctx, key, svc, ms, now); err != nil {
		errs = append(errs, err)
	}
	return res, errors.Join(errs...)
}

// managedSlices are the live slices the controller manages for a Service.
func (c *Controller) managedSlices(key string) []*discoveryv1.EndpointSlice {
	objs, err := c.sliceIdx.ByIndex(sliceIndex, key)
	if err != nil {
		return nil
	}
	out := make([]*discoveryv1.EndpointSlice, 0, len(objs))
	for _, o := range objs {
		if es, ok := o.(*discoveryv1.EndpointSlice); ok && es.DeletionTimestamp == nil {
			out = append(out, es)
		}
	}
	return out
}

// syncSlices writes the slice plan of a Service.
func (c *Controller) syncSlices(ctx context.Context, key string, svc *corev1.Service, ms []member, now time.Time) error {
	plan := planSlices(svc, c.managedSlices(key), sliceEndpoints(svc, ms), c.opts.MaxEndpointsPerSlice)
	if plan.empty() {
		return nil
	}
	api := c.client.DiscoveryV1().EndpointSlices(svc.Namespace)
	fail := func(err error) error {
		if !apierrors.IsConflict(err) {
			c.rec.Eventf(svc, corev1.EventTypeWarning, reasonFailedToUpdateEndpointSlices, "Error updating Endpoint Slices for Service %s/%s: %v", svc.Namespace, svc.Name, err)
		}
		return fmt.Errorf("service %s: %w", key, err)
	}
	for _, es := range plan.Create {
		created, err := api.Create(ctx, es, metav1.CreateOptions{})
		if apierrors.IsForbidden(err) || apierrors.IsNotFound(err) {
			return nil // the namespace is going away
		}
		if err != nil {
			return fail(fmt.Errorf("creating endpointslice: %w", err))
		}
		c.wroteSlice(key, created, now)
	}
	for _, es := range plan.Update {
		updated, err := api.Update(ctx, es, metav1.UpdateOptions{})
		if apierrors.IsNotFound(err) {
			continue // deleted under us; its event queues the Service again
		}
		if err != nil {
			return fail(fmt.Errorf("updating endpointslice %s: %w", es.Name, err))
		}
		c.wroteSlice(key, updated, now)
	}
	for _, es := range plan.Delete {
		uid := es.UID
		err := api.Delete(ctx, es.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		if err != nil && !apierrors.IsNotFound(err) {
			return fail(fmt.Errorf("deleting endpointslice %s: %w", es.Name, err))
		}
		c.deletedSlice(key, es, now)
	}
	return nil
}

// wroteSlice records a slice write, settled at once if the informer
// already delivered it (its event can beat the API's response).
func (c *Controller) wroteSlice(key string, es *discoveryv1.EndpointSlice, now time.Time) {
	obj := "slice/" + es.Name
	c.writes.wrote(key, obj, es.ResourceVersion, now)
	if seen, err := c.slices.EndpointSlices(es.Namespace).Get(es.Name); err == nil {
		c.writes.observe(key, obj, seen.ResourceVersion, false)
	}
}

// deletedSlice records a slice deletion, settled at once if the informer
// already shows the slice gone.
func (c *Controller) deletedSlice(key string, es *discoveryv1.EndpointSlice, now time.Time) {
	obj := "slice/" + es.Name
	c.writes.deleted(key, obj, now)
	if _, err := c.slices.EndpointSlices(es.Namespace).Get(es.Name); apierrors.IsNotFound(err) {
		c.writes.observe(key, obj, "", true)
	}
}

// wroteEndpoints and deletedEndpoints do the same for Endpoints.
func (c *Controller) wroteEndpoints(key string, ep *corev1.Endpoints, now time.Time) {
	c.writes.wrote(key, "endpoints", ep.ResourceVersion, now)
	if seen, err := c.endpoints.Endpoints(ep.Namespace).Get(ep.Name); err == nil {
		c.writes.observe(key, "endpoints", seen.ResourceVersion, false)
	}
}

func (c *Controller) deletedEndpoints(key, ns, name string, now time.Time) {
	c.writes.deleted(key, "endpoints", now)
	if _, err := c.endpoints.Endpoints(ns).Get(name); apierrors.IsNotFound(err) {
		c.writes.observe(key, "endpoints", "", true)
	}
}

// syncEndpoints writes the Endpoints object of a Service.
func (c *Controller) syncEndpoints(ctx context.Context, key string, svc *corev1.Service, ms []member, now time.Time) error {
	cur, err := c.endpoints.Endpoints(svc.Namespace).Get(svc.Name)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	next := desiredEndpoints(svc, cur, subsets(svc, ms), c.opts.MaxEndpoints)
	if next == nil {
		return nil
	}
	api := c.client.CoreV1().Endpoints(svc.Namespace)
	var written *corev1.Endpoints
	if cur == nil {
		written, err = api.Create(ctx, next, metav1.CreateOptions{})
		if apierrors.IsForbidden(err) || apierrors.IsNotFound(err) {
			return nil // the namespace is going away
		}
		if err != nil {
			if !apierrors.IsAlreadyExists(err) {
				c.rec.Eventf(svc, corev1.EventTypeWarning, reasonFailedToCreateEndpoint, "Failed to create endpoint for service %s/%s: %v", svc.Namespace, svc.Name, err)
			}
			return fmt.Errorf("service %s: creating endpoints: %w", key, err)
		}
	} else {
		written, err = api.Update(ctx, next, metav1.UpdateOptions{})
		if err != nil {
			if !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
				c.rec.Eventf(svc, corev1.EventTypeWarning, reasonFailedToUpdateEndpoint, "Failed to update endpoint %s/%s: %v", svc.Namespace, svc.Name, err)
			}
			return fmt.Errorf("service %s: updating endpoints: %w", key, err)
		}
	}
	c.wroteEndpoints(key, written, now)
	return nil
}

// cleanUp removes what the controller made for a Service that is gone:
// its managed slices (the garbage collector would, later) and its
// Endpoints object.
func (c *Controller) cleanUp(ctx context.Context, key, ns, name string, now time.Time) error {
	for _, es := range c.managedSlices(key) {
		uid := es.UID
		err := c.client.DiscoveryV1().EndpointSlices(ns).Delete(ctx, es.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return fmt.Errorf("service %s gone: deleting endpointslice %s: %w", key, es.Name, err)
		}
		c.deletedSlice(key, es, now)
	}
	ep, err := c.endpoints.Endpoints(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, ok := ep.Annotations[resourcelock.LeaderElectionRecordAnnotationKey]; ok {
		return nil
	}
	uid := ep.UID
	err = c.client.CoreV1().Endpoints(ns).Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("service %s gone: deleting endpoints: %w", key, err)
	}
	c.deletedEndpoints(key, ns, name, now)
	return nil
}
