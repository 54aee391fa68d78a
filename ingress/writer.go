package ingress

import (
	"context"
	"log/slog"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-sh/skiff/proxy"
)

// StatusWriter is the cluster's one writer of Ingress status and of the
// Warning events about bad Ingresses. It runs in the controller manager,
// under its leader election, so that however many servers and nodes there
// are, one copy speaks; the agents' controllers only route. It also makes
// the default IngressClass.
type StatusWriter struct {
	client kubernetes.Interface
	c      *Controller
	log    *slog.Logger
}

// NewStatusWriter registers its informers on factory. Ingresses get the
// addresses of the Ready nodes, since every node's controller serves them.
func NewStatusWriter(client kubernetes.Interface, factory informers.SharedInformerFactory, log *slog.Logger) (*StatusWriter, error) {
	nodes := factory.Core().V1().Nodes().Lister()
	c, err := New(client, factory, Config{
		StatusOnly: true, UpdateStatus: true, Log: log,
		NodeAddresses: func() []string {
			list, _ := nodes.List(labels.Everything())
			var out []string
			for _, ing := range proxy.LoadBalancerIngress(list) {
				out = append(out, ing.IP)
			}
			return out
		},
	})
	if err != nil {
		return nil, err
	}
	return &StatusWriter{client: client, c: c, log: log}, nil
}

// Start makes sure the default IngressClass exists, then writes status and
// events until ctx ends.
func (w *StatusWriter) Start(ctx context.Context) error {
	for {
		err := EnsureIngressClass(ctx, w.client)
		if err == nil {
			break
		}
		if w.log != nil {
			w.log.Warn("ingress: default IngressClass", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(2 * time.Second):
		}
	}
	return w.c.Run(ctx)
}
