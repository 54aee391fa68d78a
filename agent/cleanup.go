package agent

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/skiff-sh/skiff/agent/images"
	"github.com/skiff-sh/skiff/agent/pods"
	"github.com/skiff-sh/skiff/agent/routes"
	"github.com/skiff-sh/skiff/agent/runtime"
	"github.com/skiff-sh/skiff/agent/volumes"
	"github.com/skiff-sh/skiff/netpol"
	"github.com/skiff-sh/skiff/proxy"
)

// Cleanup removes what an agent put on its machine: every sandbox and
// container it created (through its own containerd, started for the
// purpose), the pods' volumes, the pod bridge, the node's nftables tables
// (masquerade, service proxy, network policy) and its routes to other nodes' pods. Images and the data dir
// stay, so the agent can start again.
func Cleanup(ctx context.Context, cfg Config) error {
	if cfg.DataDir == "" {
		return fmt.Errorf("agent: a data dir is required")
	}
	if cfg.NodeName == "" {
		h, err := os.Hostname()
		if err != nil {
			return err
		}
		cfg.NodeName = strings.ToLower(h)
	}
	rt, err := runtime.Start(ctx, runtime.Config{
		Dir: filepath.Join(cfg.DataDir, "containerd"), NodeName: cfg.NodeName, SandboxImage: images.PauseImage,
		CNIBinDir: "/usr/lib/cni", CNIConfDir: filepath.Join(cfg.DataDir, "cni/net.d"), ContainerdPath: cfg.ContainerdPath, Log: cfg.Log,
	})
	if err != nil {
		return fmt.Errorf("container runtime: %w", err)
	}
	cleanErr := runtime.CleanupNode(ctx, rt.Runtime(), cfg.NodeName)
	if err := rt.Stop(); err != nil && cleanErr == nil {
		cleanErr = err
	}
	vm := &volumes.Manager{Root: filepath.Join(cfg.DataDir, "pods"), Log: cfg.Log}
	if uids, err := vm.PodDirs(); err == nil {
		for _, uid := range uids {
			if err := vm.Teardown(uid); err != nil && cleanErr == nil {
				cleanErr = err
			}
		}
	}
	bridgeName := cfg.Bridge
	if bridgeName == "" {
		bridgeName = DefaultBridge
	}
	pods.RemoveNodeCgroups(cgroupRoot(cfg.NodeName))
	if err := removeMasquerade(ctx, bridgeName); err != nil && cleanErr == nil {
		cleanErr = err
	}
	if err := proxy.Cleanup(ctx, proxyTable(bridgeName)); err != nil && cleanErr == nil {
		cleanErr = err
	}
	if err := netpol.Cleanup(ctx, policyTable(bridgeName)); err != nil && cleanErr == nil {
		cleanErr = err
	}
	if cfg.ClusterCIDR == "" {
		cfg.ClusterCIDR = "10.42.0.0/16"
	}
	clusterCIDR, err := netip.ParsePrefix(cfg.ClusterCIDR)
	if err != nil {
		return fmt.Errorf("cluster CIDR %q: %w", cfg.ClusterCIDR, err)
	}
	cfg.Bridge = bridgeName
	if err := routes.Cleanup(ctx, routesConfig(cfg, netip.Addr{}, clusterCIDR)); err != nil && cleanErr == nil {
		cleanErr = err
	}
	if _, err := net.InterfaceByName(bridgeName); err == nil {
		if out, err := exec.CommandContext(ctx, "ip", "link", "delete", bridgeName).CombinedOutput(); err != nil && cleanErr == nil {
			cleanErr = fmt.Errorf("removing bridge %s: %v: %s", bridgeName, err, out)
		}
	}
	return cleanErr
}
