package framework

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// Network is the address space of one test cluster, claimed for the life of
// a test so that clusters running at once on this machine (in several test
// processes, beside a `make run` cluster on Skiff's defaults) never share
// pod addresses, ClusterIPs, DNS addresses or test LANs: their node agents
// program routes and nftables rules in the same network namespace.
type Network struct {
	// Index K is the claim: pods 10.(100+K).0.0/16, Services
	// 10.(200+K).0.0/16, LAN 10.251.K.0/24.
	Index       int
	PodCIDR     string
	ServiceCIDR string
	// DNS is the cluster DNS address, the service CIDR's 10th address.
	DNS string
	// LAN is a /24 for network namespaces standing for machines on one
	// link (NewLAN).
	LAN netip.Prefix
}

const networkSlots = 40

// ClaimNetwork claims a free Network until the test ends. Claims are file
// locks under /run/skiff-test-networks, so they end with the process that
// held them, however it ended.
func ClaimNetwork(t testing.TB) Network {
	t.Helper()
	dir := "/run/skiff-test-networks"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("framework: %v", err)
	}
	for _, k := range rand.Perm(networkSlots) {
		f, err := os.OpenFile(filepath.Join(dir, fmt.Sprint(k)), os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			t.Fatalf("framework: %v", err)
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			f.Close()
			continue
		}
		t.Cleanup(func() { f.Close() }) // closing releases the lock
		return Network{
			Index:       k,
			PodCIDR:     fmt.Sprintf("10.%d.0.0/16", 100+k),
			ServiceCIDR: fmt.Sprintf("10.%d.0.0/16", 200+k),
			DNS:         fmt.Sprintf("10.%d.0.10", 200+k),
			LAN:         netip.MustParsePrefix(fmt.Sprintf("10.251.%d.0/24", k)),
		}
	}
	t.Fatalf("framework: all %d test networks are claimed", networkSlots)
	return Network{}
}
