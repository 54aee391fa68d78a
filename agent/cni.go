package agent

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
)

// DefaultBridge is the node's pod bridge (in the agent's network
// namespace) unless Config.Bridge names another.
const DefaultBridge = "skiff0"

// DefaultClusterCIDR is the pod network unless Config.ClusterCIDR says
// otherwise (the server's --cluster-cidr default too).
const DefaultClusterCIDR = "10.42.0.0/16"

// cniConfig is the node's CNI network: a bridge with host-local IPAM on
// the node's podCIDR, and portmap for hostPorts. Masquerading is one
// nftables rule for the node (masquerade.go), not the bridge plugin's. IPAM state lives in the
// agent's own directory so agents on one machine share nothing.
func cniConfig(bridge string, podCIDR netip.Prefix, ipamDir string) ([]byte, error) {
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       "skiff",
		"plugins": []any{
			map[string]any{
				"type":        "bridge",
				"bridge":      bridge,
				"isGateway":   true,
				"ipMasq":      false,
				"hairpinMode": true,
				"ipam": map[string]any{
					"type":    "host-local",
					"ranges":  [][]map[string]string{{{"subnet": podCIDR.String()}}},
					"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
					"dataDir": ipamDir,
				},
			},
			map[string]any{
				"type":         "portmap",
				"capabilities": map[string]bool{"portMappings": true},
				"snat":         true,
			},
		},
	}
	return json.MarshalIndent(conf, "", "  ")
}

// writeCNIConfig writes the conflist where containerd looks for it.
func writeCNIConfig(confDir, ipamDir, bridge string, podCIDR netip.Prefix) error {
	data, err := cniConfig(bridge, podCIDR, ipamDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(confDir, 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(ipamDir, 0o700); err != nil {
		return err
	}
	path := filepath.Join(confDir, "10-skiff.conflist")
	if old, err := os.ReadFile(path); err == nil && string(old) == string(data) {
		return nil
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("writing CNI config: %w", err)
	}
	return os.Rename(tmp, path)
}
