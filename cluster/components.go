package cluster

import (
	"log/slog"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-sh/skiff/scheduler"
)

// schedulerGroup is kube-scheduler's part: one scheduler, elected through
// the kube-scheduler Lease.
func schedulerGroup() electedGroup {
	return electedGroup{
		lease: "kube-scheduler",
		user:  "system:kube-scheduler",
		components: []component{{
			name: "scheduler",
			build: func(client kubernetes.Interface, factory informers.SharedInformerFactory, log *slog.Logger) (Runnable, error) {
				return scheduler.New(client, factory, scheduler.Options{Log: log}), nil
			},
		}},
	}
}

// controllerGroup is kube-controller-manager's part: every controller,
// elected through the kube-controller-manager Lease.
func controllerGroup(opts controllerOptions) electedGroup {
	return electedGroup{
		lease:      "kube-controller-manager",
		user:       "system:kube-controller-manager",
		components: controllerComponents(opts),
	}
}

// controllerOptions carry what controllers need from the assembly.
type controllerOptions struct {
	caPEM []byte
}

// controllerComponents lists the controllers the controller manager runs.
func controllerComponents(opts controllerOptions) []component {
	return nil
}
