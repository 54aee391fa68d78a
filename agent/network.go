package agent

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-sh/skiff/agent/routes"
	"github.com/skiff-sh/skiff/clusterdns"
	"github.com/skiff-sh/skiff/ingress"
	"github.com/skiff-sh/skiff/netpol"
	"github.com/skiff-sh/skiff/proxy"
)

// The node's service networking lives in the agent's network namespace:
//
//   - the pod bridge, made before any pod with the podCIDR's first address
//     as the pods' gateway, so that the node's cluster DNS server can listen
//     there from the start (the CNI bridge plugin finds it and reuses it);
//   - table ip skiff_<bridge> (masquerade.go): pod traffic leaving the node
//     for anything but the pod network is masqueraded;
//   - table ip skiff_svc_<bridge> (package proxy): Services;
//   - table ip skiff_pol_<bridge> (package netpol): NetworkPolicies of
//     the node's pods;
//   - routes to the other nodes' podCIDRs: through the node when it shares
//     a subnet with this one (host-gw), else over VXLAN (package routes).

// vxlanDevice is the node's overlay device (package routes).
func vxlanDevice(bridge string) string {
	if bridge == DefaultBridge {
		return routes.DefaultVXLANName
	}
	return "vx." + bridge
}

// routesConfig is the routes.Config of a node.
func routesConfig(cfg Config, ip netip.Addr, clusterCIDR netip.Prefix) routes.Config {
	return routes.Config{NodeName: cfg.NodeName, NodeIP: ip, ClusterCIDR: clusterCIDR,
		VXLAN: routes.VXLANConfig{Name: vxlanDevice(cfg.Bridge)}, Log: cfg.Log}
}

// proxyTable is the node's service proxy table.
func proxyTable(bridge string) string { return "skiff_svc_" + strings.ReplaceAll(bridge, "-", "_") }

// policyTable is the node's NetworkPolicy table.
func policyTable(bridge string) string { return "skiff_pol_" + strings.ReplaceAll(bridge, "-", "_") }

// gatewayOf is the pods' gateway on the bridge: the podCIDR's first address
// (host-local IPAM's default gateway).
func gatewayOf(podCIDR netip.Prefix) netip.Prefix {
	return netip.PrefixFrom(podCIDR.Masked().Addr().Next(), podCIDR.Bits())
}

// ensureBridge makes the pod bridge with its gateway address and brings it
// up. An existing bridge keeps its other addresses.
func ensureBridge(ctx context.Context, bridge string, gw netip.Prefix) error {
	if _, err := net.InterfaceByName(bridge); err != nil {
		if out, err := exec.CommandContext(ctx, "ip", "link", "add", "name", bridge, "type", "bridge").CombinedOutput(); err != nil {
			if _, again := net.InterfaceByName(bridge); again != nil {
				return fmt.Errorf("creating bridge %s: %v: %s", bridge, err, out)
			}
		}
	}
	steps := [][]string{
		{"ip", "addr", "replace", gw.String(), "dev", bridge},
		{"ip", "link", "set", bridge, "up"},
	}
	for _, s := range steps {
		if out, err := exec.CommandContext(ctx, s[0], s[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v: %s", strings.Join(s, " "), err, out)
		}
	}
	return nil
}

// enableForwarding turns on IPv4 forwarding, which pods, Services and the
// routes between nodes all need.
func enableForwarding() error {
	const path = "/proc/sys/net/ipv4/ip_forward"
	if b, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(b)) == "1" {
		return nil
	}
	if err := os.WriteFile(path, []byte("1"), 0o644); err != nil {
		return fmt.Errorf("enabling IPv4 forwarding: %w", err)
	}
	return nil
}

// startServiceNetwork starts the node's part of service networking on one
// informer factory: routes to the other nodes' pods, the service proxy,
// NetworkPolicy enforcement, the cluster DNS server on the bridge gateway
// with its kube-dns endpoint, and the ingress controller when enabled.
func startServiceNetwork(ctx context.Context, cfg Config, client kubernetes.Interface, node *corev1.Node, ip netip.Addr, podCIDR, clusterCIDR netip.Prefix, gw netip.Addr, goRun func(string, func(context.Context) error)) error {
	factory := informers.NewSharedInformerFactory(client, 0)

	rs, err := routes.New(factory, routesConfig(cfg, ip, clusterCIDR))
	if err != nil {
		return fmt.Errorf("pod network routes: %w", err)
	}

	px, err := proxy.New(client, factory, proxy.Config{
		NodeName: cfg.NodeName, NodeIPs: []netip.Addr{ip}, ClusterCIDR: podCIDR,
		TableName: proxyTable(cfg.Bridge), Log: cfg.Log,
	})
	if err != nil {
		return err
	}
	pol, err := netpol.New(client, factory, netpol.Config{
		NodeName: cfg.NodeName, Bridge: cfg.Bridge, PodCIDR: podCIDR, TableName: policyTable(cfg.Bridge), Log: cfg.Log,
	})
	if err != nil {
		return err
	}
	dnsSrv, err := clusterdns.New(factory, clusterdns.Config{
		Domain: cfg.ClusterDomain, Listen: []string{netip.AddrPortFrom(gw, 53).String()},
		Upstreams: cfg.DNSUpstreams, Log: cfg.Log,
	})
	if err != nil {
		return fmt.Errorf("cluster DNS: %w", err)
	}
	var ic *ingress.Controller
	if cfg.Ingress {
		httpAddr, httpsAddr := cfg.IngressHTTP, cfg.IngressHTTPS
		if httpAddr == "" {
			httpAddr = ":80"
		}
		if httpsAddr == "" {
			httpsAddr = ":443"
		}
		ic, err = ingress.New(client, factory, ingress.Config{HTTPAddr: httpAddr, HTTPSAddr: httpsAddr, Log: cfg.Log})
		if err != nil {
			return fmt.Errorf("ingress: %w", err)
		}
	}
	goRun("pod network routes", rs.Run)
	goRun("service proxy", px.Run)
	goRun("network policy", pol.Run)
	goRun("cluster DNS", dnsSrv.Run)
	goRun("cluster DNS endpoint", func(ctx context.Context) error {
		return keepDNSEndpoint(ctx, client, node.Name, node.UID, gw, 10*time.Second, cfg.Log)
	})
	if ic != nil {
		goRun("ingress", ic.Run)
	}
	factory.Start(ctx.Done())
	return nil
}
