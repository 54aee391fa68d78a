package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/knftables"
)

// Defaults for Config.
const (
	DefaultTableName       = "skiff-proxy"
	DefaultSyncPeriod      = 30 * time.Second
	DefaultFullSyncPeriod  = time.Hour
	DefaultMinSyncInterval = 100 * time.Millisecond
)

// Config configures a Proxier.
type Config struct {
	// NodeName is this node's name: endpoints whose nodeName matches are
	// local (traffic policies Local).
	NodeName string
	// NodeIPs are the addresses NodePorts and Skiff's LoadBalancer ports are
	// served on. IPv4 ones are used, except loopback: reaching a pod through
	// 127.0.0.1 would need the route_localnet sysctl, which the proxy does
	// not set. Empty: every local address but loopback serves NodePorts, and
	// LoadBalancer ports are served only on their status ingress IPs. Only
	// loopback addresses (a test node in the host's namespace): NodePorts
	// are served nowhere, so they cannot capture another cluster's.
	NodeIPs []netip.Addr
	// ClusterCIDR is the pod network. Service traffic from outside it is
	// masqueraded. Invalid (zero) disables that masquerade; hairpin and
	// external traffic are masqueraded regardless.
	ClusterCIDR netip.Prefix
	// TableName is the nftables table (family ip); default "skiff-proxy".
	TableName string
	// SyncPeriod is how often the proxy syncs without being asked: it
	// checks that its table is still there (and rewrites it whole when it
	// is not) and applies whatever the caches hold; default 30s.
	SyncPeriod time.Duration
	// FullSyncPeriod is how often the whole table is rewritten even though
	// nothing seems to be missing; default 1h. A full rewrite of 10,000
	// Services takes seconds, and changes wait for it.
	FullSyncPeriod time.Duration
	// MinSyncInterval is the shortest time between two syncs: changes that
	// arrive closer together are applied in one transaction; default 100ms.
	MinSyncInterval time.Duration
	// Log receives sync errors and summaries; default slog.Default().
	Log *slog.Logger
}

func (c *Config) defaults() {
	if c.TableName == "" {
		c.TableName = DefaultTableName
	}
	if c.SyncPeriod <= 0 {
		c.SyncPeriod = DefaultSyncPeriod
	}
	if c.FullSyncPeriod <= 0 {
		c.FullSyncPeriod = DefaultFullSyncPeriod
	}
	if c.MinSyncInterval <= 0 {
		c.MinSyncInterval = DefaultMinSyncInterval
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
}

func (c *Config) nodeView() nodeView {
	v := nodeView{name: c.NodeName, clusterCIDR: c.ClusterCIDR}
	if !c.ClusterCIDR.IsValid() || !c.ClusterCIDR.Addr().Is4() {
		v.clusterCIDR = netip.Prefix{}
	} else {
		v.clusterCIDR = c.ClusterCIDR.Masked()
	}
	for _, ip := range c.NodeIPs {
		if ip = ip.Unmap(); ip.Is4() && !ip.IsLoopback() && !ip.IsUnspecified() {
			v.nodeIPs = append(v.nodeIPs, ip)
		}
	}
	v.nodeIPs = uniqueAddrs(v.nodeIPs)
	v.noNodePorts = len(c.NodeIPs) > 0 && len(v.nodeIPs) == 0
	return v
}

// Proxier programs the service proxy table from the informers' caches.
type Proxier struct {
	cfg  Config
	node nodeView
	nft  knftables.Interface
	now  func() time.Time

	factory        informers.SharedInformerFactory
	servicesSynced cache.InformerSynced
	slicesSynced   cache.InformerSynced
	services       corelisters.ServiceLister
	slices         discoverylisters.EndpointSliceLister

	trigger chan struct{} // capacity 1: "something changed"
	// flushUDP deletes stale UDP conntrack entries after a sync
	// (conntrack.go); nil when the table is not in this process's network
	// namespace (tests).
	flushUDP func(endpoints, revived []netip.AddrPort) (uint, error)

	mu          sync.Mutex
	pendingFrom time.Time // first EndpointSlice change not yet programmed
	prev        *ruleset  // last programmed; nil: unknown, sync fully
	stats       Stats
}

// Stats describes the proxy's syncs, for tests and metrics.
type Stats struct {
	LastSync         time.Time     // end of the last successful sync
	LastSyncDuration time.Duration // rule generation plus the nft transaction
	LastSyncMode     string        // "incremental", "full" or "recreate"
	LastOperations   int           // operations in the last transaction
	Syncs            uint64        // successful syncs
	FullSyncs        uint64        // of which full or recreate
	Failures         uint64        // failed syncs
	LastError        string        // last failure, "" after a success

	// LastProgrammingLatency is, for the last sync that carried EndpointSlice
	// changes, the time from the first of those changes being seen by the
	// informer to the rules being live. MaxProgrammingLatency is the largest
	// such value seen.
	LastProgrammingLatency time.Duration
	MaxProgrammingLatency  time.Duration
	ProgrammingSamples     uint64
}

// New builds a Proxier that watches Services and EndpointSlices through
// factory (one is made from client when factory is nil) and programs the
// table with the nft binary. Run starts the informers it needs.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, cfg Config) (*Proxier, error) {
	cfg.defaults()
	nft, err := knftables.New(knftables.IPv4Family, cfg.TableName)
	if err != nil {
		return nil, fmt.Errorf("proxy: nftables unavailable: %w", err)
	}
	p, err := newProxier(client, factory, cfg, nft)
	if err != nil {
		return nil, err
	}
	p.flushUDP = flushConntrack
	return p, nil
}

// newProxier is New with the nftables interface given (a knftables.Fake in
// tests, or one bound to another network namespace).
func newProxier(client kubernetes.Interface, factory informers.SharedInformerFactory, cfg Config, nft knftables.Interface) (*Proxier, error) {
	cfg.defaults()
	if factory == nil {
		if client == nil {
			return nil, errors.New("proxy: need a client or an informer factory")
		}
		factory = informers.NewSharedInformerFactory(client, 0)
	}
	p := &Proxier{
		cfg:     cfg,
		node:    cfg.nodeView(),
		nft:     nft,
		now:     time.Now,
		factory: factory,
		trigger: make(chan struct{}, 1),
	}
	svcInf := factory.Core().V1().Services()
	sliceInf := factory.Discovery().V1().EndpointSlices()
	p.services, p.slices = svcInf.Lister(), sliceInf.Lister()
	if _, err := svcInf.Informer().AddEventHandler(p.handler(false)); err != nil {
		return nil, fmt.Errorf("proxy: watching services: %w", err)
	}
	if _, err := sliceInf.Informer().AddEventHandler(p.handler(true)); err != nil {
		return nil, fmt.Errorf("proxy: watching endpointslices: %w", err)
	}
	p.servicesSynced = svcInf.Informer().HasSynced
	p.slicesSynced = sliceInf.Informer().HasSynced
	return p, nil
}

func (p *Proxier) handler(isSlice bool) cache.ResourceEventHandler {
	changed := func() {
		if isSlice {
			p.mu.Lock()
			if p.pendingFrom.IsZero() {
				p.pendingFrom = p.now()
			}
			p.mu.Unlock()
		}
		p.kick()
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { changed() },
		UpdateFunc: func(oldObj, newObj any) {
			if sameVersion(oldObj, newObj) {
				return // informer resync, nothing new
			}
			changed()
		},
		DeleteFunc: func(any) { changed() },
	}
}

func sameVersion(a, b any) bool {
	type versioned interface{ GetResourceVersion() string }
	va, ok1 := a.(versioned)
	vb, ok2 := b.(versioned)
	return ok1 && ok2 && va.GetResourceVersion() != "" && va.GetResourceVersion() == vb.GetResourceVersion()
}

// kick asks the sync loop for a sync; it never blocks.
func (p *Proxier) kick() {
	select {
	case p.trigger <- struct{}{}:
	default:
	}
}

// LastSync is the end time of the last successful sync (zero before one).
func (p *Proxier) LastSync() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats.LastSync
}

// Stats returns a copy of the sync statistics.
func (p *Proxier) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// Run starts the informers, waits for their caches, then keeps the table in
// line with them until ctx ends. The rules stay in place when Run returns
// (traffic keeps flowing across an agent restart); Cleanup removes them.
func (p *Proxier) Run(ctx context.Context) error {
	p.factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), p.servicesSynced, p.slicesSynced) {
		return fmt.Errorf("proxy: informer caches did not sync: %w", ctx.Err())
	}
	p.cfg.Log.Info("service proxy started", "table", p.cfg.TableName, "node", p.cfg.NodeName,
		"nodeIPs", p.node.nodeIPs, "clusterCIDR", p.node.clusterCIDR)

	mode := syncFull
	var lastAttempt, lastFull time.Time
	retryDelay := p.cfg.MinSyncInterval
	periodic := time.NewTimer(p.cfg.SyncPeriod)
	defer periodic.Stop()
	var retry <-chan time.Time
	for {
		// Batch: never sync twice within MinSyncInterval.
		if wait := lastAttempt.Add(p.cfg.MinSyncInterval).Sub(p.now()); wait > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
		}
		select {
		case <-p.trigger: // drain: this sync covers it
		default:
		}
		lastAttempt = p.now()
		if mode != syncIncremental {
			lastFull = lastAttempt
		}
		if err := p.syncOnce(ctx, mode); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			p.cfg.Log.Error("service proxy sync failed", "mode", mode.String(), "err", err)
			// Retry with backoff, rewriting everything; after a failed
			// full sync, recreate the table.
			if mode == syncIncremental {
				mode = syncFull
			} else {
				mode = syncRecreate
			}
			retry = time.After(retryDelay)
			retryDelay = min(retryDelay*2, p.cfg.SyncPeriod)
		} else {
			mode = syncIncremental
			retry = nil
			retryDelay = p.cfg.MinSyncInterval
		}

		select {
		case <-ctx.Done():
			return nil
		case <-p.trigger:
		case <-retry:
		case <-periodic.C:
			if mode == syncIncremental {
				switch {
				case !p.tableIntact(ctx):
					mode = syncRecreate // nothing of the old table to diff against
				case p.now().Sub(lastFull) >= p.cfg.FullSyncPeriod:
					mode = syncFull
				}
			}
			periodic.Reset(p.cfg.SyncPeriod)
		}
	}
}

// tableIntact is a cheap check that the table was not flushed or deleted
// behind the proxy's back (a firewall reload, `nft flush ruleset`): its
// dispatch chain still has its rules.
func (p *Proxier) tableIntact(ctx context.Context) bool {
	rules, err := p.nft.ListRules(ctx, chainServices)
	if err != nil || len(rules) == 0 {
		p.cfg.Log.Warn("service proxy: table changed behind its back; rewriting it", "table", p.cfg.TableName, "err", err)
		return false
	}
	return true
}

// syncOnce computes the wanted ruleset from the caches and programs it.
func (p *Proxier) syncOnce(ctx context.Context, mode syncMode) error {
	start := p.now()
	p.mu.Lock()
	pendingFrom := p.pendingFrom
	p.pendingFrom = time.Time{}
	prev := p.prev
	p.mu.Unlock()
	restorePending := func() {
		p.mu.Lock()
		if !pendingFrom.IsZero() && (p.pendingFrom.IsZero() || pendingFrom.Before(p.pendingFrom)) {
			p.pendingFrom = pendingFrom
		}
		p.prev = nil
		p.stats.Failures++
		p.mu.Unlock()
	}

	svcs, err := p.services.List(labels.Everything())
	if err != nil {
		restorePending()
		p.recordError(err)
		return fmt.Errorf("listing services: %w", err)
	}
	slices, err := p.slices.List(labels.Everything())
	if err != nil {
		restorePending()
		p.recordError(err)
		return fmt.Errorf("listing endpointslices: %w", err)
	}
	want := buildRuleset(p.node, svcs, slices)

	ops, err := p.apply(ctx, mode, prev, want)
	end := p.now()
	if err != nil {
		restorePending()
		p.recordError(err)
		return err
	}

	if p.flushUDP != nil {
		endpoints, revived := udpStale(prev, want)
		if n, err := p.flushUDP(endpoints, revived); err != nil {
			p.cfg.Log.Warn("service proxy: stale UDP flows", "endpoints", endpoints, "services", revived, "err", err)
		} else if n > 0 {
			p.cfg.Log.Debug("service proxy: deleted stale UDP flows", "flows", n, "endpoints", endpoints, "services", revived)
		}
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	p.prev = want
	s := &p.stats
	s.LastSync = end
	s.LastSyncDuration = end.Sub(start)
	s.LastSyncMode = mode.String()
	s.LastOperations = ops
	s.Syncs++
	if mode != syncIncremental {
		s.FullSyncs++
	}
	s.LastError = ""
	if !pendingFrom.IsZero() {
		lat := end.Sub(pendingFrom)
		s.LastProgrammingLatency = lat
		s.MaxProgrammingLatency = max(s.MaxProgrammingLatency, lat)
		s.ProgrammingSamples++
	}
	return nil
}

func (p *Proxier) recordError(err error) {
	p.mu.Lock()
	p.stats.LastError = err.Error()
	p.mu.Unlock()
}

// apply runs one transaction that takes the table from prev to want and
// returns the number of operations in it. A full sync removes stale
// objects: those of prev when it is known, otherwise whatever the table
// holds (listing a large table costs seconds, so it is done only when the
// state is unknown: first sync, after a failure).
func (p *Proxier) apply(ctx context.Context, mode syncMode, prev, want *ruleset) (int, error) {
	if prev == nil && mode == syncIncremental {
		mode = syncFull
	}
	var existing map[string][]string
	switch {
	case mode == syncFull && prev != nil:
		existing = prev.names()
	case mode == syncFull:
		all, err := p.nft.ListAll(ctx)
		if err != nil && !knftables.IsNotFound(err) {
			return 0, fmt.Errorf("listing table %s: %w", p.cfg.TableName, err)
		}
		existing = all
	}
	tx := p.nft.NewTransaction()
	plan(tx, mode, prev, want, existing)
	n := tx.NumOperations()
	if mode == syncIncremental && n <= 1 {
		return 0, nil // only "add table": nothing changed
	}
	if err := p.nft.Run(ctx, tx); err != nil {
		return n, fmt.Errorf("%s sync of table %s (%d operations): %w", mode, p.cfg.TableName, n, err)
	}
	return n, nil
}
