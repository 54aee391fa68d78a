package openapi

import (
	"reflect"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/kube-openapi/pkg/validation/spec"

	"github.com/skiff-sh/skiff/apiserver/registry"
)

var (
	sharedOnce sync.Once
	sharedDocs *Docs
	sharedErr  error
)

// testDocs builds the documents of the default catalog once per test run.
func testDocs(t *testing.T) *Docs {
	t.Helper()
	sharedOnce.Do(func() { sharedDocs, sharedErr = New(registry.Default(), "v1.37.2-skiff") })
	if sharedErr != nil {
		t.Fatalf("New: %v", sharedErr)
	}
	return sharedDocs
}

func def(t *testing.T, d *Docs, name string) *spec.Schema {
	t.Helper()
	s, ok := d.Schemas()[name]
	if !ok {
		t.Fatalf("no definition %s", name)
	}
	return s
}

func prop(t *testing.T, d *Docs, defName, field string) spec.Schema {
	t.Helper()
	p, ok := def(t, d, defName).Properties[field]
	if !ok {
		t.Fatalf("%s has no property %s", defName, field)
	}
	return p
}

func TestPackageName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"k8s.io/api/core/v1", "io.k8s.api.core.v1"},
		{"k8s.io/apimachinery/pkg/apis/meta/v1", "io.k8s.apimachinery.pkg.apis.meta.v1"},
		{"k8s.io/apimachinery/pkg/util/intstr", "io.k8s.apimachinery.pkg.util.intstr"},
		{"github.com/skiff-sh/skiff/apiserver", "com.github.skiff-sh.skiff.apiserver"},
		{"example/vendor/k8s.io/api/apps/v1", "io.k8s.api.apps.v1"},
		{"local/pkg", "local.pkg"},
	} {
		if got := packageName(tc.in); got != tc.want {
			t.Errorf("packageName(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

type localType struct{}

func TestDefinitionNameWithoutModelName(t *testing.T) {
	want := "com.github.skiff-sh.skiff.apiserver.openapi.localType"
	if got := definitionName(reflect.TypeFor[*localType]()); got != want {
		t.Errorf("definitionName = %q, want %q", got, want)
	}
}

func TestOperationNaming(t *testing.T) {
	for _, tc := range []struct {
		gv      schema.GroupVersion
		id, tag string
		path    string
	}{
		{schema.GroupVersion{Version: "v1"}, "CoreV1", "core_v1", "api/v1"},
		{schema.GroupVersion{Group: "apps", Version: "v1"}, "AppsV1", "apps_v1", "apis/apps/v1"},
		{schema.GroupVersion{Group: "rbac.authorization.k8s.io", Version: "v1"}, "RbacAuthorizationV1", "rbacAuthorization_v1", "apis/rbac.authorization.k8s.io/v1"},
		{schema.GroupVersion{Group: "networking.k8s.io", Version: "v1beta1"}, "NetworkingV1beta1", "networking_v1beta1", "apis/networking.k8s.io/v1beta1"},
	} {
		if got := operationGV(tc.gv); got != tc.id {
			t.Errorf("operationGV(%v) = %q, want %q", tc.gv, got, tc.id)
		}
		if got := operationTag(tc.gv); got != tc.tag {
			t.Errorf("operationTag(%v) = %q, want %q", tc.gv, got, tc.tag)
		}
		if got := gvPath(tc.gv); got != tc.path {
			t.Errorf("gvPath(%v) = %q, want %q", tc.gv, got, tc.path)
		}
	}
}

// Types used to exercise the builder without client-go's merge schema.
type tagItem struct {
	Key   string `json:"key"`
	Value string `json:"value,omitempty"`
}

type tagOwner struct {
	Embedded `json:",inline"`
	Items    []tagItem         `json:"items,omitempty" patchStrategy:"merge" patchMergeKey:"key"`
	Set      []string          `json:"set,omitempty" patchStrategy:"merge"`
	Raw      []byte            `json:"raw,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
	Count    *int32            `json:"count"`
	Ratio    float64           `json:"ratio,omitempty"`
	Skipped  string            `json:"-"`
	hidden   string
}

type Embedded struct {
	Inner bool `json:"inner"`
}

func TestBuilderFromTagsOnly(t *testing.T) {
	d := newDefinitions(nil)
	name, err := d.define(reflect.TypeFor[tagOwner]())
	if err != nil {
		t.Fatal(err)
	}
	s := d.defs[name]
	var keys []string
	for k := range s.Properties {
		keys = append(keys, k)
	}
	wantProps := []string{"count", "inner", "items", "labels", "ratio", "raw", "set"}
	if len(keys) != len(wantProps) {
		t.Fatalf("properties %v, want %v", keys, wantProps)
	}
	for _, k := range wantProps {
		if _, ok := s.Properties[k]; !ok {
			t.Errorf("missing property %s", k)
		}
	}
	if !reflect.DeepEqual(s.Required, []string{"inner", "count"}) {
		t.Errorf("required = %v, want [inner count]", s.Required)
	}
	items := s.Properties["items"]
	if items.Extensions[extListType] != "map" || !reflect.DeepEqual(items.Extensions[extListMapKeys], []interface{}{"key"}) {
		t.Errorf("items extensions = %v, want list-type map keyed by key", items.Extensions)
	}
	if items.Extensions[extPatchStrategy] != "merge" || items.Extensions[extPatchMergeKey] != "key" {
		t.Errorf("items patch extensions = %v", items.Extensions)
	}
	if _, ok := s.Properties["set"].Extensions[extListType]; ok {
		t.Errorf("set without merge key got a list type: %v", s.Properties["set"].Extensions)
	}
	if raw := s.Properties["raw"]; !raw.Type.Contains("string") || raw.Format != "byte" {
		t.Errorf("raw = %v %q, want string/byte", raw.Type, raw.Format)
	}
	if l := s.Properties["labels"]; !l.Type.Contains("object") || l.AdditionalProperties == nil || !l.AdditionalProperties.Schema.Type.Contains("string") {
		t.Errorf("labels is not a map of strings: %+v", l)
	}
	if c := s.Properties["count"]; !c.Type.Contains("integer") || c.Format != "int32" {
		t.Errorf("count = %v %q, want integer/int32", c.Type, c.Format)
	}
	if r := s.Properties["ratio"]; !r.Type.Contains("number") || r.Format != "double" {
		t.Errorf("ratio = %v %q, want number/double", r.Type, r.Format)
	}
	if ref := items.Items.Schema.Ref.String(); ref != v2RefPrefix+definitionName(reflect.TypeFor[tagItem]()) {
		t.Errorf("items ref = %q", ref)
	}
}

func TestTypeSchemaRejects(t *testing.T) {
	d := newDefinitions(nil)
	for _, typ := range []reflect.Type{
		reflect.TypeFor[map[int]string](),
		reflect.TypeFor[chan int](),
		reflect.TypeFor[func()](),
	} {
		if _, err := d.typeSchema(typ); err == nil {
			t.Errorf("typeSchema(%v) succeeded, want an error", typ)
		}
	}
}

func TestPodDefinitions(t *testing.T) {
	d := testDocs(t)
	pod := def(t, d, "io.k8s.api.core.v1.Pod")
	if spec := pod.Properties["spec"]; spec.Ref.String() != v2RefPrefix+"io.k8s.api.core.v1.PodSpec" {
		t.Errorf("Pod.spec ref = %q", spec.Ref.String())
	}
	for _, f := range []string{"apiVersion", "kind", "metadata", "spec", "status"} {
		if _, ok := pod.Properties[f]; !ok {
			t.Errorf("Pod lacks %s", f)
		}
	}
	if _, ok := pod.Properties["TypeMeta"]; ok {
		t.Error("Pod has an unflattened TypeMeta property")
	}
	if len(pod.Required) != 0 {
		t.Errorf("Pod required = %v, want none (all omitempty)", pod.Required)
	}
	if pod.Description == "" || pod.Properties["spec"].Description == "" {
		t.Error("Pod descriptions are missing")
	}

	containers := prop(t, d, "io.k8s.api.core.v1.PodSpec", "containers")
	if !containers.Type.Contains("array") || containers.Items.Schema.Ref.String() != v2RefPrefix+"io.k8s.api.core.v1.Container" {
		t.Errorf("PodSpec.containers is not an array of Container: %+v", containers)
	}
	wantExt := map[string]interface{}{
		extPatchStrategy: "merge",
		extPatchMergeKey: "name",
		extListType:      "map",
		extListMapKeys:   []interface{}{"name"},
	}
	for k, v := range wantExt {
		if !reflect.DeepEqual(containers.Extensions[k], v) {
			t.Errorf("containers %s = %#v, want %#v", k, containers.Extensions[k], v)
		}
	}
	if got := def(t, d, "io.k8s.api.core.v1.PodSpec").Required; !reflect.DeepEqual(got, []string{"containers"}) {
		t.Errorf("PodSpec required = %v, want [containers]", got)
	}

	// Merge keys beyond the patch merge key come from client-go's schema.
	ports := prop(t, d, "io.k8s.api.core.v1.Container", "ports")
	if !reflect.DeepEqual(ports.Extensions[extListMapKeys], []interface{}{"containerPort", "protocol"}) {
		t.Errorf("Container.ports keys = %v, want [containerPort protocol]", ports.Extensions[extListMapKeys])
	}
	if ports.Extensions[extPatchMergeKey] != "containerPort" {
		t.Errorf("Container.ports merge key = %v", ports.Extensions[extPatchMergeKey])
	}
	if got := prop(t, d, "io.k8s.api.core.v1.ContainerPort", "protocol").Default; got != "TCP" {
		t.Errorf("ContainerPort.protocol default = %#v, want TCP", got)
	}
	if fin := prop(t, d, "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "finalizers"); fin.Extensions[extPatchStrategy] != "merge" {
		t.Errorf("ObjectMeta.finalizers extensions = %v", fin.Extensions)
	}
	if got := def(t, d, "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector").Extensions[extMapType]; got != "atomic" {
		t.Errorf("LabelSelector map type = %v, want atomic", got)
	}
	if got := prop(t, d, "io.k8s.api.core.v1.PodSpec", "nodeSelector").Extensions[extMapType]; got != "atomic" {
		t.Errorf("PodSpec.nodeSelector map type = %v, want atomic", got)
	}
	// Inline VolumeSource fields appear on Volume.
	if _, ok := def(t, d, "io.k8s.api.core.v1.Volume").Properties["configMap"]; !ok {
		t.Error("Volume lacks the inline VolumeSource field configMap")
	}
}

func TestSpecialTypeShapes(t *testing.T) {
	d := testDocs(t)
	for _, tc := range []struct {
		name, typ, format string
		intOrString       bool
	}{
		{"io.k8s.apimachinery.pkg.apis.meta.v1.Time", "string", "date-time", false},
		{"io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime", "string", "date-time", false},
		{"io.k8s.apimachinery.pkg.api.resource.Quantity", "string", "", false},
		{"io.k8s.apimachinery.pkg.util.intstr.IntOrString", "string", "int-or-string", true},
		{"io.k8s.apimachinery.pkg.runtime.RawExtension", "object", "", false},
		{"io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1", "object", "", false},
	} {
		s := def(t, d, tc.name)
		if len(s.Type) != 1 || s.Type[0] != tc.typ || s.Format != tc.format {
			t.Errorf("%s = %v %q, want %s %q", tc.name, s.Type, s.Format, tc.typ, tc.format)
		}
		if len(s.Properties) != 0 {
			t.Errorf("%s has properties %v", tc.name, s.Properties)
		}
		if got := s.Extensions[extIntOrString] == true; got != tc.intOrString {
			t.Errorf("%s x-kubernetes-int-or-string = %v, want %v", tc.name, got, tc.intOrString)
		}
		if s.Description == "" {
			t.Errorf("%s has no description", tc.name)
		}
	}
	if ct := prop(t, d, "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "creationTimestamp"); ct.Ref.String() != v2RefPrefix+"io.k8s.apimachinery.pkg.apis.meta.v1.Time" {
		t.Errorf("creationTimestamp ref = %q", ct.Ref.String())
	}
	data := prop(t, d, "io.k8s.api.core.v1.Secret", "data")
	if data.AdditionalProperties == nil || data.AdditionalProperties.Schema.Format != "byte" {
		t.Errorf("Secret.data is not a map of bytes: %+v", data)
	}
	limits := prop(t, d, "io.k8s.api.core.v1.ResourceRequirements", "limits")
	if limits.AdditionalProperties == nil || limits.AdditionalProperties.Schema.Ref.String() != v2RefPrefix+"io.k8s.apimachinery.pkg.api.resource.Quantity" {
		t.Errorf("ResourceRequirements.limits is not a map of Quantity: %+v", limits)
	}
}

func TestGroupVersionKindExtensions(t *testing.T) {
	d := testDocs(t)
	for name, want := range map[string][]interface{}{
		"io.k8s.api.apps.v1.Deployment":     {map[string]interface{}{"group": "apps", "version": "v1", "kind": "Deployment"}},
		"io.k8s.api.apps.v1.DeploymentList": {map[string]interface{}{"group": "apps", "version": "v1", "kind": "DeploymentList"}},
		"io.k8s.api.core.v1.Pod":            {map[string]interface{}{"group": "", "version": "v1", "kind": "Pod"}},
		"io.k8s.api.events.v1.Event":        {map[string]interface{}{"group": "events.k8s.io", "version": "v1", "kind": "Event"}},
		"io.k8s.api.autoscaling.v1.Scale":   {map[string]interface{}{"group": "autoscaling", "version": "v1", "kind": "Scale"}},
		"io.k8s.apimachinery.pkg.apis.meta.v1.Status": {
			map[string]interface{}{"group": "", "version": "v1", "kind": "Status"},
		},
	} {
		if got := def(t, d, name).Extensions[extGVK]; !reflect.DeepEqual(got, want) {
			t.Errorf("%s GVK = %#v, want %#v", name, got, want)
		}
	}
	if _, ok := def(t, d, "io.k8s.api.apps.v1.DeploymentSpec").Extensions[extGVK]; ok {
		t.Error("DeploymentSpec carries a group-version-kind")
	}
	// Every kind of the catalog is findable by its GVK.
	byGVK := map[schema.GroupVersionKind]string{}
	for name, s := range d.Schemas() {
		list, _ := s.Extensions[extGVK].([]interface{})
		for _, e := range list {
			m := e.(map[string]interface{})
			byGVK[schema.GroupVersionKind{Group: m["group"].(string), Version: m["version"].(string), Kind: m["kind"].(string)}] = name
		}
	}
	for _, r := range registry.Default().All() {
		for _, gvk := range []schema.GroupVersionKind{r.GroupVersionKind(), r.GroupVersion().WithKind(r.ListKind), r.GroupVersion().WithKind("DeleteOptions")} {
			if _, ok := byGVK[gvk]; !ok {
				t.Errorf("no definition carries %v", gvk)
			}
		}
	}
}
