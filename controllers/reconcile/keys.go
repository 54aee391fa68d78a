package reconcile

import (
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"
)

// Key is the queue key of an object: "namespace/name", or "name" for
// cluster-scoped objects.
func Key(namespace, name string) string {
	if namespace == "" {
		return name
	}
	return namespace + "/" + name
}

// SplitKey undoes Key.
func SplitKey(key string) (namespace, name string, err error) {
	return cache.SplitMetaNamespaceKey(key)
}

// ObjectKeys is the KeyFunc of a controller that reconciles the objects it
// watches: the object's own key. Tombstones are unwrapped.
func ObjectKeys(obj any) []string {
	m, err := meta.Accessor(Untombstone(obj))
	if err != nil {
		return nil
	}
	return []string{Key(m.GetNamespace(), m.GetName())}
}

// OwnerKeys is the key of obj's controlling owner (metav1.GetControllerOf)
// when that owner is of kind ownerKind, in obj's namespace; nil otherwise.
// The owner's API version is not compared, only group and kind, so an
// object owned through apps/v1beta1 still maps to its apps/v1 owner.
func OwnerKeys(obj metav1.Object, ownerKind schema.GroupKind) []string {
	ref := metav1.GetControllerOf(obj)
	if ref == nil || ref.Kind != ownerKind.Kind {
		return nil
	}
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil || gv.Group != ownerKind.Group {
		return nil
	}
	return []string{Key(obj.GetNamespace(), ref.Name)}
}

// MapToOwner is the KeyFunc of a controller that watches the objects it
// owns: a Pod event enqueues the ReplicaSet controlling it. Objects without
// a controller of that kind map to nothing. Tombstones are unwrapped.
func MapToOwner(ownerKind schema.GroupKind) KeyFunc {
	return func(obj any) []string {
		m, err := meta.Accessor(Untombstone(obj))
		if err != nil {
			return nil
		}
		return OwnerKeys(m, ownerKind)
	}
}
