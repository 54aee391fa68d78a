package openapi

import (
	"fmt"
	"reflect"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/kube-openapi/pkg/validation/spec"

	"github.com/skiff-sh/skiff/apiserver/registry"
)

// Media types of request and response bodies.
var (
	producesObject = []string{"application/json", "application/yaml", "application/vnd.kubernetes.protobuf"}
	producesWatch  = []string{
		"application/json", "application/yaml", "application/vnd.kubernetes.protobuf",
		"application/json;stream=watch", "application/vnd.kubernetes.protobuf;stream=watch",
	}
	consumesAny   = []string{"*/*"}
	consumesPatch = []string{
		"application/json-patch+json", "application/merge-patch+json",
		"application/strategic-merge-patch+json", "application/apply-patch+yaml",
	}
)

// Query and path parameters. The descriptions are Skiff's own.
func param(in, name, typ, desc string) spec.Parameter {
	p := spec.Parameter{}
	p.In, p.Name, p.Description = in, name, desc
	p.Type = typ
	p.UniqueItems = true
	p.Required = in == "path"
	return p
}

func queryParam(name, typ, desc string) spec.Parameter { return param("query", name, typ, desc) }

func pathParam(name, desc string) spec.Parameter { return param("path", name, "string", desc) }

func bodyParam(def string) spec.Parameter {
	p := spec.Parameter{}
	p.In, p.Name, p.Required = "body", "body", true
	p.Schema = refSchema(def)
	return p
}

func refSchema(def string) *spec.Schema {
	return &spec.Schema{SchemaProps: spec.SchemaProps{Ref: spec.MustCreateRef(v2RefPrefix + def)}}
}

var (
	pPretty          = queryParam("pretty", "string", "Set to 'true' to have the response indented.")
	pDryRun          = queryParam("dryRun", "string", "Set to 'All' to run every stage of the request without persisting anything. Other values are rejected.")
	pFieldManager    = queryParam("fieldManager", "string", "Name of the actor making the change, recorded in metadata.managedFields. At most 128 printable characters. Required for apply patches.")
	pFieldValidation = queryParam("fieldValidation", "string", "What to do about unknown or duplicated fields in the request body: 'Ignore' drops them silently, 'Warn' (the default) drops them and returns a Warning header for each, 'Strict' rejects the request with 400 Bad Request.")
	pForce           = queryParam("force", "boolean", "Apply patches only: take over fields another manager owns instead of failing with a conflict. Must be unset for other patch types.")
	pGracePeriod     = queryParam("gracePeriodSeconds", "integer", "Seconds to wait before the object is deleted; zero deletes immediately. Unset uses the default of the object's type.")
	pIgnoreStoreRead = queryParam("ignoreStoreReadErrorWithClusterBreakingPotential", "boolean", "Delete an object even if it cannot be read from storage (it cannot be decoded or decrypted). Dangerous: skips finalizers and admission.")
	pOrphan          = queryParam("orphanDependents", "boolean", "Deprecated in favour of propagationPolicy. True orphans dependents, false deletes them.")
	pPropagation     = queryParam("propagationPolicy", "string", "How dependents are garbage collected: 'Orphan', 'Background' or 'Foreground'. Cannot be combined with orphanDependents.")
	pBookmarks       = queryParam("allowWatchBookmarks", "boolean", "Watch only: ask for BOOKMARK events, which carry only a resourceVersion. The server may send them at any time or never.")
	pContinue        = queryParam("continue", "string", "Token from a previous paged list to fetch the next page; the other parameters must be the same. An expired token is answered with 410 Gone.")
	pFieldSelector   = queryParam("fieldSelector", "string", "Only objects whose fields match this selector, for example 'metadata.name=foo,status.phase!=Running'.")
	pLabelSelector   = queryParam("labelSelector", "string", "Only objects whose labels match this selector.")
	pLimit           = queryParam("limit", "integer", "Return at most this many objects; when more remain, the list's metadata.continue is set for the next page.")
	pResourceVersion = queryParam("resourceVersion", "string", "Constrains which version of the data is read; see resourceVersionMatch. Unset reads the latest data.")
	pRVMatch         = queryParam("resourceVersionMatch", "string", "How resourceVersion applies to a list: 'Exact' or 'NotOlderThan'.")
	pInitialEvents   = queryParam("sendInitialEvents", "boolean", "Watch only: start with synthetic ADDED events for the current objects, followed by a BOOKMARK once they are all sent.")
	pTimeout         = queryParam("timeoutSeconds", "integer", "Limit on the duration of a list or watch call.")
	pWatch           = queryParam("watch", "boolean", "Watch for changes instead of listing. Use resourceVersion to say where the changes start.")
)

var (
	listParams             = []spec.Parameter{pBookmarks, pContinue, pFieldSelector, pLabelSelector, pLimit, pResourceVersion, pRVMatch, pInitialEvents, pTimeout, pWatch}
	writeParams            = []spec.Parameter{pDryRun, pFieldManager, pFieldValidation}
	patchParams            = []spec.Parameter{pDryRun, pFieldManager, pFieldValidation, pForce}
	deleteParams           = []spec.Parameter{pDryRun, pGracePeriod, pIgnoreStoreRead, pOrphan, pPropagation}
	deleteCollectionParams = []spec.Parameter{
		pContinue, pDryRun, pFieldSelector, pGracePeriod, pIgnoreStoreRead, pLabelSelector, pLimit,
		pOrphan, pPropagation, pResourceVersion, pRVMatch, pInitialEvents, pTimeout,
	}
)

// Shared meta.k8s.io definitions used by operations.
var (
	typeStatus        = reflect.TypeFor[metav1.Status]()
	typeDeleteOptions = reflect.TypeFor[metav1.DeleteOptions]()
	typeWatchEvent    = reflect.TypeFor[metav1.WatchEvent]()
	typePatch         = reflect.TypeFor[metav1.Patch]()
	typeScale         = reflect.TypeFor[autoscalingv1.Scale]()
	scaleGVK          = autoscalingv1.SchemeGroupVersion.WithKind("Scale")
)

// pathSet collects the paths of one group version.
type pathSet map[string]spec.PathItem

// operations writes the paths of one resource into paths.
type operations struct {
	r     *registry.Resource
	paths pathSet

	kindDef, listDef               string
	statusDef, deleteDef, watchDef string
	patchDef                       string
	gvID, tag, kind                string
	gvk                            schema.GroupVersionKind
	verbs                          map[string]bool
}

// addResource adds every path and operation of r to paths.
func addResource(d *definitions, r *registry.Resource, paths pathSet) error {
	o := &operations{r: r, paths: paths, gvk: r.GroupVersionKind(), kind: r.Kind}
	o.gvID, o.tag = operationGV(r.GroupVersion()), operationTag(r.GroupVersion())
	var err error
	define := func(t reflect.Type, into *string) {
		if err == nil {
			*into, err = d.define(t)
		}
	}
	define(reflect.TypeOf(r.New()), &o.kindDef)
	define(reflect.TypeOf(r.NewList()), &o.listDef)
	define(typeStatus, &o.statusDef)
	define(typeDeleteOptions, &o.deleteDef)
	define(typeWatchEvent, &o.watchDef)
	define(typePatch, &o.patchDef)
	if err != nil {
		return fmt.Errorf("openapi: %s: %w", r.GroupVersionResource, err)
	}
	d.addGVK(o.kindDef, o.gvk)
	d.addGVK(o.listDef, r.GroupVersion().WithKind(r.ListKind))
	d.addGVK(o.statusDef, schema.GroupVersionKind{Version: "v1", Kind: "Status"})
	d.addGVK(o.deleteDef, r.GroupVersion().WithKind("DeleteOptions"))
	d.addGVK(o.watchDef, r.GroupVersion().WithKind("WatchEvent"))
	if len(r.Verbs) > 0 {
		o.verbs = map[string]bool{}
		for _, v := range r.Verbs {
			o.verbs[v] = true
		}
	}
	o.build()
	if r.HasStatus {
		o.subresource("status", o.kindDef, o.gvk)
	}
	if r.Scale != nil {
		scaleDef, err := d.define(typeScale)
		if err != nil {
			return fmt.Errorf("openapi: %s scale: %w", r.GroupVersionResource, err)
		}
		d.addGVK(scaleDef, scaleGVK)
		o.subresource("scale", scaleDef, scaleGVK)
	}
	return nil
}

func (o *operations) allowed(verb string) bool { return o.verbs == nil || o.verbs[verb] }

func (o *operations) prefix() string {
	if o.r.Group == "" {
		return "/api/" + o.r.Version
	}
	return "/apis/" + o.r.Group + "/" + o.r.Version
}

// op builds one operation.
func (o *operations) op(action, id, desc string, gvk schema.GroupVersionKind) *spec.Operation {
	op := &spec.Operation{}
	op.ID = id
	op.Description = desc
	op.Tags = []string{o.tag}
	op.Schemes = []string{"https"}
	op.Consumes = consumesAny
	op.Produces = producesObject
	op.Extensions = spec.Extensions{extAction: action, extGVK: gvkValue(gvk)}
	op.Responses = &spec.Responses{ResponsesProps: spec.ResponsesProps{StatusCodeResponses: map[int]spec.Response{
		401: {ResponseProps: spec.ResponseProps{Description: "Unauthorized"}},
	}}}
	return op
}

func respond(op *spec.Operation, def string, codes ...int) {
	for _, code := range codes {
		r := spec.Response{}
		r.Description, r.Schema = statusText(code), refSchema(def)
		op.Responses.StatusCodeResponses[code] = r
	}
}

func statusText(code int) string {
	switch code {
	case 200:
		return "OK"
	case 201:
		return "Created"
	case 202:
		return "Accepted"
	}
	return ""
}

func withParams(op *spec.Operation, params ...[]spec.Parameter) {
	for _, ps := range params {
		op.Parameters = append(op.Parameters, ps...)
	}
}

// build adds the collection, item and watch paths of the resource.
func (o *operations) build() {
	ns := o.r.Namespaced
	base := o.prefix()
	scoped, scopeWord := base+"/"+o.r.Resource, ""
	scopeParams := []spec.Parameter{pPretty}
	if ns {
		scoped = base + "/namespaces/{namespace}/" + o.r.Resource
		scopeWord = "Namespaced"
		scopeParams = []spec.Parameter{pathParam("namespace", "Namespace of the objects."), pPretty}
	}
	name := pathParam("name", "Name of the "+o.kind+".")
	verbID := func(verb, suffix string) string { return verb + o.gvID + scopeWord + o.kind + suffix }

	collection := spec.PathItem{}
	collection.Parameters = scopeParams
	if o.allowed("list") {
		op := o.op("list", verbID("list", ""), "List or watch "+o.kind+" objects.", o.gvk)
		op.Produces = producesWatch
		withParams(op, listParams)
		respond(op, o.listDef, 200)
		collection.Get = op
	}
	if o.allowed("create") {
		op := o.op("post", verbID("create", ""), "Create a "+o.kind+".", o.gvk)
		withParams(op, []spec.Parameter{bodyParam(o.kindDef)}, writeParams)
		respond(op, o.kindDef, 200, 201, 202)
		collection.Post = op
	}
	if o.allowed("deletecollection") {
		op := o.op("deletecollection", "delete"+o.gvID+"Collection"+scopeWord+o.kind,
			"Delete every "+o.kind+" matching the selectors.", o.gvk)
		withParams(op, []spec.Parameter{bodyParam(o.deleteDef)}, deleteCollectionParams)
		respond(op, o.statusDef, 200)
		collection.Delete = op
	}
	o.put(scoped, collection)

	item := spec.PathItem{}
	item.Parameters = append([]spec.Parameter{name}, scopeParams...)
	if o.allowed("get") {
		op := o.op("get", verbID("read", ""), "Read the named "+o.kind+".", o.gvk)
		respond(op, o.kindDef, 200)
		item.Get = op
	}
	if o.allowed("update") {
		op := o.op("put", verbID("replace", ""), "Replace the named "+o.kind+".", o.gvk)
		withParams(op, []spec.Parameter{bodyParam(o.kindDef)}, writeParams)
		respond(op, o.kindDef, 200, 201)
		item.Put = op
	}
	if o.allowed("patch") {
		op := o.op("patch", verbID("patch", ""), "Partially update the named "+o.kind+".", o.gvk)
		op.Consumes = consumesPatch
		withParams(op, []spec.Parameter{bodyParam(o.patchDef)}, patchParams)
		respond(op, o.kindDef, 200, 201)
		item.Patch = op
	}
	if o.allowed("delete") {
		op := o.op("delete", verbID("delete", ""), "Delete the named "+o.kind+".", o.gvk)
		withParams(op, []spec.Parameter{bodyParam(o.deleteDef)}, deleteParams)
		respond(op, o.statusDef, 200, 202)
		item.Delete = op
	}
	o.put(scoped+"/{name}", item)

	if !o.allowed("watch") {
		return
	}
	watchBase := base + "/watch/" + o.r.Resource
	if ns {
		watchBase = base + "/watch/namespaces/{namespace}/" + o.r.Resource
	}
	watchList := spec.PathItem{}
	watchList.Parameters = append(append([]spec.Parameter{}, listParams...), scopeParams...)
	op := o.op("watchlist", verbID("watch", "List"),
		"Watch changes to "+o.kind+" objects. Deprecated: list with the 'watch' parameter instead.", o.gvk)
	op.Produces = producesWatch
	respond(op, o.watchDef, 200)
	watchList.Get = op
	o.put(watchBase, watchList)

	watchItem := spec.PathItem{}
	watchItem.Parameters = append(append([]spec.Parameter{name}, listParams...), scopeParams...)
	op = o.op("watch", verbID("watch", ""),
		"Watch changes to the named "+o.kind+". Deprecated: list with the 'watch' parameter and a metadata.name field selector instead.", o.gvk)
	op.Produces = producesWatch
	respond(op, o.watchDef, 200)
	watchItem.Get = op
	o.put(watchBase+"/{name}", watchItem)

	if ns && o.allowed("list") {
		all := spec.PathItem{}
		all.Parameters = append(append([]spec.Parameter{}, listParams...), pPretty)
		op := o.op("list", "list"+o.gvID+o.kind+"ForAllNamespaces", "List or watch "+o.kind+" objects of every namespace.", o.gvk)
		op.Produces = producesWatch
		respond(op, o.listDef, 200)
		all.Get = op
		o.put(base+"/"+o.r.Resource, all)

		watchAll := spec.PathItem{}
		watchAll.Parameters = all.Parameters
		op = o.op("watchlist", "watch"+o.gvID+o.kind+"ListForAllNamespaces",
			"Watch changes to "+o.kind+" objects of every namespace. Deprecated: list with the 'watch' parameter instead.", o.gvk)
		op.Produces = producesWatch
		respond(op, o.watchDef, 200)
		watchAll.Get = op
		o.put(base+"/watch/"+o.r.Resource, watchAll)
	}
}

// subresource adds the get/replace/patch paths of a subresource whose
// body is definition def of kind gvk.
func (o *operations) subresource(sub, def string, gvk schema.GroupVersionKind) {
	ns := o.r.Namespaced
	path := o.prefix() + "/" + o.r.Resource + "/{name}/" + sub
	scopeWord := ""
	params := []spec.Parameter{pathParam("name", "Name of the "+o.kind+"."), pPretty}
	if ns {
		path = o.prefix() + "/namespaces/{namespace}/" + o.r.Resource + "/{name}/" + sub
		scopeWord = "Namespaced"
		params = []spec.Parameter{pathParam("name", "Name of the "+o.kind+"."), pathParam("namespace", "Namespace of the object."), pPretty}
	}
	suffix := upperFirst(sub)
	id := func(verb string) string { return verb + o.gvID + scopeWord + o.kind + suffix }
	item := spec.PathItem{}
	item.Parameters = params
	if o.allowed("get") {
		op := o.op("get", id("read"), "Read the "+sub+" of the named "+o.kind+".", gvk)
		respond(op, def, 200)
		item.Get = op
	}
	if o.allowed("update") {
		op := o.op("put", id("replace"), "Replace the "+sub+" of the named "+o.kind+".", gvk)
		withParams(op, []spec.Parameter{bodyParam(def)}, writeParams)
		respond(op, def, 200, 201)
		item.Put = op
	}
	if o.allowed("patch") {
		op := o.op("patch", id("patch"), "Partially update the "+sub+" of the named "+o.kind+".", gvk)
		op.Consumes = consumesPatch
		withParams(op, []spec.Parameter{bodyParam(o.patchDef)}, patchParams)
		respond(op, def, 200, 201)
		item.Patch = op
	}
	o.put(path, item)
}

// put stores a path item unless it has no operation.
func (o *operations) put(path string, item spec.PathItem) {
	p := item.PathItemProps
	if p.Get == nil && p.Put == nil && p.Post == nil && p.Delete == nil && p.Patch == nil {
		return
	}
	o.paths[path] = item
}
