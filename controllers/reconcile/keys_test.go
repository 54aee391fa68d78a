package reconcile

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"
)

func TestOwnerKeys(t *testing.T) {
	yes, no := true, false
	rs := schema.GroupKind{Group: "apps", Kind: "ReplicaSet"}
	job := schema.GroupKind{Group: "batch", Kind: "Job"}
	ref := func(apiVersion, kind, name string, controller *bool) metav1.OwnerReference {
		return metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Name: name, UID: "u", Controller: controller}
	}
	tests := []struct {
		name   string
		owners []metav1.OwnerReference
		kind   schema.GroupKind
		want   []string
	}{
		{"no owners", nil, rs, nil},
		{"controller of the kind", []metav1.OwnerReference{ref("apps/v1", "ReplicaSet", "web", &yes)}, rs, []string{"ns/web"}},
		{"other API version of the group", []metav1.OwnerReference{ref("apps/v1beta2", "ReplicaSet", "web", &yes)}, rs, []string{"ns/web"}},
		{"owner but not controller", []metav1.OwnerReference{ref("apps/v1", "ReplicaSet", "web", &no)}, rs, nil},
		{"controller unset", []metav1.OwnerReference{ref("apps/v1", "ReplicaSet", "web", nil)}, rs, nil},
		{"other kind", []metav1.OwnerReference{ref("apps/v1", "ReplicaSet", "web", &yes)}, job, nil},
		{"same kind, other group", []metav1.OwnerReference{ref("example.com/v1", "ReplicaSet", "web", &yes)}, rs, nil},
		{"core group", []metav1.OwnerReference{ref("v1", "ReplicationController", "rc", &yes)}, schema.GroupKind{Kind: "ReplicationController"}, []string{"ns/rc"}},
		{"controller among owners", []metav1.OwnerReference{ref("v1", "ConfigMap", "cm", nil), ref("batch/v1", "Job", "pi", &yes)}, job, []string{"ns/pi"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj := &metav1.ObjectMeta{Namespace: "ns", Name: "child", OwnerReferences: tt.owners}
			if got := OwnerKeys(obj, tt.kind); !slices.Equal(got, tt.want) {
				t.Errorf("OwnerKeys = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestObjectKeys(t *testing.T) {
	tests := []struct {
		name string
		obj  any
		want []string
	}{
		{"namespaced", testPod("p", nil), []string{"ns/p"}},
		{"cluster-scoped", &metav1.ObjectMeta{Name: "node-1"}, []string{"node-1"}},
		{"tombstone", cache.DeletedFinalStateUnknown{Key: "ns/p", Obj: testPod("p", nil)}, []string{"ns/p"}},
		{"not an object", "nonsense", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ObjectKeys(tt.obj); !slices.Equal(got, tt.want) {
				t.Errorf("ObjectKeys = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestKeyRoundTrip(t *testing.T) {
	for _, tt := range []struct{ ns, name, key string }{{"ns", "a", "ns/a"}, {"", "node", "node"}} {
		if k := Key(tt.ns, tt.name); k != tt.key {
			t.Errorf("Key(%q, %q) = %q, want %q", tt.ns, tt.name, k, tt.key)
		}
		ns, name, err := SplitKey(tt.key)
		if err != nil || ns != tt.ns || name != tt.name {
			t.Errorf("SplitKey(%q) = %q, %q, %v", tt.key, ns, name, err)
		}
	}
	if _, _, err := SplitKey("a/b/c"); err == nil {
		t.Error("SplitKey(a/b/c): no error")
	}
}

func TestTerminal(t *testing.T) {
	base := errors.New("bad spec")
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain", base, false},
		{"terminal", Terminal(base), true},
		{"wrapped terminal", fmt.Errorf("pod x: %w", Terminal(base)), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsTerminal(tt.err); got != tt.want {
				t.Errorf("IsTerminal = %v, want %v", got, tt.want)
			}
		})
	}
	if Terminal(nil) != nil {
		t.Error("Terminal(nil) is not nil")
	}
	if !errors.Is(Terminal(base), base) {
		t.Error("Terminal(err) does not wrap err")
	}
}
