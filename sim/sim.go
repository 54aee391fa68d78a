// Package sim simulates a fleet of Kubernetes nodes against a Skiff (or any
// Kubernetes) API server, as API clients only: it registers Node objects,
// renews their Leases in kube-node-lease, posts their status, and plays the
// node agent's part for pods bound to them (Pending -> Running with an IP,
// Job-like pods running to completion or failure, graceful deletions
// confirmed). Nothing runs: there are no containers, only the API writes a
// node would make, so thousands of nodes fit in one process for scheduler
// and controller tests and benchmarks.
//
// Three loops, each a reconcile.Controller with its own bounded pool of
// workers so a burst of pod work never delays lease renewals:
//
//	nodes   key: node name   register the Node; post status every StatusInterval
//	leases  key: node name   renew the Lease every LeaseInterval
//	pods    key: ns/name     ONE pod informer (spec.nodeName set), filtered to the fleet
//
// The fleet's periodic writes are spread evenly: node i of N renews at
// start + i*LeaseInterval/N + k*LeaseInterval, and posts status on the same
// pattern over StatusInterval. What each pod's status should be is decided
// by planPod (pod.go), a pure function of the pod and the time.
package sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/skiff-sh/skiff/controllers/reconcile"
)

// simulator is one running fleet.
type simulator struct {
	client kubernetes.Interface
	opts   Options
	log    *slog.Logger
	start  time.Time // origin of the fleet's write slots

	nodes  []simNode
	byName map[string]*simNode

	nodeInformer cache.SharedIndexInformer
	podInformer  cache.SharedIndexInformer
	ipam         *ipam

	leases map[string]*leaseState // fixed once the loops start
}

// Run simulates opts.Nodes nodes until ctx ends. It returns nil after a
// normal stop (having deleted the fleet's Nodes and Leases if
// opts.Cleanup), or the first error that stopped it.
func Run(ctx context.Context, client kubernetes.Interface, opts Options) error {
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return err
	}
	s := &simulator{
		client: client,
		opts:   opts,
		log:    opts.Log.With("component", "sim"),
		start:  opts.Now(),
		byName: make(map[string]*simNode, opts.Nodes),
		ipam:   newIPAM(),
		leases: make(map[string]*leaseState, opts.Nodes),
	}
	s.nodes = make([]simNode, opts.Nodes)
	for i := range s.nodes {
		s.nodes[i] = newSimNode(opts.NamePrefix, i)
		s.byName[s.nodes[i].name] = &s.nodes[i]
	}
	s.nodeInformer = coreinformers.NewFilteredNodeInformer(client, 0, cache.Indexers{}, func(lo *metav1.ListOptions) {
		lo.LabelSelector = labels.SelectorFromSet(labels.Set{LabelType: LabelTypeValue}).String()
	})
	s.podInformer = coreinformers.NewFilteredPodInformer(client, metav1.NamespaceAll, 0, cache.Indexers{}, func(lo *metav1.ListOptions) {
		lo.FieldSelector = fields.OneTermNotEqualSelector("spec.nodeName", "").String()
	})

	controllers, err := s.controllers()
	if err != nil {
		return err
	}
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	goRun := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(runCtx); err != nil {
				cancel(fmt.Errorf("sim: %s: %w", name, err))
			}
		}()
	}
	goRun("node informer", func(ctx context.Context) error { s.nodeInformer.RunWithContext(ctx); return nil })
	goRun("pod informer", func(ctx context.Context) error { s.podInformer.RunWithContext(ctx); return nil })
	for _, c := range controllers {
		goRun(c.Name(), c.Start)
	}
	wg.Wait()

	err = context.Cause(runCtx)
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		err = nil // the caller stopped us
	}
	if opts.Cleanup {
		if cerr := s.cleanup(); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}
	return err
}

// controllers builds the three loops and queues their first keys.
func (s *simulator) controllers() ([]*reconcile.Controller, error) {
	quick := func() workqueue.TypedRateLimiter[string] {
		return workqueue.NewTypedItemExponentialFailureRateLimiter[string](100*time.Millisecond, 10*time.Second)
	}
	nodes, err := reconcile.New(reconcile.Options{
		Name: "sim-nodes", Reconciler: reconcile.Func(s.reconcileNode),
		Workers: s.opts.Workers, RateLimiter: quick(), Log: s.log,
	})
	if err != nil {
		return nil, err
	}
	if err := nodes.Watch(s.nodeInformer, s.nodeKeys); err != nil {
		return nil, err
	}
	leases, err := reconcile.New(reconcile.Options{
		Name: "sim-leases", Reconciler: reconcile.Func(s.reconcileLease),
		Workers: s.opts.Workers, RateLimiter: quick(), Log: s.log,
	})
	if err != nil {
		return nil, err
	}
	pods, err := reconcile.New(reconcile.Options{
		Name: "sim-pods", Reconciler: reconcile.Func(s.reconcilePod),
		Workers: s.opts.Workers,
		// Kubernetes' backoff with a cap that suits a simulator.
		RateLimiter: workqueue.NewTypedItemExponentialFailureRateLimiter[string](5*time.Millisecond, 10*time.Second),
		Log:         s.log,
	})
	if err != nil {
		return nil, err
	}
	if err := pods.Watch(s.podInformer, s.podKeys); err != nil {
		return nil, err
	}
	// Lease renewals wait for the first slot, so the fleet's renewals are
	// spread from the start; registration is immediate.
	for i, n := range s.nodes {
		nodes.Enqueue(n.name)
		first := slotOrigin(s.start, s.opts.LeaseInterval, i, len(s.nodes))
		s.leases[n.name] = &leaseState{due: first}
		leases.EnqueueAfter(n.name, first.Sub(s.start))
	}
	return []*reconcile.Controller{nodes, leases, pods}, nil
}

// nodeKeys maps a Node event to its key if the node is in the fleet.
func (s *simulator) nodeKeys(obj any) []string {
	n, ok := reconcile.Untombstone(obj).(*corev1.Node)
	if !ok || s.byName[n.Name] == nil {
		return nil
	}
	return []string{n.Name}
}

// podKeys maps a Pod event to its key if it is bound to a fleet node.
func (s *simulator) podKeys(obj any) []string {
	p, ok := reconcile.Untombstone(obj).(*corev1.Pod)
	if !ok || s.byName[p.Spec.NodeName] == nil {
		return nil
	}
	return []string{reconcile.Key(p.Namespace, p.Name)}
}

// cleanup deletes the fleet's Nodes and Leases, Workers at a time.
func (s *simulator) cleanup() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
		sem  = make(chan struct{}, s.opts.Workers)
	)
	for _, n := range s.nodes {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			err := ignoreNotFound(s.client.CoreV1().Nodes().Delete(ctx, n.name, metav1.DeleteOptions{}))
			if err == nil {
				err = ignoreNotFound(s.client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Delete(ctx, n.name, metav1.DeleteOptions{}))
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("sim: deleting node %s: %w", n.name, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
