package statefulset

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-sh/skiff/controllers/history"
	"github.com/skiff-sh/skiff/controllers/reconcile"
)

// act performs the plan's actions in order and stops at the first
// failure; wait asks for a later look when a pod waits for a claim that
// is still being deleted.
func (c *Controller) act(ctx context.Context, set *appsv1.StatefulSet, pl plan, current, update *appsv1.ControllerRevision) (wait time.Duration, err error) {
	for _, a := range pl.actions {
		switch a.kind {
		case actCreate:
			rev := update
			if a.fromCurrent {
				rev = current
			}
			ready, err := c.ensureClaims(ctx, set, a.ordinal)
			if err != nil {
				return 0, err
			}
			if !ready {
				return claimWait, nil
			}
			template := &set.Spec.Template
			if rev.Name != update.Name {
				if template, err = history.Template(rev); err != nil {
					return 0, err
				}
			}
			pod := newPod(set, template, rev.Name, a.ordinal)
			_, err = c.client.CoreV1().Pods(set.Namespace).Create(ctx, pod, metav1.CreateOptions{})
			switch {
			case err == nil:
				c.rec.Eventf(set, corev1.EventTypeNormal, reconcile.ReasonSuccessfulCreate, "create Pod %s in StatefulSet %s successful", pod.Name, set.Name)
			case apierrors.IsAlreadyExists(err):
				// The cache is behind; the pod's event brings us back.
			default:
				c.rec.Eventf(set, corev1.EventTypeWarning, reconcile.ReasonFailedCreate, "create Pod %s in StatefulSet %s failed error: %v", pod.Name, set.Name, err)
				return 0, fmt.Errorf("creating pod %s/%s: %w", pod.Namespace, pod.Name, err)
			}
		case actDelete:
			if a.reason == whyFinished {
				c.rec.Eventf(set, corev1.EventTypeWarning, reasonRecreatingFailedPod, "StatefulSet %s/%s is recreating failed Pod %s", set.Namespace, set.Name, a.pod.Name)
			}
			err := c.client.CoreV1().Pods(a.pod.Namespace).Delete(ctx, a.pod.Name, metav1.DeleteOptions{
				Preconditions: &metav1.Preconditions{UID: &a.pod.UID},
			})
			switch {
			case err == nil:
				c.rec.Eventf(set, corev1.EventTypeNormal, reconcile.ReasonSuccessfulDelete, "delete Pod %s in StatefulSet %s successful", a.pod.Name, set.Name)
			case apierrors.IsNotFound(err) || apierrors.IsConflict(err):
			default:
				c.rec.Eventf(set, corev1.EventTypeWarning, reconcile.ReasonFailedDelete, "delete Pod %s in StatefulSet %s failed error: %v", a.pod.Name, set.Name, err)
				return 0, fmt.Errorf("deleting pod %s/%s: %w", a.pod.Namespace, a.pod.Name, err)
			}
		case actRelabel:
			p := a.pod.DeepCopy()
			setIdentity(set, p, a.ordinal)
			if _, err := c.client.CoreV1().Pods(p.Namespace).Update(ctx, p, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return 0, fmt.Errorf("restoring identity of pod %s/%s: %w", p.Namespace, p.Name, err)
			}
		case actClaims:
			if _, err := c.ensureClaims(ctx, set, a.ordinal); err != nil {
				return 0, err
			}
		}
	}
	return 0, nil
}

// ensureClaims creates the ordinal's missing claims; ready is false while
// one of them is still being deleted (a new pod must not bind to it).
func (c *Controller) ensureClaims(ctx context.Context, set *appsv1.StatefulSet, ordinal int) (ready bool, err error) {
	ready = true
	for _, claim := range newClaims(set, ordinal) {
		existing, err := c.claims.PersistentVolumeClaims(set.Namespace).Get(claim.Name)
		if err == nil {
			if existing.DeletionTimestamp != nil {
				ready = false
			}
			continue
		}
		if !apierrors.IsNotFound(err) {
			return false, err
		}
		claim.OwnerReferences, _ = claimOwners(set, claim, nil, ordinal)
		_, err = c.client.CoreV1().PersistentVolumeClaims(set.Namespace).Create(ctx, claim, metav1.CreateOptions{})
		switch {
		case err == nil:
			c.rec.Eventf(set, corev1.EventTypeNormal, reconcile.ReasonSuccessfulCreate, "create Claim %s for Pod %s in StatefulSet %s success", claim.Name, podName(set, ordinal), set.Name)
		case apierrors.IsAlreadyExists(err):
		default:
			c.rec.Eventf(set, corev1.EventTypeWarning, reconcile.ReasonFailedCreate, "create Claim %s for Pod %s in StatefulSet %s failed error: %v", claim.Name, podName(set, ordinal), set.Name, err)
			return false, fmt.Errorf("creating claim %s/%s: %w", claim.Namespace, claim.Name, err)
		}
	}
	return ready, nil
}

// syncClaimOwners brings the owner references of the claims of the set's
// pods in line with the retention policy (claims.go) before anything is
// deleted, so that the garbage collector removes exactly the claims the
// policy says.
func (c *Controller) syncClaimOwners(ctx context.Context, set *appsv1.StatefulSet, pods []*corev1.Pod) error {
	if len(set.Spec.VolumeClaimTemplates) == 0 {
		return nil
	}
	for _, p := range pods {
		ord := ordinalOf(set, p)
		if ord < 0 {
			continue
		}
		for _, want := range newClaims(set, ord) {
			claim, err := c.claims.PersistentVolumeClaims(set.Namespace).Get(want.Name)
			if apierrors.IsNotFound(err) {
				continue
			}
			if err != nil {
				return err
			}
			if claim.DeletionTimestamp != nil {
				continue
			}
			refs, changed := claimOwners(set, claim, p, ord)
			if !changed {
				continue
			}
			if refs == nil {
				refs = []metav1.OwnerReference{}
			}
			patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
				"ownerReferences": refs, "resourceVersion": claim.ResourceVersion,
			}})
			if err != nil {
				return fmt.Errorf("claim %s: owner patch: %w", claim.Name, err)
			}
			_, err = c.client.CoreV1().PersistentVolumeClaims(claim.Namespace).Patch(ctx, claim.Name, types.MergePatchType, patch, metav1.PatchOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("claim %s/%s: setting owners: %w", claim.Namespace, claim.Name, err)
			}
		}
	}
	return nil
}
