// Package registry is the catalog of the API's resources: for each one, its
// names, its scope, its Go type from k8s.io/api, its subresources and the
// per-resource behaviour the generic handlers in package apiserver call.
//
// Behaviour is kept in small pure packages beside this one and wired here:
//
//	defaults     the defaults Kubernetes applies to an object
//	validation   422 Invalid answers with field paths
//	printers     the columns `kubectl get` shows (server-side tables)
//
// Everything that is the same for all resources (metadata, resourceVersion,
// generation, status/spec separation, deletion) lives in package apiserver,
// not here.
package registry

import (
	"sort"

	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Resource describes one served resource.
type Resource struct {
	// GroupVersionResource names it; Resource is the plural ("pods").
	schema.GroupVersionResource
	Kind     string
	ListKind string
	Singular string
	// ShortNames ("po") and Categories ("all") as discovery shows them.
	ShortNames []string
	Categories []string
	Namespaced bool

	// New and NewList return empty typed objects (k8s.io/api types).
	New     func() runtime.Object
	NewList func() runtime.Object

	// HasStatus: the resource has a status subresource. Updates of the main
	// resource keep the stored status; updates of status keep the rest.
	HasStatus bool
	// Scale, when set, serves the scale subresource.
	Scale *ScaleAccess
	// StorageResource, when set, names another resource whose stored
	// objects this one serves through Convert (events.k8s.io events are
	// core events).
	StorageResource *Resource
	// ToStorage and FromStorage convert between this resource's type and the
	// storage resource's type. Only with StorageResource.
	ToStorage   func(obj runtime.Object) (runtime.Object, error)
	FromStorage func(obj runtime.Object) (runtime.Object, error)

	// Fields returns the field-selector fields beyond metadata.name and
	// metadata.namespace, which every resource has. Nil: only those two.
	Fields func(obj runtime.Object) fields.Set

	// Verbs are the verbs discovery lists; empty means all.
	Verbs []string
}

// GroupVersionKind of the resource's objects.
func (r *Resource) GroupVersionKind() schema.GroupVersionKind {
	return r.GroupVersion().WithKind(r.Kind)
}

// ScaleAccess reads and writes the replica count of a scalable resource.
type ScaleAccess struct {
	// Replicas returns spec.replicas and status.replicas.
	Replicas func(obj runtime.Object) (spec int32, status int32)
	// SetReplicas sets spec.replicas.
	SetReplicas func(obj runtime.Object, n int32)
	// Selector returns the label selector as a string (status.selector).
	Selector func(obj runtime.Object) string
}

// Catalog holds every served resource.
type Catalog struct {
	byGVR   map[schema.GroupVersionResource]*Resource
	ordered []*Resource
}

// NewCatalog indexes resources; it panics on a duplicate, which is a
// programming error in the catalog's own table.
func NewCatalog(resources []*Resource) *Catalog {
	c := &Catalog{byGVR: map[schema.GroupVersionResource]*Resource{}}
	for _, r := range resources {
		if _, dup := c.byGVR[r.GroupVersionResource]; dup {
			panic("registry: duplicate resource " + r.GroupVersionResource.String())
		}
		c.byGVR[r.GroupVersionResource] = r
		c.ordered = append(c.ordered, r)
	}
	return c
}

// Lookup finds a resource by group, version and plural name.
func (c *Catalog) Lookup(gvr schema.GroupVersionResource) (*Resource, bool) {
	r, ok := c.byGVR[gvr]
	return r, ok
}

// All returns the resources in catalog order.
func (c *Catalog) All() []*Resource { return c.ordered }

// GroupVersions returns the served group versions, core first, then groups
// by name.
func (c *Catalog) GroupVersions() []schema.GroupVersion {
	seen := map[schema.GroupVersion]bool{}
	var out []schema.GroupVersion
	for _, r := range c.ordered {
		gv := r.GroupVersion()
		if !seen[gv] {
			seen[gv] = true
			out = append(out, gv)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if (out[i].Group == "") != (out[j].Group == "") {
			return out[i].Group == ""
		}
		return out[i].Group < out[j].Group
	})
	return out
}

// InGroupVersion returns the resources of one group version.
func (c *Catalog) InGroupVersion(gv schema.GroupVersion) []*Resource {
	var out []*Resource
	for _, r := range c.ordered {
		if r.GroupVersion() == gv {
			out = append(out, r)
		}
	}
	return out
}
