package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/google/uuid"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/skiff-sh/skiff/controllers/leader"
	"github.com/skiff-sh/skiff/pki"
)

// Runnable is a long-running part: Start blocks until ctx ends.
type Runnable interface {
	Start(ctx context.Context) error
}

// Component is one control-plane loop (the scheduler, a controller). Build
// makes it from the environment; builders request their informers from the
// shared factory, which starts after every builder ran.
type Component struct {
	Name  string
	Build func(env ComponentEnv) (Runnable, error)
}

// ComponentEnv is what a component is built from.
type ComponentEnv struct {
	Client kubernetes.Interface
	// Metadata reads and deletes any resource as PartialObjectMetadata
	// (the garbage collector and namespace controller use it).
	Metadata metadata.Interface
	Factory  informers.SharedInformerFactory
	Log      *slog.Logger
	// CACertPEM is the cluster CA, for components that publish it.
	CACertPEM []byte
	// CA is the cluster CA with its key, for the components that sign
	// (the CSR signer).
	CA *pki.CA
	// ServiceCIDR is where ClusterIPs come from.
	ServiceCIDR netip.Prefix
}

// ElectedGroup is a set of components that act only while this server
// holds one Lease, as kube-controller-manager and kube-scheduler do.
// Package controlplane defines Skiff's groups.
type ElectedGroup struct {
	// Lease names the Lease in kube-system (and the group's kubeconfig).
	Lease string
	// User and Groups are the group's client certificate identity.
	User       string
	Groups     []string
	Components []Component
}

// ControlPlaneTiming tunes leader election (tests shorten it).
type ControlPlaneTiming struct {
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

// runElected runs a group under leader election until ctx ends. While
// this server leads, the group's components run on a fresh informer
// factory; when leadership is lost they all stop before the next campaign.
//
// The identity in the Lease is HOST:APIPORT_RANDOM, so an operator (and a
// test) can tell which server leads.
func runElected(ctx context.Context, cfg *rest.Config, g ElectedGroup, timing ControlPlaneTiming, ca *pki.CA, serviceCIDR netip.Prefix, apiPort int, log *slog.Logger) error {
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("%s: client: %w", g.Lease, err)
	}
	meta, err := metadata.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("%s: metadata client: %w", g.Lease, err)
	}
	host, _ := os.Hostname()
	identity := fmt.Sprintf("%s:%d_%s", host, apiPort, uuid.NewString()[:8])
	log = log.With("component", g.Lease)
	return leader.Run(ctx, client, leader.Options{
		Name:          g.Lease,
		Identity:      identity,
		LeaseDuration: timing.LeaseDuration,
		RenewDeadline: timing.RenewDeadline,
		RetryPeriod:   timing.RetryPeriod,
		Log:           log,
	}, func(lctx context.Context) {
		env := ComponentEnv{Client: client, Metadata: meta, CACertPEM: ca.CertPEM, CA: ca, ServiceCIDR: serviceCIDR}
		if err := runComponents(lctx, env, g.Components, log); err != nil {
			log.Error("components failed", "err", err)
		}
	})
}

// runComponents builds every component on one informer factory, starts
// the factory and the components, and waits until ctx ends or one of them
// fails (then the others are stopped too).
func runComponents(ctx context.Context, env ComponentEnv, comps []Component, log *slog.Logger) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	factory := informers.NewSharedInformerFactoryWithOptions(env.Client, 0, informers.WithTransform(stripManagedFields))
	env.Factory = factory
	var runs []Runnable
	var names []string
	for _, c := range comps {
		cenv := env
		cenv.Log = log.With("controller", c.Name)
		r, err := c.Build(cenv)
		if err != nil {
			return fmt.Errorf("%s: %w", c.Name, err)
		}
		runs = append(runs, r)
		names = append(names, c.Name)
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	var wg sync.WaitGroup
	errs := make(chan error, len(runs))
	for i, r := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.Start(ctx); err != nil && ctx.Err() == nil {
				errs <- fmt.Errorf("%s: %w", names[i], err)
				cancel()
			}
		}()
	}
	log.Info("control plane components running", "components", names)
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

// componentConfig is a client configuration for a control-plane group,
// with its own client certificate so the API server (and audit) can tell
// the components apart.
func componentConfig(dataDir string, ca *pki.CA, apiURL string, g ElectedGroup, now time.Time) (*rest.Config, error) {
	dir := filepath.Join(dataDir, "pki")
	certPEM, keyPEM, err := pki.EnsureClientCert(dir, g.Lease, g.User, g.Groups, ca, now)
	if err != nil {
		return nil, fmt.Errorf("%s certificate: %w", g.Lease, err)
	}
	path := filepath.Join(dataDir, g.Lease+".kubeconfig")
	if err := pki.WriteKubeconfig(path, apiURL, "skiff", g.User, ca.CertPEM, certPEM, keyPEM); err != nil {
		return nil, err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, err
	}
	// The components talk to their own server over loopback; a client-side
	// limit like kube's defaults (50-200 QPS) would cap scheduling and
	// rollouts far below what the server sustains.
	cfg.QPS, cfg.Burst = 5000, 10000
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.UserAgent = g.Lease
	return cfg, nil
}

// stripManagedFields drops metadata.managedFields from objects as they
// enter the informer caches, as kube's controllers do: no component reads
// them, and on large clusters they are a good share of the cache's memory.
func stripManagedFields(obj any) (any, error) {
	if m, ok := obj.(interface {
		SetManagedFields([]metav1.ManagedFieldsEntry)
	}); ok {
		m.SetManagedFields(nil)
	}
	return obj, nil
}
