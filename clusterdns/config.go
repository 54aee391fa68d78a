package clusterdns

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultDomain    = "cluster.local"
	DefaultTTL       = 5
	DefaultCacheSize = 10000
	// DefaultCacheTTL caps how long forwarded answers are cached, like the
	// "cache 30" of the stock kube-dns Corefile.
	DefaultCacheTTL = 30 * time.Second
	// DefaultResolvConf is where default upstreams are read from.
	DefaultResolvConf = "/etc/resolv.conf"
	// DefaultUpstreamTimeout bounds one exchange with one upstream.
	DefaultUpstreamTimeout = 2 * time.Second
)

// Config configures a Server.
type Config struct {
	// Domain is the cluster domain; default "cluster.local".
	Domain string
	// Listen are the addresses served over both UDP and TCP, e.g.
	// "10.42.0.1:53", or "127.0.0.1:0" to pick a free port (the same port is
	// then used for TCP). Required.
	Listen []string
	// Upstreams are the resolvers for names outside the cluster domain, as
	// "ip" or "ip:port". Default: the nameservers of ResolvConf. Upstreams
	// that are one of this server's own listen addresses are dropped, since
	// forwarding to them would loop.
	Upstreams []string
	// ResolvConf is read for default upstreams; default /etc/resolv.conf.
	ResolvConf string
	// CacheSize is the number of forwarded answers cached; default 10000,
	// negative disables the cache.
	CacheSize int
	// CacheTTL caps the time a forwarded answer (positive or negative) is
	// cached; record TTLs below it are honoured. Default 30s.
	CacheTTL time.Duration
	// TTL is the TTL of cluster records and the zone's negative TTL; default 5.
	TTL uint32
	// UpstreamTimeout bounds one exchange with one upstream; default 2s.
	UpstreamTimeout time.Duration
	// Log receives the server's logs; default slog.Default().
	Log *slog.Logger
}

// withDefaults fills in the zero fields of cfg.
func (cfg Config) withDefaults() Config {
	if cfg.Domain == "" {
		cfg.Domain = DefaultDomain
	}
	cfg.Domain = strings.TrimSuffix(strings.ToLower(cfg.Domain), ".")
	if cfg.ResolvConf == "" {
		cfg.ResolvConf = DefaultResolvConf
	}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = DefaultCacheSize
	}
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = DefaultCacheTTL
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.UpstreamTimeout <= 0 {
		cfg.UpstreamTimeout = DefaultUpstreamTimeout
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return cfg
}

// readResolvConf returns the nameserver entries of a resolv.conf file.
func readResolvConf(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading nameservers: %w", err)
	}
	defer f.Close()
	return parseResolvConf(f)
}

// parseResolvConf extracts "nameserver" addresses from resolv.conf text.
func parseResolvConf(r io.Reader) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexAny(line, "#;"); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(line)
		if len(fields) >= 2 && fields[0] == "nameserver" {
			out = append(out, fields[1])
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("parsing resolv.conf: %w", err)
	}
	return out, nil
}

// normalizeUpstream turns "ip", "ip:port", "[v6]:port" or "v6" into
// host:port form (port 53 by default).
func normalizeUpstream(s string) (netip.AddrPort, error) {
	s = strings.TrimSpace(s)
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
	}
	// A link-local IPv6 nameserver may carry a zone ("fe80::1%eth0").
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("upstream %q: not an ip or ip:port", s)
	}
	return netip.AddrPortFrom(ip.Unmap(), 53), nil
}

// filterUpstreams normalizes upstreams and drops those that would reach this
// server itself: equal to a listen address, or a local address on the port
// of a wildcard listener. localAddr reports whether an address belongs to
// this host (loopback addresses always do).
func filterUpstreams(upstreams []string, listen []netip.AddrPort, localAddr func(netip.Addr) bool) (kept []string, dropped []string, err error) {
	for _, s := range upstreams {
		ap, err := normalizeUpstream(s)
		if err != nil {
			return nil, nil, err
		}
		if loops(ap, listen, localAddr) {
			dropped = append(dropped, ap.String())
			continue
		}
		kept = append(kept, ap.String())
	}
	return kept, dropped, nil
}

func loops(up netip.AddrPort, listen []netip.AddrPort, localAddr func(netip.Addr) bool) bool {
	for _, l := range listen {
		if l.Port() != up.Port() {
			continue
		}
		if l.Addr() == up.Addr() {
			return true
		}
		if l.Addr().IsUnspecified() && (up.Addr().IsLoopback() || (localAddr != nil && localAddr(up.Addr()))) {
			return true
		}
	}
	return false
}

// hostAddrs reports whether an address is configured on this host.
func hostAddrs() func(netip.Addr) bool {
	addrs, err := net.InterfaceAddrs()
	set := map[netip.Addr]bool{}
	if err == nil {
		for _, a := range addrs {
			if pfx, err := netip.ParsePrefix(a.String()); err == nil {
				set[pfx.Addr().Unmap()] = true
			}
		}
	}
	return func(ip netip.Addr) bool { return ip.IsLoopback() || set[ip.WithZone("")] }
}
