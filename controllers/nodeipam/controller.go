package nodeipam

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/skiff-sh/skiff/controllers/reconcile"
)

// Options shape the controller. The zero value takes the defaults.
type Options struct {
	// ClusterCIDR is the pod network; default 10.42.0.0/16.
	ClusterCIDR string
	// NodeMaskSize is the prefix length of each node's podCIDR; default 24.
	NodeMaskSize int
	// Log receives allocations and errors; default slog.Default().
	Log *slog.Logger
}

// Controller allocates node podCIDRs. Build it with New, run it with Start.
type Controller struct {
	client kubernetes.Interface
	nodes  corelisters.NodeLister
	ctrl   *reconcile.Controller
	events *reconcile.EventRecorder
	log    *slog.Logger

	mu    sync.Mutex
	alloc *allocator
	held  map[string]netip.Prefix // node -> its recorded subnet
}

// New builds the controller on the factory's Node informer; start the
// factory after New.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, opts Options) (*Controller, error) {
	if opts.ClusterCIDR == "" {
		opts.ClusterCIDR = "10.42.0.0/16"
	}
	if opts.NodeMaskSize == 0 {
		opts.NodeMaskSize = 24
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	cluster, err := netip.ParsePrefix(opts.ClusterCIDR)
	if err != nil {
		return nil, fmt.Errorf("nodeipam: cluster CIDR %q: %w", opts.ClusterCIDR, err)
	}
	a, err := newAllocator(cluster, opts.NodeMaskSize)
	if err != nil {
		return nil, err
	}
	c := &Controller{
		client: client,
		alloc:  a,
		held:   map[string]netip.Prefix{},
		log:    opts.Log.With("controller", "nodeipam"),
		events: reconcile.NewEventRecorder(client, "nodeipam"),
	}
	inf := factory.Core().V1().Nodes()
	c.nodes = inf.Lister()
	ctrl, err := reconcile.New(reconcile.Options{Name: "nodeipam", Reconciler: c, Log: opts.Log})
	if err != nil {
		return nil, err
	}
	c.ctrl = ctrl
	// Occupancy follows the informer directly, so it is complete before
	// the first reconcile (Start waits for the cache to sync).
	if _, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.observe(obj) },
		UpdateFunc: func(_, obj any) { c.observe(obj) },
		DeleteFunc: func(obj any) { c.forget(obj) },
	}); err != nil {
		return nil, fmt.Errorf("nodeipam: watching nodes: %w", err)
	}
	if err := ctrl.Watch(inf.Informer(), func(obj any) []string {
		if n, ok := reconcile.Untombstone(obj).(*corev1.Node); ok && n.Spec.PodCIDR == "" && n.DeletionTimestamp == nil {
			return []string{n.Name}
		}
		return nil
	}); err != nil {
		return nil, err
	}
	return c, nil
}

// Start runs the controller until ctx ends.
func (c *Controller) Start(ctx context.Context) error {
	go func() { _ = c.events.Start(ctx) }()
	return c.ctrl.Start(ctx)
}

func (c *Controller) observe(obj any) {
	n, ok := obj.(*corev1.Node)
	if !ok || n.Spec.PodCIDR == "" {
		return
	}
	p, err := netip.ParsePrefix(n.Spec.PodCIDR)
	if err != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.held[n.Name]; ok && old == p {
		return
	}
	if c.alloc.occupy(p, n.Name) {
		c.held[n.Name] = p
	}
}

func (c *Controller) forget(obj any) {
	n, ok := reconcile.Untombstone(obj).(*corev1.Node)
	if !ok {
		return
	}
	c.mu.Lock()
	p, held := c.held[n.Name]
	if held {
		c.alloc.release(p, n.Name)
		delete(c.held, n.Name)
	}
	c.mu.Unlock()
	if held {
		// A freed range may unblock nodes that found the pool full.
		nodes, _ := c.nodes.List(labels.Everything())
		for _, o := range nodes {
			if o.Spec.PodCIDR == "" {
				c.ctrl.Enqueue(o.Name)
			}
		}
	}
}

// Reconcile gives the named node a podCIDR if it has none.
func (c *Controller) Reconcile(ctx context.Context, name string) (reconcile.Result, error) {
	node, err := c.nodes.Get(name)
	if apierrors.IsNotFound(err) {
		return reconcile.Result{}, nil
	}
	if err != nil {
		return reconcile.Result{}, err
	}
	if node.Spec.PodCIDR != "" || node.DeletionTimestamp != nil {
		return reconcile.Result{}, nil
	}
	c.mu.Lock()
	p, held := c.held[name]
	if !held {
		p, err = c.alloc.next(name)
		if err == nil {
			c.held[name] = p
		}
	}
	c.mu.Unlock()
	if err != nil {
		// Retrying cannot help until a node goes away (forget re-queues).
		c.events.Event(node, corev1.EventTypeWarning, "CIDRNotAvailable", fmt.Sprintf("Node %s status is now: CIDRNotAvailable (%v)", name, err))
		return reconcile.Result{}, nil
	}
	patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"podCIDR": p.String(), "podCIDRs": []string{p.String()}}})
	if _, err := c.client.CoreV1().Nodes().Patch(ctx, name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
		if apierrors.IsNotFound(err) {
			c.mu.Lock()
			c.alloc.release(p, name)
			delete(c.held, name)
			c.mu.Unlock()
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, fmt.Errorf("nodeipam: setting podCIDR of %s: %w", name, err)
	}
	c.log.Info("allocated podCIDR", "node", name, "podCIDR", p)
	return reconcile.Result{}, nil
}
