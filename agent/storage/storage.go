package storage

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/skiff-sh/skiff/controllers/reconcile"
	"github.com/skiff-sh/skiff/controllers/volumebinding/pvmatch"
)

// BaseDir is where an agent with data dir agentDataDir keeps local-path
// volumes; the agent announces it on its Node (skiff.sh/local-path-base).
func BaseDir(agentDataDir string) string { return filepath.Join(agentDataDir, "storage") }

// inUseRetry is how often a released volume still used by a pod of this
// node is looked at again (pod events also bring it back).
const inUseRetry = 10 * time.Second

// claimIndex indexes this node's volumes by "namespace/name" of their
// claim.
const claimIndex = "skiff.dev/local-path-claim"

// Manager keeps the local-path volume directories of one node. Build it
// with New, run it with Run.
type Manager struct {
	client kubernetes.Interface
	node   string
	base   string
	log    *slog.Logger

	volumes corelisters.PersistentVolumeLister
	pods    corelisters.PodLister
}

// New makes the manager of node's volumes under baseDir (absolute).
func New(client kubernetes.Interface, nodeName, baseDir string, log *slog.Logger) *Manager {
	if log == nil {
		log = slog.Default()
	}
	return &Manager{client: client, node: nodeName, base: filepath.Clean(baseDir), log: log.With("component", "local-path")}
}

// Run watches volumes (and this node's pods, to know what is in use) and
// keeps the directories until ctx ends. It returns nil on a normal stop.
func (m *Manager) Run(ctx context.Context) error {
	if !filepath.IsAbs(m.base) {
		return fmt.Errorf("local-path: base directory %q is not absolute", m.base)
	}
	if err := ensureBase(m.base); err != nil {
		return err
	}
	volFactory := informers.NewSharedInformerFactory(m.client, 0)
	podFactory := informers.NewSharedInformerFactoryWithOptions(m.client, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", m.node).String()
	}))
	volInf := volFactory.Core().V1().PersistentVolumes()
	podInf := podFactory.Core().V1().Pods()
	m.volumes, m.pods = volInf.Lister(), podInf.Lister()
	ctrl, err := reconcile.New(reconcile.Options{Name: "local-path-volumes", Reconciler: m, Log: m.log})
	if err != nil {
		return err
	}
	if err := ctrl.Watch(volInf.Informer(), func(obj any) []string {
		if v, ok := reconcile.Untombstone(obj).(*corev1.PersistentVolume); ok && m.owns(v) {
			return []string{v.Name}
		}
		return nil
	}); err != nil {
		return err
	}
	// Pods going away may free released volumes; the pod lister must
	// also be synced before a release is judged safe.
	vi := volInf.Informer()
	if err := vi.AddIndexers(cache.Indexers{claimIndex: func(obj any) ([]string, error) {
		if v, ok := obj.(*corev1.PersistentVolume); ok && v.Spec.ClaimRef != nil && m.owns(v) {
			return []string{v.Spec.ClaimRef.Namespace + "/" + v.Spec.ClaimRef.Name}, nil
		}
		return nil, nil
	}}); err != nil {
		return fmt.Errorf("local-path: indexing volumes: %w", err)
	}
	if err := ctrl.Watch(podInf.Informer(), func(obj any) []string {
		p, ok := reconcile.Untombstone(obj).(*corev1.Pod)
		if !ok {
			return nil
		}
		var keys []string
		for _, claim := range pvmatch.PodClaims(p) {
			objs, _ := vi.GetIndexer().ByIndex(claimIndex, p.Namespace+"/"+claim)
			for _, o := range objs {
				if v := o.(*corev1.PersistentVolume); v.Status.Phase == corev1.VolumeReleased {
					keys = append(keys, v.Name)
				}
			}
		}
		return keys
	}); err != nil {
		return err
	}
	volFactory.Start(ctx.Done())
	podFactory.Start(ctx.Done())
	defer volFactory.Shutdown()
	defer podFactory.Shutdown()
	return ctrl.Start(ctx)
}

// owns reports whether a volume is a local-path volume of this node.
func (m *Manager) owns(v *corev1.PersistentVolume) bool {
	if v.Annotations[pvmatch.AnnProvisionedBy] != pvmatch.LocalPathProvisioner || v.Spec.Local == nil {
		return false
	}
	if n, ok := v.Annotations[pvmatch.AnnLocalPathNode]; ok {
		return n == m.node
	}
	return hostOf(v) == m.node
}

// hostOf is the single kubernetes.io/hostname a volume's affinity names.
func hostOf(v *corev1.PersistentVolume) string {
	na := v.Spec.NodeAffinity
	if na == nil || na.Required == nil || len(na.Required.NodeSelectorTerms) != 1 {
		return ""
	}
	for _, e := range na.Required.NodeSelectorTerms[0].MatchExpressions {
		if e.Key == corev1.LabelHostname && e.Operator == corev1.NodeSelectorOpIn && len(e.Values) == 1 {
			return e.Values[0]
		}
	}
	return ""
}

// Reconcile brings one volume's directory in line with the volume.
func (m *Manager) Reconcile(ctx context.Context, name string) (reconcile.Result, error) {
	v, err := m.volumes.Get(name)
	if apierrors.IsNotFound(err) {
		return reconcile.Result{}, nil
	}
	if err != nil {
		return reconcile.Result{}, fmt.Errorf("local-path: reading volume %s: %w", name, err)
	}
	if !m.owns(v) {
		return reconcile.Result{}, nil
	}
	dir, err := childOf(m.base, v.Spec.Local.Path)
	if err != nil {
		return reconcile.Result{}, reconcile.Terminal(fmt.Errorf("local-path: volume %s: %w", name, err))
	}
	switch {
	case v.Status.Phase == corev1.VolumeReleased && v.Spec.PersistentVolumeReclaimPolicy == corev1.PersistentVolumeReclaimDelete:
		return m.remove(ctx, v, dir)
	case v.Status.Phase == corev1.VolumeReleased, v.Status.Phase == corev1.VolumeFailed, v.DeletionTimestamp != nil:
		return reconcile.Result{}, nil
	}
	created, err := makeDir(m.base, dir)
	if err != nil {
		return reconcile.Result{}, fmt.Errorf("local-path: volume %s: %w", name, err)
	}
	if created {
		m.log.Info("created volume directory", "volume", name, "path", v.Spec.Local.Path)
	}
	return reconcile.Result{}, nil
}

// remove deletes a released volume's directory, then the volume, unless a
// pod of this node still uses its claim.
func (m *Manager) remove(ctx context.Context, v *corev1.PersistentVolume, dir string) (reconcile.Result, error) {
	if pod := m.user(v); pod != "" {
		m.log.Info("released volume still in use; waiting", "volume", v.Name, "pod", pod)
		return reconcile.Result{RequeueAfter: inUseRetry}, nil
	}
	if err := removeDir(m.base, dir); err != nil {
		return reconcile.Result{}, fmt.Errorf("local-path: removing the directory of volume %s: %w", v.Name, err)
	}
	uid := v.UID
	err := m.client.CoreV1().PersistentVolumes().Delete(ctx, v.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return reconcile.Result{}, fmt.Errorf("local-path: deleting volume %s: %w", v.Name, err)
	}
	m.log.Info("deleted released volume", "volume", v.Name, "path", v.Spec.Local.Path)
	return reconcile.Result{}, nil
}

// user names a pod of this node, not finished, that uses the volume's
// claim, or "".
func (m *Manager) user(v *corev1.PersistentVolume) string {
	ref := v.Spec.ClaimRef
	if ref == nil {
		return ""
	}
	pods, err := m.pods.Pods(ref.Namespace).List(labels.Everything())
	if err != nil {
		return ""
	}
	for _, p := range pods {
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		for _, c := range pvmatch.PodClaims(p) {
			if c == ref.Name {
				return p.Namespace + "/" + p.Name
			}
		}
	}
	return ""
}
