package routes

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"
)

// RouteProtocol is the route protocol number ("ip route ... proto 221") on
// every route a Syncer makes. Together with the destination being inside
// the cluster CIDR it is how the Syncer recognises its own routes.
const RouteProtocol = 221

// Defaults applied by New and Cleanup to zero fields.
const (
	DefaultVXLANName    = "skiff.vxlan"
	DefaultVXLANVNI     = 1
	DefaultVXLANPort    = 8472
	DefaultResyncPeriod = 30 * time.Second
)

// vxlanOverhead is what VXLAN encapsulation adds to a packet over IPv4:
// outer IPv4 (20), UDP (8), VXLAN (8) and inner Ethernet (14) headers.
const vxlanOverhead = 50

// Config configures a Syncer.
type Config struct {
	// NodeName is this node's Node name; that Node is never routed to.
	NodeName string
	// NodeIP is this node's address, normally its Node's InternalIP (the
	// address peers send overlay traffic to): the VXLAN tunnel's local end
	// and the source of the overlay device's MTU.
	NodeIP netip.Addr
	// ClusterCIDR is the pod network. Only routes to destinations inside it
	// are made or removed.
	ClusterCIDR netip.Prefix
	// VXLAN configures the overlay used for peers without a shared subnet.
	VXLAN VXLANConfig
	// Log receives the Syncer's messages; nil discards them.
	Log *slog.Logger
	// ResyncPeriod is how often the kernel state is checked and repaired
	// even without Node changes (default DefaultResyncPeriod).
	ResyncPeriod time.Duration
}

// VXLANConfig configures the overlay device.
type VXLANConfig struct {
	// Disabled turns the overlay off: peers that are not on a shared
	// subnet are then not routed at all.
	Disabled bool
	// Name is the device name (default DefaultVXLANName, at most 15
	// bytes). Syncers sharing a network namespace need distinct names.
	Name string
	// VNI is the VXLAN network identifier (default DefaultVXLANVNI). The
	// kernel allows one device per VNI and port in a network namespace, so
	// Syncers sharing one that both need the overlay need distinct VNIs or
	// ports; all nodes of a cluster must use the same VNI and port.
	VNI int
	// Port is the UDP destination port (default DefaultVXLANPort, the
	// Linux kernel's and flannel's customary VXLAN port).
	Port int
}

func (c Config) withDefaults() Config {
	if c.VXLAN.Name == "" {
		c.VXLAN.Name = DefaultVXLANName
	}
	if c.VXLAN.VNI == 0 {
		c.VXLAN.VNI = DefaultVXLANVNI
	}
	if c.VXLAN.Port == 0 {
		c.VXLAN.Port = DefaultVXLANPort
	}
	if c.ResyncPeriod <= 0 {
		c.ResyncPeriod = DefaultResyncPeriod
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	c.ClusterCIDR = c.ClusterCIDR.Masked()
	return c
}

// validate checks a defaulted Config.
func (c Config) validate() error {
	if c.NodeName == "" {
		return errors.New("routes: no node name")
	}
	if !c.NodeIP.Is4() {
		return fmt.Errorf("routes: node IP %v is not an IPv4 address", c.NodeIP)
	}
	if !c.ClusterCIDR.IsValid() || !c.ClusterCIDR.Addr().Is4() {
		return fmt.Errorf("routes: cluster CIDR %v is not an IPv4 prefix", c.ClusterCIDR)
	}
	if err := validLinkName(c.VXLAN.Name); err != nil {
		return fmt.Errorf("routes: vxlan device: %w", err)
	}
	if c.VXLAN.VNI < 1 || c.VXLAN.VNI > 1<<24-1 {
		return fmt.Errorf("routes: vxlan VNI %d out of range 1-16777215", c.VXLAN.VNI)
	}
	if c.VXLAN.Port < 1 || c.VXLAN.Port > 65535 {
		return fmt.Errorf("routes: vxlan port %d out of range", c.VXLAN.Port)
	}
	return nil
}

// validLinkName checks a Linux interface name: 1 to 15 bytes, no slash,
// colon or white space, not "." or "..".
func validLinkName(name string) error {
	switch {
	case name == "" || len(name) > 15:
		return fmt.Errorf("name %q must be 1 to 15 bytes", name)
	case name == "." || name == "..":
		return fmt.Errorf("name %q is not allowed", name)
	case strings.ContainsAny(name, "/: \t\n"):
		return fmt.Errorf("name %q contains '/', ':' or white space", name)
	}
	return nil
}
