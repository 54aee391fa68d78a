package statefulset

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	"k8s.io/utils/clock"

	"github.com/skiff-sh/skiff/controllers/history"
	"github.com/skiff-sh/skiff/controllers/reconcile"
)

// Event reasons of this controller besides the shared ones.
const (
	reasonRecreatingFailedPod = "RecreatingFailedPod"
	reasonSelectingAll        = "SelectingAll"
)

// claimWait is how soon a pod waiting for a claim that is being deleted
// looks again.
const claimWait = time.Second

// Options shape the controller; the zero value works.
type Options struct {
	// Workers reconcile StatefulSets in parallel; default 2.
	Workers int
	// Clock is the time source; default the real clock.
	Clock clock.WithTicker
	// Recorder receives events; default one writing Events through the
	// API as "statefulset-controller", run by Start.
	Recorder record.EventRecorder
	// Log receives errors; default slog.Default().
	Log *slog.Logger
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
	return o
}

// Controller runs StatefulSets.
type Controller struct {
	client kubernetes.Interface
	opts   Options
	ctrl   *reconcile.Controller
	events *reconcile.EventRecorder // ours to run, when Options.Recorder was nil
	rec    record.EventRecorder

	sets   appslisters.StatefulSetLister
	revs   appslisters.ControllerRevisionLister
	pods   corelisters.PodLister
	claims corelisters.PersistentVolumeClaimLister
}

// New builds the controller and registers its informers (StatefulSets,
// ControllerRevisions, Pods, PersistentVolumeClaims) with factory; start
// the factory after.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, opts Options) (*Controller, error) {
	opts = opts.withDefaults()
	c := &Controller{client: client, opts: opts, rec: opts.Recorder}
	if c.rec == nil {
		c.events = reconcile.NewEventRecorder(client, "statefulset-controller")
		c.rec = c.events
	}
	ctrl, err := reconcile.New(reconcile.Options{
		Name: "statefulset", Reconciler: c, Workers: opts.Workers, Clock: opts.Clock, Log: opts.Log,
	})
	if err != nil {
		return nil, err
	}
	c.ctrl = ctrl
	setInf := factory.Apps().V1().StatefulSets()
	revInf := factory.Apps().V1().ControllerRevisions()
	podInf := factory.Core().V1().Pods()
	pvcInf := factory.Core().V1().PersistentVolumeClaims()
	c.sets, c.revs, c.pods, c.claims = setInf.Lister(), revInf.Lister(), podInf.Lister(), pvcInf.Lister()
	for _, w := range []struct {
		inf cache.SharedIndexInformer
		fn  reconcile.KeyFunc
	}{
		{setInf.Informer(), reconcile.ObjectKeys},
		{revInf.Informer(), reconcile.MapToOwner(kind.GroupKind())},
		{podInf.Informer(), c.memberKeys},
		{pvcInf.Informer(), c.memberKeys},
	} {
		if err := ctrl.Watch(w.inf, w.fn); err != nil {
			return nil, err
		}
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
	return c.ctrl.Start(ctx)
}

// memberKeys maps a pod or claim to the set that controls it, or else to
// every set in its namespace whose selector matches its labels.
func (c *Controller) memberKeys(obj any) []string {
	m, ok := reconcile.Untombstone(obj).(metav1.Object)
	if !ok {
		return nil
	}
	if ref := metav1.GetControllerOfNoCopy(m); ref != nil {
		return reconcile.OwnerKeys(m, kind.GroupKind())
	}
	sets, err := c.sets.StatefulSets(m.GetNamespace()).List(labels.Everything())
	if err != nil {
		return nil
	}
	var keys []string
	for _, s := range sets {
		sel, err := metav1.LabelSelectorAsSelector(s.Spec.Selector)
		if err == nil && !sel.Empty() && sel.Matches(labels.Set(m.GetLabels())) {
			keys = append(keys, reconcile.Key(s.Namespace, s.Name))
		}
	}
	return keys
}

// Reconcile converges one StatefulSet.
func (c *Controller) Reconcile(ctx context.Context, key string) (reconcile.Result, error) {
	ns, name, err := reconcile.SplitKey(key)
	if err != nil {
		return reconcile.Result{}, reconcile.Terminal(err)
	}
	cached, err := c.sets.StatefulSets(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return reconcile.Result{}, nil
	}
	if err != nil {
		return reconcile.Result{}, err
	}
	set := cached.DeepCopy()
	sel, err := metav1.LabelSelectorAsSelector(set.Spec.Selector)
	if err != nil {
		return reconcile.Result{}, reconcile.Terminal(fmt.Errorf("statefulset %s: selector: %w", key, err))
	}
	if sel.Empty() {
		c.rec.Event(set, corev1.EventTypeWarning, reasonSelectingAll, "This StatefulSet is selecting all pods. A non-empty selector is required.")
		return reconcile.Result{}, nil
	}
	nsPods, err := c.pods.Pods(ns).List(labels.Everything())
	if err != nil {
		return reconcile.Result{}, err
	}
	pods, err := c.claimPods(ctx, set, nsPods)
	if err != nil {
		return reconcile.Result{}, err
	}
	current, update, owned, err := c.syncRevisions(ctx, set, sel)
	if err != nil {
		return reconcile.Result{}, err
	}

	pl := decide(world{set: set, pods: pods, current: current.Name, update: update.Name, now: c.opts.Clock.Now()})
	if err := c.syncClaimOwners(ctx, set, pods); err != nil {
		return reconcile.Result{}, err
	}
	wait, actErr := c.act(ctx, set, pl, current, update)
	if actErr == nil {
		actErr = c.pruneRevisions(ctx, set, owned, pods, current, update)
	}
	if err := c.writeStatus(ctx, set, pl.status); err != nil {
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

// syncRevisions adopts orphaned revisions and returns the current
// revision (status.currentRevision, or the update revision when there is
// none yet), the update revision (the template's, created if new) and
// all revisions the set owns.
func (c *Controller) syncRevisions(ctx context.Context, set *appsv1.StatefulSet, sel labels.Selector) (current, update *appsv1.ControllerRevision, owned []*appsv1.ControllerRevision, err error) {
	all, err := c.revs.ControllerRevisions(set.Namespace).List(labels.Everything())
	if err != nil {
		return nil, nil, nil, err
	}
	owner := history.Owner{Object: set, Kind: kind, Labels: set.Spec.Template.Labels, CollisionCount: set.Status.CollisionCount}
	owned, orphans := history.Owned(all, set.UID, sel)
	for _, o := range orphans {
		adopted, err := history.Adopt(ctx, c.client, owner, o)
		if err != nil {
			return nil, nil, nil, err
		}
		owned = append(owned, adopted)
	}
	data, err := history.TemplatePatch(&set.Spec.Template)
	if err != nil {
		return nil, nil, nil, err
	}
	update, err = history.Ensure(ctx, c.client, owner, owned, data)
	if errors.Is(err, history.ErrCollision) {
		n := int32(1)
		if set.Status.CollisionCount != nil {
			n = *set.Status.CollisionCount + 1
		}
		set.Status.CollisionCount = &n
		if _, uerr := c.client.AppsV1().StatefulSets(set.Namespace).UpdateStatus(ctx, set, metav1.UpdateOptions{}); uerr != nil {
			return nil, nil, nil, fmt.Errorf("statefulset %s/%s: raising collisionCount: %w", set.Namespace, set.Name, uerr)
		}
		return nil, nil, nil, err
	}
	if err != nil {
		return nil, nil, nil, err
	}
	replaced := false
	for i, r := range owned {
		if r.Name == update.Name {
			owned[i], replaced = update, true
		}
	}
	if !replaced {
		owned = append(owned, update)
	}
	current = update
	for _, r := range owned {
		if r.Name == set.Status.CurrentRevision {
			current = r
		}
	}
	return current, update, owned, nil
}

// pruneRevisions deletes the oldest revisions beyond revisionHistoryLimit
// that neither the status nor any pod refers to.
func (c *Controller) pruneRevisions(ctx context.Context, set *appsv1.StatefulSet, owned []*appsv1.ControllerRevision, pods []*corev1.Pod, current, update *appsv1.ControllerRevision) error {
	live := map[string]bool{current.Name: true, update.Name: true}
	for _, p := range pods {
		live[revisionOf(p)] = true
	}
	limit := int32(10)
	if set.Spec.RevisionHistoryLimit != nil {
		limit = *set.Spec.RevisionHistoryLimit
	}
	for _, r := range history.Prunable(owned, live, limit) {
		err := c.client.AppsV1().ControllerRevisions(r.Namespace).Delete(ctx, r.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("pruning revision %s/%s: %w", r.Namespace, r.Name, err)
		}
	}
	return nil
}

// writeStatus updates the status when it changed, retrying once on a
// fresh copy when the cache was behind.
func (c *Controller) writeStatus(ctx context.Context, set *appsv1.StatefulSet, st appsv1.StatefulSetStatus) error {
	if equality.Semantic.DeepEqual(set.Status, st) {
		return nil
	}
	set.Status = st
	_, err := c.client.AppsV1().StatefulSets(set.Namespace).UpdateStatus(ctx, set, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) {
		fresh, gerr := c.client.AppsV1().StatefulSets(set.Namespace).Get(ctx, set.Name, metav1.GetOptions{})
		if gerr == nil && fresh.UID == set.UID && fresh.Generation == set.Generation {
			st.CollisionCount = fresh.Status.CollisionCount
			fresh.Status = st
			_, err = c.client.AppsV1().StatefulSets(set.Namespace).UpdateStatus(ctx, fresh, metav1.UpdateOptions{})
		}
	}
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("statefulset %s/%s: status: %w", set.Namespace, set.Name, err)
	}
	return nil
}
