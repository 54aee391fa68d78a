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
	if err := removeHostPortChains(ctx); err != nil && cleanErr == nil {
		cleanErr = err
	}
	if cfg.ClusterCIDR == "" {
		cfg.ClusterCIDR = DefaultClusterCIDR
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

// hostPortChains are the chains the CNI portmap plugin adds (through
// iptables, in the nat table) for hostPorts, shared by every pod network in
// the namespace.
var hostPortChains = []string{"CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-MASQ", "CNI-HOSTPORT-SETMARK"}

// removeHostPortChains removes the portmap plugin's chains once no pod in
// this network namespace maps a hostPort any more (another agent here may
// still use them), and the nat table itself when nothing else is in it.
func removeHostPortChains(ctx context.Context) error {
	for _, tool := range []string{"iptables", "ip6tables"} {
		rules, err := exec.CommandContext(ctx, tool, "-w", "-t", "nat", "-S", "CNI-HOSTPORT-DNAT").Output()
		if err == nil && strings.Contains("\n"+string(rules), "\n-A ") {
			continue // hostPorts still mapped
		}
		if err == nil {
			if err := removeHostPortJumps(ctx, tool); err != nil {
				return err
			}
		}
		// An iptables nat table with nothing left but empty built-in
		// chains is the plugin's leftover too.
		left, err := exec.CommandContext(ctx, tool, "-w", "-t", "nat", "-S").Output()
		if err == nil && !strings.Contains("\n"+string(left), "\n-A ") && !strings.Contains("\n"+string(left), "\n-N ") {
			family := "ip"
			if tool == "ip6tables" {
				family = "ip6"
			}
			_ = exec.CommandContext(ctx, "nft", "delete", "table", family, "nat").Run()
		}
	}
	return nil
}

// removeHostPortJumps removes the portmap plugin's chains and the rules
// that jump to them.
func removeHostPortJumps(ctx context.Context, tool string) error {
	for _, jump := range [][]string{{"PREROUTING", "CNI-HOSTPORT-DNAT"}, {"OUTPUT", "CNI-HOSTPORT-DNAT"}, {"POSTROUTING", "CNI-HOSTPORT-MASQ"}} {
		for {
			// Rules are deleted by number: their specs carry quoted
			// comments.
			all, err := exec.CommandContext(ctx, tool, "-w", "-t", "nat", "-L", jump[0], "-n", "--line-numbers").Output()
			if err != nil {
				break
			}
			num := ""
			for _, line := range strings.Split(string(all), "\n") {
				if f := strings.Fields(line); len(f) > 1 && f[1] == jump[1] {
					num = f[0]
					break
				}
			}
			if num == "" {
				break
			}
			if out, err := exec.CommandContext(ctx, tool, "-w", "-t", "nat", "-D", jump[0], num).CombinedOutput(); err != nil {
				return fmt.Errorf("%s: removing rule %s of %s: %v: %s", tool, num, jump[0], err, out)
			}
		}
	}
	for _, ch := range hostPortChains {
		_ = exec.CommandContext(ctx, tool, "-w", "-t", "nat", "-F", ch).Run()
	}
	for _, ch := range hostPortChains {
		_ = exec.CommandContext(ctx, tool, "-w", "-t", "nat", "-X", ch).Run()
	}
	return nil
}
