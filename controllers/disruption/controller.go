package disruption

import (
	"context"
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
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	policylisters "k8s.io/client-go/listers/policy/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"

	"github.com/skiff-sh/skiff/controllers/reconcile"
)

// DefaultDeletionTimeout is how long a pod the eviction API recorded as
// disrupted is counted as gone while it has not been deleted.
const DefaultDeletionTimeout = 2 * time.Minute

// Event reasons of this controller.
const (
	reasonNoPods        = "NoPods"
	reasonCalculateFail = "CalculateExpectedPodCountFailed"
	reasonUnmanagedPods = "UnmanagedPods"
)

// Options shape the controller; the zero value works.
type Options struct {
	// Workers reconcile budgets in parallel; default 2.
	Workers int
	// Clock is the time source; default the real clock.
	Clock clock.WithTicker
	// Recorder receives events; default one writing Events through the
	// API as "controllermanager" (the source Kubernetes uses), run by Start.
	Recorder record.EventRecorder
	// Log receives errors; default slog.Default().
	Log *slog.Logger
	// DeletionTimeout: see DefaultDeletionTimeout.
	DeletionTimeout time.Duration
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
	if o.DeletionTimeout <= 0 {
		o.DeletionTimeout = DefaultDeletionTimeout
	}
	return o
}

// Controller keeps PodDisruptionBudget status current.
type Controller struct {
	client kubernetes.Interface
	opts   Options
	ctrl   *reconcile.Controller
	events *reconcile.EventRecorder
	rec    record.EventRecorder

	pdbs        policylisters.PodDisruptionBudgetLister
	pods        corelisters.PodLister
	rcs         corelisters.ReplicationControllerLister
	rss         appslisters.ReplicaSetLister
	deployments appslisters.DeploymentLister
	sets        appslisters.StatefulSetLister
}

// New builds the controller and registers its informers
// (PodDisruptionBudgets, Pods, ReplicationControllers, ReplicaSets,
// Deployments, StatefulSets) with factory; start the factory after.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, opts Options) (*Controller, error) {
	opts = opts.withDefaults()
	c := &Controller{client: client, opts: opts, rec: opts.Recorder}
	if c.rec == nil {
		c.events = reconcile.NewEventRecorder(client, "controllermanager")
		c.rec = c.events
	}
	ctrl, err := reconcile.New(reconcile.Options{
		Name: "disruption", Reconciler: c, Workers: opts.Workers, Clock: opts.Clock, Log: opts.Log,
	})
	if err != nil {
		return nil, err
	}
	c.ctrl = ctrl
	pdbInf := factory.Policy().V1().PodDisruptionBudgets()
	podInf := factory.Core().V1().Pods()
	rcInf := factory.Core().V1().ReplicationControllers()
	rsInf := factory.Apps().V1().ReplicaSets()
	depInf := factory.Apps().V1().Deployments()
	setInf := factory.Apps().V1().StatefulSets()
	c.pdbs, c.pods, c.rcs = pdbInf.Lister(), podInf.Lister(), rcInf.Lister()
	c.rss, c.deployments, c.sets = rsInf.Lister(), depInf.Lister(), setInf.Lister()

	if err := ctrl.Watch(pdbInf.Informer(), reconcile.ObjectKeys); err != nil {
		return nil, err
	}
	if err := ctrl.Watch(podInf.Informer(), c.budgetsOfPod); err != nil {
		return nil, err
	}
	// A controller's scale changes the expected count of every budget
	// over its pods; budgets are few, so look at the namespace's.
	for _, inf := range []interface {
		Informer() cache.SharedIndexInformer
	}{rcInf, rsInf, depInf, setInf} {
		if err := ctrl.Watch(inf.Informer(), c.budgetsInNamespace); err != nil {
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

// budgetsOfPod maps a pod to the budgets whose selectors match it.
func (c *Controller) budgetsOfPod(obj any) []string {
	pod, ok := reconcile.Untombstone(obj).(*corev1.Pod)
	if !ok {
		return nil
	}
	pdbs, err := c.pdbs.PodDisruptionBudgets(pod.Namespace).List(labels.Everything())
	if err != nil {
		return nil
	}
	var keys []string
	for _, pdb := range pdbs {
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err == nil && sel.Matches(labels.Set(pod.Labels)) {
			keys = append(keys, reconcile.Key(pdb.Namespace, pdb.Name))
		}
	}
	return keys
}

func (c *Controller) budgetsInNamespace(obj any) []string {
	m, ok := reconcile.Untombstone(obj).(metav1.Object)
	if !ok {
		return nil
	}
	pdbs, err := c.pdbs.PodDisruptionBudgets(m.GetNamespace()).List(labels.Everything())
	if err != nil {
		return nil
	}
	keys := make([]string, 0, len(pdbs))
	for _, pdb := range pdbs {
		keys = append(keys, reconcile.Key(pdb.Namespace, pdb.Name))
	}
	return keys
}

// Reconcile brings one budget's status up to date.
func (c *Controller) Reconcile(ctx context.Context, key string) (reconcile.Result, error) {
	ns, name, err := reconcile.SplitKey(key)
	if err != nil {
		return reconcile.Result{}, reconcile.Terminal(err)
	}
	cached, err := c.pdbs.PodDisruptionBudgets(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return reconcile.Result{}, nil
	}
	if err != nil {
		return reconcile.Result{}, err
	}
	pdb := cached.DeepCopy()
	sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil {
		return reconcile.Result{}, reconcile.Terminal(fmt.Errorf("budget %s: selector: %w", key, err))
	}
	pods, err := c.pods.Pods(ns).List(sel)
	if err != nil {
		return reconcile.Result{}, err
	}
	if len(pods) == 0 {
		c.rec.Event(pdb, corev1.EventTypeNormal, reasonNoPods, "No matching pods found")
	}
	owners := make([]*owner, len(pods))
	var ownerErr error
	for i, p := range pods {
		if owners[i], err = c.ownerOf(p); err != nil && ownerErr == nil {
			ownerErr = err
		}
	}
	now := c.opts.Clock.Now()
	e, err := expect(pdb, pods, owners, ownerErr)
	if err != nil {
		c.rec.Eventf(pdb, corev1.EventTypeWarning, reasonCalculateFail, "Failed to calculate the number of expected pods: %v", err)
	} else if len(e.unmanaged) > 0 {
		c.rec.Eventf(pdb, corev1.EventTypeWarning, reasonUnmanagedPods,
			"Pods selected by this PodDisruptionBudget (selector: %v) were found to be unmanaged. As a result, the status of the PDB cannot be calculated correctly, which may result in undefined behavior. To account for these pods please set \".spec.minAvailable\" field of the PDB to an integer value.", sel)
	}
	st, recheck := computeStatus(pdb, pods, e, err, now, c.opts.DeletionTimeout)
	if !equality.Semantic.DeepEqual(pdb.Status, st) {
		pdb.Status = st
		if _, err := c.client.PolicyV1().PodDisruptionBudgets(ns).UpdateStatus(ctx, pdb, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return reconcile.Result{}, fmt.Errorf("budget %s: status: %w", key, err)
		}
	}
	return reconcile.Result{RequeueAfter: recheck}, nil
}

var (
	kindRC         = schema.GroupKind{Kind: "ReplicationController"}
	kindRS         = schema.GroupKind{Group: "apps", Kind: "ReplicaSet"}
	kindDeployment = schema.GroupKind{Group: "apps", Kind: "Deployment"}
	kindSet        = schema.GroupKind{Group: "apps", Kind: "StatefulSet"}
)

// ownerOf finds the workload whose scale a pod counts against: its
// ReplicationController, StatefulSet or ReplicaSet, or the Deployment
// that controls its ReplicaSet. nil without error: the pod has no
// controller. A controller that is missing, of another kind, or not the
// one the reference names (by UID) is an error.
func (c *Controller) ownerOf(pod *corev1.Pod) (*owner, error) {
	ref := metav1.GetControllerOfNoCopy(pod)
	if ref == nil {
		return nil, nil
	}
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return nil, fmt.Errorf("pod %s: owner %s: %w", pod.Name, ref.APIVersion, err)
	}
	missing := fmt.Errorf("%w %q", errNoController, pod.Name)
	switch (schema.GroupKind{Group: gv.Group, Kind: ref.Kind}) {
	case kindRC:
		rc, err := c.rcs.ReplicationControllers(pod.Namespace).Get(ref.Name)
		if err != nil || rc.UID != ref.UID {
			return nil, missing
		}
		return &owner{uid: rc.UID, scale: replicas(rc.Spec.Replicas)}, nil
	case kindSet:
		set, err := c.sets.StatefulSets(pod.Namespace).Get(ref.Name)
		if err != nil || set.UID != ref.UID {
			return nil, missing
		}
		return &owner{uid: set.UID, scale: replicas(set.Spec.Replicas)}, nil
	case kindRS:
		rs, err := c.rss.ReplicaSets(pod.Namespace).Get(ref.Name)
		if err != nil || rs.UID != ref.UID {
			return nil, missing
		}
		if dref := metav1.GetControllerOfNoCopy(rs); dref != nil && dref.Kind == kindDeployment.Kind {
			return c.deploymentOwner(rs, dref, missing)
		}
		return &owner{uid: rs.UID, scale: replicas(rs.Spec.Replicas)}, nil
	}
	return nil, fmt.Errorf("%w %q: controller kind %s has no known scale", errNoController, pod.Name, ref.Kind)
}

func (c *Controller) deploymentOwner(rs *appsv1.ReplicaSet, ref *metav1.OwnerReference, missing error) (*owner, error) {
	d, err := c.deployments.Deployments(rs.Namespace).Get(ref.Name)
	if err != nil || d.UID != ref.UID {
		return nil, missing
	}
	return &owner{uid: d.UID, scale: replicas(d.Spec.Replicas)}, nil
}

func replicas(r *int32) int32 {
	if r == nil {
		return 1
	}
	return *r
}
