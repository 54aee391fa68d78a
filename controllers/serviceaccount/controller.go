// Package serviceaccount keeps two things in every live namespace, as
// Kubernetes' serviceaccounts-controller and root-ca-cert-publisher do: the
// "default" ServiceAccount (pods that name no account run as it) and the
// "kube-root-ca.crt" ConfigMap carrying the cluster CA, so in-cluster
// clients can verify the API server. Both are recreated when deleted, and
// the ConfigMap is put back when edited. Namespaces being deleted are left
// alone. Tokens are not this package's business.
//
// The controller reconciles namespace names; a change to a namespace, to a
// "default" ServiceAccount or to a "kube-root-ca.crt" ConfigMap queues the
// namespace it belongs to.
package serviceaccount

import (
	"context"
	"fmt"
	"log/slog"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/utils/clock"

	"github.com/skiff-sh/skiff/controllers/reconcile"
)

// Options shape the controller; the zero value works but publishes no CA.
type Options struct {
	// Workers reconcile namespaces in parallel; default 2.
	Workers int
	// Clock drives the work queue; default the real clock.
	Clock clock.WithTicker
	// Log receives errors; default slog.Default().
	Log *slog.Logger
	// RootCA is the cluster CA bundle (PEM) published as the ca.crt key of
	// the kube-root-ca.crt ConfigMap in every namespace. Empty: no
	// ConfigMap is published.
	RootCA []byte
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

// Controller keeps the default ServiceAccount and the root CA ConfigMap in
// every namespace.
type Controller struct {
	client kubernetes.Interface
	opts   Options
	ctrl   *reconcile.Controller

	namespaces corelisters.NamespaceLister
	accounts   corelisters.ServiceAccountLister
	configMaps corelisters.ConfigMapLister
}

// New builds the controller and registers its informers (Namespaces,
// ServiceAccounts, ConfigMaps) with factory; start the factory after.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, opts Options) (*Controller, error) {
	opts = opts.withDefaults()
	c := &Controller{client: client, opts: opts}
	ctrl, err := reconcile.New(reconcile.Options{
		Name: "serviceaccount", Reconciler: c, Workers: opts.Workers, Clock: opts.Clock, Log: opts.Log,
	})
	if err != nil {
		return nil, err
	}
	c.ctrl = ctrl
	nsInf := factory.Core().V1().Namespaces()
	saInf := factory.Core().V1().ServiceAccounts()
	cmInf := factory.Core().V1().ConfigMaps()
	c.namespaces, c.accounts, c.configMaps = nsInf.Lister(), saInf.Lister(), cmInf.Lister()
	if err := ctrl.Watch(nsInf.Informer(), reconcile.ObjectKeys); err != nil {
		return nil, err
	}
	if err := ctrl.Watch(saInf.Informer(), namespaceOfNamed(DefaultName)); err != nil {
		return nil, err
	}
	if len(opts.RootCA) > 0 {
		if err := ctrl.Watch(cmInf.Informer(), namespaceOfNamed(RootCAName)); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// namespaceOfNamed maps an object called name to its namespace's key.
func namespaceOfNamed(name string) reconcile.KeyFunc {
	return func(obj any) []string {
		m, ok := reconcile.Untombstone(obj).(metav1.Object)
		if !ok || m.GetName() != name {
			return nil
		}
		return []string{m.GetNamespace()}
	}
}

// Start runs the controller until ctx ends.
func (c *Controller) Start(ctx context.Context) error { return c.ctrl.Start(ctx) }

// Reconcile brings one namespace's default ServiceAccount and root CA
// ConfigMap in line.
func (c *Controller) Reconcile(ctx context.Context, key string) (reconcile.Result, error) {
	var o observed
	ns, err := c.namespaces.Get(key)
	if err != nil && !apierrors.IsNotFound(err) {
		return reconcile.Result{}, err
	}
	o.Namespace = ns
	if o.Account, err = c.accounts.ServiceAccounts(key).Get(DefaultName); err != nil && !apierrors.IsNotFound(err) {
		return reconcile.Result{}, err
	}
	if len(c.opts.RootCA) > 0 {
		if o.RootCA, err = c.configMaps.ConfigMaps(key).Get(RootCAName); err != nil && !apierrors.IsNotFound(err) {
			return reconcile.Result{}, err
		}
	}
	p := decide(o, c.opts.RootCA)
	if p.skipTerminated {
		return reconcile.Result{}, nil
	}
	if sa := p.CreateAccount; sa != nil {
		_, err := c.client.CoreV1().ServiceAccounts(key).Create(ctx, sa, metav1.CreateOptions{})
		if err := ignoreSettled(err); err != nil {
			return reconcile.Result{}, fmt.Errorf("creating serviceaccount %s/%s: %w", key, sa.Name, err)
		}
	}
	if cm := p.CreateRootCA; cm != nil {
		_, err := c.client.CoreV1().ConfigMaps(key).Create(ctx, cm, metav1.CreateOptions{})
		if err := ignoreSettled(err); err != nil {
			return reconcile.Result{}, fmt.Errorf("creating configmap %s/%s: %w", key, cm.Name, err)
		}
	}
	if cm := p.UpdateRootCA; cm != nil {
		_, err := c.client.CoreV1().ConfigMaps(key).Update(ctx, cm, metav1.UpdateOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return reconcile.Result{}, fmt.Errorf("updating configmap %s/%s: %w", key, cm.Name, err)
		}
	}
	return reconcile.Result{}, nil
}

// ignoreSettled drops the create errors that need no retry: the object
// is already there (our cache lags), or the namespace is being deleted
// and takes no new content (its next change queues it again).
func ignoreSettled(err error) error {
	if err == nil || apierrors.IsAlreadyExists(err) || apierrors.IsForbidden(err) || apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
