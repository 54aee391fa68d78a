package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/skiff-sh/skiff/agent"
	"github.com/skiff-sh/skiff/cluster"
)

// agentFlags are the agent settings shared by `skiff agent` and the agent
// `skiff server` runs.
type agentFlags struct {
	nodeName, nodeIP, clusterDNS, bridge string
	port                                 int
	noIngress                            bool
	ingressHTTP, ingressHTTPS            string
	dnsUpstreams                         []string
	// clusterCIDR is `skiff agent --cluster-cidr`; the server's own agent
	// takes the server's flag of that name.
	clusterCIDR string
}

func (a *agentFlags) register(c *cobra.Command) {
	f := c.Flags()
	f.StringVar(&a.nodeName, "node-name", "", "name of this node (default: the host name)")
	f.StringVar(&a.nodeIP, "node-ip", "", "address of this node (default: the host's first IPv4 address)")
	f.StringVar(&a.clusterDNS, "cluster-dns", "", "cluster DNS address written into pods' resolv.conf (default: the kube-dns Service's ClusterIP)")
	f.StringSliceVar(&a.dnsUpstreams, "dns-upstream", nil, "resolver (ip or ip:port) the node's cluster DNS forwards other names to; repeatable (default: /etc/resolv.conf's nameservers)")
	f.IntVar(&a.port, "kubelet-port", 10250, "port of the agent's API (logs, exec, port-forward)")
	f.BoolVar(&a.noIngress, "disable-ingress", false, "do not run the built-in ingress controller on this node")
	f.StringVar(&a.ingressHTTP, "ingress-http", ":80", "address the ingress controller serves HTTP on")
	f.StringVar(&a.ingressHTTPS, "ingress-https", ":443", "address the ingress controller serves HTTPS on")
	f.StringVar(&a.bridge, "bridge", "skiff0", "name of the pods' network bridge (agents sharing a network namespace need different ones)")
}

func (a *agentFlags) config(dataDir string, log *slog.Logger) agent.Config {
	return agent.Config{
		DataDir: dataDir, NodeName: a.nodeName, NodeIP: a.nodeIP, ClusterDNS: a.clusterDNS, Port: a.port, Bridge: a.bridge,
		ClusterCIDR: a.clusterCIDR, DNSUpstreams: a.dnsUpstreams,
		Ingress: !a.noIngress, IngressHTTP: a.ingressHTTP, IngressHTTPS: a.ingressHTTPS,
		DemoBinary: demoBinary(), Version: cluster.Version.GitVersion, Log: log,
	}
}

// demoBinary finds skiff-demo beside the skiff binary (make build puts
// both in bin/), for the local demo image.
func demoBinary() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	p := filepath.Join(filepath.Dir(exe), "skiff-demo")
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}

func agentCommand() *cobra.Command {
	var flags agentFlags
	var dataDir, server, token string
	var cleanup, verbose bool
	c := &cobra.Command{
		Use:   "agent",
		Short: "Run a node agent that joins a Skiff cluster and runs its pods",
		Long: `Run a node agent: it joins the cluster at --server with a join token
(from the server's DATA_DIR/node-token or 'skiff token create'), starts its
own containerd, registers the node and runs the pods bound to it.

With --cleanup it instead stops and removes every container and sandbox this
node's agent created, and exits.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := newLogger(verbose)
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			cfg := flags.config(dataDir, log)
			if cleanup {
				return cleanupAgent(ctx, cfg)
			}
			cfg.Server, cfg.Token = server, token
			if cfg.Token == "" {
				cfg.Token = os.Getenv("SKIFF_TOKEN")
			}
			cfg.Ready = func(node string, elapsed time.Duration) {
				fmt.Fprintf(os.Stderr, "\nNode %s is Ready (%s).\n\n", node, elapsed.Round(time.Millisecond))
			}
			return agent.Run(ctx, cfg)
		},
	}
	flags.register(c)
	f := c.Flags()
	f.StringVar(&dataDir, "data-dir", "/var/lib/skiff/agent", "directory for the agent's state (containerd, volumes, logs, certificates)")
	f.StringVar(&server, "server", "", "URL of a Skiff server, e.g. https://10.0.0.1:6443")
	f.StringVar(&token, "token", "", "join token (default: $SKIFF_TOKEN)")
	f.StringVar(&flags.clusterCIDR, "cluster-cidr", agent.DefaultClusterCIDR, "the cluster's pod network, as given to the server (routed between nodes, not masqueraded)")
	f.BoolVar(&cleanup, "cleanup", false, "remove every container, sandbox, route and nftables table this agent created, then exit")
	f.BoolVarP(&verbose, "verbose", "v", false, "log debug messages")
	return c
}

func newLogger(verbose bool) *slog.Logger {
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// cleanupAgent starts the agent's containerd, removes everything the
// agent created through it, and stops it again.
func cleanupAgent(ctx context.Context, cfg agent.Config) error {
	return agent.Cleanup(ctx, cfg)
}

// runLocalAgent runs the agent of the server's own machine, on
// credentials the server issues it directly.
func runLocalAgent(ctx context.Context, srv cluster.ServerConfig, info cluster.ReadyInfo, flags agentFlags) error {
	dir := filepath.Join(srv.DataDir, "agent")
	cfg := flags.config(dir, srv.Log)
	if cfg.NodeName == "" {
		h, err := os.Hostname()
		if err != nil {
			return err
		}
		cfg.NodeName = strings.ToLower(h)
	}
	if cfg.NodeIP == "" {
		cfg.NodeIP = srv.AdvertiseAddress
	}
	if cfg.NodeIP == "" {
		cfg.NodeIP = agent.FirstIPv4()
	}
	ips := []net.IP{}
	if ip := net.ParseIP(cfg.NodeIP); ip != nil {
		ips = append(ips, ip)
	}
	creds, err := cluster.IssueNodeCredentials(srv.DataDir, dir, cfg.NodeName, info.URL, ips, []string{cfg.NodeName})
	if err != nil {
		return fmt.Errorf("node credentials: %w", err)
	}
	cfg.Credentials = &agent.Credentials{Kubeconfig: creds.Kubeconfig, ServingCert: creds.ServingCert, ServingKey: creds.ServingKey, CACertPEM: creds.CACertPEM}
	cfg.Labels = map[string]string{"node-role.kubernetes.io/control-plane": "true"}
	cfg.ImageDirs = []string{filepath.Join(srv.DataDir, "images")}
	cfg.Ready = func(node string, elapsed time.Duration) {
		fmt.Fprintf(os.Stderr, "Node %s is Ready (%s after the agent started).\n", node, elapsed.Round(time.Millisecond))
	}
	return agent.Run(ctx, cfg)
}
