package ingress

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	networkinglisters "k8s.io/client-go/listers/networking/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/skiff-sh/skiff/controllers/reconcile"
)

// Config configures a Controller. Zero values take the defaults.
type Config struct {
	// HTTPAddr and HTTPSAddr are the listen addresses, ":80" and ":443"
	// by default.
	HTTPAddr, HTTPSAddr string
	// ClassName is the IngressClass served, "skiff" by default.
	ClassName string
	// NodeAddresses lists the addresses written to the Ingresses'
	// status.loadBalancer.ingress (IPs, or host names). With UpdateStatus
	// but no NodeAddresses, status is left alone.
	NodeAddresses func() []string
	// UpdateStatus makes this instance the cluster's one writer: it fills
	// Ingress status and reports the Warning events about bad Ingresses.
	// Every instance logs the problems and routes regardless.
	UpdateStatus bool
	// StatusOnly opens no listener and serves nothing: the instance only
	// writes status and events (with UpdateStatus), as the controller
	// manager's copy does for the whole cluster.
	StatusOnly bool
	// Log receives the controller's logs; nil discards them.
	Log *slog.Logger
}

const (
	// minRebuildInterval spaces table rebuilds; changes arriving meanwhile
	// are folded into the next one.
	minRebuildInterval = 100 * time.Millisecond
	// statusResync rewrites status this often, for node address changes.
	statusResync = 30 * time.Second
	// shutdownGrace is how long Run waits for requests in flight.
	shutdownGrace = 5 * time.Second
	// eventComponent is the source of the Events.
	eventComponent = "skiff-ingress"
)

// Controller watches Ingresses and serves them. Make one with New and call
// Run once.
type Controller struct {
	client kubernetes.Interface
	cfg    Config
	log    *slog.Logger

	factory        informers.SharedInformerFactory
	secretsFactory informers.SharedInformerFactory
	ingresses      networkinglisters.IngressLister
	classes        networkinglisters.IngressClassLister
	services       corelisters.ServiceLister
	slices         discoverylisters.EndpointSliceLister
	secrets        corelisters.SecretLister
	synced         []cache.InformerSynced

	httpLn, httpsLn net.Listener
	handler         *handler
	transport       *http.Transport
	fallbackCert    *tls.Certificate
	events          *reconcile.EventRecorder // nil unless UpdateStatus

	table atomic.Pointer[Table]
	refs  atomic.Pointer[references]
	dirty chan struct{}

	// Owned by the Run loop.
	certs    map[types.NamespacedName]certEntry
	reported map[string]map[string]bool // by problemOwner
}

// certEntry caches a parsed Secret. It is keyed by the informer's object:
// an update replaces the object, a resync keeps it.
type certEntry struct {
	src  *corev1.Secret
	cert *tls.Certificate
	err  error
}

// New registers the informers the controller needs (Ingresses,
// IngressClasses, Services and EndpointSlices on factory; TLS Secrets on an
// informer of its own, filtered by type) and opens the listeners, so Addrs
// works at once. The listeners are closed when Run returns.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, cfg Config) (*Controller, error) {
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = ":80"
	}
	if cfg.HTTPSAddr == "" {
		cfg.HTTPSAddr = ":443"
	}
	if cfg.ClassName == "" {
		cfg.ClassName = DefaultClassName
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	fallback, err := selfSigned(time.Now())
	if err != nil {
		return nil, fmt.Errorf("ingress: default certificate: %w", err)
	}
	c := &Controller{
		client:       client,
		cfg:          cfg,
		log:          log,
		factory:      factory,
		fallbackCert: fallback,
		dirty:        make(chan struct{}, 1),
		certs:        map[types.NamespacedName]certEntry{},
		reported:     map[string]map[string]bool{},
	}
	if cfg.UpdateStatus {
		c.events = reconcile.NewEventRecorder(client, eventComponent)
	}
	if err := c.registerInformers(); err != nil {
		return nil, err
	}
	if cfg.StatusOnly {
		return c, nil
	}
	if c.httpLn, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		return nil, fmt.Errorf("ingress: listen http: %w", err)
	}
	if c.httpsLn, err = net.Listen("tcp", cfg.HTTPSAddr); err != nil {
		_ = c.httpLn.Close()
		return nil, fmt.Errorf("ingress: listen https: %w", err)
	}
	httpsPort := ""
	if _, p, err := net.SplitHostPort(c.httpsLn.Addr().String()); err == nil && p != "443" {
		httpsPort = p
	}
	proxy, tr := newReverseProxy(log)
	c.transport = tr
	c.handler = &handler{table: &c.table, proxy: proxy, httpsPort: httpsPort, roll: rand.IntN}
	return c, nil
}

// Addrs returns the addresses the HTTP and HTTPS listeners are bound to
// (not for a StatusOnly controller, which has none).
func (c *Controller) Addrs() (http, https net.Addr) {
	return c.httpLn.Addr(), c.httpsLn.Addr()
}

// registerInformers sets up the listers and the event handlers that mark
// the table dirty. Services, EndpointSlices and Secrets only count when an
// Ingress refers to them.
func (c *Controller) registerInformers() error {
	ing := c.factory.Networking().V1().Ingresses()
	cls := c.factory.Networking().V1().IngressClasses()
	svc := c.factory.Core().V1().Services()
	sl := c.factory.Discovery().V1().EndpointSlices()
	c.secretsFactory = informers.NewSharedInformerFactoryWithOptions(c.client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = "type=" + string(corev1.SecretTypeTLS)
		}))
	sec := c.secretsFactory.Core().V1().Secrets()
	c.ingresses, c.classes, c.services, c.slices, c.secrets =
		ing.Lister(), cls.Lister(), svc.Lister(), sl.Lister(), sec.Lister()

	always := func(any) bool { return true }
	regs := []struct {
		inf      cache.SharedIndexInformer
		relevant func(any) bool
		changed  func(old, new any) bool
	}{
		{ing.Informer(), always, ingressChanged},
		{cls.Informer(), always, nil},
		{svc.Informer(), func(o any) bool { return c.refers(o, func(r *references) map[string]bool { return r.services }, "") }, nil},
		{sl.Informer(), func(o any) bool {
			return c.refers(o, func(r *references) map[string]bool { return r.services }, discoveryv1.LabelServiceName)
		}, nil},
		{sec.Informer(), func(o any) bool { return c.refers(o, func(r *references) map[string]bool { return r.secrets }, "") }, nil},
	}
	for _, r := range regs {
		relevant, changed := r.relevant, r.changed
		_, err := r.inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc: func(o any) {
				if relevant(o) {
					c.markDirty()
				}
			},
			UpdateFunc: func(old, o any) {
				if (changed == nil || changed(old, o)) && (relevant(o) || relevant(old)) {
					c.markDirty()
				}
			},
			DeleteFunc: func(o any) {
				if relevant(o) {
					c.markDirty()
				}
			},
		})
		if err != nil {
			return fmt.Errorf("ingress: add event handler: %w", err)
		}
		c.synced = append(c.synced, r.inf.HasSynced)
	}
	return nil
}

// ingressChanged ignores updates that cannot change routing, such as the
// status this controller writes.
func ingressChanged(old, new any) bool {
	o, ok1 := old.(*networkingv1.Ingress)
	n, ok2 := new.(*networkingv1.Ingress)
	if !ok1 || !ok2 {
		return true
	}
	return !equality.Semantic.DeepEqual(o.Spec, n.Spec) || !equality.Semantic.DeepEqual(o.Annotations, n.Annotations)
}

// refers reports whether an object (or a tombstone of one) is referred to
// by an Ingress. With label set, the name is read from that label (the
// Service of an EndpointSlice). Before the first rebuild everything is.
func (c *Controller) refers(o any, set func(*references) map[string]bool, label string) bool {
	r := c.refs.Load()
	if r == nil {
		return true
	}
	if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
		o = t.Obj
	}
	m, ok := o.(metav1.Object)
	if !ok {
		return true
	}
	name := m.GetName()
	if label != "" {
		name = m.GetLabels()[label]
	}
	return set(r)[m.GetNamespace()+"/"+name]
}

func (c *Controller) markDirty() {
	select {
	case c.dirty <- struct{}{}:
	default:
	}
}

// Run syncs the informers, serves HTTP and HTTPS, and keeps the table up to
// date until ctx ends; then it stops the servers (waiting briefly for
// requests in flight) and returns nil. It returns an error when the
// informers never sync or a listener fails.
func (c *Controller) Run(ctx context.Context) error {
	if !c.cfg.StatusOnly {
		defer func() {
			_ = c.httpLn.Close()
			_ = c.httpsLn.Close()
		}()
	}
	c.factory.Start(ctx.Done())
	inner, cancel := context.WithCancel(ctx)
	defer c.secretsFactory.Shutdown()
	defer cancel()
	c.secretsFactory.Start(inner.Done())
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		return fmt.Errorf("ingress: informers did not sync: %w", context.Cause(ctx))
	}

	var wg sync.WaitGroup
	defer wg.Wait()
	if c.events != nil {
		wg.Go(func() { _ = c.events.Start(inner) })
	}
	c.rebuild(inner)
	if c.cfg.StatusOnly {
		c.log.Info("ingress: writing status and events", "class", c.cfg.ClassName)
		err := c.loop(inner, nil)
		cancel()
		return err
	}

	errLog := slog.NewLogLogger(c.log.Handler(), slog.LevelDebug)
	plain := &http.Server{Handler: c.handler, ReadHeaderTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, ErrorLog: errLog}
	plain.Protocols = new(http.Protocols)
	plain.Protocols.SetHTTP1(true)
	plain.Protocols.SetUnencryptedHTTP2(true)
	secure := &http.Server{
		Handler:           c.handler,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          errLog,
		TLSConfig:         &tls.Config{GetCertificate: c.getCertificate, MinVersion: tls.VersionTLS12},
	}
	errc := make(chan error, 2)
	wg.Go(func() { errc <- plain.Serve(c.httpLn) })
	wg.Go(func() { errc <- secure.ServeTLS(c.httpsLn, "", "") })
	c.log.Info("ingress: serving", "http", c.httpLn.Addr().String(), "https", c.httpsLn.Addr().String(), "class", c.cfg.ClassName)

	failed := c.loop(inner, errc)
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer scancel()
	_ = plain.Shutdown(sctx)
	_ = secure.Shutdown(sctx)
	c.transport.CloseIdleConnections()
	cancel()
	return failed
}

// loop rebuilds the table on changes and rewrites status periodically until
// ctx ends or a server fails (errc; nil when there are no servers).
func (c *Controller) loop(ctx context.Context, errc <-chan error) error {
	tick := time.NewTicker(statusResync)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			if !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("ingress: server: %w", err)
			}
			return nil
		case <-c.dirty:
			c.rebuild(ctx)
			select {
			case <-ctx.Done():
			case <-time.After(minRebuildInterval):
			}
		case <-tick.C:
			if t := c.table.Load(); t != nil && c.cfg.UpdateStatus {
				c.syncStatus(ctx, t)
			}
		}
	}
}

// getCertificate picks the certificate by SNI, or the self-signed one.
func (c *Controller) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if t := c.table.Load(); t != nil {
		if cert := t.Certificate(NormalizeHost(hello.ServerName)); cert != nil {
			return cert, nil
		}
	}
	return c.fallbackCert, nil
}

// rebuild makes a new table from the informers' caches and swaps it in.
func (c *Controller) rebuild(ctx context.Context) {
	ings, err := c.ingresses.List(labels.Everything())
	if err != nil {
		c.log.Error("ingress: list ingresses", "err", err)
		return
	}
	// Publish what the Ingresses refer to before reading those objects, so
	// a change landing during the build still marks the table dirty.
	c.refs.Store(referencesOf(ings))
	classes, err := c.classes.List(labels.Everything())
	if err != nil {
		c.log.Error("ingress: list ingress classes", "err", err)
		return
	}
	used := map[types.NamespacedName]bool{}
	t, problems := Build(Snapshot{
		ClassName: c.cfg.ClassName,
		Ingresses: ings,
		Classes:   classes,
		Service: func(ns, name string) *corev1.Service {
			s, err := c.services.Services(ns).Get(name)
			if err != nil {
				return nil
			}
			return s
		},
		EndpointSlices: func(ns, svc string) []*discoveryv1.EndpointSlice {
			sel := labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: svc})
			s, err := c.slices.EndpointSlices(ns).List(sel)
			if err != nil {
				return nil
			}
			return s
		},
		Certificate: func(ns, name string) (*tls.Certificate, error) {
			k := types.NamespacedName{Namespace: ns, Name: name}
			used[k] = true
			return c.certificate(k)
		},
	})
	for k := range c.certs {
		if !used[k] {
			delete(c.certs, k)
		}
	}
	c.table.Store(t)
	c.report(problems)
	if c.cfg.UpdateStatus {
		c.syncStatus(ctx, t)
	}
}

// certificate loads a TLS Secret through the cache of parsed ones.
func (c *Controller) certificate(k types.NamespacedName) (*tls.Certificate, error) {
	s, err := c.secrets.Secrets(k.Namespace).Get(k.Name)
	if err != nil {
		return nil, fmt.Errorf("%w (or not of type %s)", ErrSecretNotFound, corev1.SecretTypeTLS)
	}
	if e, ok := c.certs[k]; ok && e.src == s {
		return e.cert, e.err
	}
	cert, err := certFromSecret(s)
	c.certs[k] = certEntry{src: s, cert: cert, err: err}
	return cert, err
}
