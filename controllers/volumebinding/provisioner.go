package volumebinding

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"

	"github.com/skiff-sh/skiff/controllers/reconcile"
	"github.com/skiff-sh/skiff/controllers/volumebinding/pvmatch"
)

// ProvisionerOptions shape the local-path provisioner. The zero value is
// usable.
type ProvisionerOptions struct {
	// DefaultBase is the directory volumes go under on nodes that do not
	// announce theirs (annotation skiff.sh/local-path-base); default
	// /var/lib/skiff/agent/storage.
	DefaultBase string
	// NoDefaultClass skips creating the built-in local-path StorageClass.
	NoDefaultClass bool
	// Workers is how many claims are handled at once; default 2.
	Workers int
	// Log receives errors and provisionings; default slog.Default().
	Log *slog.Logger
}

// Provisioner is the built-in local-path provisioner. Build it with
// NewProvisioner, run it with Start.
type Provisioner struct {
	client kubernetes.Interface
	opts   ProvisionerOptions
	log    *slog.Logger
	events *reconcile.EventRecorder

	claims  corelisters.PersistentVolumeClaimLister
	volumes corelisters.PersistentVolumeLister
	classes storagelisters.StorageClassLister
	nodes   corelisters.NodeLister
	ctrl    *reconcile.Controller
}

// NewProvisioner builds the provisioner on the factory's claim, volume,
// class and node informers; start the factory after it.
func NewProvisioner(client kubernetes.Interface, factory informers.SharedInformerFactory, opts ProvisionerOptions) (*Provisioner, error) {
	if opts.DefaultBase == "" {
		opts.DefaultBase = pvmatch.DefaultLocalPathBase
	}
	if opts.Workers <= 0 {
		opts.Workers = 2
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	p := &Provisioner{
		client: client,
		opts:   opts,
		log:    opts.Log.With("controller", "local-path-provisioner"),
		events: reconcile.NewEventRecorder(client, pvmatch.LocalPathProvisioner),
	}
	core := factory.Core().V1()
	claimInf := core.PersistentVolumeClaims()
	p.claims, p.volumes = claimInf.Lister(), core.PersistentVolumes().Lister()
	p.classes, p.nodes = factory.Storage().V1().StorageClasses().Lister(), core.Nodes().Lister()
	_ = core.PersistentVolumes().Informer()
	_ = core.Nodes().Informer()
	ctrl, err := reconcile.New(reconcile.Options{
		Name: "local-path-provisioner", Reconciler: p, Workers: opts.Workers, Log: opts.Log,
	})
	if err != nil {
		return nil, err
	}
	p.ctrl = ctrl
	if err := ctrl.Watch(claimInf.Informer(), func(obj any) []string {
		c, ok := reconcile.Untombstone(obj).(*corev1.PersistentVolumeClaim)
		if !ok || c.Spec.VolumeName != "" || c.Annotations[pvmatch.AnnSelectedNode] == "" && c.Annotations[pvmatch.AnnStorageProvisioner] == "" {
			return nil
		}
		return []string{reconcile.Key(c.Namespace, c.Name)}
	}); err != nil {
		return nil, err
	}
	return p, nil
}

// Start creates the built-in class if it is missing, then provisions
// until ctx ends.
func (p *Provisioner) Start(ctx context.Context) error {
	go func() { _ = p.events.Start(ctx) }()
	if !p.opts.NoDefaultClass {
		if err := p.ensureClass(ctx); err != nil {
			return err
		}
	}
	return p.ctrl.Start(ctx)
}

// ensureClass creates the local-path StorageClass unless it exists (a
// user's edits are kept). It is the default only if no other class is.
// API errors are retried until ctx ends.
func (p *Provisioner) ensureClass(ctx context.Context) error {
	classes := p.client.StorageV1().StorageClasses()
	wait := 100 * time.Millisecond
	for {
		err := func() error {
			if _, err := classes.Get(ctx, pvmatch.LocalPathClass, metav1.GetOptions{}); err == nil {
				return nil
			} else if !apierrors.IsNotFound(err) {
				return err
			}
			sc := LocalPathClass()
			list, err := classes.List(ctx, metav1.ListOptions{})
			if err != nil {
				return err
			}
			for i := range list.Items {
				if pvmatch.IsDefaultClass(&list.Items[i]) {
					delete(sc.Annotations, pvmatch.AnnDefaultClass)
				}
			}
			if _, err := classes.Create(ctx, sc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
				return err
			}
			p.log.Info("created the built-in storage class", "class", sc.Name, "default", pvmatch.IsDefaultClass(sc))
			return nil
		}()
		if err == nil {
			return nil
		}
		p.log.Warn("creating the built-in storage class", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(2*wait, 10*time.Second)
	}
}

// Reconcile provisions a volume for the claim ns/name if it needs one.
func (p *Provisioner) Reconcile(ctx context.Context, key string) (reconcile.Result, error) {
	ns, name, err := reconcile.SplitKey(key)
	if err != nil {
		return reconcile.Result{}, reconcile.Terminal(err)
	}
	c, err := p.claims.PersistentVolumeClaims(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return reconcile.Result{}, nil
	}
	if err != nil {
		return reconcile.Result{}, fmt.Errorf("local-path: reading claim %s: %w", key, err)
	}
	in := provisionInput{Claim: c, DefaultBase: p.opts.DefaultBase}
	if class := pvmatch.ClaimClass(c); class != "" {
		if sc, err := p.classes.Get(class); err == nil {
			in.Class = sc
		}
	}
	if _, err := p.volumes.Get(VolumeName(c)); err == nil {
		in.Exists = true
	}
	if node := c.Annotations[pvmatch.AnnSelectedNode]; node != "" {
		if n, err := p.nodes.Get(node); err == nil {
			in.Node = n
		} else if apierrors.IsNotFound(err) {
			// The cache may lag behind a node that just joined.
			if n, err := p.client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{}); err == nil {
				in.Node = n
			} else if !apierrors.IsNotFound(err) {
				return reconcile.Result{}, fmt.Errorf("local-path: reading node %s: %w", node, err)
			}
		}
	}
	plan := planProvision(in)
	switch {
	case plan.Volume != nil:
		return reconcile.Result{}, p.provision(ctx, c, plan.Volume)
	case plan.Fail != "":
		p.events.Event(c, corev1.EventTypeWarning, ReasonProvisioningFailed, "failed to provision volume with StorageClass "+
			fmt.Sprintf("%q: %s", in.Class.Name, plan.Fail))
		if plan.Unselect {
			patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]any{pvmatch.AnnSelectedNode: nil}}})
			if _, err := p.client.CoreV1().PersistentVolumeClaims(ns).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return reconcile.Result{}, fmt.Errorf("local-path: clearing the selected node of claim %s: %w", key, err)
			}
		}
	}
	return reconcile.Result{}, nil
}

// provision creates the volume; the binder then binds it to the claim.
func (p *Provisioner) provision(ctx context.Context, c *corev1.PersistentVolumeClaim, v *corev1.PersistentVolume) error {
	key := reconcile.Key(c.Namespace, c.Name)
	_, err := p.client.CoreV1().PersistentVolumes().Create(ctx, v, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	if err != nil {
		p.events.Event(c, corev1.EventTypeWarning, ReasonProvisioningFailed, fmt.Sprintf("failed to provision volume: %v", err))
		return fmt.Errorf("local-path: creating volume %s for claim %s: %w", v.Name, key, err)
	}
	p.events.Event(c, corev1.EventTypeNormal, ReasonProvisioning, fmt.Sprintf("External provisioner is provisioning volume for claim %q", key))
	p.events.Event(c, corev1.EventTypeNormal, ReasonProvisioningSucceeded, "Successfully provisioned volume "+v.Name)
	p.log.Info("provisioned", "claim", key, "volume", v.Name, "node", c.Annotations[pvmatch.AnnSelectedNode], "path", v.Spec.Local.Path)
	return nil
}
