package namespace

import (
	"errors"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestDeletable(t *testing.T) {
	all := metav1.Verbs{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
	lists := []*metav1.APIResourceList{
		{GroupVersion: "v1", APIResources: []metav1.APIResource{
			{Name: "pods", Namespaced: true, Verbs: all},
			{Name: "pods/status", Namespaced: true, Verbs: metav1.Verbs{"get", "update"}},
			{Name: "namespaces", Namespaced: false, Verbs: all},
			{Name: "bindings", Namespaced: true, Verbs: metav1.Verbs{"create"}},
			{Name: "configmaps", Namespaced: true, Verbs: all},
		}},
		{GroupVersion: "apps/v1", APIResources: []metav1.APIResource{
			{Name: "deployments", Namespaced: true, Verbs: all},
		}},
		{GroupVersion: "example.com/v1", APIResources: []metav1.APIResource{
			{Name: "widgets", Namespaced: true, Verbs: metav1.Verbs{"get", "list", "delete"}},
			{Name: "readonly", Namespaced: true, Verbs: metav1.Verbs{"get", "list"}},
		}},
		{GroupVersion: "example.com/v2", APIResources: []metav1.APIResource{
			{Name: "widgets", Namespaced: true, Verbs: all}, // same group and resource: taken once
		}},
		{GroupVersion: "a/b/c"},
		nil,
	}
	got, errs := deletable(lists)
	want := []resource{
		{GVR: schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}, DeleteCollection: true},
		{GVR: schema.GroupVersionResource{Version: "v1", Resource: "pods"}, DeleteCollection: true},
		{GVR: schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, DeleteCollection: true},
		{GVR: schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"}},
	}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("[%d] = %v, want %v", i, got[i], want[i])
		}
	}
	if len(errs) != 1 {
		t.Errorf("parse errors %v, want one for a/b/c", errs)
	}
}

func TestConditions(t *testing.T) {
	pods := schema.GroupResource{Resource: "pods"}
	widgets := schema.GroupResource{Group: "example.com", Resource: "widgets"}
	tests := []struct {
		name string
		p    pass
		want map[corev1.NamespaceConditionType][3]string // status, reason, message
		done bool
	}{
		{
			name: "empty",
			p:    pass{},
			done: true,
			want: map[corev1.NamespaceConditionType][3]string{
				corev1.NamespaceDeletionDiscoveryFailure: {"False", "ResourcesDiscovered", "All resources successfully discovered"},
				corev1.NamespaceDeletionGVParsingFailure: {"False", "ParsedGroupVersions", "All legacy kube types successfully parsed"},
				corev1.NamespaceDeletionContentFailure:   {"False", "ContentDeleted", "All content successfully deleted, may be waiting on finalization"},
				corev1.NamespaceContentRemaining:         {"False", "ContentRemoved", "All content successfully removed"},
				corev1.NamespaceFinalizersRemaining:      {"False", "ContentHasNoFinalizers", "All content-preserving finalizers finished"},
			},
		},
		{
			name: "pods waiting and a finalizer",
			p: pass{
				Remaining:  map[schema.GroupResource]int{pods: 2, widgets: 1},
				Finalizers: map[string]int{"example.com/hold": 1},
			},
			want: map[corev1.NamespaceConditionType][3]string{
				corev1.NamespaceContentRemaining:       {"True", "SomeResourcesRemain", "Some resources are remaining: pods. has 2 resource instances, widgets.example.com has 1 resource instances"},
				corev1.NamespaceFinalizersRemaining:    {"True", "SomeFinalizersRemain", "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"},
				corev1.NamespaceDeletionContentFailure: {"False", "ContentDeleted", "All content successfully deleted, may be waiting on finalization"},
			},
		},
		{
			name: "failures",
			p: pass{
				DiscoveryErr: errors.New("metrics.example.com/v1: unavailable"),
				ParseErrs:    []error{errors.New("bad gv")},
				DeleteErrs:   []error{errors.New("deleting pods: boom")},
			},
			want: map[corev1.NamespaceConditionType][3]string{
				corev1.NamespaceDeletionDiscoveryFailure: {"True", "DiscoveryFailed", "Discovery failed for some groups: metrics.example.com/v1: unavailable"},
				corev1.NamespaceDeletionGVParsingFailure: {"True", "GroupVersionParsingFailed", "Failed to parse group versions: bad gv"},
				corev1.NamespaceDeletionContentFailure:   {"True", "ContentDeletionFailed", "Failed to delete all resource types, 1 remaining: deleting pods: boom"},
				corev1.NamespaceContentRemaining:         {"False", "ContentRemoved", "All content successfully removed"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.p.done() != tt.done {
				t.Errorf("done = %v, want %v", tt.p.done(), tt.done)
			}
			got := conditions(tt.p)
			if len(got) != len(conditionOrder) {
				t.Fatalf("%d conditions, want %d", len(got), len(conditionOrder))
			}
			for i, c := range got {
				if c.Type != conditionOrder[i] {
					t.Errorf("condition %d is %s, want %s", i, c.Type, conditionOrder[i])
				}
				w, ok := tt.want[c.Type]
				if !ok {
					continue
				}
				if string(c.Status) != w[0] || c.Reason != w[1] || c.Message != w[2] {
					t.Errorf("%s = %s/%s/%q, want %s/%s/%q", c.Type, c.Status, c.Reason, c.Message, w[0], w[1], w[2])
				}
			}
		})
	}
}

func TestMergeConditionsKeepsTransitionTimes(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	t1 := t0.Add(time.Minute)
	foreign := corev1.NamespaceCondition{Type: "ExampleCondition", Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(t0)}
	first := mergeConditions([]corev1.NamespaceCondition{foreign}, conditions(pass{Remaining: map[schema.GroupResource]int{{Resource: "pods"}: 1}}), t0)
	if len(first) != 6 || first[0].Type != "ExampleCondition" {
		t.Fatalf("foreign condition not kept first: %+v", first)
	}
	second := mergeConditions(first, conditions(pass{}), t1)
	for _, c := range second {
		want := t0
		if c.Type == corev1.NamespaceContentRemaining {
			want = t1 // True -> False
		}
		if !c.LastTransitionTime.Time.Equal(want) {
			t.Errorf("%s transitioned at %v, want %v", c.Type, c.LastTransitionTime.Time, want)
		}
	}
	if conditionsEqual(first, second) {
		t.Error("conditions with a changed status compare equal")
	}
	if !conditionsEqual(second, mergeConditions(second, conditions(pass{}), t1.Add(time.Hour))) {
		t.Error("the same pass twice is not a no-op")
	}
}

func TestRecheckAfter(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	lo, hi := 200*time.Millisecond, 15*time.Second
	for _, tt := range []struct {
		elapsed, want time.Duration
	}{
		{0, lo},
		{-time.Second, lo}, // a clock behind the server's
		{2 * time.Second, 500 * time.Millisecond},
		{40 * time.Second, 10 * time.Second},
		{time.Hour, hi},
	} {
		if got := recheckAfter(t0, t0.Add(tt.elapsed), lo, hi); got != tt.want {
			t.Errorf("after %v: %v, want %v", tt.elapsed, got, tt.want)
		}
	}
}
