package clusterdns

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestParseResolvConf(t *testing.T) {
	in := `# generated
search example.com
nameserver 192.0.2.53
nameserver   2001:db8::53 # comment
;nameserver 192.0.2.99
nameserver
options ndots:5
`
	got, err := parseResolvConf(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"192.0.2.53", "2001:db8::53"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestFilterUpstreams(t *testing.T) {
	local := func(ip netip.Addr) bool { return ip.IsLoopback() || ip == netip.MustParseAddr("192.0.2.1") }
	ap := netip.MustParseAddrPort
	tests := []struct {
		name      string
		upstreams []string
		listen    []netip.AddrPort
		kept      []string
		dropped   []string
		wantErr   bool
	}{
		{name: "default port", upstreams: []string{"192.0.2.53", "2001:db8::53", "[2001:db8::54]:5353", "192.0.2.55:5300"},
			listen: []netip.AddrPort{ap("10.42.0.1:53")},
			kept:   []string{"192.0.2.53:53", "[2001:db8::53]:53", "[2001:db8::54]:5353", "192.0.2.55:5300"}},
		{name: "systemd-resolved stub is fine when we listen elsewhere", upstreams: []string{"127.0.0.53"},
			listen: []netip.AddrPort{ap("10.42.0.1:53")}, kept: []string{"127.0.0.53:53"}},
		{name: "our own address loops", upstreams: []string{"127.0.0.1", "192.0.2.53"},
			listen: []netip.AddrPort{ap("127.0.0.1:53")}, kept: []string{"192.0.2.53:53"}, dropped: []string{"127.0.0.1:53"}},
		{name: "same address other port is fine", upstreams: []string{"127.0.0.1:5353"},
			listen: []netip.AddrPort{ap("127.0.0.1:53")}, kept: []string{"127.0.0.1:5353"}},
		{name: "wildcard listener catches loopback and local addresses", upstreams: []string{"127.0.0.53", "192.0.2.1", "192.0.2.53"},
			listen: []netip.AddrPort{ap("0.0.0.0:53")}, kept: []string{"192.0.2.53:53"}, dropped: []string{"127.0.0.53:53", "192.0.2.1:53"}},
		{name: "garbage", upstreams: []string{"dns.example.com"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kept, dropped, err := filterUpstreams(tt.upstreams, tt.listen, local)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !slices.Equal(kept, tt.kept) || !slices.Equal(dropped, tt.dropped) {
				t.Errorf("kept %q dropped %q, want %q %q", kept, dropped, tt.kept, tt.dropped)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	cfg := Config{Domain: "Cluster.Local."}.withDefaults()
	if cfg.Domain != "cluster.local" || cfg.TTL != DefaultTTL || cfg.CacheSize != DefaultCacheSize ||
		cfg.CacheTTL != DefaultCacheTTL || cfg.ResolvConf != DefaultResolvConf || cfg.Log == nil {
		t.Errorf("defaults not applied: %+v", cfg)
	}
	if got := (Config{CacheSize: -1}).withDefaults().CacheSize; got != -1 {
		t.Errorf("negative CacheSize (disabled) became %d", got)
	}
}
