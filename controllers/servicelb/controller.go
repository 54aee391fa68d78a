package servicelb

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-sh/skiff/controllers/reconcile"
	"github.com/skiff-sh/skiff/proxy"
)

// Options shape the controller; the zero value works.
type Options struct {
	// Workers reconcile Services in parallel; default 2.
	Workers int
	// Recorder receives Events; default one writing them through the API
	// as "service-controller", run by Start.
	Recorder record.EventRecorder
	// Log receives status changes and errors; default slog.Default().
	Log *slog.Logger
}

// Controller keeps the ingress status of Skiff's LoadBalancer Services.
// Build it with New, run it with Start.
type Controller struct {
	client kubernetes.Interface
	ctrl   *reconcile.Controller
	events *reconcile.EventRecorder // ours to run, when Options.Recorder was nil
	rec    record.EventRecorder
	log    *slog.Logger

	services corelisters.ServiceLister
	nodes    corelisters.NodeLister
	synced   []cache.InformerSynced // the node handler, registered outside ctrl.Watch

	mu      sync.Mutex
	written map[string][]string // service key -> ingress IPs last written
}

// New builds the controller on the factory's Service and Node informers;
// start the factory after New.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, opts Options) (*Controller, error) {
	if opts.Workers <= 0 {
		opts.Workers = 2
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	c := &Controller{
		client:  client,
		rec:     opts.Recorder,
		log:     opts.Log.With("controller", "servicelb"),
		written: map[string][]string{},
	}
	if c.rec == nil {
		c.events = reconcile.NewEventRecorder(client, "service-controller")
		c.rec = c.events
	}
	ctrl, err := reconcile.New(reconcile.Options{Name: "servicelb", Reconciler: c, Workers: opts.Workers, Log: opts.Log})
	if err != nil {
		return nil, err
	}
	c.ctrl = ctrl

	svcInf := factory.Core().V1().Services()
	nodeInf := factory.Core().V1().Nodes()
	c.services, c.nodes = svcInf.Lister(), nodeInf.Lister()
	if err := ctrl.Watch(svcInf.Informer(), serviceKeys); err != nil {
		return nil, err
	}
	reg, err := nodeInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if n, ok := obj.(*corev1.Node); ok && len(contributes(n)) > 0 {
				c.enqueueServed()
			}
		},
		UpdateFunc: func(oldObj, newObj any) {
			o, ok1 := oldObj.(*corev1.Node)
			n, ok2 := newObj.(*corev1.Node)
			if ok1 && ok2 && !sameIngress(contributes(o), contributes(n)) {
				c.enqueueServed()
			}
		},
		DeleteFunc: func(obj any) {
			if n, ok := reconcile.Untombstone(obj).(*corev1.Node); ok && len(contributes(n)) > 0 {
				c.enqueueServed()
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("servicelb: watching nodes: %w", err)
	}
	c.synced = append(c.synced, reg.HasSynced)
	return c, nil
}

// serviceKeys queues Services this controller may have to write: its own
// LoadBalancers and any Service with ingress status (which it may have
// to clear).
func serviceKeys(obj any) []string {
	svc, ok := reconcile.Untombstone(obj).(*corev1.Service)
	if !ok {
		return nil
	}
	if proxy.ServesLoadBalancer(svc) || len(svc.Status.LoadBalancer.Ingress) > 0 {
		return []string{reconcile.Key(svc.Namespace, svc.Name)}
	}
	return nil
}

// enqueueServed queues every Service Skiff serves as a LoadBalancer.
func (c *Controller) enqueueServed() {
	svcs, err := c.services.List(labels.Everything())
	if err != nil {
		return
	}
	for _, svc := range svcs {
		if proxy.ServesLoadBalancer(svc) {
			c.ctrl.Enqueue(reconcile.Key(svc.Namespace, svc.Name))
		}
	}
}

// Start runs the controller until ctx ends. It waits for the node cache
// first: a status computed from a partial node list would be wrong.
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

// Reconcile brings one Service's status.loadBalancer in line with the
// nodes.
func (c *Controller) Reconcile(ctx context.Context, key string) (reconcile.Result, error) {
	ns, name, err := reconcile.SplitKey(key)
	if err != nil {
		return reconcile.Result{}, reconcile.Terminal(err)
	}
	svc, err := c.services.Services(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.forget(key)
		return reconcile.Result{}, nil
	}
	if err != nil {
		return reconcile.Result{}, err
	}
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return reconcile.Result{}, err
	}
	p := decide(svc, nodes, c.remembered(key))
	if !p.write {
		return reconcile.Result{}, nil
	}
	next := svc.DeepCopy()
	next.Status.LoadBalancer = corev1.LoadBalancerStatus{Ingress: p.ingress}
	if _, err := c.client.CoreV1().Services(ns).UpdateStatus(ctx, next, metav1.UpdateOptions{}); err != nil {
		if apierrors.IsNotFound(err) {
			c.forget(key)
			return reconcile.Result{}, nil
		}
		// A conflict means the cache was behind; the retry sees the news.
		return reconcile.Result{}, fmt.Errorf("servicelb: writing status of service %s: %w", key, err)
	}
	if len(p.ingress) > 0 {
		c.remember(key, ingressIPs(p.ingress))
	} else if !proxy.ServesLoadBalancer(svc) {
		c.forget(key)
	}
	c.rec.Event(svc, p.event.kind, p.event.reason, p.event.message)
	c.log.Info("load balancer status", "service", key, "reason", p.event.reason, "ingress", describe(p.ingress))
	return reconcile.Result{}, nil
}

func (c *Controller) remembered(key string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.written[key]
}

func (c *Controller) remember(key string, ips []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.written[key] = ips
}

func (c *Controller) forget(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.written, key)
}
