package statefulset

import (
	"context"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-sh/skiff/controllers/reconcile"
)

// claimPods returns the StatefulSet's pods among the namespace's pods.
// Matching orphans are adopted only when named as its members
// (<set>-<ordinal>); pods that stopped matching are released.
func (c *Controller) claimPods(ctx context.Context, set *appsv1.StatefulSet, all []*corev1.Pod) ([]*corev1.Pod, error) {
	return reconcile.ClaimPods(ctx, reconcile.PodClaim{
		Client: c.client, Owner: set, Kind: kind, Selector: set.Spec.Selector,
		Adoptable: func(p *corev1.Pod) bool { return ordinalOf(set, p) >= 0 },
		Current: func(ctx context.Context) (metav1.Object, error) {
			return c.client.AppsV1().StatefulSets(set.Namespace).Get(ctx, set.Name, metav1.GetOptions{})
		},
	}, all)
}
