package routes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// Syncer keeps this node's routes to the other nodes' podCIDRs in line
// with the Nodes.
type Syncer struct {
	cfg     Config
	factory informers.SharedInformerFactory
	nodes   corelisters.NodeLister
	synced  cache.InformerSynced
	trigger chan struct{}
	ip      iproute

	skipped map[string]string // last logged reasons, per node
}

// New builds a Syncer on the Nodes informer of factory. Call it before
// factory.Start so the informer is registered; Run starts the factory too.
func New(factory informers.SharedInformerFactory, cfg Config) (*Syncer, error) {
	if factory == nil {
		return nil, errors.New("routes: no informer factory")
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Syncer{
		cfg:     cfg,
		factory: factory,
		trigger: make(chan struct{}, 1),
		ip:      iproute{run: execRun},
		skipped: map[string]string{},
	}
	inf := factory.Core().V1().Nodes()
	_, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { s.kick() },
		UpdateFunc: func(oldObj, newObj any) {
			o, ok1 := oldObj.(*corev1.Node)
			n, ok2 := newObj.(*corev1.Node)
			// Node status is rewritten every few seconds; only changes
			// of address or podCIDR matter here.
			if !ok1 || !ok2 || !nodeInfoFrom(o).equal(nodeInfoFrom(n)) {
				s.kick()
			}
		},
		DeleteFunc: func(any) { s.kick() },
	})
	if err != nil {
		return nil, fmt.Errorf("routes: watching nodes: %w", err)
	}
	s.nodes = inf.Lister()
	s.synced = inf.Informer().HasSynced
	return s, nil
}

func (s *Syncer) kick() {
	select {
	case s.trigger <- struct{}{}:
	default:
	}
}

// Run starts the informer factory, waits for the Nodes cache, then keeps
// the routes in line until ctx ends: on every relevant Node change and
// every ResyncPeriod, and after a failure with backoff. Routes stay when
// Run returns; Cleanup removes them.
func (s *Syncer) Run(ctx context.Context) error {
	s.factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), s.synced) {
		return fmt.Errorf("routes: node cache did not sync: %w", ctx.Err())
	}
	s.cfg.Log.Info("pod routes started", "node", s.cfg.NodeName, "nodeIP", s.cfg.NodeIP,
		"clusterCIDR", s.cfg.ClusterCIDR, "vxlan", s.cfg.VXLAN.Name, "vxlanDisabled", s.cfg.VXLAN.Disabled)

	const minRetry = 500 * time.Millisecond
	retryDelay := minRetry
	for {
		select { // this sync covers any pending trigger
		case <-s.trigger:
		default:
		}
		wait := s.cfg.ResyncPeriod
		if err := s.sync(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			s.cfg.Log.Error("pod route sync failed", "err", err, "retryIn", retryDelay)
			wait = min(retryDelay, s.cfg.ResyncPeriod)
			retryDelay = min(retryDelay*2, s.cfg.ResyncPeriod)
		} else {
			retryDelay = minRetry
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-s.trigger:
		case <-t.C:
		}
		t.Stop()
	}
}

// sync brings the kernel in line with the Nodes once. It carries on past
// individual failures and returns them joined.
func (s *Syncer) sync(ctx context.Context) error {
	list, err := s.nodes.List(labels.Everything())
	if err != nil {
		return fmt.Errorf("listing nodes: %w", err)
	}
	infos := make([]nodeInfo, 0, len(list))
	for _, n := range list {
		infos = append(infos, nodeInfoFrom(n))
	}
	addrs, err := s.ip.addrs(ctx)
	if err != nil {
		return err
	}
	p := makePlan(s.cfg, infos, addrs)
	s.logSkipped(p.Skipped)

	var errs []error
	vxlanOK := true
	if len(p.Peers) > 0 {
		if err := s.ensureVXLAN(ctx, p, addrs); err != nil {
			errs = append(errs, err)
			vxlanOK = false
		}
	}

	current, err := s.ip.ourRoutes(ctx)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	ops := diffRoutes(s.cfg.ClusterCIDR, current, p.Routes)
	for _, r := range ops.Replace {
		if !vxlanOK && r.Dev == s.cfg.VXLAN.Name {
			continue // not through a device that may not be ours or ready
		}
		if err := s.ip.replaceRoute(ctx, r); err != nil {
			errs = append(errs, err)
			continue
		}
		s.cfg.Log.Info("pod route set", "route", r.String())
	}
	for _, r := range ops.Delete {
		if err := s.ip.delRoute(ctx, r); err != nil {
			errs = append(errs, err)
			continue
		}
		s.cfg.Log.Info("pod route removed", "route", r.String())
	}

	if len(p.Peers) == 0 {
		if err := s.removeVXLAN(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// logSkipped logs nodes that are not routed, once per change of reason.
func (s *Syncer) logSkipped(now map[string]string) {
	for _, name := range slices.Sorted(maps.Keys(now)) {
		if s.skipped[name] != now[name] {
			s.cfg.Log.Info("node not routed", "node", name, "reason", now[name])
		}
	}
	s.skipped = now
}

// ensureVXLAN makes the overlay device and its address, forwarding and
// neighbour entries match the plan.
func (s *Syncer) ensureVXLAN(ctx context.Context, p plan, addrs []hostAddr) error {
	name := s.cfg.VXLAN.Name
	l, err := s.ip.link(ctx, name)
	if err != nil {
		return err
	}
	if l != nil {
		reason, err := vxlanMismatch(*l, s.cfg)
		if err != nil {
			return err
		}
		if reason != "" {
			s.cfg.Log.Info("recreating vxlan device", "dev", name, "reason", reason)
			if err := s.ip.delLink(ctx, name); err != nil {
				return err
			}
			l = nil
		}
	}
	if l == nil {
		mtu := 0
		for _, a := range addrs {
			if a.Prefix.Addr() == s.cfg.NodeIP && a.MTU > vxlanOverhead+576 {
				mtu = a.MTU - vxlanOverhead
				break
			}
		}
		if err := s.ip.addVXLAN(ctx, s.cfg, p.DeviceMAC, mtu); err != nil {
			return err
		}
		s.cfg.Log.Info("vxlan device created", "dev", name, "vni", s.cfg.VXLAN.VNI, "port", s.cfg.VXLAN.Port, "mtu", mtu)
		l = &linkState{MAC: p.DeviceMAC}
		addrs = nil // the new device has none
	}
	if l.MAC != p.DeviceMAC {
		if err := s.ip.setLink(ctx, name, "address", p.DeviceMAC); err != nil {
			return err
		}
	}
	if !l.Up {
		if err := s.ip.setLink(ctx, name, "up"); err != nil {
			return err
		}
	}

	var errs []error
	var have []netip.Prefix
	for _, a := range addrs {
		if a.Dev == name {
			have = append(have, a.Prefix)
		}
	}
	delAddrs, add := diffAddrs(have, p.OverlayAddr)
	for _, a := range delAddrs {
		errs = append(errs, s.ip.delAddr(ctx, name, a))
	}
	if add {
		errs = append(errs, s.ip.addAddr(ctx, name, netip.PrefixFrom(p.OverlayAddr, 32)))
	}

	if fdb, err := s.ip.fdb(ctx, name); err != nil {
		errs = append(errs, err)
	} else {
		del, replace := diffFDB(fdb, p.Peers)
		for _, e := range del {
			errs = append(errs, s.ip.delFDB(ctx, name, e))
			s.cfg.Log.Debug("vxlan forwarding entry removed", "mac", e.MAC, "dst", e.Dst)
		}
		for _, e := range replace {
			errs = append(errs, s.ip.replaceFDB(ctx, name, e))
			s.cfg.Log.Debug("vxlan forwarding entry set", "mac", e.MAC, "dst", e.Dst)
		}
	}

	if neigh, err := s.ip.neigh(ctx, name); err != nil {
		errs = append(errs, err)
	} else {
		del, replace := diffNeigh(neigh, p.Peers)
		for _, e := range del {
			errs = append(errs, s.ip.delNeigh(ctx, name, e))
			s.cfg.Log.Debug("vxlan neighbour removed", "ip", e.Dst)
		}
		for _, e := range replace {
			errs = append(errs, s.ip.replaceNeigh(ctx, name, e))
			s.cfg.Log.Debug("vxlan neighbour set", "ip", e.Dst, "mac", e.MAC)
		}
	}
	return errors.Join(errs...)
}

// removeVXLAN deletes the overlay device if it exists and is a vxlan
// device (a device of another kind under the name is not ours).
func (s *Syncer) removeVXLAN(ctx context.Context) error {
	return removeVXLAN(ctx, s.ip, s.cfg.VXLAN.Name, s.cfg.Log)
}

func removeVXLAN(ctx context.Context, ip iproute, name string, log *slog.Logger) error {
	l, err := ip.link(ctx, name)
	if err != nil || l == nil {
		return err
	}
	if l.Kind != "vxlan" {
		return nil
	}
	if err := ip.delLink(ctx, name); err != nil {
		return err
	}
	log.Info("vxlan device removed", "dev", name)
	return nil
}

// Cleanup removes what a Syncer with this configuration made: every route
// of protocol RouteProtocol to a destination inside cfg.ClusterCIDR, and
// the vxlan device cfg.VXLAN.Name (with its address, forwarding and
// neighbour entries) if it is a vxlan device. Other routes are left alone.
// Only ClusterCIDR and VXLAN.Name (defaulted) are needed.
func Cleanup(ctx context.Context, cfg Config) error {
	return cleanup(ctx, cfg, iproute{run: execRun})
}

func cleanup(ctx context.Context, cfg Config, ip iproute) error {
	cfg = cfg.withDefaults()
	if !cfg.ClusterCIDR.IsValid() || !cfg.ClusterCIDR.Addr().Is4() {
		return fmt.Errorf("routes cleanup: cluster CIDR %v is not an IPv4 prefix", cfg.ClusterCIDR)
	}
	if err := validLinkName(cfg.VXLAN.Name); err != nil {
		return fmt.Errorf("routes cleanup: vxlan device: %w", err)
	}
	var errs []error
	current, err := ip.ourRoutes(ctx)
	if err != nil {
		errs = append(errs, err)
	}
	for _, r := range diffRoutes(cfg.ClusterCIDR, current, nil).Delete {
		if err := ip.delRoute(ctx, r); err != nil {
			errs = append(errs, err)
		}
	}
	if err := removeVXLAN(ctx, ip, cfg.VXLAN.Name, cfg.Log); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("routes cleanup: %w", err)
	}
	return nil
}
