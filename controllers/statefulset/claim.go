package statefulset

import (
	"context"
	"encoding/json"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
)

// claimPods returns the StatefulSet's pods among the namespace's pods:
// those it controls and whose labels still match its selector. Orphans
// that match and are named as its members (<set>-<ordinal>) are adopted
// (unless the set is going away), and pods it controls that no longer
// match are released, both by patching the pod's ownerReferences under
// its resourceVersion.
func (c *Controller) claimPods(ctx context.Context, set *appsv1.StatefulSet, all []*corev1.Pod) ([]*corev1.Pod, error) {
	sel, err := metav1.LabelSelectorAsSelector(set.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("statefulset %s/%s: selector: %w", set.Namespace, set.Name, err)
	}
	var owned []*corev1.Pod
	fresh := false
	for _, p := range all {
		ref := metav1.GetControllerOfNoCopy(p)
		matches := !sel.Empty() && sel.Matches(labels.Set(p.Labels))
		switch {
		case ref != nil && ref.UID == set.UID && matches:
			owned = append(owned, p)
		case ref != nil && ref.UID == set.UID:
			if p.DeletionTimestamp == nil {
				if err := c.patchOwners(ctx, p, withoutOwner(p.OwnerReferences, set.UID)); err != nil {
					return nil, err
				}
			}
		case ref == nil && matches && ordinalOf(set, p) >= 0 && p.DeletionTimestamp == nil && set.DeletionTimestamp == nil:
			if !fresh {
				// Adopt only for the StatefulSet as it is now, not one that
				// was deleted and recreated under the same name.
				cur, err := c.client.AppsV1().StatefulSets(set.Namespace).Get(ctx, set.Name, metav1.GetOptions{})
				if err != nil || cur.UID != set.UID || cur.DeletionTimestamp != nil {
					return owned, nil
				}
				fresh = true
			}
			refs := append(append([]metav1.OwnerReference{}, p.OwnerReferences...), *metav1.NewControllerRef(set, kind))
			if err := c.patchOwners(ctx, p, refs); err != nil {
				return nil, err
			}
			owned = append(owned, p)
		}
	}
	return owned, nil
}

func withoutOwner(refs []metav1.OwnerReference, uid types.UID) []metav1.OwnerReference {
	out := []metav1.OwnerReference{}
	for _, r := range refs {
		if r.UID != uid {
			out = append(out, r)
		}
	}
	return out
}

// patchOwners sets a pod's ownerReferences; a pod that is gone needs none.
func (c *Controller) patchOwners(ctx context.Context, pod *corev1.Pod, refs []metav1.OwnerReference) error {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"ownerReferences": refs, "resourceVersion": pod.ResourceVersion,
	}})
	if err != nil {
		return fmt.Errorf("pod %s/%s: owner patch: %w", pod.Namespace, pod.Name, err)
	}
	_, err = c.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("pod %s/%s: patching owners: %w", pod.Namespace, pod.Name, err)
	}
	return nil
}
