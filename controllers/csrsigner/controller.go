package csrsigner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	certlisters "k8s.io/client-go/listers/certificates/v1"
	"k8s.io/utils/clock"

	"github.com/skiff-sh/skiff/controllers/reconcile"
	"github.com/skiff-sh/skiff/pki"
)

// DefaultMaxValidity is how long issued certificates live at most, and
// when a request does not say (Kubernetes' --cluster-signing-duration).
const DefaultMaxValidity = 365 * 24 * time.Hour

// Options shape the controller. The zero value is usable.
type Options struct {
	// Workers is how many requests are handled at once; default 2.
	Workers int
	// Clock is the signing time; default the real clock.
	Clock clock.WithTicker
	// Log receives approvals, issued certificates and failures; default
	// slog.Default().
	Log *slog.Logger
	// MaxValidity caps the lifetime of issued certificates; default
	// DefaultMaxValidity.
	MaxValidity time.Duration
	// ProtectedDNSNames and ProtectedNetworks are names and addresses a
	// node serving certificate may not carry without a person's approval,
	// beyond the kubernetes Service's names, which are always protected.
	// Pass the Service CIDR here, so no node can pose as the API server's
	// ClusterIP.
	ProtectedDNSNames []string
	ProtectedNetworks []netip.Prefix
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
	if o.MaxValidity <= 0 {
		o.MaxValidity = DefaultMaxValidity
	}
	return o
}

// Controller approves and signs node certificate requests. Build it with
// New, run it with Start.
type Controller struct {
	client kubernetes.Interface
	ca     *pki.CA
	opts   Options
	policy sanPolicy
	log    *slog.Logger
	csrs   certlisters.CertificateSigningRequestLister
	ctrl   *reconcile.Controller
}

// New builds the controller on the factory's CertificateSigningRequest
// informer; start the factory after New. ca signs the certificates.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, ca *pki.CA, opts Options) (*Controller, error) {
	if ca == nil || ca.Cert == nil || ca.Key == nil {
		return nil, errors.New("csrsigner: no CA to sign with")
	}
	opts = opts.withDefaults()
	c := &Controller{
		client: client,
		ca:     ca,
		opts:   opts,
		policy: sanPolicy{dnsNames: opts.ProtectedDNSNames, networks: opts.ProtectedNetworks},
		log:    opts.Log.With("controller", "csrsigner"),
	}
	inf := factory.Certificates().V1().CertificateSigningRequests()
	c.csrs = inf.Lister()
	ctrl, err := reconcile.New(reconcile.Options{
		Name: "csrsigner", Reconciler: c, Workers: opts.Workers, Clock: opts.Clock, Log: opts.Log,
	})
	if err != nil {
		return nil, err
	}
	c.ctrl = ctrl
	if err := ctrl.Watch(inf.Informer(), reconcile.ObjectKeys); err != nil {
		return nil, err
	}
	return c, nil
}

// Start runs the controller until ctx ends.
func (c *Controller) Start(ctx context.Context) error { return c.ctrl.Start(ctx) }

// Reconcile approves the request if it is a node's, else signs it if it
// is approved; each write brings the request back through here.
func (c *Controller) Reconcile(ctx context.Context, name string) (reconcile.Result, error) {
	csr, err := c.csrs.Get(name)
	if apierrors.IsNotFound(err) {
		return reconcile.Result{}, nil
	}
	if err != nil {
		return reconcile.Result{}, fmt.Errorf("csrsigner: reading %s: %w", name, err)
	}
	now := metav1.NewTime(c.opts.Clock.Now().Truncate(time.Second))
	if a := decideApproval(csr, c.policy); a.approve {
		return reconcile.Result{}, c.approve(ctx, csr, a.message, now)
	}
	s := decideSigning(csr, c.opts.MaxValidity)
	switch {
	case s.fail != "":
		return reconcile.Result{}, c.fail(ctx, csr, s.fail, now)
	case s.sign:
		return reconcile.Result{}, c.sign(ctx, csr, s, now)
	}
	return reconcile.Result{}, nil
}

func (c *Controller) approve(ctx context.Context, csr *certificatesv1.CertificateSigningRequest, message string, now metav1.Time) error {
	next := csr.DeepCopy()
	next.Status.Conditions = append(next.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
		Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue,
		Reason: reasonAutoApproved, Message: message, LastUpdateTime: now, LastTransitionTime: now,
	})
	_, err := c.client.CertificatesV1().CertificateSigningRequests().UpdateApproval(ctx, next.Name, next, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("csrsigner: approving %s: %w", csr.Name, err)
	}
	c.log.Info("approved certificate request", "request", csr.Name, "signer", csr.Spec.SignerName, "requester", csr.Spec.Username)
	return nil
}

func (c *Controller) fail(ctx context.Context, csr *certificatesv1.CertificateSigningRequest, message string, now metav1.Time) error {
	next := csr.DeepCopy()
	next.Status.Conditions = append(next.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
		Type: certificatesv1.CertificateFailed, Status: corev1.ConditionTrue,
		Reason: reasonSignerFailure, Message: message, LastUpdateTime: now, LastTransitionTime: now,
	})
	_, err := c.client.CertificatesV1().CertificateSigningRequests().UpdateStatus(ctx, next, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("csrsigner: marking %s failed: %w", csr.Name, err)
	}
	c.log.Info("refused to sign certificate request", "request", csr.Name, "signer", csr.Spec.SignerName, "reason", message)
	return nil
}

func (c *Controller) sign(ctx context.Context, csr *certificatesv1.CertificateSigningRequest, s signing, now metav1.Time) error {
	certPEM, err := c.ca.SignCSR(s.der, s.usages, s.validity, now.Time)
	if err != nil {
		// The request passed the signer's checks, so what fails is the
		// CA (expired, unusable key): retrying cannot help until it changes.
		return reconcile.Terminal(fmt.Errorf("csrsigner: signing %s: %w", csr.Name, err))
	}
	next := csr.DeepCopy()
	next.Status.Certificate = certPEM
	_, err = c.client.CertificatesV1().CertificateSigningRequests().UpdateStatus(ctx, next, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("csrsigner: storing the certificate of %s: %w", csr.Name, err)
	}
	c.log.Info("issued certificate", "request", csr.Name, "signer", csr.Spec.SignerName, "requester", csr.Spec.Username, "validity", s.validity)
	return nil
}
