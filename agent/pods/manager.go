package pods

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/clock"

	"github.com/skiff-sh/skiff/agent/prober"
	"github.com/skiff-sh/skiff/agent/volumes"
	"github.com/skiff-sh/skiff/controllers/reconcile"
)

// Config is what the pod manager needs from the agent.
type Config struct {
	NodeName string
	Client   kubernetes.Interface
	Runtime  runtimeapi.RuntimeServiceClient
	Images   runtimeapi.ImageServiceClient
	Volumes  *volumes.Manager
	// PodDir holds per-pod files the agent writes (etc-hosts): PodDir/<uid>.
	PodDir string
	// LogDir holds the containers' logs: LogDir/<ns>_<name>_<uid>/<container>/<n>.log.
	LogDir string
	// NodeIPs are the node's addresses (hostIP of every pod).
	NodeIPs []netip.Addr
	// ClusterDNS is the cluster DNS service address pods with dnsPolicy
	// ClusterFirst resolve through; ClusterDomain its domain (cluster.local).
	ClusterDNS    []string
	ClusterDomain string
	// ResolvConf is the host's resolv.conf, for dnsPolicy Default.
	ResolvConf string
	// CgroupRoot is the cgroup parent of all pods (e.g. /skiff/NODE).
	CgroupRoot string
	// LocalImage reports whether an image was imported on this node (built
	// in, air-gap or `skiff image import`). Such images count as already
	// resolved for imagePullPolicy Always, as the node is their registry.
	LocalImage func(ref string) bool
	// RestoreLocal, if set, re-imports a local image the runtime lost
	// (one LocalImage knows) and reports whether it is back; such images
	// are never pulled, since no registry has them.
	RestoreLocal func(ctx context.Context, ref string) bool
	// Allocatable is the node's allocatable resources (resourceFieldRef
	// defaults for containers without limits).
	Allocatable corev1.ResourceList
	// Clock is the time; default the real clock.
	Clock clock.WithTicker
	// Log receives what happens; default slog.Default().
	Log *slog.Logger
}

// Manager runs the pods of one node.
type Manager struct {
	cfg      Config
	log      *slog.Logger
	clock    clock.WithTicker
	events   *reconcile.EventRecorder
	pods     corelisters.PodLister
	byUID    cache.Indexer
	services corelisters.ServiceLister
	podsSync cache.InformerSynced
	svcSync  cache.InformerSynced
	probes   *prober.Manager
	backoff  *backoff
	metrics  *metrics

	mu      sync.Mutex
	workers map[types.UID]*worker
	seen    map[types.UID]string // relist fingerprints
	ctx     context.Context
}

// New builds the manager; Run starts it.
func New(cfg Config) (*Manager, error) {
	if cfg.NodeName == "" || cfg.Client == nil || cfg.Runtime == nil || cfg.Images == nil || cfg.Volumes == nil {
		return nil, fmt.Errorf("pods: NodeName, Client, Runtime, Images and Volumes are required")
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.ClusterDomain == "" {
		cfg.ClusterDomain = "cluster.local"
	}
	if cfg.ResolvConf == "" {
		cfg.ResolvConf = "/etc/resolv.conf"
	}
	if cfg.LocalImage == nil {
		cfg.LocalImage = func(string) bool { return false }
	}
	m := &Manager{
		cfg:     cfg,
		log:     cfg.Log.With("component", "pods"),
		clock:   cfg.Clock,
		events:  reconcile.NewHostEventRecorder(cfg.Client, "kubelet", cfg.NodeName),
		backoff: newBackoff(),
		metrics: newMetrics(cfg.NodeName),
		workers: map[types.UID]*worker{},
		seen:    map[types.UID]string{},
	}
	m.probes = prober.NewManager(m.probeUpdate, cfg.Clock)
	m.probes.OnProbe(m.probeEvent)
	return m, nil
}

// Run serves the node's pods until ctx ends. Containers keep running when
// it returns: stopping the agent is not deleting its pods.
func (m *Manager) Run(ctx context.Context) error {
	m.ctx = ctx
	go func() { _ = m.events.Start(ctx) }()
	podFactory := informers.NewSharedInformerFactoryWithOptions(m.cfg.Client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", m.cfg.NodeName).String()
		}))
	factory := informers.NewSharedInformerFactory(m.cfg.Client, 0)
	podInf := podFactory.Core().V1().Pods()
	svcInf := factory.Core().V1().Services()
	m.pods = podInf.Lister()
	if err := podInf.Informer().AddIndexers(cache.Indexers{uidIndex: func(obj any) ([]string, error) {
		if p, ok := obj.(*corev1.Pod); ok {
			return []string{string(p.UID)}, nil
		}
		return nil, nil
	}}); err != nil {
		return fmt.Errorf("pods: indexing pods: %w", err)
	}
	m.byUID = podInf.Informer().GetIndexer()
	m.services = svcInf.Lister()
	m.podsSync = podInf.Informer().HasSynced
	m.svcSync = svcInf.Informer().HasSynced
	if _, err := podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { m.podChanged(obj) },
		UpdateFunc: func(_, obj any) { m.podUpdated(obj) },
		DeleteFunc: func(obj any) { m.podChanged(reconcile.Untombstone(obj)) },
	}); err != nil {
		return fmt.Errorf("pods: watching pods: %w", err)
	}
	podFactory.Start(ctx.Done())
	factory.Start(ctx.Done())
	defer podFactory.Shutdown()
	defer factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), m.podsSync, m.svcSync) {
		return ctx.Err()
	}
	// Adopt: every pod the runtime has gets a worker, so that pods deleted
	// while the agent was away are cleaned up.
	m.relist(ctx, true)
	m.sweepOrphanDirs()
	relist := m.clock.NewTicker(time.Second)
	defer relist.Stop()
	resync := m.clock.NewTicker(10 * time.Second)
	defer resync.Stop()
	for {
		select {
		case <-ctx.Done():
			m.stopWorkers()
			return nil
		case <-relist.C():
			m.relist(ctx, false)
		case <-resync.C():
			m.resyncAll()
			m.sweepOrphanDirs()
		}
	}
}

func (m *Manager) podChanged(obj any) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	m.kick(p.UID, p.Namespace, p.Name)
}

// podUpdated wakes a pod's worker, except for the echo of the worker's own
// status write (which would only re-run the same sync and, say, turn
// ErrImagePull into ImagePullBackOff before anyone could see it).
func (m *Manager) podUpdated(obj any) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	m.mu.Lock()
	w := m.workers[p.UID]
	m.mu.Unlock()
	if w != nil && w.ownWrite(p.ResourceVersion) {
		return
	}
	m.kick(p.UID, p.Namespace, p.Name)
}

// kick wakes the worker of a pod, starting one if needed.
func (m *Manager) kick(uid types.UID, ns, name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	w := m.workers[uid]
	if w == nil {
		if m.ctx == nil || m.ctx.Err() != nil {
			return
		}
		w = newWorker(m, uid, ns, name)
		m.workers[uid] = w
		go w.run(m.ctx)
	}
	w.wake()
}

// workerDone forgets a worker that finished its pod for good, unless it
// was woken meanwhile (kick wakes under the same lock, so no wake-up is
// lost between the worker's last sync and its exit).
func (m *Manager) workerDone(w *worker) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	select {
	case <-w.wakeCh:
		return false
	default:
	}
	delete(m.workers, w.uid)
	delete(m.seen, w.uid)
	return true
}

func (m *Manager) stopWorkers() {
	m.mu.Lock()
	ws := make([]*worker, 0, len(m.workers))
	for _, w := range m.workers {
		ws = append(ws, w)
	}
	m.mu.Unlock()
	for _, w := range ws {
		<-w.done
	}
}

// relist compares the runtime with the last look and wakes the pods whose
// containers or sandboxes changed (or, with all, every pod found).
func (m *Manager) relist(ctx context.Context, all bool) {
	snap, err := snapshot(ctx, m.cfg.Runtime, m.cfg.NodeName)
	if err != nil {
		if ctx.Err() == nil {
			m.log.Warn("relist failed", "err", err)
		}
		return
	}
	byUID := make(map[string]*podRuntime, len(snap))
	for uid, r := range snap {
		byUID[string(uid)] = r
	}
	m.metrics.observeSnapshot(byUID)
	var changed []types.UID
	m.mu.Lock()
	for uid, r := range snap {
		fp := r.fingerprint()
		if all || m.seen[uid] != fp {
			m.seen[uid] = fp
			changed = append(changed, uid)
		}
	}
	m.mu.Unlock()
	for _, uid := range changed {
		ns, name := "", ""
		if r := snap[uid]; r != nil && len(r.sandboxes) > 0 {
			ns, name = r.sandboxes[0].Metadata.GetNamespace(), r.sandboxes[0].Metadata.GetName()
		}
		m.kick(uid, ns, name)
	}
}

// resyncAll wakes every known pod (periodic work: volume refresh, status).
func (m *Manager) resyncAll() {
	pods, err := m.pods.List(labels.Everything())
	if err != nil {
		return
	}
	for _, p := range pods {
		m.kick(p.UID, p.Namespace, p.Name)
	}
}

// sweepOrphanDirs removes the volume and pod directories of pods that
// have neither an API object nor a worker (deleted while the agent was
// away, after their containers were already gone).
func (m *Manager) sweepOrphanDirs() {
	uids, err := m.cfg.Volumes.PodDirs()
	if err != nil {
		return
	}
	for _, uid := range uids {
		m.mu.Lock()
		_, busy := m.workers[uid]
		m.mu.Unlock()
		if busy || m.podByUID(uid) != nil {
			continue
		}
		if err := m.cfg.Volumes.Teardown(uid); err != nil {
			m.log.Warn("removing orphaned pod volumes", "uid", uid, "err", err)
			continue
		}
		_ = os.RemoveAll(filepath.Join(m.cfg.PodDir, string(uid)))
	}
}

// uidIndex indexes the node's pods by UID.
const uidIndex = "uid"

// podByUID finds a pod of this node in the informer by UID.
func (m *Manager) podByUID(uid types.UID) *corev1.Pod {
	objs, err := m.byUID.ByIndex(uidIndex, string(uid))
	if err != nil || len(objs) == 0 {
		return nil
	}
	p, _ := objs[0].(*corev1.Pod)
	return p
}

// probeUpdate hears from the prober and wakes the pod.
func (m *Manager) probeUpdate(u prober.Update) {
	m.mu.Lock()
	w := m.workers[u.PodUID]
	m.mu.Unlock()
	if w == nil {
		return
	}
	w.probeResult(u)
	w.wake()
}

// probeEvent records an Unhealthy event for a failed probe attempt.
func (m *Manager) probeEvent(u prober.Update) {
	if u.Message == "" {
		return
	}
	m.mu.Lock()
	w := m.workers[u.PodUID]
	m.mu.Unlock()
	if w == nil {
		return
	}
	if pod := m.currentPod(w); pod != nil {
		m.events.Event(pod, corev1.EventTypeWarning, "Unhealthy", u.Message)
	}
}
