package replicaset

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"

	"github.com/skiff-sh/skiff/controllers/reconcile"
)

// Options shape a Controller. The zero value is usable.
type Options struct {
	// Workers is how many sets are reconciled at once; default 5.
	Workers int
	// Clock is the time of decisions and of the queue; default the real clock.
	Clock clock.WithTicker
	// Recorder receives the controller's events; default a
	// reconcile.EventRecorder writing them through the API (started and
	// stopped by Start).
	Recorder record.EventRecorder
	// Log receives errors; default slog.Default().
	Log *slog.Logger
	// BurstReplicas bounds the creations or deletions of one reconcile;
	// default DefaultBurstReplicas.
	BurstReplicas int
	// ExpectationsTTL is how long unobserved creations and deletions hold
	// a set back; default reconcile.DefaultExpectationsTTL.
	ExpectationsTTL time.Duration
}

// Controller converges ReplicaSets or ReplicationControllers (one kind per
// Controller).
type Controller struct {
	kind   kind
	client kubernetes.Interface
	pods   corelisters.PodLister
	exp    *reconcile.Expectations
	loop   *reconcile.Controller
	rec    record.EventRecorder
	ownRec *reconcile.EventRecorder // set when Start runs the recorder
	clock  clock.WithTicker
	log    *slog.Logger
	burst  int
}

// New builds the ReplicaSet controller. It asks factory for the ReplicaSet
// and Pod informers; start the factory after New.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, opts Options) (*Controller, error) {
	return newController(client, factory, newReplicaSets(client, factory), opts)
}

// NewReplicationController builds the ReplicationController controller. It
// asks factory for the ReplicationController and Pod informers; start the
// factory after it.
func NewReplicationController(client kubernetes.Interface, factory informers.SharedInformerFactory, opts Options) (*Controller, error) {
	return newController(client, factory, newReplicationControllers(client, factory), opts)
}

func newController(client kubernetes.Interface, factory informers.SharedInformerFactory, k kind, opts Options) (*Controller, error) {
	if opts.Workers <= 0 {
		opts.Workers = 5
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	c := &Controller{
		kind:   k,
		client: client,
		exp:    reconcile.NewExpectations(opts.ExpectationsTTL),
		rec:    opts.Recorder,
		clock:  opts.Clock,
		log:    opts.Log.With("controller", k.component()),
		burst:  opts.BurstReplicas,
	}
	if c.rec == nil {
		c.ownRec = reconcile.NewEventRecorder(client, k.component())
		c.rec = c.ownRec
	}
	podInf := factory.Core().V1().Pods()
	c.pods = podInf.Lister()
	loop, err := reconcile.New(reconcile.Options{
		Name:       k.component(),
		Reconciler: c,
		Workers:    opts.Workers,
		Clock:      opts.Clock,
		Log:        opts.Log,
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", k.component(), err)
	}
	c.loop = loop
	if err := loop.Watch(k.informer(), reconcile.ObjectKeys); err != nil {
		return nil, fmt.Errorf("%s: %w", k.component(), err)
	}
	if err := loop.Watch(podInf.Informer(), c.podKeys); err != nil {
		return nil, fmt.Errorf("%s: %w", k.component(), err)
	}
	if _, err := podInf.Informer().AddEventHandler(c.observer()); err != nil {
		return nil, fmt.Errorf("%s: observing pods: %w", k.component(), err)
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

// Reconcile converges the set named by key: claim its pods, create or
// delete pods when its expectations allow, and write its status.
func (c *Controller) Reconcile(ctx context.Context, key string) (reconcile.Result, error) {
	ns, name, err := reconcile.SplitKey(key)
	if err != nil {
		return reconcile.Result{}, reconcile.Terminal(err)
	}
	s, err := c.kind.get(ns, name)
	switch {
	case apierrors.IsNotFound(err):
		c.exp.Forget(key)
		return reconcile.Result{}, nil
	case errors.Is(err, errBadSet):
		return reconcile.Result{}, reconcile.Terminal(err)
	case err != nil:
		return reconcile.Result{}, err
	}
	now := c.clock.Now()
	deleting := s.meta.GetDeletionTimestamp() != nil
	canAct := c.exp.Satisfied(key, now) && !deleting

	all, err := c.pods.Pods(ns).List(labels.Everything())
	if err != nil {
		return reconcile.Result{}, fmt.Errorf("listing pods of %s: %w", key, err)
	}
	var active []*corev1.Pod
	for _, p := range all {
		if IsActive(p) {
			active = append(active, p)
		}
	}
	owned, err := c.claim(ctx, s, Claim(s.meta.GetUID(), deleting, s.selector, active))
	if err != nil {
		return reconcile.Result{}, err
	}

	var manageErr error
	diff := len(owned) - int(s.replicas)
	if canAct && diff != 0 {
		related, err := c.related(s, active, owned)
		if err != nil {
			return reconcile.Result{}, err
		}
		manageErr = c.manage(ctx, key, s, Decide(Input{
			Replicas: s.replicas, Owned: owned, Related: related,
			MinReadySeconds: s.minReady, Now: now, Burst: c.burst,
		}))
	}

	var terminating []*corev1.Pod
	for _, p := range Owned(s.meta.GetUID(), s.selector, all) {
		if IsTerminating(p) {
			terminating = append(terminating, p)
		}
	}
	st := ComputeStatus(s.status, StatusInput{
		Generation:       s.meta.GetGeneration(),
		Replicas:         s.replicas,
		MinReadySeconds:  s.minReady,
		TemplateLabels:   s.template.Labels,
		Active:           owned,
		Terminating:      terminating,
		CountTerminating: s.countTerminating,
		ManageErr:        manageErr,
		Diff:             diff,
		Now:              now,
	})
	if !equalStatus(st, s.status) {
		if err := c.kind.writeStatus(ctx, s, st); err != nil {
			return reconcile.Result{}, errors.Join(manageErr, err)
		}
	}
	if manageErr != nil {
		return reconcile.Result{}, manageErr
	}
	var res reconcile.Result
	if wait, ok := NextAvailable(owned, s.minReady, now); ok {
		res.RequeueAfter = wait
	}
	return res, nil
}

// related are the active pods of s and of its siblings (sets with the same
// controller), which rank deletions.
func (c *Controller) related(s *set, active, owned []*corev1.Pod) ([]*corev1.Pod, error) {
	owner := controllerUID(s.meta)
	if owner == "" {
		return owned, nil
	}
	sets, err := c.kind.list(s.meta.GetNamespace())
	if err != nil {
		return nil, err
	}
	siblings := map[string]bool{string(s.meta.GetUID()): true}
	for _, o := range sets {
		if controllerUID(o.meta) == owner {
			siblings[string(o.meta.GetUID())] = true
		}
	}
	var out []*corev1.Pod
	for _, p := range active {
		if uid := controllerUID(p); uid != "" && siblings[uid] {
			out = append(out, p)
		}
	}
	return out, nil
}
