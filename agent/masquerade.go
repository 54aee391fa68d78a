package agent

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
)

// Pods reach beyond their node through the node's address: traffic from
// the podCIDR that leaves by any interface but the pod bridge, for anything
// but the pod network (other nodes' pods are routed, keeping the pod's
// address), is masqueraded. One nftables rule per node does it, rather than the bridge
// plugin's per-pod iptables chains, which cost every pod start several
// iptables runs. The table is named after the bridge, so agents sharing a
// network namespace keep separate ones.

func natTable(bridge string) string { return "skiff_" + strings.ReplaceAll(bridge, "-", "_") }

// ensureMasquerade (re)writes the node's NAT table atomically.
func ensureMasquerade(ctx context.Context, bridge string, podCIDR, clusterCIDR netip.Prefix) error {
	t := natTable(bridge)
	script := fmt.Sprintf(`table ip %[1]s {}
delete table ip %[1]s
table ip %[1]s {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr %[2]s oifname != "%[3]s" ip daddr != { 224.0.0.0/4, %[4]s } masquerade
	}
}
`, t, podCIDR, bridge, clusterCIDR.Masked())
	cmd := exec.CommandContext(ctx, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nftables masquerade for %s: %v: %s", podCIDR, err, out)
	}
	return nil
}

// removeMasquerade deletes the node's NAT table, if there is one.
func removeMasquerade(ctx context.Context, bridge string) error {
	t := natTable(bridge)
	if err := exec.CommandContext(ctx, "nft", "list", "table", "ip", t).Run(); err != nil {
		return nil // no such table
	}
	if out, err := exec.CommandContext(ctx, "nft", "delete", "table", "ip", t).CombinedOutput(); err != nil {
		return fmt.Errorf("removing nftables table %s: %v: %s", t, err, out)
	}
	return nil
}
