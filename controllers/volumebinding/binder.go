package volumebinding

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"

	"github.com/skiff-sh/skiff/controllers/reconcile"
	"github.com/skiff-sh/skiff/controllers/volumebinding/pvmatch"
)

// BinderComponent is the component name on the binder's Events, as
// Kubernetes' controller names itself.
const BinderComponent = "persistentvolume-controller"

// BinderOptions shape the binder. The zero value is usable.
type BinderOptions struct {
	// Workers is how many keys are handled at once; default 2.
	Workers int
	// Resync is how often every unbound claim and every volume is looked
	// at again even without events; default 15s, as Kubernetes'.
	Resync time.Duration
	// Clock stamps phase transitions and drives the queue; default real.
	Clock clock.WithTicker
	// Log receives errors and bindings; default slog.Default().
	Log *slog.Logger
}

// Queue keys: claims and volumes never contain ':' in their names.
const (
	claimPrefix  = "claim:"
	volumePrefix = "volume:"
	resyncKey    = "resync"
)

// claimRefIndex indexes volumes by the "namespace/name" of their claimRef.
const claimRefIndex = "skiff.dev/volumebinding-claimref"

// Binder is the persistent volume binder. Build it with NewBinder, run it
// with Start.
type Binder struct {
	client kubernetes.Interface
	opts   BinderOptions
	log    *slog.Logger
	events *reconcile.EventRecorder

	claims   corelisters.PersistentVolumeClaimLister
	volumes  corelisters.PersistentVolumeLister
	volIndex cache.Indexer
	classes  storagelisters.StorageClassLister
	nodes    corelisters.NodeLister
	ctrl     *reconcile.Controller

	// fixedClass holds the claims whose class the API server refused to
	// set after creation: they are left without one.
	fixedClass sync.Map // types.UID -> struct{}
}

// NewBinder builds the binder on the factory's claim, volume, class and
// node informers; start the factory after it.
func NewBinder(client kubernetes.Interface, factory informers.SharedInformerFactory, opts BinderOptions) (*Binder, error) {
	if opts.Workers <= 0 {
		opts.Workers = 2
	}
	if opts.Resync <= 0 {
		opts.Resync = 15 * time.Second
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	b := &Binder{
		client: client,
		opts:   opts,
		log:    opts.Log.With("controller", "volumebinding"),
		events: reconcile.NewEventRecorder(client, BinderComponent),
	}
	core := factory.Core().V1()
	claimInf, volInf := core.PersistentVolumeClaims(), core.PersistentVolumes()
	classInf := factory.Storage().V1().StorageClasses()
	b.claims, b.volumes = claimInf.Lister(), volInf.Lister()
	b.classes, b.nodes = classInf.Lister(), core.Nodes().Lister()
	vi := volInf.Informer()
	if err := vi.AddIndexers(cache.Indexers{claimRefIndex: func(obj any) ([]string, error) {
		if v, ok := obj.(*corev1.PersistentVolume); ok && v.Spec.ClaimRef != nil {
			return []string{reconcile.Key(v.Spec.ClaimRef.Namespace, v.Spec.ClaimRef.Name)}, nil
		}
		return nil, nil
	}}); err != nil {
		return nil, fmt.Errorf("volumebinding: indexing volumes: %w", err)
	}
	b.volIndex = vi.GetIndexer()
	// The node informer only feeds the lister; make sure it exists.
	_ = core.Nodes().Informer()

	ctrl, err := reconcile.New(reconcile.Options{
		Name: "volumebinding", Reconciler: b, Workers: opts.Workers, Clock: opts.Clock, Log: opts.Log,
	})
	if err != nil {
		return nil, err
	}
	b.ctrl = ctrl
	if err := ctrl.Watch(claimInf.Informer(), b.claimKeys); err != nil {
		return nil, err
	}
	if err := ctrl.Watch(vi, volumeKeys); err != nil {
		return nil, err
	}
	if err := ctrl.Watch(classInf.Informer(), b.classKeys); err != nil {
		return nil, err
	}
	ctrl.EnqueueAfter(resyncKey, opts.Resync)
	return b, nil
}

// Start runs the binder until ctx ends.
func (b *Binder) Start(ctx context.Context) error {
	go func() { _ = b.events.Start(ctx) }()
	return b.ctrl.Start(ctx)
}

// claimKeys maps a claim event to the claim and the volumes that name it
// or that it names (a deleted claim releases them).
func (b *Binder) claimKeys(obj any) []string {
	c, ok := reconcile.Untombstone(obj).(*corev1.PersistentVolumeClaim)
	if !ok {
		return nil
	}
	key := reconcile.Key(c.Namespace, c.Name)
	keys := []string{claimPrefix + key}
	if c.Spec.VolumeName != "" {
		keys = append(keys, volumePrefix+c.Spec.VolumeName)
	}
	objs, _ := b.volIndex.ByIndex(claimRefIndex, key)
	for _, o := range objs {
		if v, ok := o.(*corev1.PersistentVolume); ok && v.Name != c.Spec.VolumeName {
			keys = append(keys, volumePrefix+v.Name)
		}
	}
	return keys
}

// volumeKeys maps a volume event to the volume and the claim it names.
// Any volume change may also help a waiting claim: those are found by
// the class key of the volume's class.
func volumeKeys(obj any) []string {
	v, ok := reconcile.Untombstone(obj).(*corev1.PersistentVolume)
	if !ok {
		return nil
	}
	keys := []string{volumePrefix + v.Name}
	if ref := v.Spec.ClaimRef; ref != nil {
		keys = append(keys, claimPrefix+reconcile.Key(ref.Namespace, ref.Name))
	}
	if v.Spec.ClaimRef == nil && v.Status.Phase == corev1.VolumeAvailable {
		// A newly available volume may suit claims of its class.
		keys = append(keys, classPrefix+pvmatch.VolumeClass(v))
	}
	return keys
}

// classPrefix keys "every unbound claim of this class" (and, for a
// default class, claims without one).
const classPrefix = "class:"

func (b *Binder) classKeys(obj any) []string {
	sc, ok := reconcile.Untombstone(obj).(*storagev1.StorageClass)
	if !ok {
		return nil
	}
	return []string{classPrefix + sc.Name}
}

// Reconcile handles one key.
func (b *Binder) Reconcile(ctx context.Context, key string) (reconcile.Result, error) {
	switch {
	case strings.HasPrefix(key, claimPrefix):
		ns, name, err := reconcile.SplitKey(strings.TrimPrefix(key, claimPrefix))
		if err != nil {
			return reconcile.Result{}, reconcile.Terminal(err)
		}
		return reconcile.Result{}, b.syncClaim(ctx, ns, name)
	case strings.HasPrefix(key, volumePrefix):
		return reconcile.Result{}, b.syncVolume(ctx, strings.TrimPrefix(key, volumePrefix))
	case strings.HasPrefix(key, classPrefix):
		return reconcile.Result{}, b.enqueueClaimsOf(strings.TrimPrefix(key, classPrefix), false)
	case key == resyncKey:
		if err := b.enqueueClaimsOf("", true); err != nil {
			return reconcile.Result{RequeueAfter: b.opts.Resync}, err
		}
		vols, err := b.volumes.List(labels.Everything())
		if err != nil {
			return reconcile.Result{RequeueAfter: b.opts.Resync}, fmt.Errorf("volumebinding: listing volumes: %w", err)
		}
		for _, v := range vols {
			if v.Status.Phase != corev1.VolumeBound || v.Spec.ClaimRef == nil {
				b.ctrl.Enqueue(volumePrefix + v.Name)
			}
		}
		return reconcile.Result{RequeueAfter: b.opts.Resync}, nil
	}
	return reconcile.Result{}, reconcile.Terminal(fmt.Errorf("volumebinding: unknown key %q", key))
}

// enqueueClaimsOf queues the claims that are not bound: of class (and,
// when class is the default, those without a class), or all of them.
func (b *Binder) enqueueClaimsOf(class string, all bool) error {
	claims, err := b.claims.List(labels.Everything())
	if err != nil {
		return fmt.Errorf("volumebinding: listing claims: %w", err)
	}
	if all {
		// Forget refusals of claims that are gone.
		live := make(map[types.UID]bool, len(claims))
		for _, c := range claims {
			live[c.UID] = true
		}
		b.fixedClass.Range(func(k, _ any) bool {
			if !live[k.(types.UID)] {
				b.fixedClass.Delete(k)
			}
			return true
		})
	}
	isDefault := false
	if !all {
		if sc, err := b.classes.Get(class); err == nil && pvmatch.IsDefaultClass(sc) {
			isDefault = true
		}
	}
	for _, c := range claims {
		if c.Status.Phase == corev1.ClaimBound && c.Spec.VolumeName != "" {
			continue
		}
		if all || pvmatch.ClaimClass(c) == class || (isDefault && !pvmatch.HasClass(c)) {
			b.ctrl.Enqueue(claimPrefix + reconcile.Key(c.Namespace, c.Name))
		}
	}
	return nil
}

// syncClaim gathers what planClaim needs and carries out its plan.
func (b *Binder) syncClaim(ctx context.Context, ns, name string) error {
	c, err := b.claims.PersistentVolumeClaims(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("volumebinding: reading claim %s/%s: %w", ns, name, err)
	}
	s := claimState{Claim: c}
	if class := pvmatch.ClaimClass(c); class != "" {
		if sc, err := b.classes.Get(class); err == nil {
			s.Class = sc
		}
	}
	if c.Spec.VolumeName != "" {
		if v, err := b.volumes.Get(c.Spec.VolumeName); err == nil {
			s.Volume = v
		}
	} else {
		if s.Volumes, err = b.volumes.List(labels.Everything()); err != nil {
			return fmt.Errorf("volumebinding: listing volumes: %w", err)
		}
		if _, refused := b.fixedClass.Load(c.UID); !pvmatch.HasClass(c) && !refused {
			classes, err := b.classes.List(labels.Everything())
			if err != nil {
				return fmt.Errorf("volumebinding: listing classes: %w", err)
			}
			if d := pvmatch.DefaultClass(classes); d != nil {
				s.DefaultClass = d.Name
			}
		}
	}
	if node := c.Annotations[pvmatch.AnnSelectedNode]; node != "" {
		if n, err := b.nodes.Get(node); err == nil {
			s.Node = n
		}
	}
	return b.applyClaim(ctx, c, planClaim(s))
}

// syncVolume decides a volume's phase and carries it out.
func (b *Binder) syncVolume(ctx context.Context, name string) error {
	v, err := b.volumes.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("volumebinding: reading volume %s: %w", name, err)
	}
	var claim *corev1.PersistentVolumeClaim
	if ref := v.Spec.ClaimRef; ref != nil {
		if c, err := b.claims.PersistentVolumeClaims(ref.Namespace).Get(ref.Name); err == nil {
			claim = c
		}
	}
	p := planVolume(v, claim)
	if p.Release && v.Status.Phase != corev1.VolumeReleased && v.Status.Phase != corev1.VolumeFailed {
		// The cache may not have seen the claim yet: ask before letting go.
		ref := v.Spec.ClaimRef
		live, err := b.client.CoreV1().PersistentVolumeClaims(ref.Namespace).Get(ctx, ref.Name, metaGet)
		switch {
		case err == nil && live.UID == ref.UID:
			b.ctrl.Enqueue(claimPrefix + reconcile.Key(ref.Namespace, ref.Name))
			return nil
		case err != nil && !apierrors.IsNotFound(err):
			return fmt.Errorf("volumebinding: checking claim %s/%s of volume %s: %w", ref.Namespace, ref.Name, v.Name, err)
		}
	}
	return b.applyVolume(ctx, v, p)
}
