package registry

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
)

// Every catalog entry's Go types must be the ones the scheme registers for
// its kind and list kind, or clients would decode the wrong thing.
func TestCatalogTypesMatchTheScheme(t *testing.T) {
	for _, r := range Default().All() {
		gvk := r.GroupVersionKind()
		obj := r.New()
		kinds, _, err := clientgoscheme.Scheme.ObjectKinds(obj)
		if err != nil || len(kinds) == 0 {
			t.Errorf("%s: %T is not registered: %v", r.GroupVersionResource, obj, err)
			continue
		}
		found := false
		for _, k := range kinds {
			if k == gvk {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: %T registers as %v, catalog says %v", r.GroupVersionResource, obj, kinds, gvk)
		}
		list := r.NewList()
		if !meta.IsListType(list) {
			t.Errorf("%s: NewList gives %T, not a list", r.GroupVersionResource, list)
		}
		lk, _, err := clientgoscheme.Scheme.ObjectKinds(list)
		if err != nil || lk[0].Kind != r.ListKind {
			t.Errorf("%s: list type %T registers as %v, catalog says %s", r.GroupVersionResource, list, lk, r.ListKind)
		}
		if r.Scale != nil && !r.HasStatus {
			t.Errorf("%s: scalable without a status", r.GroupVersionResource)
		}
	}
}

func TestLookups(t *testing.T) {
	c := Default()
	for _, r := range c.All() {
		if got, ok := c.Lookup(r.GroupVersionResource); !ok || got != r {
			t.Errorf("Lookup(%s) = %v, %v", r.GroupVersionResource, got, ok)
		}
	}
	if len(c.GroupVersions()) < 11 || c.GroupVersions()[0].Group != "" {
		t.Errorf("GroupVersions = %v, want the core group first and every group", c.GroupVersions())
	}
}
