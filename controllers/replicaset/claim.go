package replicaset

import (
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
)

// Claims sorts the objects (pods, or a Deployment's ReplicaSets) an owner
// may care about into those it keeps, those it should adopt and those it
// should release.
type Claims[T metav1.Object] struct {
	// Keep: controlled by the owner and matching its selector.
	Keep []T
	// Adopt: orphans (no controller) matching the selector, not being
	// deleted. They join the owner once the adoption patch succeeds.
	Adopt []T
	// Release: controlled by the owner but no longer matching it.
	Release []T
}

// Claim decides ownership the way Kubernetes' controller reference
// manager does. owner is the owner's UID; deleting is whether the owner is
// being deleted (it then adopts and releases nothing). Objects controlled
// by someone else are left alone.
func Claim[T metav1.Object](owner types.UID, deleting bool, sel labels.Selector, objs []T) Claims[T] {
	var c Claims[T]
	for _, o := range objs {
		matches := sel.Matches(labels.Set(o.GetLabels()))
		ref := metav1.GetControllerOf(o)
		switch {
		case ref != nil && ref.UID == owner && matches:
			c.Keep = append(c.Keep, o)
		case ref != nil && ref.UID == owner && !deleting:
			c.Release = append(c.Release, o)
		case ref == nil && matches && !deleting && o.GetDeletionTimestamp() == nil:
			c.Adopt = append(c.Adopt, o)
		}
	}
	return c
}

// Owned are the pods controlled by owner that match sel, whatever their
// state (used to count a set's terminating pods).
func Owned(owner types.UID, sel labels.Selector, pods []*corev1.Pod) []*corev1.Pod {
	var out []*corev1.Pod
	for _, p := range pods {
		if ref := metav1.GetControllerOf(p); ref != nil && ref.UID == owner && sel.Matches(labels.Set(p.Labels)) {
			out = append(out, p)
		}
	}
	return out
}

// ControllerRef is the owner reference a set puts on the pods it controls.
func ControllerRef(owner metav1.Object, apiVersion, kind string) metav1.OwnerReference {
	yes := true
	return metav1.OwnerReference{
		APIVersion:         apiVersion,
		Kind:               kind,
		Name:               owner.GetName(),
		UID:                owner.GetUID(),
		Controller:         &yes,
		BlockOwnerDeletion: &yes,
	}
}

// AdoptPatch is the strategic merge patch that makes ref the controller of
// the object with UID child (the UID guards against a same-named
// replacement).
func AdoptPatch(ref metav1.OwnerReference, child types.UID) ([]byte, error) {
	p := map[string]any{"metadata": map[string]any{
		"ownerReferences": []metav1.OwnerReference{ref},
		"uid":             child,
	}}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("adoption patch: %w", err)
	}
	return b, nil
}

// ReleasePatch is the strategic merge patch that removes owner's reference
// from the object with UID child.
func ReleasePatch(owner, child types.UID) ([]byte, error) {
	p := map[string]any{"metadata": map[string]any{
		"ownerReferences": []map[string]any{{"$patch": "delete", "uid": owner}},
		"uid":             child,
	}}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("release patch: %w", err)
	}
	return b, nil
}
