package daemonset

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/utils/clock"

	"github.com/skiff-sh/skiff/controllers/history"
	"github.com/skiff-sh/skiff/controllers/reconcile"
)

// kind is the GroupVersionKind of the owner this controller writes.
var kind = appsv1.SchemeGroupVersion.WithKind("DaemonSet")

// Event reasons of this controller besides the shared ones.
const (
	reasonFailedDaemonPod = "FailedDaemonPod"
	reasonSelectingAll    = "SelectingAll"
)

// Options shape the controller; the zero value works.
type Options struct {
	// Workers reconcile DaemonSets in parallel; default 2.
	Workers int
	// Clock is the time source; default the real clock.
	Clock clock.WithTicker
	// Recorder receives events; default one writing Events through the
	// API as "daemonset-controller", run by Start.
	Recorder record.EventRecorder
	// Log receives errors; default slog.Default().
	Log *slog.Logger
	// BurstReplicas caps the pod creations and deletions of one reconcile;
	// default 250, as Kubernetes.
	BurstReplicas int
	// FailedPodBackoff is the first wait before a node's failed daemon
	// pod is replaced again; it doubles up to FailedPodMaxBackoff (15m).
	// Default 1s.
	FailedPodBackoff    time.Duration
	FailedPodMaxBackoff time.Duration
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
	if o.BurstReplicas <= 0 {
		o.BurstReplicas = 250
	}
	if o.FailedPodBackoff <= 0 {
		o.FailedPodBackoff = time.Second
	}
	if o.FailedPodMaxBackoff <= 0 {
		o.FailedPodMaxBackoff = 15 * time.Minute
	}
	return o
}

// Controller runs DaemonSets.
type Controller struct {
	client  kubernetes.Interface
	opts    Options
	ctrl    *reconcile.Controller
	events  *reconcile.EventRecorder // ours to run, when Options.Recorder was nil
	rec     record.EventRecorder
	exp     *reconcile.Expectations
	backoff *flowcontrol.Backoff

	dsLister  appslisters.DaemonSetLister
	crLister  appslisters.ControllerRevisionLister
	podLister corelisters.PodLister
	nodes     corelisters.NodeLister

	synced []cache.InformerSynced // handlers registered outside ctrl.Watch
}

// New builds the controller and registers its informers (DaemonSets,
// ControllerRevisions, Pods, Nodes) with factory; start the factory after.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, opts Options) (*Controller, error) {
	opts = opts.withDefaults()
	c := &Controller{
		client:  client,
		opts:    opts,
		exp:     reconcile.NewExpectations(0),
		backoff: flowcontrol.NewFakeBackOff(opts.FailedPodBackoff, opts.FailedPodMaxBackoff, opts.Clock),
		rec:     opts.Recorder,
	}
	if c.rec == nil {
		c.events = reconcile.NewEventRecorder(client, "daemonset-controller")
		c.rec = c.events
	}
	ctrl, err := reconcile.New(reconcile.Options{
		Name: "daemonset", Reconciler: c, Workers: opts.Workers, Clock: opts.Clock, Log: opts.Log,
	})
	if err != nil {
		return nil, err
	}
	c.ctrl = ctrl

	dsInf := factory.Apps().V1().DaemonSets()
	crInf := factory.Apps().V1().ControllerRevisions()
	podInf := factory.Core().V1().Pods()
	nodeInf := factory.Core().V1().Nodes()
	c.dsLister, c.crLister, c.podLister, c.nodes = dsInf.Lister(), crInf.Lister(), podInf.Lister(), nodeInf.Lister()

	if err := ctrl.Watch(dsInf.Informer(), reconcile.ObjectKeys); err != nil {
		return nil, err
	}
	if err := ctrl.Watch(crInf.Informer(), reconcile.MapToOwner(kind.GroupKind())); err != nil {
		return nil, err
	}
	if err := ctrl.Watch(podInf.Informer(), c.podKeys); err != nil {
		return nil, err
	}
	reg, err := podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { c.observe(obj, false) },
		UpdateFunc: func(_, obj any) {
			if p, ok := obj.(*corev1.Pod); ok && p.DeletionTimestamp != nil {
				c.observe(obj, true)
			}
		},
		DeleteFunc: func(obj any) { c.observe(reconcile.Untombstone(obj), true) },
	})
	if err != nil {
		return nil, fmt.Errorf("daemonset: pod handler: %w", err)
	}
	c.synced = append(c.synced, reg.HasSynced)
	reg, err = nodeInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { c.enqueueAll() },
		UpdateFunc: func(oldObj, newObj any) {
			o, ok1 := oldObj.(*corev1.Node)
			n, ok2 := newObj.(*corev1.Node)
			if !ok1 || !ok2 || !equality.Semantic.DeepEqual(o.Labels, n.Labels) ||
				!equality.Semantic.DeepEqual(o.Spec.Taints, n.Spec.Taints) {
				c.enqueueAll()
			}
		},
		DeleteFunc: func(any) { c.enqueueAll() },
	})
	if err != nil {
		return nil, fmt.Errorf("daemonset: node handler: %w", err)
	}
	c.synced = append(c.synced, reg.HasSynced)
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
	return c.ctrl.Start(ctx)
}

// podKeys maps a pod to its DaemonSet, or an orphan to every DaemonSet
// that selects it (one may adopt it).
func (c *Controller) podKeys(obj any) []string {
	pod, ok := reconcile.Untombstone(obj).(*corev1.Pod)
	if !ok {
		return nil
	}
	if metav1.GetControllerOfNoCopy(pod) != nil {
		return reconcile.OwnerKeys(pod, kind.GroupKind())
	}
	dss, err := c.dsLister.DaemonSets(pod.Namespace).List(labels.Everything())
	if err != nil {
		return nil
	}
	var keys []string
	for _, ds := range dss {
		sel, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector)
		if err == nil && !sel.Empty() && sel.Matches(labels.Set(pod.Labels)) {
			keys = append(keys, reconcile.Key(ds.Namespace, ds.Name))
		}
	}
	return keys
}

// observe settles expectations from pod events and asks for the owner to
// be looked at again.
func (c *Controller) observe(obj any, deleted bool) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	for _, key := range reconcile.OwnerKeys(pod, kind.GroupKind()) {
		if deleted {
			c.exp.DeletionObserved(key, string(pod.UID))
		} else {
			c.exp.CreationObserved(key)
		}
		c.ctrl.Enqueue(key)
	}
}

func (c *Controller) enqueueAll() {
	dss, err := c.dsLister.List(labels.Everything())
	if err != nil {
		return
	}
	for _, ds := range dss {
		c.ctrl.Enqueue(reconcile.Key(ds.Namespace, ds.Name))
	}
}

// Reconcile converges one DaemonSet.
func (c *Controller) Reconcile(ctx context.Context, key string) (reconcile.Result, error) {
	ns, name, err := reconcile.SplitKey(key)
	if err != nil {
		return reconcile.Result{}, reconcile.Terminal(err)
	}
	cached, err := c.dsLister.DaemonSets(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.exp.Forget(key)
		return reconcile.Result{}, nil
	}
	if err != nil {
		return reconcile.Result{}, err
	}
	ds := cached.DeepCopy()
	sel, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector)
	if err != nil {
		return reconcile.Result{}, reconcile.Terminal(fmt.Errorf("daemonset %s: selector: %w", key, err))
	}
	if sel.Empty() {
		c.rec.Event(ds, corev1.EventTypeWarning, reasonSelectingAll, "This daemon set is selecting all pods. A non-empty selector is required.")
		return reconcile.Result{}, nil
	}

	nsPods, err := c.podLister.Pods(ns).List(labels.Everything())
	if err != nil {
		return reconcile.Result{}, err
	}
	pods, err := c.claimPods(ctx, ds, nsPods)
	if err != nil {
		return reconcile.Result{}, err
	}
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return reconcile.Result{}, err
	}
	updateRev, err := c.syncRevisions(ctx, ds, sel, pods)
	if err != nil {
		return reconcile.Result{}, err
	}
	hash := updateRev.Labels[history.HashLabel]

	now := c.opts.Clock.Now()
	pl := decide(world{ds: ds, nodes: nodes, pods: pods, hash: hash, now: now})
	satisfied := c.exp.Satisfied(key, now)
	var actErr error
	var wait time.Duration
	if satisfied {
		wait, actErr = c.act(ctx, key, ds, pl, hash)
	} else {
		pl.status.ObservedGeneration = ds.Status.ObservedGeneration
	}
	if err := c.writeStatus(ctx, ds, pl.status); err != nil {
		return reconcile.Result{}, errors.Join(actErr, err)
	}
	if actErr != nil {
		return reconcile.Result{}, actErr
	}
	res := reconcile.Result{RequeueAfter: pl.recheck}
	if wait > 0 && (res.RequeueAfter == 0 || wait < res.RequeueAfter) {
		res.RequeueAfter = wait
	}
	return res, nil
}

// syncRevisions adopts orphaned revisions, makes sure the current
// template has a revision (raising collisionCount on a name clash), and
// prunes old revisions no pod uses beyond revisionHistoryLimit.
func (c *Controller) syncRevisions(ctx context.Context, ds *appsv1.DaemonSet, sel labels.Selector, pods []*corev1.Pod) (*appsv1.ControllerRevision, error) {
	all, err := c.crLister.ControllerRevisions(ds.Namespace).List(labels.Everything())
	if err != nil {
		return nil, err
	}
	owner := history.Owner{Object: ds, Kind: kind, Labels: ds.Spec.Template.Labels, CollisionCount: ds.Status.CollisionCount}
	owned, orphans := history.Owned(all, ds.UID, sel)
	for _, o := range orphans {
		adopted, err := history.Adopt(ctx, c.client, owner, o)
		if err != nil {
			return nil, err
		}
		owned = append(owned, adopted)
	}
	data, err := history.TemplatePatch(&ds.Spec.Template)
	if err != nil {
		return nil, err
	}
	rev, err := history.Ensure(ctx, c.client, owner, owned, data)
	if errors.Is(err, history.ErrCollision) {
		n := int32(0)
		if ds.Status.CollisionCount != nil {
			n = *ds.Status.CollisionCount
		}
		n++
		ds.Status.CollisionCount = &n
		if _, uerr := c.client.AppsV1().DaemonSets(ds.Namespace).UpdateStatus(ctx, ds, metav1.UpdateOptions{}); uerr != nil {
			return nil, fmt.Errorf("daemonset %s/%s: raising collisionCount: %w", ds.Namespace, ds.Name, uerr)
		}
		return nil, err // retried with the new count
	}
	if err != nil {
		return nil, err
	}
	inUse := map[string]bool{}
	for _, p := range pods {
		if h, ok := p.Labels[history.HashLabel]; ok {
			inUse[h] = true
		}
	}
	live := map[string]bool{rev.Name: true}
	for _, r := range owned {
		if inUse[r.Labels[history.HashLabel]] {
			live[r.Name] = true
		}
	}
	limit := int32(10)
	if ds.Spec.RevisionHistoryLimit != nil {
		limit = *ds.Spec.RevisionHistoryLimit
	}
	for _, old := range history.Prunable(owned, live, limit) {
		if old.Name == rev.Name {
			continue
		}
		err := c.client.AppsV1().ControllerRevisions(old.Namespace).Delete(ctx, old.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("pruning revision %s/%s: %w", old.Namespace, old.Name, err)
		}
	}
	return rev, nil
}

// writeStatus updates the status when it changed.
func (c *Controller) writeStatus(ctx context.Context, ds *appsv1.DaemonSet, st appsv1.DaemonSetStatus) error {
	if equality.Semantic.DeepEqual(ds.Status, st) {
		return nil
	}
	ds.Status = st
	_, err := c.client.AppsV1().DaemonSets(ds.Namespace).UpdateStatus(ctx, ds, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) {
		// The cache lags our own last write: retry once on a fresh copy
		// of the same generation (the counts are about its template).
		fresh, gerr := c.client.AppsV1().DaemonSets(ds.Namespace).Get(ctx, ds.Name, metav1.GetOptions{})
		if gerr == nil && fresh.UID == ds.UID && fresh.Generation == ds.Generation {
			st.CollisionCount = fresh.Status.CollisionCount
			fresh.Status = st
			_, err = c.client.AppsV1().DaemonSets(ds.Namespace).UpdateStatus(ctx, fresh, metav1.UpdateOptions{})
		}
	}
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("daemonset %s/%s: status: %w", ds.Namespace, ds.Name, err)
	}
	return nil
}

// newPod is the pod ds runs on node, from the current template.
func newPod(ds *appsv1.DaemonSet, node, hash string) *corev1.Pod {
	tmpl := ds.Spec.Template.DeepCopy()
	pod := &corev1.Pod{ObjectMeta: tmpl.ObjectMeta, Spec: tmpl.Spec}
	pod.Name = ""
	pod.Namespace = ds.Namespace
	pod.GenerateName = ds.Name + "-"
	lbls := make(map[string]string, len(tmpl.Labels)+2)
	for k, v := range tmpl.Labels {
		lbls[k] = v
	}
	lbls[history.HashLabel] = hash
	lbls[labelTemplateGeneration] = strconv.FormatInt(ds.Generation, 10)
	pod.Labels = lbls
	pod.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(ds, kind)}
	pod.Spec.Affinity = pinnedAffinity(tmpl.Spec.Affinity, node)
	pod.Spec.Tolerations = withDefaultTolerations(&tmpl.Spec)
	return pod
}
