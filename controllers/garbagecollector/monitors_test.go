package garbagecollector

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestBuildCatalog(t *testing.T) {
	all := metav1.Verbs{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
	lists := []*metav1.APIResourceList{
		{GroupVersion: "v1", APIResources: []metav1.APIResource{
			{Name: "pods", Kind: "Pod", Namespaced: true, Verbs: all},
			{Name: "pods/status", Kind: "Pod", Namespaced: true, Verbs: metav1.Verbs{"get", "patch"}},
			{Name: "events", Kind: "Event", Namespaced: true, Verbs: all},
			{Name: "nodes", Kind: "Node", Verbs: all},
			{Name: "bindings", Kind: "Binding", Namespaced: true, Verbs: metav1.Verbs{"create"}},
		}},
		{GroupVersion: "apps/v1", APIResources: []metav1.APIResource{
			{Name: "replicasets", Kind: "ReplicaSet", Namespaced: true, Verbs: all},
		}},
		{GroupVersion: "events.k8s.io/v1", APIResources: []metav1.APIResource{
			{Name: "events", Kind: "Event", Namespaced: true, Verbs: all},
		}},
		{GroupVersion: "bad/gv/x"},
		nil,
	}
	c := buildCatalog(lists, DefaultIgnored)
	var watched []string
	for _, r := range c.watched {
		watched = append(watched, r.GVR.String())
	}
	want := []string{"/v1, Resource=nodes", "/v1, Resource=pods", "apps/v1, Resource=replicasets"}
	if len(watched) != len(want) {
		t.Fatalf("watched %v, want %v", watched, want)
	}
	for i := range want {
		if watched[i] != want[i] {
			t.Errorf("watched[%d] = %s, want %s", i, watched[i], want[i])
		}
	}
	rs, ok := c.byKind[schema.GroupKind{Group: "apps", Kind: "ReplicaSet"}]
	if !ok || rs.GVR.Resource != "replicasets" || !rs.Namespaced {
		t.Errorf("ReplicaSet resolves to %+v", rs)
	}
	if n := c.byKind[schema.GroupKind{Kind: "Node"}]; n.Namespaced || n.GVR.Resource != "nodes" {
		t.Errorf("Node resolves to %+v", n)
	}
	// Ignored resources still resolve as owners.
	if _, ok := c.byKind[schema.GroupKind{Kind: "Event"}]; !ok {
		t.Error("Event does not resolve")
	}
}

func TestTrimKeepsWhatTheCollectorReads(t *testing.T) {
	yes := true
	now := metav1.Now()
	grace := int64(30)
	in := &metav1.PartialObjectMetadata{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			Name: "p", Namespace: "ns", UID: "u", ResourceVersion: "7",
			Labels: map[string]string{"a": "b"}, Annotations: map[string]string{"big": "value"},
			ManagedFields:     []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
			DeletionTimestamp: &now, DeletionGracePeriodSeconds: &grace,
			Finalizers:      []string{"f"},
			OwnerReferences: []metav1.OwnerReference{{UID: "o", Name: "rs", BlockOwnerDeletion: &yes}},
		},
	}
	out, err := trim(in)
	if err != nil {
		t.Fatal(err)
	}
	m := out.(*metav1.PartialObjectMetadata)
	if m.Labels != nil || m.Annotations != nil || m.ManagedFields != nil {
		t.Errorf("kept labels/annotations/managed fields: %+v", m.ObjectMeta)
	}
	if m.Name != "p" || m.Namespace != "ns" || m.UID != "u" || m.ResourceVersion != "7" || m.DeletionTimestamp == nil ||
		len(m.Finalizers) != 1 || len(m.OwnerReferences) != 1 || m.Kind != "Pod" {
		t.Errorf("lost what the collector reads: %+v", m)
	}
	if other, _ := trim("not metadata"); other != "not metadata" {
		t.Errorf("trim changed a foreign object: %v", other)
	}
}
