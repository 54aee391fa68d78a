package netpol

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	networkinglisters "k8s.io/client-go/listers/networking/v1"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/knftables"
)

// Defaults for Config.
const (
	DefaultTableName       = "skiff-netpol"
	DefaultSyncPeriod      = 60 * time.Second
	DefaultMinSyncInterval = 100 * time.Millisecond
)

// Config configures an Enforcer.
type Config struct {
	// NodeName is this node: only its pods are policed here.
	NodeName string
	// Bridge is the node's pod bridge. Traffic of local pods passes through
	// it, bridged or routed.
	Bridge string
	// PodCIDR is this node's pod range. When valid, a pod on this node is
	// policed only if its address lies in it.
	PodCIDR netip.Prefix
	// TableName is the nftables table (family ip); default "skiff-netpol".
	// Agents sharing a network namespace need distinct names.
	TableName string
	// Log receives sync errors and summaries; default slog.Default().
	Log *slog.Logger
	// MinSyncInterval is the shortest time between two syncs: changes
	// closer together are applied in one transaction; default 100ms.
	MinSyncInterval time.Duration
	// SyncPeriod is the interval of full rewrites of the table; default 60s.
	SyncPeriod time.Duration
}

func (c *Config) defaults() {
	if c.TableName == "" {
		c.TableName = DefaultTableName
	}
	if c.MinSyncInterval <= 0 {
		c.MinSyncInterval = DefaultMinSyncInterval
	}
	if c.SyncPeriod <= 0 {
		c.SyncPeriod = DefaultSyncPeriod
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
}

// Stats describes the enforcer's syncs.
type Stats struct {
	LastSync   time.Time // end of the last successful sync
	Syncs      uint64    // successful syncs that ran a transaction
	Failures   uint64
	LastError  string // "" after a success
	Policies   int    // policies selecting local pods, at the last sync
	Operations int    // operations in the last transaction
}

// Enforcer programs one node's NetworkPolicy table from informer caches.
type Enforcer struct {
	cfg  Config
	node nodeView
	nft  knftables.Interface
	// bridgeNF makes sure bridged IPv4 traffic reaches the ip family's
	// forward hook; replaced in tests that run in another namespace.
	bridgeNF func() error

	factory    informers.SharedInformerFactory
	synced     []cache.InformerSynced
	policies   networkinglisters.NetworkPolicyLister
	pods       corelisters.PodLister
	namespaces corelisters.NamespaceLister

	trigger chan struct{}

	mu       sync.Mutex
	prev     *ruleset // last programmed; nil: rewrite the table
	stats    Stats
	warnings map[string]bool // reported already
}

// New builds an Enforcer watching NetworkPolicies, Pods and Namespaces
// through factory (one is made from client when factory is nil) and
// programming its table with the nft binary. Run starts the informers.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, cfg Config) (*Enforcer, error) {
	cfg.defaults()
	nft, err := knftables.New(knftables.IPv4Family, cfg.TableName)
	if err != nil {
		return nil, fmt.Errorf("netpol: nftables unavailable: %w", err)
	}
	return newEnforcer(client, factory, cfg, nft)
}

// newEnforcer is New with the nftables interface given (a knftables.Fake,
// or one bound to a test's network namespace).
func newEnforcer(client kubernetes.Interface, factory informers.SharedInformerFactory, cfg Config, nft knftables.Interface) (*Enforcer, error) {
	cfg.defaults()
	if cfg.Bridge == "" {
		return nil, errors.New("netpol: Config.Bridge is required")
	}
	if factory == nil {
		if client == nil {
			return nil, errors.New("netpol: need a client or an informer factory")
		}
		factory = informers.NewSharedInformerFactory(client, 0)
	}
	e := &Enforcer{
		cfg:      cfg,
		node:     nodeView{name: cfg.NodeName},
		nft:      nft,
		bridgeNF: ensureBridgeNetfilter,
		factory:  factory,
		trigger:  make(chan struct{}, 1),
		warnings: map[string]bool{},
	}
	if cfg.PodCIDR.IsValid() && cfg.PodCIDR.Addr().Is4() {
		e.node.podCIDR = cfg.PodCIDR.Masked()
	}
	polInf := factory.Networking().V1().NetworkPolicies()
	podInf := factory.Core().V1().Pods()
	nsInf := factory.Core().V1().Namespaces()
	e.policies, e.pods, e.namespaces = polInf.Lister(), podInf.Lister(), nsInf.Lister()
	for _, h := range []struct {
		what string
		inf  cache.SharedIndexInformer
		rel  func(a, b any) bool
	}{
		{"networkpolicies", polInf.Informer(), policyChanged},
		{"pods", podInf.Informer(), e.podChanged},
		{"namespaces", nsInf.Informer(), namespaceChanged},
	} {
		if _, err := h.inf.AddEventHandler(e.handler(h.rel)); err != nil {
			return nil, fmt.Errorf("netpol: watching %s: %w", h.what, err)
		}
		e.synced = append(e.synced, h.inf.HasSynced)
	}
	return e, nil
}

func (e *Enforcer) handler(changed func(a, b any) bool) cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { e.kick() },
		UpdateFunc: func(a, b any) {
			if changed(a, b) {
				e.kick()
			}
		},
		DeleteFunc: func(any) { e.kick() },
	}
}

func policyChanged(a, b any) bool {
	pa, ok1 := a.(*networkingv1.NetworkPolicy)
	pb, ok2 := b.(*networkingv1.NetworkPolicy)
	return !ok1 || !ok2 || !reflect.DeepEqual(pa.Spec, pb.Spec)
}

func namespaceChanged(a, b any) bool {
	na, ok1 := a.(*corev1.Namespace)
	nb, ok2 := b.(*corev1.Namespace)
	return !ok1 || !ok2 || !reflect.DeepEqual(na.Labels, nb.Labels)
}

// podChanged ignores the status churn that policies do not look at.
func (e *Enforcer) podChanged(a, b any) bool {
	pa, ok1 := a.(*corev1.Pod)
	pb, ok2 := b.(*corev1.Pod)
	if !ok1 || !ok2 {
		return true
	}
	va, okA := viewPod(e.node, pa)
	vb, okB := viewPod(e.node, pb)
	if okA != okB {
		return true
	}
	return okA && !reflect.DeepEqual(va, vb)
}

func (e *Enforcer) kick() {
	select {
	case e.trigger <- struct{}{}:
	default:
	}
}

// Stats returns a copy of the sync statistics.
func (e *Enforcer) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stats
}

// Run starts the informers, waits for their caches, then keeps the table
// in line with them until ctx ends. The rules stay in place when Run
// returns, so pods stay policed across an agent restart; Cleanup removes
// them.
func (e *Enforcer) Run(ctx context.Context) error {
	e.factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), e.synced...) {
		return fmt.Errorf("netpol: informer caches did not sync: %w", ctx.Err())
	}
	if err := e.bridgeNF(); err != nil {
		// Routed traffic is still policed; pod-to-pod traffic within the
		// node is not.
		e.cfg.Log.Error("network policies cannot see traffic bridged between local pods", "err", err)
	}
	e.cfg.Log.Info("network policy enforcer started", "table", e.cfg.TableName, "node", e.cfg.NodeName,
		"bridge", e.cfg.Bridge, "podCIDR", e.node.podCIDR)

	var lastAttempt time.Time
	retryDelay := e.cfg.MinSyncInterval
	periodic := time.NewTimer(e.cfg.SyncPeriod)
	defer periodic.Stop()
	var retry <-chan time.Time
	for {
		if wait := time.Until(lastAttempt.Add(e.cfg.MinSyncInterval)); wait > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
		}
		select {
		case <-e.trigger: // this sync covers it
		default:
		}
		lastAttempt = time.Now()
		if err := e.syncOnce(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			e.cfg.Log.Error("network policy sync failed", "err", err)
			retry = time.After(retryDelay)
			retryDelay = min(retryDelay*2, e.cfg.SyncPeriod)
		} else {
			retry = nil
			retryDelay = e.cfg.MinSyncInterval
		}
		select {
		case <-ctx.Done():
			return nil
		case <-e.trigger:
		case <-retry:
		case <-periodic.C:
			e.mu.Lock()
			e.prev = nil // full rewrite
			e.mu.Unlock()
			periodic.Reset(e.cfg.SyncPeriod)
		}
	}
}

// desired computes the ruleset from the caches.
func (e *Enforcer) desired() (*ruleset, int, []string, error) {
	pols, err := e.policies.List(labels.Everything())
	if err != nil {
		return nil, 0, nil, fmt.Errorf("listing networkpolicies: %w", err)
	}
	pods, err := e.pods.List(labels.Everything())
	if err != nil {
		return nil, 0, nil, fmt.Errorf("listing pods: %w", err)
	}
	nss, err := e.namespaces.List(labels.Everything())
	if err != nil {
		return nil, 0, nil, fmt.Errorf("listing namespaces: %w", err)
	}
	m, warnings := compile(e.node, pols, pods, nss)
	return buildRuleset(e.cfg.Bridge, m), len(m.policies), warnings, nil
}

func (e *Enforcer) syncOnce(ctx context.Context) error {
	want, npol, warnings, err := e.desired()
	if err != nil {
		e.fail(err)
		return err
	}
	e.mu.Lock()
	prev := e.prev
	for _, w := range warnings {
		if !e.warnings[w] {
			e.warnings[w] = true
			e.cfg.Log.Warn(w)
		}
	}
	e.mu.Unlock()
	if prev != nil && prev.String() == want.String() {
		return nil
	}
	tx := e.nft.NewTransaction()
	plan(tx, prev, want)
	if err := e.nft.Run(ctx, tx); err != nil {
		err = fmt.Errorf("programming table ip %s (%d operations): %w", e.cfg.TableName, tx.NumOperations(), err)
		e.fail(err)
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.prev = want
	e.stats.LastSync = time.Now()
	e.stats.Syncs++
	e.stats.LastError = ""
	e.stats.Policies = npol
	e.stats.Operations = tx.NumOperations()
	return nil
}

func (e *Enforcer) fail(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.prev = nil
	e.stats.Failures++
	e.stats.LastError = err.Error()
}

// programmed is the last ruleset written, for tests.
func (e *Enforcer) programmed() *ruleset {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.prev
}

const bridgeNFSysctl = "/proc/sys/net/bridge/bridge-nf-call-iptables"

// ensureBridgeNetfilter turns on br_netfilter's hand-over of bridged IPv4
// frames to the ip family's hooks in the caller's network namespace,
// loading the module first if it is missing and modprobe can.
func ensureBridgeNetfilter() error {
	b, err := os.ReadFile(bridgeNFSysctl)
	if errors.Is(err, fs.ErrNotExist) {
		if out, merr := exec.Command("modprobe", "br_netfilter").CombinedOutput(); merr != nil {
			return fmt.Errorf("br_netfilter is not available and modprobe failed: %v: %s", merr, strings.TrimSpace(string(out)))
		}
		b, err = os.ReadFile(bridgeNFSysctl)
	}
	if err != nil {
		return fmt.Errorf("br_netfilter is not available: %w", err)
	}
	if strings.TrimSpace(string(b)) == "1" {
		return nil
	}
	if err := os.WriteFile(bridgeNFSysctl, []byte("1\n"), 0o644); err != nil {
		return fmt.Errorf("enabling %s: %w", bridgeNFSysctl, err)
	}
	return nil
}
