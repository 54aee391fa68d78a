package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/skiff-sh/skiff/sim"
)

// simCommand runs simulated nodes against a cluster: nodes that register,
// renew their leases and run pods without containers, for exercising the
// control plane at scale on one machine.
func simCommand() *cobra.Command {
	var opts sim.Options
	var kubeconfig string
	c := &cobra.Command{
		Use:   "sim",
		Short: "Run simulated nodes (no containers) against a cluster",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if kubeconfig == "" {
				kubeconfig = os.Getenv("KUBECONFIG")
			}
			if kubeconfig == "" {
				kubeconfig = filepath.Join(defaultDataDir, "admin.kubeconfig")
			}
			cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
			if err != nil {
				return fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
			}
			cfg.QPS, cfg.Burst = 5000, 10000
			cfg.ContentType = "application/vnd.kubernetes.protobuf"
			cfg.UserAgent = "skiff-sim"
			client, err := kubernetes.NewForConfig(cfg)
			if err != nil {
				return err
			}
			opts.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			fmt.Fprintf(os.Stderr, "simulating %d nodes (%s0..%s%d); Ctrl-C stops them\n", opts.Nodes, opts.NamePrefix, opts.NamePrefix, opts.Nodes-1)
			return sim.Run(ctx, client, opts)
		},
	}
	f := c.Flags()
	f.IntVar(&opts.Nodes, "nodes", 3, "how many nodes to simulate")
	f.StringVar(&opts.NamePrefix, "prefix", "sim-", "node name prefix")
	f.StringVar(&opts.CPU, "cpu", "8", "CPU capacity of each node")
	f.StringVar(&opts.Memory, "memory", "32Gi", "memory capacity of each node")
	f.IntVar(&opts.Zones, "zones", 0, "spread nodes over this many zones (topology.kubernetes.io/zone)")
	f.DurationVar(&opts.LeaseInterval, "lease-interval", 10*time.Second, "how often each node renews its Lease")
	f.BoolVar(&opts.Cleanup, "cleanup", true, "delete the simulated nodes when stopping")
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig of the cluster (default $KUBECONFIG, else "+defaultDataDir+"/admin.kubeconfig)")
	return c
}
