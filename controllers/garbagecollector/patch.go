package garbagecollector

import (
	"encoding/json"
	"fmt"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// patchOp is one RFC 6902 operation.
type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
}

// dropOwnerRefsPatch is a JSON patch removing the owner references with
// the given UIDs. Each removal is guarded by a test of the UID at that
// index, so a patch built from a stale view fails instead of removing the
// wrong reference. It returns nil when no reference matches.
func dropOwnerRefsPatch(refs []metav1.OwnerReference, drop []types.UID) []byte {
	var ops []patchOp
	for i := len(refs) - 1; i >= 0; i-- {
		if !slices.Contains(drop, refs[i].UID) {
			continue
		}
		p := fmt.Sprintf("/metadata/ownerReferences/%d", i)
		ops = append(ops, patchOp{Op: "test", Path: p + "/uid", Value: string(refs[i].UID)}, patchOp{Op: "remove", Path: p})
	}
	return encodeOps(ops)
}

// dropFinalizerPatch is a JSON patch removing finalizer f, guarded the
// same way; nil when f is not there.
func dropFinalizerPatch(finalizers []string, f string) []byte {
	var ops []patchOp
	for i := len(finalizers) - 1; i >= 0; i-- {
		if finalizers[i] != f {
			continue
		}
		p := fmt.Sprintf("/metadata/finalizers/%d", i)
		ops = append(ops, patchOp{Op: "test", Path: p, Value: f}, patchOp{Op: "remove", Path: p})
	}
	return encodeOps(ops)
}

func encodeOps(ops []patchOp) []byte {
	if len(ops) == 0 {
		return nil
	}
	b, err := json.Marshal(ops)
	if err != nil {
		return nil // cannot happen: strings only
	}
	return b
}
