package sim

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
)

// Options shape a simulated fleet. Only Nodes is required.
type Options struct {
	// Nodes is how many nodes to simulate (1..50000).
	Nodes int
	// NamePrefix starts every node name: "sim-0", "sim-1", ...; default "sim-".
	NamePrefix string
	// CPU, Memory and Pods are each node's capacity (and allocatable);
	// defaults "8", "32Gi" and 110.
	CPU    string
	Memory string
	Pods   int
	// Zones, when positive, labels node i with topology.kubernetes.io/zone
	// "zone-(i mod Zones)".
	Zones int
	// KubeletVersion is reported in each node's nodeInfo; default v1.37.2.
	KubeletVersion string

	// LeaseInterval is how often each node renews its Lease in
	// kube-node-lease (renewals of the fleet are spread evenly over it);
	// the Lease's duration is four intervals, as a kubelet's 40s is four
	// of its 10s. Default 10s.
	LeaseInterval time.Duration
	// StatusInterval is how often each node posts its status (the Ready
	// condition's lastHeartbeatTime), spread the same way; default 1m.
	StatusInterval time.Duration

	// StartupDelay keeps a bound pod Pending (ContainerCreating) this long
	// before it runs; default 0.
	StartupDelay time.Duration
	// RunDuration is how long the containers of a pod that can terminate
	// (restartPolicy Never or OnFailure) run before they exit; the
	// annotation sim.skiff.dev/run-seconds overrides it per pod. Default 1s.
	RunDuration time.Duration
	// RestartBackoff is the first CrashLoopBackOff wait of an OnFailure pod
	// whose containers failed; it doubles per restart up to five minutes.
	// Default 10s, as a kubelet's.
	RestartBackoff time.Duration
	// TerminationDelay is how long a node takes to stop the containers of
	// a pod being deleted gracefully (never longer than its grace period)
	// before it confirms the deletion; default 500ms.
	TerminationDelay time.Duration

	// Workers bounds the concurrent API writes of each of the three loops
	// (node status, leases, pods); default 32. The client's own QPS limit
	// applies on top: give the simulator a client with a high QPS (5,000
	// nodes renew 500 leases a second with the default interval).
	Workers int
	// Cleanup deletes the simulated nodes and their Leases when Run stops.
	Cleanup bool

	// Now is the clock for timestamps and decisions; default time.Now.
	Now func() time.Time
	// Log receives failures; default slog.Default().
	Log *slog.Logger
	// LeaseRenewed, if set, is called after each successful renewal with
	// how late it completed relative to its slot (the renewal latency
	// the fleet's spread is meant to keep low).
	LeaseRenewed func(node string, late time.Duration)
}

// maxNodes keeps node addresses (10.41.0.0/16) and pod ranges (a /24 per
// node from 10.42.0.0) inside 10.0.0.0/8.
const maxNodes = 50000

// withDefaults fills the zero fields.
func (o Options) withDefaults() Options {
	if o.NamePrefix == "" {
		o.NamePrefix = "sim-"
	}
	if o.CPU == "" {
		o.CPU = "8"
	}
	if o.Memory == "" {
		o.Memory = "32Gi"
	}
	if o.Pods == 0 {
		o.Pods = 110
	}
	if o.KubeletVersion == "" {
		o.KubeletVersion = "v1.37.2"
	}
	if o.LeaseInterval == 0 {
		o.LeaseInterval = 10 * time.Second
	}
	if o.StatusInterval == 0 {
		o.StatusInterval = time.Minute
	}
	if o.RunDuration == 0 {
		o.RunDuration = time.Second
	}
	if o.RestartBackoff == 0 {
		o.RestartBackoff = 10 * time.Second
	}
	if o.TerminationDelay == 0 {
		o.TerminationDelay = 500 * time.Millisecond
	}
	if o.Workers == 0 {
		o.Workers = 32
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return o
}

// validate checks completed options.
func (o Options) validate() error {
	if o.Nodes < 1 || o.Nodes > maxNodes {
		return fmt.Errorf("sim: nodes must be between 1 and %d, not %d", maxNodes, o.Nodes)
	}
	for name, q := range map[string]string{"cpu": o.CPU, "memory": o.Memory} {
		if _, err := resource.ParseQuantity(q); err != nil {
			return fmt.Errorf("sim: %s %q: %w", name, q, err)
		}
	}
	switch {
	case o.Pods < 1:
		return fmt.Errorf("sim: pods per node must be positive, not %d", o.Pods)
	case o.Pods > maxPodsPerNode:
		return fmt.Errorf("sim: at most %d pods fit a node's /24, not %d", maxPodsPerNode, o.Pods)
	case o.Zones < 0:
		return errors.New("sim: zones must not be negative")
	case o.LeaseInterval < 0 || o.StatusInterval < 0 || o.StartupDelay < 0 || o.RunDuration < 0 ||
		o.RestartBackoff < 0 || o.TerminationDelay < 0:
		return errors.New("sim: durations must not be negative")
	case o.Workers < 1:
		return errors.New("sim: workers must be positive")
	}
	return nil
}
