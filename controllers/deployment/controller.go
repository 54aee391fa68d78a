package deployment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"

	"github.com/skiff-sh/skiff/controllers/reconcile"
	"github.com/skiff-sh/skiff/controllers/replicaset"
)

// component names the controller in events, as Kubernetes names it.
const component = "deployment-controller"

var (
	deploymentKind = schema.GroupKind{Group: "apps", Kind: "Deployment"}
	replicaSetKind = schema.GroupKind{Group: "apps", Kind: "ReplicaSet"}
)

// Options shape a Controller. The zero value is usable.
type Options struct {
	// Workers is how many Deployments are reconciled at once; default 5.
	Workers int
	// Clock is the time of decisions and of the queue; default the real clock.
	Clock clock.WithTicker
	// Recorder receives the controller's events; default a
	// reconcile.EventRecorder writing them through the API (started and
	// stopped by Start).
	Recorder record.EventRecorder
	// Log receives errors; default slog.Default().
	Log *slog.Logger
}

// Controller converges Deployments.
type Controller struct {
	client      kubernetes.Interface
	deployments appslisters.DeploymentLister
	rss         appslisters.ReplicaSetLister
	pods        corelisters.PodLister
	loop        *reconcile.Controller
	rec         record.EventRecorder
	ownRec      *reconcile.EventRecorder
	clock       clock.WithTicker
	log         *slog.Logger
}

// New builds the Deployment controller. It asks factory for the
// Deployment, ReplicaSet and Pod informers; start the factory after New.
// The ReplicaSet controller must run too: Deployments act through
// ReplicaSets.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, opts Options) (*Controller, error) {
	if opts.Workers <= 0 {
		opts.Workers = 5
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	dInf := factory.Apps().V1().Deployments()
	rsInf := factory.Apps().V1().ReplicaSets()
	podInf := factory.Core().V1().Pods()
	c := &Controller{
		client:      client,
		deployments: dInf.Lister(),
		rss:         rsInf.Lister(),
		pods:        podInf.Lister(),
		rec:         opts.Recorder,
		clock:       opts.Clock,
		log:         opts.Log.With("controller", component),
	}
	if c.rec == nil {
		c.ownRec = reconcile.NewEventRecorder(client, component)
		c.rec = c.ownRec
	}
	loop, err := reconcile.New(reconcile.Options{
		Name: component, Reconciler: c, Workers: opts.Workers, Clock: opts.Clock, Log: opts.Log,
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", component, err)
	}
	c.loop = loop
	if err := loop.Watch(dInf.Informer(), reconcile.ObjectKeys); err != nil {
		return nil, fmt.Errorf("%s: %w", component, err)
	}
	if err := loop.Watch(rsInf.Informer(), c.replicaSetKeys); err != nil {
		return nil, fmt.Errorf("%s: %w", component, err)
	}
	if err := loop.Watch(podInf.Informer(), c.podKeys); err != nil {
		return nil, fmt.Errorf("%s: %w", component, err)
	}
	return c, nil
}

// Start runs the controller (and its event recorder, when it made one)
// until ctx ends.
func (c *Controller) Start(ctx context.Context) error {
	var wg sync.WaitGroup
	if c.ownRec != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.ownRec.Start(ctx); err != nil {
				c.log.Error("event recorder", "err", err)
			}
		}()
	}
	err := c.loop.Start(ctx)
	wg.Wait()
	return err
}

// Reconcile takes one step of the Deployment named by key: claim its
// ReplicaSets, decide (Decide), and carry out the plan.
func (c *Controller) Reconcile(ctx context.Context, key string) (reconcile.Result, error) {
	ns, name, err := reconcile.SplitKey(key)
	if err != nil {
		return reconcile.Result{}, reconcile.Terminal(err)
	}
	d, err := c.deployments.Deployments(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return reconcile.Result{}, nil
	}
	if err != nil {
		return reconcile.Result{}, err
	}
	now := c.clock.Now()
	snap := Snapshot{Deployment: d, Now: now}
	if !selectsEverything(d) {
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil {
			return reconcile.Result{}, reconcile.Terminal(fmt.Errorf("deployment %s: selector: %w", key, err))
		}
		if snap.ReplicaSets, err = c.claimReplicaSets(ctx, d, sel); err != nil {
			return reconcile.Result{}, err
		}
		if snap.Pods, err = c.podsOf(d, sel, snap.ReplicaSets); err != nil {
			return reconcile.Result{}, err
		}
	}
	plan, err := Decide(snap)
	if err != nil {
		return reconcile.Result{}, reconcile.Terminal(err)
	}
	if err := c.carryOut(ctx, d, plan); err != nil {
		return reconcile.Result{}, err
	}
	return reconcile.Result{RequeueAfter: plan.RequeueAfter}, nil
}

// carryOut performs plan's writes in order, stopping at the first error.
func (c *Controller) carryOut(ctx context.Context, d *appsv1.Deployment, plan Plan) error {
	rsClient := c.client.AppsV1().ReplicaSets(d.Namespace)
	if w := plan.Create; w != nil {
		_, err := rsClient.Create(ctx, w.RS, metav1.CreateOptions{})
		switch {
		case apierrors.IsAlreadyExists(err):
			return c.nameTaken(ctx, d, w.RS)
		case err != nil:
			msg := fmt.Sprintf("Failed to create new replica set %q: %v", w.RS.Name, err)
			if st := FailedCreateStatus(d, msg, c.clock.Now()); st != nil {
				dd := d.DeepCopy()
				dd.Status = *st
				if _, serr := c.client.AppsV1().Deployments(d.Namespace).UpdateStatus(ctx, dd, metav1.UpdateOptions{}); serr != nil {
					err = errors.Join(err, serr)
				}
			}
			c.rec.Event(d, corev1.EventTypeWarning, ReasonFailedRSCreate, msg)
			return fmt.Errorf("deployment %s/%s: creating replica set %s: %w", d.Namespace, d.Name, w.RS.Name, err)
		}
		if w.Message != "" {
			c.rec.Event(d, corev1.EventTypeNormal, ReasonScalingReplicaSet, w.Message)
		}
	}
	for _, w := range plan.Updates {
		if _, err := rsClient.Update(ctx, w.RS, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("deployment %s/%s: updating replica set %s: %w", d.Namespace, d.Name, w.RS.Name, err)
		}
		if w.Message != "" {
			c.rec.Event(d, corev1.EventTypeNormal, ReasonScalingReplicaSet, w.Message)
		}
	}
	for _, rs := range plan.Deletes {
		uid, rv := rs.UID, rs.ResourceVersion
		err := rsClient.Delete(ctx, rs.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid, ResourceVersion: &rv}})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deployment %s/%s: deleting old replica set %s: %w", d.Namespace, d.Name, rs.Name, err)
		}
	}
	for _, e := range plan.Events {
		c.rec.Event(d, e.Type, e.Reason, e.Message)
	}
	if plan.Status != nil {
		dd := d.DeepCopy()
		dd.Status = *plan.Status
		if _, err := c.client.AppsV1().Deployments(d.Namespace).UpdateStatus(ctx, dd, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("deployment %s/%s: updating status: %w", d.Namespace, d.Name, err)
		}
	}
	if plan.Revision != "" {
		patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
			"annotations": map[string]string{RevisionAnnotation: plan.Revision},
		}})
		if err != nil {
			return fmt.Errorf("revision patch: %w", err)
		}
		if _, err := c.client.AppsV1().Deployments(d.Namespace).Patch(ctx, d.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			return fmt.Errorf("deployment %s/%s: setting revision %s: %w", d.Namespace, d.Name, plan.Revision, err)
		}
	}
	return nil
}

// nameTaken handles a new ReplicaSet whose name is already in use: if it
// is ours with our template, the cache only lags and a retry finds it;
// otherwise another template hashed to the same name, and the collision
// count salts the next hash.
func (c *Controller) nameTaken(ctx context.Context, d *appsv1.Deployment, rs *appsv1.ReplicaSet) error {
	existing, err := c.client.AppsV1().ReplicaSets(d.Namespace).Get(ctx, rs.Name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("deployment %s/%s: reading replica set %s: %w", d.Namespace, d.Name, rs.Name, err)
	}
	if ref := metav1.GetControllerOf(existing); ref != nil && ref.UID == d.UID && equalIgnoreHash(&existing.Spec.Template, &d.Spec.Template) {
		return fmt.Errorf("deployment %s/%s: replica set %s exists but is not in the cache yet", d.Namespace, d.Name, rs.Name)
	}
	dd := d.DeepCopy()
	n := int32(1)
	if dd.Status.CollisionCount != nil {
		n = *dd.Status.CollisionCount + 1
	}
	dd.Status.CollisionCount = &n
	if _, err := c.client.AppsV1().Deployments(d.Namespace).UpdateStatus(ctx, dd, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("deployment %s/%s: raising collisionCount: %w", d.Namespace, d.Name, err)
	}
	return fmt.Errorf("deployment %s/%s: replica set name %s is taken; collisionCount now %d", d.Namespace, d.Name, rs.Name, n)
}

// claimReplicaSets adopts matching orphan ReplicaSets, releases ones that
// no longer match, and returns those d controls.
func (c *Controller) claimReplicaSets(ctx context.Context, d *appsv1.Deployment, sel labels.Selector) ([]*appsv1.ReplicaSet, error) {
	all, err := c.rss.ReplicaSets(d.Namespace).List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("listing replica sets: %w", err)
	}
	claims := replicaset.Claim(d.UID, d.DeletionTimestamp != nil, sel, all)
	owned := claims.Keep
	rsClient := c.client.AppsV1().ReplicaSets(d.Namespace)
	var errs []error
	if len(claims.Adopt) > 0 {
		fresh, err := c.client.AppsV1().Deployments(d.Namespace).Get(ctx, d.Name, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("checking deployment %s/%s before adopting: %w", d.Namespace, d.Name, err)
		}
		if fresh.UID != d.UID || fresh.DeletionTimestamp != nil {
			return nil, fmt.Errorf("deployment %s/%s was replaced or is being deleted; not adopting", d.Namespace, d.Name)
		}
		ref := replicaset.ControllerRef(d, "apps/v1", "Deployment")
		for _, rs := range claims.Adopt {
			patch, err := replicaset.AdoptPatch(ref, rs.UID)
			if err != nil {
				return nil, err
			}
			adopted, err := rsClient.Patch(ctx, rs.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
			switch {
			case apierrors.IsNotFound(err):
			case err != nil:
				errs = append(errs, fmt.Errorf("adopting replica set %s: %w", rs.Name, err))
			default:
				owned = append(owned, adopted)
			}
		}
	}
	for _, rs := range claims.Release {
		patch, err := replicaset.ReleasePatch(d.UID, rs.UID)
		if err != nil {
			return nil, err
		}
		if _, err := rsClient.Patch(ctx, rs.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil &&
			!apierrors.IsNotFound(err) && !apierrors.IsInvalid(err) {
			errs = append(errs, fmt.Errorf("releasing replica set %s: %w", rs.Name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("deployment %s/%s: %w", d.Namespace, d.Name, err)
	}
	return owned, nil
}

// podsOf lists the pods matching d's selector that its ReplicaSets control.
func (c *Controller) podsOf(d *appsv1.Deployment, sel labels.Selector, rss []*appsv1.ReplicaSet) ([]*corev1.Pod, error) {
	pods, err := c.pods.Pods(d.Namespace).List(sel)
	if err != nil {
		return nil, fmt.Errorf("listing pods: %w", err)
	}
	owners := map[types.UID]bool{}
	for _, rs := range rss {
		owners[rs.UID] = true
	}
	var out []*corev1.Pod
	for _, p := range pods {
		if ref := metav1.GetControllerOf(p); ref != nil && owners[ref.UID] {
			out = append(out, p)
		}
	}
	return out, nil
}

// replicaSetKeys maps a ReplicaSet to its Deployment, or, for an orphan,
// to every Deployment in its namespace that selects it.
func (c *Controller) replicaSetKeys(obj any) []string {
	rs, ok := reconcile.Untombstone(obj).(*appsv1.ReplicaSet)
	if !ok {
		return nil
	}
	if metav1.GetControllerOf(rs) != nil {
		return reconcile.OwnerKeys(rs, deploymentKind)
	}
	if rs.DeletionTimestamp != nil {
		return nil
	}
	ds, err := c.deployments.Deployments(rs.Namespace).List(labels.Everything())
	if err != nil {
		return nil
	}
	var keys []string
	for _, d := range ds {
		if selectsEverything(d) {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err == nil && sel.Matches(labels.Set(rs.Labels)) {
			keys = append(keys, reconcile.Key(d.Namespace, d.Name))
		}
	}
	return keys
}

// podKeys maps a pod to the Deployment controlling its ReplicaSet.
func (c *Controller) podKeys(obj any) []string {
	pod, ok := reconcile.Untombstone(obj).(*corev1.Pod)
	if !ok {
		return nil
	}
	owners := reconcile.OwnerKeys(pod, replicaSetKind)
	if len(owners) == 0 {
		return nil
	}
	_, name, err := reconcile.SplitKey(owners[0])
	if err != nil {
		return nil
	}
	rs, err := c.rss.ReplicaSets(pod.Namespace).Get(name)
	if err != nil {
		return nil
	}
	return reconcile.OwnerKeys(rs, deploymentKind)
}
