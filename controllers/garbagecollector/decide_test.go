package garbagecollector

import (
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func v(uid string, s ownerState) verdict {
	return verdict{Ref: metav1.OwnerReference{UID: types.UID(uid)}, State: s}
}

func TestDecideOwned(t *testing.T) {
	orphan := []string{metav1.FinalizerOrphanDependents}
	fg := []string{metav1.FinalizerDeleteDependents}
	tests := []struct {
		name          string
		vs            []verdict
		finalizers    []string
		hasDependents bool
		want          ownedAction
	}{
		{name: "no owners", want: ownedAction{}},
		{name: "owner present", vs: []verdict{v("a", ownerPresent)}, want: ownedAction{}},
		{name: "owner unresolvable keeps", vs: []verdict{v("a", ownerUnresolvable)}, want: ownedAction{}},
		{name: "owner absent", vs: []verdict{v("a", ownerAbsent)},
			want: ownedAction{Delete: true, Policy: metav1.DeletePropagationBackground}},
		{name: "every owner absent", vs: []verdict{v("a", ownerAbsent), v("b", ownerAbsent)}, hasDependents: true,
			want: ownedAction{Delete: true, Policy: metav1.DeletePropagationBackground}},
		{name: "one of two owners absent: drop the reference", vs: []verdict{v("a", ownerPresent), v("b", ownerAbsent)},
			want: ownedAction{DropRefs: []types.UID{"b"}}},
		{name: "present and waiting owners: stop blocking the waiting one", vs: []verdict{v("a", ownerWaiting), v("b", ownerPresent), v("c", ownerAbsent)},
			want: ownedAction{DropRefs: []types.UID{"c", "a"}}},
		{name: "waiting owner, leaf dependent", vs: []verdict{v("a", ownerWaiting)},
			want: ownedAction{Delete: true, Policy: metav1.DeletePropagationBackground}},
		{name: "waiting owner, dependent with dependents", vs: []verdict{v("a", ownerWaiting)}, hasDependents: true,
			want: ownedAction{Delete: true, Policy: metav1.DeletePropagationForeground}},
		{name: "waiting and absent owners, with dependents", vs: []verdict{v("a", ownerWaiting), v("b", ownerAbsent)}, hasDependents: true,
			want: ownedAction{Delete: true, Policy: metav1.DeletePropagationForeground}},
		{name: "own orphan finalizer", vs: []verdict{v("a", ownerAbsent)}, finalizers: orphan,
			want: ownedAction{Delete: true, Policy: metav1.DeletePropagationOrphan}},
		{name: "own foreground finalizer", vs: []verdict{v("a", ownerAbsent)}, finalizers: fg,
			want: ownedAction{Delete: true, Policy: metav1.DeletePropagationForeground}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decideOwned(tt.vs, tt.finalizers, tt.hasDependents)
			if got.Delete != tt.want.Delete || got.Policy != tt.want.Policy || !slices.Equal(got.DropRefs, tt.want.DropRefs) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestDecideDeleting(t *testing.T) {
	orphan := []string{"example.com/other", metav1.FinalizerOrphanDependents}
	fg := []string{metav1.FinalizerDeleteDependents}
	both := []string{metav1.FinalizerDeleteDependents, metav1.FinalizerOrphanDependents}
	blocking := dependent{UID: "blocking", Blocking: true}
	loose := dependent{UID: "loose"}
	going := dependent{UID: "going", Blocking: true, Deleting: true}
	tests := []struct {
		name       string
		finalizers []string
		deps       []dependent
		unsynced   bool
		want       deletingAction
	}{
		{name: "no collector finalizer", finalizers: []string{"example.com/other"}, deps: []dependent{blocking}},
		{name: "orphan: every dependent", finalizers: orphan, deps: []dependent{blocking, loose, going},
			want: deletingAction{Orphan: []types.UID{"blocking", "loose", "going"}, RemoveFinalizer: metav1.FinalizerOrphanDependents}},
		{name: "orphan without dependents", finalizers: orphan,
			want: deletingAction{RemoveFinalizer: metav1.FinalizerOrphanDependents}},
		{name: "foreground without dependents", finalizers: fg,
			want: deletingAction{RemoveFinalizer: metav1.FinalizerDeleteDependents}},
		{name: "foreground: blocked", finalizers: fg, deps: []dependent{blocking, loose},
			want: deletingAction{Nudge: []types.UID{"blocking", "loose"}}},
		{name: "foreground: blocked by one already going", finalizers: fg, deps: []dependent{going},
			want: deletingAction{}},
		{name: "foreground: only non-blocking left", finalizers: fg, deps: []dependent{loose},
			want: deletingAction{Nudge: []types.UID{"loose"}, RemoveFinalizer: metav1.FinalizerDeleteDependents}},
		{name: "both: orphan first", finalizers: both, deps: []dependent{blocking},
			want: deletingAction{Orphan: []types.UID{"blocking"}, RemoveFinalizer: metav1.FinalizerOrphanDependents}},
		{name: "unsynced view concludes nothing", finalizers: fg, unsynced: true,
			want: deletingAction{Wait: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decideDeleting(tt.finalizers, tt.deps, !tt.unsynced)
			if !slices.Equal(got.Orphan, tt.want.Orphan) || !slices.Equal(got.Nudge, tt.want.Nudge) ||
				got.RemoveFinalizer != tt.want.RemoveFinalizer || got.Wait != tt.want.Wait {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestGCRelevantChange(t *testing.T) {
	yes := true
	base := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{
		Name: "a", UID: "u", ResourceVersion: "1", Labels: map[string]string{"x": "y"},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "rs", UID: "o", Controller: &yes}},
	}}
	now := metav1.Now()
	tests := []struct {
		name string
		mut  func(*metav1.PartialObjectMetadata)
		want bool
	}{
		{"resource version only", func(m *metav1.PartialObjectMetadata) { m.ResourceVersion = "2" }, false},
		{"labels", func(m *metav1.PartialObjectMetadata) { m.Labels = nil }, false},
		{"deletion", func(m *metav1.PartialObjectMetadata) { m.DeletionTimestamp = &now }, true},
		{"finalizers", func(m *metav1.PartialObjectMetadata) { m.Finalizers = []string{"f"} }, true},
		{"owner removed", func(m *metav1.PartialObjectMetadata) { m.OwnerReferences = nil }, true},
		{"owner blocks now", func(m *metav1.PartialObjectMetadata) { m.OwnerReferences[0].BlockOwnerDeletion = &yes }, true},
		{"owner changed", func(m *metav1.PartialObjectMetadata) { m.OwnerReferences[0].UID = "p" }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next := base.DeepCopy()
			tt.mut(next)
			if got := gcRelevantChange(base, next); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}
