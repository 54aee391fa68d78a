package nodelifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	coordlisters "k8s.io/client-go/listers/coordination/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"

	"github.com/skiff-sh/skiff/controllers/reconcile"
)

// leaseNamespace holds the node Leases.
const leaseNamespace = corev1.NamespaceNodeLease

// podsByNode is the name of the pod index this package adds.
const podsByNode = "skiff.nodelifecycle/node"

// Event reasons.
const (
	reasonNodeNotReady        = "NodeNotReady"
	reasonTaintManagerEvicted = "TaintManagerEviction"
)

// Options shape the controller; the zero value gives Kubernetes' defaults.
type Options struct {
	// Workers reconcile nodes in parallel (each of the two loops); default 4.
	Workers int
	// Clock is the time source; default the real clock.
	Clock clock.WithTicker
	// Recorder receives events; default one writing Events through the
	// API as "node-controller", run by Start.
	Recorder record.EventRecorder
	// Log receives errors; default slog.Default().
	Log *slog.Logger

	// GracePeriod is how long a node may stay silent (no Lease renewal,
	// no status) before it is Unknown; default 40s.
	GracePeriod time.Duration
	// StartupGracePeriod replaces it for a node that never reported
	// Ready; default 60s.
	StartupGracePeriod time.Duration
	// MonitorPeriod is how often zone states and eviction rates are
	// recomputed; default 5s.
	MonitorPeriod time.Duration
	// EvictionRate is how many nodes per second, per zone, may be given a
	// NoExecute taint (and so have their pods evicted); default 0.1.
	EvictionRate float64
	// SecondaryEvictionRate applies in a zone with at least
	// UnhealthyZoneThreshold of its nodes not ready (and more than
	// LargeClusterThreshold nodes; smaller zones stop); default 0.01.
	SecondaryEvictionRate float64
	// UnhealthyZoneThreshold: default 0.55.
	UnhealthyZoneThreshold float64
	// LargeClusterThreshold: default 50.
	LargeClusterThreshold int
}

func (o Options) withDefaults() Options {
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.GracePeriod <= 0 {
		o.GracePeriod = 40 * time.Second
	}
	if o.StartupGracePeriod <= 0 {
		o.StartupGracePeriod = 60 * time.Second
	}
	if o.MonitorPeriod <= 0 {
		o.MonitorPeriod = 5 * time.Second
	}
	if o.EvictionRate <= 0 {
		o.EvictionRate = 0.1
	}
	if o.SecondaryEvictionRate <= 0 {
		o.SecondaryEvictionRate = 0.01
	}
	if o.UnhealthyZoneThreshold <= 0 {
		o.UnhealthyZoneThreshold = 0.55
	}
	if o.LargeClusterThreshold <= 0 {
		o.LargeClusterThreshold = 50
	}
	return o
}

// Controller watches node health and runs taint-based eviction.
type Controller struct {
	client kubernetes.Interface
	opts   Options
	events *reconcile.EventRecorder
	rec    record.EventRecorder

	health  *reconcile.Controller // key: node name; conditions, taints, pod readiness
	evictor *reconcile.Controller // key: node name; pods under NoExecute taints

	nodes    corelisters.NodeLister
	leases   coordlisters.LeaseLister
	podIndex cache.Indexer

	mu      sync.Mutex
	probes  map[string]*probe
	buckets map[string]*bucket // per zone
	halted  bool
	seen    map[string]time.Time // node/key of a NoExecute taint without timeAdded -> first seen
}

// New builds the controller and registers its informers (Nodes, Leases,
// Pods, with a pod index by node) with factory; start the factory after.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, opts Options) (*Controller, error) {
	opts = opts.withDefaults()
	c := &Controller{
		client: client, opts: opts, rec: opts.Recorder,
		probes: map[string]*probe{}, buckets: map[string]*bucket{}, seen: map[string]time.Time{},
	}
	if c.rec == nil {
		c.events = reconcile.NewEventRecorder(client, "node-controller")
		c.rec = c.events
	}
	var err error
	c.health, err = reconcile.New(reconcile.Options{
		Name: "nodelifecycle", Reconciler: reconcile.Func(c.reconcileHealth), Workers: opts.Workers, Clock: opts.Clock, Log: opts.Log,
	})
	if err != nil {
		return nil, err
	}
	c.evictor, err = reconcile.New(reconcile.Options{
		Name: "taint-eviction", Reconciler: reconcile.Func(c.reconcileEvictions), Workers: opts.Workers, Clock: opts.Clock, Log: opts.Log,
	})
	if err != nil {
		return nil, err
	}
	nodeInf := factory.Core().V1().Nodes()
	leaseInf := factory.Coordination().V1().Leases()
	podInf := factory.Core().V1().Pods()
	c.nodes, c.leases = nodeInf.Lister(), leaseInf.Lister()
	if err := podInf.Informer().AddIndexers(cache.Indexers{podsByNode: indexByNode}); err != nil {
		return nil, fmt.Errorf("nodelifecycle: pod index: %w", err)
	}
	c.podIndex = podInf.Informer().GetIndexer()

	nodeKeys := func(obj any) []string {
		if n, ok := reconcile.Untombstone(obj).(*corev1.Node); ok {
			return []string{n.Name}
		}
		return nil
	}
	leaseKeys := func(obj any) []string {
		if l, ok := reconcile.Untombstone(obj).(*coordinationv1.Lease); ok && l.Namespace == leaseNamespace {
			return []string{l.Name}
		}
		return nil
	}
	for _, w := range []struct {
		ctrl *reconcile.Controller
		inf  cache.SharedIndexInformer
		fn   reconcile.KeyFunc
	}{
		{c.health, nodeInf.Informer(), nodeKeys},
		{c.health, leaseInf.Informer(), leaseKeys},
		{c.health, podInf.Informer(), c.nodeOfPodIf(func(n *corev1.Node) bool { return readyStatus(n) == corev1.ConditionUnknown })},
		{c.evictor, nodeInf.Informer(), nodeKeys},
		{c.evictor, podInf.Informer(), c.nodeOfPodIf(func(n *corev1.Node) bool { return len(noExecuteTaints(n)) > 0 })},
	} {
		if err := w.ctrl.Watch(w.inf, w.fn); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func indexByNode(obj any) ([]string, error) {
	if p, ok := obj.(*corev1.Pod); ok && p.Spec.NodeName != "" {
		return []string{p.Spec.NodeName}, nil
	}
	return nil, nil
}

// nodeOfPodIf maps a pod to its node when the node is in a state where
// its pods matter.
func (c *Controller) nodeOfPodIf(matters func(*corev1.Node) bool) reconcile.KeyFunc {
	return func(obj any) []string {
		p, ok := reconcile.Untombstone(obj).(*corev1.Pod)
		if !ok || p.Spec.NodeName == "" {
			return nil
		}
		n, err := c.nodes.Get(p.Spec.NodeName)
		if err != nil || !matters(n) {
			return nil
		}
		return []string{n.Name}
	}
}

// Start runs both loops and the zone monitor until ctx ends.
func (c *Controller) Start(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make(chan error, 4) // one per loop below, so none blocks on exit
	run := func(f func(context.Context) error) {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- f(ctx) }()
	}
	if c.events != nil {
		run(c.events.Start)
	}
	run(c.health.Start)
	run(c.evictor.Start)
	run(c.monitorZones)
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

// monitorZones recomputes zone states and rates every MonitorPeriod;
// when evictions halt or resume, every node is looked at again.
func (c *Controller) monitorZones(ctx context.Context) error {
	t := c.opts.Clock.NewTicker(c.opts.MonitorPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C():
		}
		nodes, err := c.nodes.List(labels.Everything())
		if err != nil {
			continue
		}
		if c.updateZones(nodes) {
			for _, n := range nodes {
				c.health.Enqueue(n.Name)
			}
		}
	}
}

// updateZones applies the zone rates for nodes; it says whether the
// halted state changed.
func (c *Controller) updateZones(nodes []*corev1.Node) bool {
	_, perZone, halted := zoneRates(countZones(nodes), rates{
		primary: c.opts.EvictionRate, secondary: c.opts.SecondaryEvictionRate,
		unhealthyThreshold: c.opts.UnhealthyZoneThreshold, largeClusterThreshold: c.opts.LargeClusterThreshold,
	})
	now := c.opts.Clock.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for z, r := range perZone {
		b := c.buckets[z]
		if b == nil {
			c.buckets[z] = newBucket(r, 1, now)
			continue
		}
		if b.rate != r {
			b.setRate(r, now)
		}
	}
	changed := c.halted != halted
	c.halted = halted
	return changed
}

// reconcileHealth converges one node: marks it Unknown when silent past
// its grace, marks its pods not ready while it is Unknown, and sets the
// taints its conditions call for.
func (c *Controller) reconcileHealth(ctx context.Context, name string) (reconcile.Result, error) {
	cached, err := c.nodes.Get(name)
	if apierrors.IsNotFound(err) {
		c.mu.Lock()
		delete(c.probes, name)
		c.mu.Unlock()
		return reconcile.Result{}, nil
	}
	if err != nil {
		return reconcile.Result{}, err
	}
	node := cached.DeepCopy()
	lease, err := c.leases.Leases(leaseNamespace).Get(name)
	if err != nil && !apierrors.IsNotFound(err) {
		return reconcile.Result{}, err
	}
	now := c.opts.Clock.Now()
	c.mu.Lock()
	p := observe(c.probes[name], node, lease, now)
	c.probes[name] = &p
	c.mu.Unlock()

	var res reconcile.Result
	status, deadline := assess(node, p, now, c.opts.GracePeriod, c.opts.StartupGracePeriod)
	if !deadline.IsZero() {
		res.RequeueAfter = deadline.Sub(now)
	}
	if status != nil {
		wasReady := readyStatus(node) == corev1.ConditionTrue
		node.Status = *status
		updated, err := c.client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{})
		if err != nil {
			return reconcile.Result{}, fmt.Errorf("node %s: marking unknown: %w", name, err)
		}
		node = updated
		if wasReady {
			c.rec.Eventf(nodeRef(node), corev1.EventTypeNormal, reasonNodeNotReady, "Node %s status is now: NodeNotReady", name)
		}
	}
	if readyStatus(node) == corev1.ConditionUnknown && condition(node, corev1.NodeReady) != nil {
		if err := c.markPodsNotReady(ctx, node, now); err != nil {
			return reconcile.Result{}, err
		}
	}
	wait, err := c.syncTaints(ctx, node, now)
	if err != nil {
		return reconcile.Result{}, err
	}
	if wait > 0 && (res.RequeueAfter == 0 || wait < res.RequeueAfter) {
		res.RequeueAfter = wait
	}
	return res, nil
}

// syncTaints writes the node's taints when they change. A NoExecute taint
// to add waits for a token of the node's zone; wait is when to try again.
func (c *Controller) syncTaints(ctx context.Context, node *corev1.Node, now time.Time) (time.Duration, error) {
	c.mu.Lock()
	halted := c.halted
	c.mu.Unlock()
	plan := planTaints(node, now, false, halted)
	var wait time.Duration
	granted := false
	if plan.held {
		var err error
		if granted, wait, err = c.takeToken(node, now); err != nil {
			return 0, err
		}
		if granted {
			plan = planTaints(node, now, true, halted)
		}
	}
	if !plan.changed {
		return wait, nil
	}
	node.Spec.Taints = plan.taints
	if _, err := c.client.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{}); err != nil {
		if granted { // the taint was not added: the zone keeps its token
			c.mu.Lock()
			c.buckets[zoneOf(node)].refund()
			c.mu.Unlock()
		}
		return 0, fmt.Errorf("node %s: taints: %w", node.Name, err)
	}
	return wait, nil
}

// takeToken asks the node's zone for a NoExecute taint; the zone's state
// is brought up to date first (a zone may just have lost most of its
// nodes). When no token is granted, wait is when to ask again.
func (c *Controller) takeToken(node *corev1.Node, now time.Time) (granted bool, wait time.Duration, err error) {
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return false, 0, err
	}
	if c.updateZones(nodes) {
		for _, n := range nodes {
			c.health.Enqueue(n.Name)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.halted {
		return false, c.opts.MonitorPeriod, nil
	}
	b := c.buckets[zoneOf(node)]
	if b == nil {
		b = newBucket(c.opts.EvictionRate, 1, now)
		c.buckets[zoneOf(node)] = b
	}
	if b.take(now) {
		return true, 0, nil
	}
	w, ok := b.wait(now)
	if !ok || w <= 0 {
		w = c.opts.MonitorPeriod
	}
	return false, w, nil
}

// markPodsNotReady sets Ready=False on the node's pods that still say
// Ready: nobody is there to say otherwise.
func (c *Controller) markPodsNotReady(ctx context.Context, node *corev1.Node, now time.Time) error {
	objs, err := c.podIndex.ByIndex(podsByNode, node.Name)
	if err != nil {
		return err
	}
	var errs []error
	for _, o := range objs {
		pod, ok := o.(*corev1.Pod)
		if !ok || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			continue
		}
		idx := -1
		for i, cond := range pod.Status.Conditions {
			if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue {
				idx = i
			}
		}
		if idx < 0 {
			continue
		}
		p := pod.DeepCopy()
		p.Status.Conditions[idx].Status = corev1.ConditionFalse
		p.Status.Conditions[idx].LastTransitionTime = metav1.NewTime(now)
		if _, err := c.client.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("pod %s/%s: marking not ready: %w", p.Namespace, p.Name, err))
			continue
		}
		c.rec.Eventf(p, corev1.EventTypeWarning, reasonNodeNotReady, "Node is not ready")
	}
	return errors.Join(errs...)
}

// nodeRef is the reference events about a node are recorded on.
func nodeRef(node *corev1.Node) *corev1.ObjectReference {
	return &corev1.ObjectReference{Kind: "Node", Name: node.Name, UID: node.UID}
}
