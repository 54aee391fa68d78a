package daemonset

import (
	"context"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-sh/skiff/controllers/reconcile"
)

// claimPods returns the DaemonSet's pods among the namespace's pods,
// adopting matching orphans and releasing pods that stopped matching.
func (c *Controller) claimPods(ctx context.Context, ds *appsv1.DaemonSet, all []*corev1.Pod) ([]*corev1.Pod, error) {
	return reconcile.ClaimPods(ctx, reconcile.PodClaim{
		Client: c.client, Owner: ds, Kind: kind, Selector: ds.Spec.Selector,
		Current: func(ctx context.Context) (metav1.Object, error) {
			return c.client.AppsV1().DaemonSets(ds.Namespace).Get(ctx, ds.Name, metav1.GetOptions{})
		},
	}, all)
}
