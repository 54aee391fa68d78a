// Package controlplane says what Skiff's control plane runs: the scheduler
// group and the controller-manager group, each acting only while its
// server holds the group's Lease. Package cluster runs the groups; this
// package only lists them, so the list lives in one place and the
// components never depend on the assembly.
package controlplane

import (
	"net/netip"
	"time"

	"github.com/skiff-sh/skiff/cluster"
	"github.com/skiff-sh/skiff/controllers/cronjob"
	"github.com/skiff-sh/skiff/controllers/csrsigner"
	"github.com/skiff-sh/skiff/controllers/daemonset"
	"github.com/skiff-sh/skiff/controllers/deployment"
	"github.com/skiff-sh/skiff/controllers/disruption"
	"github.com/skiff-sh/skiff/controllers/endpoints"
	"github.com/skiff-sh/skiff/controllers/garbagecollector"
	"github.com/skiff-sh/skiff/controllers/job"
	"github.com/skiff-sh/skiff/controllers/namespace"
	"github.com/skiff-sh/skiff/controllers/nodeipam"
	"github.com/skiff-sh/skiff/controllers/nodelifecycle"
	"github.com/skiff-sh/skiff/controllers/podgc"
	"github.com/skiff-sh/skiff/controllers/replicaset"
	"github.com/skiff-sh/skiff/controllers/serviceaccount"
	"github.com/skiff-sh/skiff/controllers/servicelb"
	"github.com/skiff-sh/skiff/controllers/statefulset"
	"github.com/skiff-sh/skiff/controllers/volumebinding"
	"github.com/skiff-sh/skiff/ingress"
	"github.com/skiff-sh/skiff/scheduler"
)

// Scheduler is kube-scheduler's part: one scheduler.
func Scheduler() cluster.ElectedGroup {
	return cluster.ElectedGroup{
		Lease: "kube-scheduler",
		User:  "system:kube-scheduler",
		Components: []cluster.Component{{
			Name: "scheduler",
			Build: func(env cluster.ComponentEnv) (cluster.Runnable, error) {
				return scheduler.New(env.Client, env.Factory, scheduler.Options{Log: env.Log}), nil
			},
		}},
	}
}

// Options tune the controllers; zero values take Kubernetes' defaults.
type Options struct {
	// NodeGracePeriod is how long a node may stay silent before it is
	// Ready=Unknown (kube's --node-monitor-grace-period, 40s).
	NodeGracePeriod time.Duration
	// NodeEvictionRate is how many nodes per second, per zone, get their
	// pods evicted (kube's --node-eviction-rate, 0.1).
	NodeEvictionRate float64
	// ClusterCIDR is the pod network nodes get their podCIDRs from
	// (default 10.42.0.0/16, a /24 per node).
	ClusterCIDR string
}

// ControllerManager is kube-controller-manager's part: every controller.
func ControllerManager(opts Options) cluster.ElectedGroup {
	return cluster.ElectedGroup{
		Lease:      "kube-controller-manager",
		User:       "system:kube-controller-manager",
		Components: controllers(opts),
	}
}

// All is the whole control plane with default options.
func All() []cluster.ElectedGroup {
	return AllWith(Options{})
}

// AllWith is the whole control plane with the given options.
func AllWith(opts Options) []cluster.ElectedGroup {
	return []cluster.ElectedGroup{Scheduler(), ControllerManager(opts)}
}

// controllers lists the controllers the controller manager runs. Every
// builder runs before the shared informer factory starts.
func controllers(opts Options) []cluster.Component {
	return []cluster.Component{
		{Name: "replicaset", Build: func(env cluster.ComponentEnv) (cluster.Runnable, error) {
			return replicaset.New(env.Client, env.Factory, replicaset.Options{Log: env.Log})
		}},
		{Name: "replicationcontroller", Build: func(env cluster.ComponentEnv) (cluster.Runnable, error) {
			return replicaset.NewReplicationController(env.Client, env.Factory, replicaset.Options{Log: env.Log})
		}},
		{Name: "deployment", Build: func(env cluster.ComponentEnv) (cluster.Runnable, error) {
			return deployment.New(env.Client, env.Factory, deployment.Options{Log: env.Log})
		}},
		{Name: "daemonset", Build: func(env cluster.ComponentEnv) (cluster.Runnable, error) {
			return daemonset.New(env.Client, env.Factory, daemonset.Options{Log: env.Log})
		}},
		{Name: "statefulset", Build: func(env cluster.ComponentEnv) (cluster.Runnable, error) {
			return statefulset.New(env.Client, env.Factory, statefulset.Options{Log: env.Log})
		}},
		{Name: "disruption", Build: func(env cluster.ComponentEnv) (cluster.Runnable, error) {
			return disruption.New(env.Client, env.Factory, disruption.Options{Log: env.Log})
		}},
		{Name: "nodelifecycle", Build: func(env cluster.ComponentEnv) (cluster.Runnable, error) {
			return nodelifecycle.New(env.Client, env.Factory, nodelifecycle.Options{
				Log: env.Log, GracePeriod: opts.NodeGracePeriod, EvictionRate: opts.NodeEvictionRate,
			})
		}},
		{Name: "job", Build: func(env cluster.ComponentEnv) (cluster.Runnable, error) {
			return job.New(env.Client, env.Factory, job.Options{Log: env.Log})
		}},
		{Name: "cronjob", Build: func(env cluster.ComponentEnv) (cluster.Runnable, error) {
			return cronjob.New(env.Client, env.Factory, cronjob.Options{Log: env.Log})
		}},
		{Name: "nodeipam", Build: func(env cluster.ComponentEnv) (cluster.Runnable, error) {
			return nodeipam.New(env.Client, env.Factory, nodeipam.Options{Log: env.Log, ClusterCIDR: opts.ClusterCIDR})
		}},
		{Name: "csrsigner", Build: func(env cluster.ComponentEnv) (cluster.Runnable, error) {
			// The Service CIDR: no node may get a serving certificate for
			// the API server's ClusterIP.
			return csrsigner.New(env.Client, env.Factory, env.CA, csrsigner.Options{
				Log: env.Log, ProtectedNetworks: []netip.Prefix{env.ServiceCIDR},
			})
		}},
		{Name: "persistentvolume-binder", Build: func(env cluster.ComponentEnv) (cluster.Runnable, error) {
			return volumebinding.NewBinder(env.Client, env.Factory, volumebinding.BinderOptions{Log: env.Log})
		}},
		{Name: "local-path-provisioner", Build: func(env cluster.ComponentEnv) (cluster.Runnable, error) {
			return volumebinding.NewProvisioner(env.Client, env.Factory, volumebinding.ProvisionerOptions{Log: env.Log})
		}},
		{Name: "podgc", Build: func(env cluster.ComponentEnv) (cluster.Runnable, error) {
			return podgc.New(env.Client, env.Factory, podgc.Options{Log: env.Log})
		}},
		{Name: "endpoints", Build: func(env cluster.ComponentEnv) (cluster.Runnable, error) {
			return endpoints.New(env.Client, env.Factory, endpoints.Options{Log: env.Log})
		}},
		{Name: "ingress-status", Build: func(env cluster.ComponentEnv) (cluster.Runnable, error) {
			return ingress.NewStatusWriter(env.Client, env.Factory, env.Log)
		}},
		{Name: "servicelb", Build: func(env cluster.ComponentEnv) (cluster.Runnable, error) {
			return servicelb.New(env.Client, env.Factory, servicelb.Options{Log: env.Log})
		}},
		{Name: "serviceaccount", Build: func(env cluster.ComponentEnv) (cluster.Runnable, error) {
			return serviceaccount.New(env.Client, env.Factory, serviceaccount.Options{Log: env.Log, RootCA: env.CACertPEM})
		}},
		{Name: "namespace", Build: func(env cluster.ComponentEnv) (cluster.Runnable, error) {
			return namespace.New(env.Client, env.Metadata, env.Factory, namespace.Options{Log: env.Log})
		}},
		{Name: "garbagecollector", Build: func(env cluster.ComponentEnv) (cluster.Runnable, error) {
			return garbagecollector.New(env.Client, env.Metadata, garbagecollector.Options{Log: env.Log})
		}},
	}
}
