// Command skiff is Skiff's one binary: the control plane (skiff server),
// an embedded kubectl (skiff kubectl), and the tools around them. This file
// only wires subcommands; the work happens in the packages they call.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/component-base/cli"
	kubectlcmd "k8s.io/kubectl/pkg/cmd"

	"github.com/skiff-sh/skiff/agent"
	"github.com/skiff-sh/skiff/cluster"
	"github.com/skiff-sh/skiff/controlplane"
)

// defaultDataDir is where skiff server keeps its state.
const defaultDataDir = "/var/lib/skiff"

func main() {
	// skiff kubectl ... hands everything after "kubectl" to kubectl itself,
	// flags included, so cobra must not parse them.
	if len(os.Args) > 1 && os.Args[1] == "kubectl" {
		os.Exit(runKubectl(os.Args[2:]))
	}
	root := &cobra.Command{
		Use:           "skiff",
		Short:         "Skiff: Kubernetes in one small binary",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(serverCommand(), agentCommand(), imageCommand(), kubectlCommand(), simCommand(), whyCommand(), versionCommand(), tokenCommand())
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "skiff:", err)
		os.Exit(1)
	}
}

func serverCommand() *cobra.Command {
	var cfg cluster.ServerConfig
	var endpoints string
	var verbose, noScheduler, noControllers, noAgent bool
	var cpOpts controlplane.Options
	var agentOpts agentFlags
	c := &cobra.Command{
		Use:   "server",
		Short: "Run the control plane: API server on etcd",
		RunE: func(cmd *cobra.Command, _ []string) error {
			level := slog.LevelInfo
			if verbose {
				level = slog.LevelDebug
			}
			cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			if endpoints != "" {
				cfg.EtcdEndpoints = strings.Split(endpoints, ",")
			}
			if !noScheduler {
				cfg.ControlPlane = append(cfg.ControlPlane, controlplane.Scheduler())
			}
			if !noControllers {
				cfg.ControlPlane = append(cfg.ControlPlane, controlplane.ControllerManager(cpOpts))
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			var agentDone chan struct{}
			cfg.Ready = func(info cluster.ReadyInfo) {
				fmt.Fprintf(os.Stderr, "\nSkiff is ready in %s.\n  API:        %s\n  kubeconfig: %s\n  try:        KUBECONFIG=%s kubectl get namespaces\n             skiff kubectl get namespaces\n\n",
					info.Elapsed.Round(1e6), info.URL, info.Kubeconfig, info.Kubeconfig)
				if noAgent {
					return
				}
				agentDone = make(chan struct{})
				go func() {
					defer close(agentDone)
					agentOpts.clusterCIDR = cpOpts.ClusterCIDR
					if err := runLocalAgent(ctx, cfg, info, agentOpts); err != nil {
						cfg.Log.Error("agent stopped", "err", err)
					}
				}()
			}
			err := cluster.RunServer(ctx, cfg)
			if agentDone != nil {
				stop()
				<-agentDone
			}
			return err
		},
	}
	f := c.Flags()
	f.StringVar(&cfg.DataDir, "data-dir", defaultDataDir, "directory for the server's state (PKI, etcd data, keys)")
	f.IntVar(&cfg.APIPort, "api-port", 6443, "HTTPS port of the API")
	f.StringVar(&cfg.BindAddress, "bind-address", "0.0.0.0", "address the API listens on")
	f.StringVar(&cfg.AdvertiseAddress, "advertise-address", "", "address other components reach the API on (default: the host's first IPv4 address)")
	f.StringVar(&endpoints, "etcd-endpoints", "", "comma-separated URLs of an external etcd cluster (default: embedded etcd in the data dir)")
	f.StringVar(&cfg.ServiceCIDR, "service-cidr", "10.43.0.0/16", "range Service ClusterIPs come from")
	f.BoolVarP(&verbose, "verbose", "v", false, "log debug messages")
	f.BoolVar(&noScheduler, "disable-scheduler", false, "do not run the scheduler in this server")
	f.BoolVar(&noControllers, "disable-controllers", false, "do not run the controllers in this server")
	f.StringVar(&cpOpts.ClusterCIDR, "cluster-cidr", agent.DefaultClusterCIDR, "range pod IPs come from (each node gets a /24 of it)")
	f.BoolVar(&noAgent, "disable-agent", false, "do not run a node agent (pods) on this server's machine")
	agentOpts.register(c)
	f.DurationVar(&cpOpts.NodeGracePeriod, "node-monitor-grace-period", 40*time.Second, "how long a node may stay silent before it is marked Unknown and its pods are evicted")
	f.Float64Var(&cpOpts.NodeEvictionRate, "node-eviction-rate", 0.1, "nodes per second, per zone, whose pods may be evicted")
	return c
}

// kubectlCommand only documents `skiff kubectl`; main dispatches it before
// cobra parses anything.
func kubectlCommand() *cobra.Command {
	return &cobra.Command{
		Use:                "kubectl [args...]",
		Short:              "Run the embedded kubectl (KUBECONFIG, else " + defaultDataDir + "/admin.kubeconfig)",
		DisableFlagParsing: true,
		RunE: func(_ *cobra.Command, args []string) error {
			os.Exit(runKubectl(args))
			return nil
		},
	}
}

// runKubectl runs the embedded kubectl with args, defaulting KUBECONFIG to
// the local server's admin kubeconfig.
func runKubectl(args []string) int {
	if os.Getenv("KUBECONFIG") == "" {
		if _, err := os.Stat(filepath.Join(defaultDataDir, "admin.kubeconfig")); err == nil {
			os.Setenv("KUBECONFIG", filepath.Join(defaultDataDir, "admin.kubeconfig"))
		}
	}
	cmd := kubectlcmd.NewDefaultKubectlCommandWithArgs(kubectlcmd.KubectlOptions{
		PluginHandler: kubectlcmd.NewDefaultPluginHandler([]string{"kubectl"}),
		Arguments:     append([]string{"kubectl"}, args...),
		ConfigFlags:   defaultConfigFlags(),
		IOStreams:     ioStreams(),
	})
	cmd.SetArgs(args)
	return cli.Run(cmd)
}

func versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print Skiff's version and the Kubernetes version it serves",
		Run: func(*cobra.Command, []string) {
			fmt.Printf("skiff serving Kubernetes %s (%s)\n", cluster.Version.GitVersion, cluster.Version.GoVersion)
		},
	}
}
