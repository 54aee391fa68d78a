package apiserver

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"
	"sigs.k8s.io/yaml"

	"github.com/skiff-sh/skiff/apiserver/defaults"
	"github.com/skiff-sh/skiff/apiserver/registry"
)

// Server-side apply and managed fields.
//
// Every write records which manager owns which fields (metadata.
// managedFields), with the structured-merge-diff machinery apimachinery
// publishes, typed by the OpenAPI schemas. An apply request (PATCH with
// application/apply-patch+yaml) merges the applied configuration into the
// live object by those schemas, and answers 409 when it would take fields
// another manager owns, unless forced.

// fieldManagers builds and caches one FieldManager per kind and
// subresource.
type fieldManagers struct {
	converter managedfields.TypeConverter
	mu        sync.Mutex
	byKey     map[string]*managedfields.FieldManager
}

// defaulter adapts defaults.Apply to runtime.ObjectDefaulter.
type defaulter struct{}

func (defaulter) Default(obj runtime.Object) { defaults.Apply(obj) }

// get returns the field manager of res's subresource ("" or "status").
func (f *fieldManagers) get(res *registry.Resource, sub string) (*managedfields.FieldManager, error) {
	if f == nil {
		return nil, nil
	}
	key := res.GroupVersionResource.String() + "/" + sub
	f.mu.Lock()
	defer f.mu.Unlock()
	if fm, ok := f.byKey[key]; ok {
		return fm, nil
	}
	gv := res.GroupVersion()
	var reset map[fieldpath.APIVersion]fieldpath.Filter
	if res.HasStatus {
		status := fieldpath.MakePrefixMatcherOrDie("status")
		if sub == "status" {
			// A status write owns nothing but status.
			reset = map[fieldpath.APIVersion]fieldpath.Filter{
				fieldpath.APIVersion(gv.String()): fieldpath.NewIncludeMatcherFilter(status),
			}
		} else {
			reset = map[fieldpath.APIVersion]fieldpath.Filter{
				fieldpath.APIVersion(gv.String()): fieldpath.NewExcludeSetFilter(fieldpath.NewSet(fieldpath.MakePathOrDie("status"))),
			}
		}
	}
	fm, err := managedfields.NewDefaultFieldManager(f.converter, runtime.UnsafeObjectConvertor(scheme), defaulter{}, scheme,
		res.GroupVersionKind(), gv, sub, reset)
	if err != nil {
		return nil, fmt.Errorf("field manager for %s: %w", res.GroupVersionKind(), err)
	}
	f.byKey[key] = fm
	return fm, nil
}

// managerName is who a write is recorded for: the fieldManager parameter,
// else the client's program name from its User-Agent, as kube does.
func managerName(r *http.Request) string {
	if m := r.URL.Query().Get("fieldManager"); m != "" {
		return m
	}
	ua := r.Header.Get("User-Agent")
	if i := strings.IndexByte(ua, '/'); i >= 0 {
		ua = ua[:i]
	}
	if ua == "" {
		return "unknown"
	}
	return ua
}

// trackUpdate records a non-apply write of newObj over live (nil on
// create) in newObj's managedFields.
func (s *Server) trackUpdate(res *registry.Resource, sub string, live, newObj runtime.Object, manager string) runtime.Object {
	fm, err := s.managers.get(res, sub)
	if err != nil || fm == nil || manager == "" {
		return newObj
	}
	if live == nil {
		live = res.New()
		live.GetObjectKind().SetGroupVersionKind(res.GroupVersionKind())
	}
	out := fm.UpdateNoErrors(live, newObj, manager)
	return typed(res, out)
}

// typed turns an unstructured result of the field manager back into res's
// Go type.
func typed(res *registry.Resource, obj runtime.Object) runtime.Object {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return obj
	}
	out := res.New()
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, out); err != nil {
		return obj
	}
	out.GetObjectKind().SetGroupVersionKind(res.GroupVersionKind())
	return out
}

// serveApply handles PATCH with application/apply-patch+yaml.
func (s *Server) serveApply(rc *reqContext, sub string, body []byte, dry bool) {
	q := rc.r.URL.Query()
	manager := q.Get("fieldManager")
	if manager == "" {
		rc.fail(apierrors.NewInvalid(rc.res.GroupVersionKind().GroupKind(), rc.info.Name,
			field.ErrorList{field.Required(field.NewPath("fieldManager"), "is required for apply patch")}))
		return
	}
	force := q.Get("force") == "true"
	applied := &unstructured.Unstructured{}
	js, err := yaml.YAMLToJSON(body)
	if err != nil {
		rc.fail(apierrors.NewBadRequest(fmt.Sprintf("the apply patch is not valid YAML: %v", err)))
		return
	}
	if err := applied.UnmarshalJSON(js); err != nil {
		rc.fail(apierrors.NewBadRequest(fmt.Sprintf("the apply patch is malformed: %v", err)))
		return
	}
	gvk := applied.GroupVersionKind()
	if gvk != rc.res.GroupVersionKind() {
		rc.fail(apierrors.NewBadRequest(fmt.Sprintf("the apply patch is a %s, but this endpoint serves %s", gvk, rc.res.GroupVersionKind())))
		return
	}
	if applied.GetName() != "" && applied.GetName() != rc.info.Name {
		rc.fail(apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", applied.GetName(), rc.info.Name)))
		return
	}
	if ns := applied.GetNamespace(); ns != "" && rc.res.Namespaced && ns != rc.info.Namespace {
		rc.fail(apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request"))
		return
	}
	applied.SetName(rc.info.Name)
	if rc.res.Namespaced {
		applied.SetNamespace(rc.info.Namespace)
	}
	fm, err := s.managers.get(rc.res, sub)
	if err != nil {
		rc.fail(apierrors.NewInternalError(err))
		return
	}
	var created bool
	out, created, err := s.updateObject(rc.ctx(), rc.res, rc.info.Namespace, rc.info.Name,
		updateOptions{subresource: sub, allowCreate: sub == "", dryRun: dry, applied: true},
		func(cur runtime.Object) (runtime.Object, error) {
			live := cur
			if live == nil {
				live = rc.res.New()
				live.GetObjectKind().SetGroupVersionKind(rc.res.GroupVersionKind())
				m := mustAccessor(live)
				m.SetName(rc.info.Name)
				m.SetNamespace(rc.info.Namespace)
			}
			merged, err := fm.Apply(live, applied.DeepCopy(), manager, force)
			if err != nil {
				if _, ok := err.(apierrors.APIStatus); ok {
					return nil, err
				}
				return nil, apierrors.NewBadRequest(err.Error())
			}
			obj := typed(rc.res, merged)
			if cur != nil {
				// Apply does not pin a resourceVersion unless the
				// configuration does.
				if applied.GetResourceVersion() == "" {
					mustAccessor(obj).SetResourceVersion("")
				}
			}
			return obj, nil
		})
	if err != nil {
		rc.fail(err)
		return
	}
	code := http.StatusOK
	if created {
		code = http.StatusCreated
	}
	s.respond(rc, code, out)
}

type managerKey struct{}

// managerFrom is the field manager a request's writes are recorded for.
func managerFrom(ctx context.Context) string {
	m, _ := ctx.Value(managerKey{}).(string)
	return m
}
