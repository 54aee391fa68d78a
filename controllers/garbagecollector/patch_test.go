package garbagecollector

import (
	"encoding/json"
	"testing"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// applyTo applies a patch to an object with the given metadata and
// returns the resulting metadata, or the patch error.
func applyTo(t *testing.T, m metav1.ObjectMeta, patch []byte) (metav1.ObjectMeta, error) {
	t.Helper()
	doc, err := json.Marshal(map[string]any{"metadata": m})
	if err != nil {
		t.Fatal(err)
	}
	p, err := jsonpatch.DecodePatch(patch)
	if err != nil {
		t.Fatalf("patch does not decode: %v\n%s", err, patch)
	}
	out, err := p.Apply(doc)
	if err != nil {
		return metav1.ObjectMeta{}, err
	}
	var got struct {
		Metadata metav1.ObjectMeta `json:"metadata"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	return got.Metadata, nil
}

func TestDropOwnerRefsPatch(t *testing.T) {
	refs := []metav1.OwnerReference{{Name: "a", UID: "a"}, {Name: "b", UID: "b"}, {Name: "c", UID: "c"}}
	m := metav1.ObjectMeta{Name: "x", OwnerReferences: refs}

	got, err := applyTo(t, m, dropOwnerRefsPatch(refs, []types.UID{"a", "c"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.OwnerReferences) != 1 || got.OwnerReferences[0].UID != "b" {
		t.Errorf("left %+v, want only b", got.OwnerReferences)
	}
	got, err = applyTo(t, m, dropOwnerRefsPatch(refs, []types.UID{"a", "b", "c"}))
	if err != nil || len(got.OwnerReferences) != 0 {
		t.Errorf("dropping all: %v, %+v", err, got.OwnerReferences)
	}
	if p := dropOwnerRefsPatch(refs, []types.UID{"z"}); p != nil {
		t.Errorf("patch for an absent reference: %s", p)
	}
	// Built from a stale view (the object lost "a" since): the test fails
	// rather than removing "c"'s neighbour.
	stale := dropOwnerRefsPatch(refs, []types.UID{"b"})
	now := metav1.ObjectMeta{Name: "x", OwnerReferences: refs[1:]}
	if _, err := applyTo(t, now, stale); err == nil {
		t.Error("a stale patch applied")
	}
}

func TestDropFinalizerPatch(t *testing.T) {
	m := metav1.ObjectMeta{Name: "x", Finalizers: []string{"example.com/keep", metav1.FinalizerOrphanDependents}}
	got, err := applyTo(t, m, dropFinalizerPatch(m.Finalizers, metav1.FinalizerOrphanDependents))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Finalizers) != 1 || got.Finalizers[0] != "example.com/keep" {
		t.Errorf("finalizers %v", got.Finalizers)
	}
	if p := dropFinalizerPatch(m.Finalizers, metav1.FinalizerDeleteDependents); p != nil {
		t.Errorf("patch for an absent finalizer: %s", p)
	}
	moved := metav1.ObjectMeta{Name: "x", Finalizers: []string{metav1.FinalizerOrphanDependents}}
	if _, err := applyTo(t, moved, dropFinalizerPatch(m.Finalizers, metav1.FinalizerOrphanDependents)); err == nil {
		t.Error("a stale finalizer patch applied")
	}
}
