package namespace

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
)

// resource is one namespaced API resource whose objects the controller
// can find and delete.
type resource struct {
	GVR              schema.GroupVersionResource
	DeleteCollection bool // else objects are deleted one by one
}

// deletable picks, from discovery's preferred namespaced resources, those
// that can be listed and deleted, one version per group and resource,
// sorted. It reports group versions it could not parse.
func deletable(lists []*metav1.APIResourceList) ([]resource, []error) {
	var out []resource
	var errs []error
	seen := map[schema.GroupResource]bool{}
	for _, l := range lists {
		if l == nil {
			continue
		}
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			errs = append(errs, fmt.Errorf("group version %q: %w", l.GroupVersion, err))
			continue
		}
		for _, r := range l.APIResources {
			if !r.Namespaced || strings.Contains(r.Name, "/") || !slices.Contains(r.Verbs, "list") {
				continue
			}
			dc := slices.Contains(r.Verbs, "deletecollection")
			if !dc && !slices.Contains(r.Verbs, "delete") {
				continue
			}
			gr := gv.WithResource(r.Name).GroupResource()
			if seen[gr] {
				continue
			}
			seen[gr] = true
			out = append(out, resource{GVR: gv.WithResource(r.Name), DeleteCollection: dc})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].GVR, out[j].GVR
		if a.Group != b.Group {
			return a.Group < b.Group
		}
		return a.Resource < b.Resource
	})
	return out, errs
}

// discover lists the namespaced resources. A failure of some groups still
// returns the others, with the error.
func (c *Controller) discover() ([]resource, []error, error) {
	lists, err := discovery.ServerPreferredNamespacedResources(c.client.Discovery())
	if err != nil && !discovery.IsGroupDiscoveryFailedError(err) {
		return nil, nil, fmt.Errorf("discovering namespaced resources: %w", err)
	}
	res, parseErrs := deletable(lists)
	return res, parseErrs, err
}

// deleteContent deletes everything of one resource in ns and reports what
// is left: the objects that a grace period or finalizers still hold.
func (c *Controller) deleteContent(ctx context.Context, ns string, r resource) (remaining int, finalizers map[string]int, err error) {
	api := c.meta.Resource(r.GVR).Namespace(ns)
	list, err := api.List(ctx, metav1.ListOptions{})
	if apierrors.IsNotFound(err) || apierrors.IsMethodNotSupported(err) {
		return 0, nil, nil // the resource went away since discovery
	}
	if err != nil {
		return 0, nil, fmt.Errorf("listing %s: %w", r.GVR.GroupResource(), err)
	}
	if len(list.Items) == 0 {
		return 0, nil, nil
	}
	background := metav1.DeletePropagationBackground
	opts := metav1.DeleteOptions{PropagationPolicy: &background}
	deleted := false
	if r.DeleteCollection {
		err := api.DeleteCollection(ctx, opts, metav1.ListOptions{})
		switch {
		case err == nil:
			deleted = true
		case apierrors.IsMethodNotSupported(err) || apierrors.IsNotFound(err):
			// Fall back to one by one.
		default:
			return 0, nil, fmt.Errorf("deleting %s: %w", r.GVR.GroupResource(), err)
		}
	}
	if !deleted {
		for _, item := range list.Items {
			if item.DeletionTimestamp != nil {
				continue
			}
			uid := item.UID
			o := opts
			o.Preconditions = &metav1.Preconditions{UID: &uid}
			if err := api.Delete(ctx, item.Name, o); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
				return 0, nil, fmt.Errorf("deleting %s %s: %w", r.GVR.GroupResource(), item.Name, err)
			}
		}
	}
	left, err := api.List(ctx, metav1.ListOptions{})
	if err != nil {
		return 0, nil, fmt.Errorf("listing %s after deletion: %w", r.GVR.GroupResource(), err)
	}
	for _, item := range left.Items {
		for _, f := range item.Finalizers {
			if finalizers == nil {
				finalizers = map[string]int{}
			}
			finalizers[f]++
		}
	}
	return len(left.Items), finalizers, nil
}

// emptyNamespace runs one deletion pass over ns.
func (c *Controller) emptyNamespace(ctx context.Context, ns string) pass {
	var p pass
	resources, parseErrs, derr := c.discover()
	p.DiscoveryErr, p.ParseErrs = derr, parseErrs
	for _, r := range resources {
		n, fins, err := c.deleteContent(ctx, ns, r)
		if err != nil {
			p.DeleteErrs = append(p.DeleteErrs, err)
			continue
		}
		if n > 0 {
			if p.Remaining == nil {
				p.Remaining = map[schema.GroupResource]int{}
			}
			p.Remaining[r.GVR.GroupResource()] += n
		}
		for f, k := range fins {
			if p.Finalizers == nil {
				p.Finalizers = map[string]int{}
			}
			p.Finalizers[f] += k
		}
	}
	return p
}
