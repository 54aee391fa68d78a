package reconcile

import (
	"context"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// PodClaim is a controller's claim on the pods of its namespace: the
// owner, its kind, and the selector its pods match.
type PodClaim struct {
	Client   kubernetes.Interface
	Owner    metav1.Object
	Kind     schema.GroupVersionKind
	Selector *metav1.LabelSelector
	// Adoptable, if set, further limits which matching orphans the owner
	// takes (a StatefulSet only takes pods named as its members).
	Adoptable func(*corev1.Pod) bool
	// Current reads the owner afresh from the API. It is asked once, before
	// the first adoption, so that an owner deleted and recreated under the
	// same name never adopts with its old identity.
	Current func(ctx context.Context) (metav1.Object, error)
}

// ClaimPods returns the owner's pods among pods: those it controls whose
// labels still match its selector. Matching orphans are adopted (unless
// the owner is being deleted) and controlled pods that no longer match are
// released, both by patching the pod's ownerReferences under its
// resourceVersion, as Kubernetes' controllers do.
func ClaimPods(ctx context.Context, c PodClaim, pods []*corev1.Pod) ([]*corev1.Pod, error) {
	sel, err := metav1.LabelSelectorAsSelector(c.Selector)
	if err != nil {
		return nil, fmt.Errorf("%s %s/%s: selector: %w", c.Kind.Kind, c.Owner.GetNamespace(), c.Owner.GetName(), err)
	}
	uid := c.Owner.GetUID()
	var owned []*corev1.Pod
	fresh := false
	for _, p := range pods {
		ref := metav1.GetControllerOfNoCopy(p)
		matches := !sel.Empty() && sel.Matches(labels.Set(p.Labels))
		switch {
		case ref != nil && ref.UID == uid && matches:
			owned = append(owned, p)
		case ref != nil && ref.UID == uid:
			if p.DeletionTimestamp == nil {
				if err := patchPodOwners(ctx, c.Client, p, withoutOwner(p.OwnerReferences, uid)); err != nil {
					return nil, err
				}
			}
		case ref == nil && matches && p.DeletionTimestamp == nil && c.Owner.GetDeletionTimestamp() == nil &&
			(c.Adoptable == nil || c.Adoptable(p)):
			if !fresh {
				cur, err := c.Current(ctx)
				if err != nil || cur.GetUID() != uid || cur.GetDeletionTimestamp() != nil {
					return owned, nil
				}
				fresh = true
			}
			refs := append(append([]metav1.OwnerReference{}, p.OwnerReferences...), *metav1.NewControllerRef(c.Owner, c.Kind))
			if err := patchPodOwners(ctx, c.Client, p, refs); err != nil {
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

// patchPodOwners sets a pod's ownerReferences, guarded by its
// resourceVersion; a pod that is gone needs none.
func patchPodOwners(ctx context.Context, client kubernetes.Interface, pod *corev1.Pod, refs []metav1.OwnerReference) error {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"ownerReferences": refs, "resourceVersion": pod.ResourceVersion,
	}})
	if err != nil {
		return fmt.Errorf("pod %s/%s: owner patch: %w", pod.Namespace, pod.Name, err)
	}
	_, err = client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("pod %s/%s: patching owners: %w", pod.Namespace, pod.Name, err)
	}
	return nil
}
