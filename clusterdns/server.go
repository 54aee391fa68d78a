package clusterdns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"k8s.io/client-go/informers"
)

// maxChase bounds the CNAME chain the server follows for ExternalName
// Services.
const maxChase = 8

// Server is the cluster DNS server. New binds its sockets; Run serves them.
type Server struct {
	cfg   Config
	log   *slog.Logger
	zone  *zone
	fwd   *forwarder
	stats counters
	sync  *syncer

	udp  []net.PacketConn
	tcp  []net.Listener
	addr []net.Addr

	// ctx is Run's context, used by handlers for upstream exchanges.
	ctx    atomic.Pointer[context.Context]
	ran    atomic.Bool
	synced atomic.Bool
}

// New builds a Server on the Services and EndpointSlices informers of
// factory and binds its UDP and TCP sockets (so Addrs is valid at once).
// Call it before factory.Start so that the informers are registered; Run
// starts the factory too. The sockets are closed when Run returns.
func New(factory informers.SharedInformerFactory, cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	if len(cfg.Listen) == 0 {
		return nil, errors.New("clusterdns: no listen address")
	}
	s := &Server{cfg: cfg, log: cfg.Log, zone: newZone(cfg.Domain, cfg.TTL)}
	if err := s.bind(); err != nil {
		s.closeSockets()
		return nil, err
	}

	upstreams := cfg.Upstreams
	if upstreams == nil {
		var err error
		upstreams, err = readResolvConf(cfg.ResolvConf)
		if err != nil {
			s.log.Warn("cluster DNS has no default upstreams", "err", err)
		}
	}
	var listen []netip.AddrPort
	for _, a := range s.addr {
		if ap, err := netip.ParseAddrPort(a.String()); err == nil {
			listen = append(listen, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
		}
	}
	kept, dropped, err := filterUpstreams(upstreams, listen, hostAddrs())
	if err != nil {
		s.closeSockets()
		return nil, fmt.Errorf("clusterdns: %w", err)
	}
	if len(dropped) > 0 {
		s.log.Warn("cluster DNS dropped upstreams that point back at itself", "dropped", dropped)
	}
	if len(kept) == 0 {
		s.log.Warn("cluster DNS has no upstreams; names outside the cluster domain will fail", "domain", cfg.Domain)
	}
	s.fwd = &forwarder{
		upstreams: kept,
		timeout:   cfg.UpstreamTimeout,
		now:       time.Now,
		stats:     &s.stats,
		inflight:  map[cacheKey]*flight{},
	}
	if cfg.CacheSize > 0 {
		s.fwd.cache = newCache(cfg.CacheSize, cfg.CacheTTL)
	}

	s.sync, err = newSyncer(factory, s.zone, s.log)
	if err != nil {
		s.closeSockets()
		return nil, fmt.Errorf("clusterdns: %w", err)
	}
	return s, nil
}

// bind opens a UDP socket and a TCP listener on every listen address. With
// port 0 the TCP listener takes the port the kernel gave the UDP socket.
func (s *Server) bind() error {
	for _, addr := range s.cfg.Listen {
		var lastErr error
		for attempt := 0; attempt < 10; attempt++ {
			pc, err := net.ListenPacket("udp", addr)
			if err != nil {
				return fmt.Errorf("clusterdns: listening on udp %s: %w", addr, err)
			}
			l, err := net.Listen("tcp", pc.LocalAddr().String())
			if err != nil {
				pc.Close()
				lastErr = err
				if _, port, _ := net.SplitHostPort(addr); port == "0" {
					continue // the kernel's UDP port is taken for TCP; pick another
				}
				break
			}
			s.udp = append(s.udp, pc)
			s.tcp = append(s.tcp, l)
			s.addr = append(s.addr, pc.LocalAddr())
			lastErr = nil
			break
		}
		if lastErr != nil {
			return fmt.Errorf("clusterdns: listening on tcp %s: %w", addr, lastErr)
		}
	}
	return nil
}

func (s *Server) closeSockets() {
	for _, pc := range s.udp {
		pc.Close()
	}
	for _, l := range s.tcp {
		l.Close()
	}
}

// Addrs returns the bound addresses, one per Config.Listen entry, as UDP
// addresses; TCP is served on the same IP and port.
func (s *Server) Addrs() []net.Addr {
	return append([]net.Addr(nil), s.addr...)
}

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	return s.stats.snapshot()
}

// Run serves DNS until ctx ends, then shuts the listeners down and returns
// nil; it returns an error if a listener fails. It starts the informer
// factory and answers cluster names once the caches have synced (SERVFAIL
// before). Run may be called once.
func (s *Server) Run(ctx context.Context) error {
	if !s.ran.CompareAndSwap(false, true) {
		return errors.New("clusterdns: Run called twice")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.ctx.Store(&ctx)

	var servers []*dns.Server
	for _, pc := range s.udp {
		servers = append(servers, &dns.Server{PacketConn: pc, Handler: s, UDPSize: dns.MaxMsgSize})
	}
	for _, l := range s.tcp {
		servers = append(servers, &dns.Server{Listener: l, Handler: s})
	}
	errCh := make(chan error, len(servers))
	var started sync.WaitGroup
	for _, srv := range servers {
		started.Add(1)
		var once sync.Once
		srv.NotifyStartedFunc = func() { once.Do(started.Done) }
		go func() {
			err := srv.ActivateAndServe()
			once.Do(started.Done)
			errCh <- err
		}()
	}
	started.Wait()

	syncDone := make(chan struct{})
	go func() {
		defer close(syncDone)
		s.sync.run(ctx, func() {
			s.synced.Store(true)
			s.log.Info("cluster DNS serving", "addrs", s.addr, "domain", s.cfg.Domain, "upstreams", s.fwd.upstreams)
		})
	}()

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-errCh:
		if err != nil {
			runErr = fmt.Errorf("clusterdns: serving: %w", err)
		} else {
			runErr = errors.New("clusterdns: a listener stopped unexpectedly")
		}
	}
	cancel()
	shutdownCtx, stop := context.WithTimeout(context.Background(), 5*time.Second)
	defer stop()
	for _, srv := range servers {
		_ = srv.ShutdownContext(shutdownCtx) // a failed listener is already stopped
	}
	s.closeSockets()
	<-syncDone
	return runErr
}

// runCtx is the context handlers use for upstream work.
func (s *Server) runCtx() context.Context {
	if p := s.ctx.Load(); p != nil {
		return *p
	}
	return context.Background()
}

// ServeDNS implements dns.Handler.
func (s *Server) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	s.stats.queries.Add(1)
	_, udp := w.RemoteAddr().(*net.UDPAddr)
	resp := s.answer(s.runCtx(), r, udp)
	if err := w.WriteMsg(resp); err != nil {
		s.log.Debug("cluster DNS: writing answer", "remote", w.RemoteAddr(), "err", err)
	}
}

// answer builds the response to a request received over UDP or TCP.
func (s *Server) answer(ctx context.Context, r *dns.Msg, udp bool) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(r)
	m.RecursionAvailable = true
	opt := r.IsEdns0()
	switch {
	case r.Opcode != dns.OpcodeQuery:
		m.Rcode = dns.RcodeNotImplemented
		return finish(m, opt, udp)
	case len(r.Question) != 1:
		m.Rcode = dns.RcodeFormatError
		return finish(m, opt, udp)
	case opt != nil && opt.Version() != 0:
		m.Rcode = dns.RcodeBadVers
		return finish(m, opt, udp)
	case r.Question[0].Qtype == dns.TypeAXFR || r.Question[0].Qtype == dns.TypeIXFR:
		m.Rcode = dns.RcodeRefused // no zone transfers
		return finish(m, opt, udp)
	}
	q := r.Question[0]
	do := opt != nil && opt.Do()

	res := result{forward: true}
	if q.Qclass == dns.ClassINET {
		res = s.zone.lookup(q.Name, q.Qtype)
	}
	if res.forward {
		s.forward(ctx, m, q, do, r.CheckingDisabled)
		return finish(m, opt, udp)
	}
	if !s.synced.Load() {
		m.Rcode = dns.RcodeServerFailure
		return finish(m, opt, udp)
	}
	s.stats.clusterAnswers.Add(1)
	m.Authoritative = true
	m.Rcode = res.rcode
	m.Answer = res.answer
	m.Extra = res.extra
	if res.soa {
		m.Ns = []dns.RR{s.zone.soaRecord()}
	}
	if res.chase != "" {
		s.chase(ctx, m, res.chase, q.Qtype, do, r.CheckingDisabled)
	}
	return finish(m, opt, udp)
}

// forward fills m with the upstream answer to q.
func (s *Server) forward(ctx context.Context, m *dns.Msg, q dns.Question, do, cd bool) {
	s.stats.forwardedQs.Add(1)
	up, err := s.fwd.resolve(ctx, q, do, cd)
	if err != nil {
		s.log.Debug("cluster DNS: forwarding failed", "name", q.Name, "type", dns.TypeToString[q.Qtype], "err", err)
		m.Rcode = dns.RcodeServerFailure
		return
	}
	m.Rcode = up.Rcode
	m.AuthenticatedData = up.AuthenticatedData
	m.Answer, m.Ns, m.Extra = up.Answer, up.Ns, up.Extra
}

// chase appends to m the records of type qtype of the CNAME target, from the
// cluster zone or the upstreams, following further CNAMEs up to maxChase.
func (s *Server) chase(ctx context.Context, m *dns.Msg, target string, qtype uint16, do, cd bool) {
	for range maxChase {
		res := s.zone.lookup(target, qtype)
		if res.forward {
			up, err := s.fwd.resolve(ctx, dns.Question{Name: target, Qtype: qtype, Qclass: dns.ClassINET}, do, cd)
			s.stats.forwardedQs.Add(1)
			if err != nil {
				s.log.Debug("cluster DNS: chasing ExternalName failed", "target", target, "err", err)
				m.Rcode = dns.RcodeServerFailure
				return
			}
			m.Rcode = up.Rcode
			m.Answer = append(m.Answer, up.Answer...)
			m.Ns = up.Ns
			m.Extra = append(m.Extra, up.Extra...)
			return
		}
		m.Rcode = res.rcode
		m.Answer = append(m.Answer, res.answer...)
		m.Extra = append(m.Extra, res.extra...)
		m.Ns = nil
		if res.soa {
			m.Ns = []dns.RR{s.zone.soaRecord()}
		}
		if res.chase == "" {
			return
		}
		target = res.chase
	}
	m.Rcode = dns.RcodeServerFailure // CNAME chain too long or looping
}

// finish adds the EDNS0 OPT record when the client sent one and truncates
// the message to what the client can receive.
func finish(m *dns.Msg, opt *dns.OPT, udp bool) *dns.Msg {
	size := dns.MaxMsgSize
	if udp {
		size = dns.MinMsgSize
		if opt != nil && int(opt.UDPSize()) > size {
			size = int(opt.UDPSize())
		}
	}
	if opt != nil {
		m.SetEdns0(upstreamUDPSize, opt.Do())
	} else if m.Rcode > 0xF {
		// An extended rcode from upstream cannot be said without EDNS0.
		m.Rcode = dns.RcodeServerFailure
	}
	m.Truncate(size)
	m.Compress = true
	return m
}
