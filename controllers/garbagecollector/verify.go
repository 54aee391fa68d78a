package garbagecollector

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// reasonOwnerRefInvalidNamespace is the warning Kubernetes records on a
// dependent whose owner reference cannot hold: a namespaced owner looked
// for outside the dependent's namespace, or a cluster-scoped dependent
// naming a namespaced kind.
const reasonOwnerRefInvalidNamespace = "OwnerRefInvalidNamespace"

// absentKey identifies an owner verified absent: its UID where it was
// looked for (a UID is never reused, so the answer holds forever).
func absentKey(uid types.UID, namespace string) string { return namespace + "/" + string(uid) }

// ownerStateOf says how an existing owner stands.
func ownerStateOf(owner *metav1.PartialObjectMetadata) ownerState {
	if owner.DeletionTimestamp != nil && hasFinalizer(owner.Finalizers, metav1.FinalizerDeleteDependents) {
		return ownerWaiting
	}
	return ownerPresent
}

func hasFinalizer(fs []string, f string) bool {
	for _, x := range fs {
		if x == f {
			return true
		}
	}
	return false
}

// verifyOwners checks each owner reference of a dependent. An owner found
// in the caches, where the reference says it is, counts as present; one
// that is not is looked up through the API before it is declared absent,
// because a cache can lag. Namespace rules, as Kubernetes has them: a
// namespaced owner is looked for in the dependent's namespace only; a
// cluster-scoped owner may own anything; a cluster-scoped dependent
// cannot have a namespaced owner (such a reference is unresolvable).
func (c *Controller) verifyOwners(ctx context.Context, dep node) ([]verdict, error) {
	vs := make([]verdict, 0, len(dep.obj.OwnerReferences))
	for _, ref := range dep.obj.OwnerReferences {
		st, err := c.verifyOwner(ctx, dep, ref)
		if err != nil {
			return nil, err
		}
		vs = append(vs, verdict{Ref: ref, State: st})
	}
	return vs, nil
}

func (c *Controller) verifyOwner(ctx context.Context, dep node, ref metav1.OwnerReference) (ownerState, error) {
	owner, ok := c.resourceFor(ref)
	if !ok {
		return ownerUnresolvable, nil
	}
	if !dep.res.Namespaced && owner.Namespaced {
		c.warnInvalid(dep, ref, fmt.Sprintf("ownerRef [%s/%s, name: %s, uid: %s] names a namespaced kind, which a cluster-scoped object cannot have as owner",
			ref.APIVersion, ref.Kind, ref.Name, ref.UID))
		return ownerUnresolvable, nil
	}
	ns := ""
	if owner.Namespaced {
		ns = dep.obj.Namespace
	}
	if _, gone := c.absent.Get(absentKey(ref.UID, ns)); gone {
		return ownerAbsent, nil
	}
	if cached, ok := c.lookupIn(owner.GVR, ref.UID); ok {
		if cached.Namespace == ns && cached.Name == ref.Name {
			return ownerStateOf(cached), nil
		}
		if cached.Namespace != ns {
			c.warnInvalid(dep, ref, fmt.Sprintf("ownerRef [%s/%s, namespace: %s, name: %s, uid: %s] does not exist in namespace %q",
				ref.APIVersion, ref.Kind, dep.obj.Namespace, ref.Name, ref.UID, dep.obj.Namespace))
		}
	}
	live, err := c.meta.Resource(owner.GVR).Namespace(ns).Get(ctx, ref.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		c.absent.Add(absentKey(ref.UID, ns), struct{}{})
		return ownerAbsent, nil
	case err != nil:
		return 0, fmt.Errorf("checking owner %s %s/%s: %w", owner.GVR.GroupResource(), ns, ref.Name, err)
	case live.UID != ref.UID:
		c.absent.Add(absentKey(ref.UID, ns), struct{}{})
		return ownerAbsent, nil
	}
	return ownerStateOf(live), nil
}

// warnInvalid records an OwnerRefInvalidNamespace warning on a dependent.
func (c *Controller) warnInvalid(dep node, ref metav1.OwnerReference, msg string) {
	obj := dep.obj.DeepCopy()
	obj.APIVersion, obj.Kind = dep.res.GVR.GroupVersion().String(), dep.res.Kind
	c.rec.Event(obj, corev1.EventTypeWarning, reasonOwnerRefInvalidNamespace, msg)
}
