package openapi

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	openapiv2 "github.com/google/gnostic-models/openapiv2"
	openapiv3 "github.com/google/gnostic-models/openapiv3"
	"google.golang.org/protobuf/proto"
	"k8s.io/kube-openapi/pkg/spec3"
	"k8s.io/kube-openapi/pkg/validation/spec"

	"github.com/skiff-sh/skiff/apiserver/registry"
)

func TestNegotiate(t *testing.T) {
	offers := []offer{
		{mediaJSON, mediaJSON, false},
		{mediaV2ProtobufAsked, mediaV2Protobuf, true},
		{mediaV2Protobuf, mediaV2Protobuf, true},
	}
	for _, tc := range []struct {
		accept string
		want   string // answer content type; "" means not acceptable
		proto  bool
	}{
		{"", mediaJSON, false},
		{"*/*", mediaJSON, false},
		{"application/json", mediaJSON, false},
		{"application/*", mediaJSON, false},
		{mediaV2ProtobufAsked, mediaV2Protobuf, true},
		{mediaV2Protobuf, mediaV2Protobuf, true},
		{mediaV2ProtobufAsked + ", application/json;q=0.5", mediaV2Protobuf, true},
		{"application/json;q=0.5, " + mediaV2ProtobufAsked, mediaV2Protobuf, true},
		{"application/json;q=0, " + mediaV2Protobuf, mediaV2Protobuf, true},
		{"text/html", "", false},
		{"application/json;q=0", "", false},
	} {
		o, ok := negotiate(tc.accept, offers)
		if tc.want == "" {
			if ok {
				t.Errorf("negotiate(%q) = %v, want not acceptable", tc.accept, o)
			}
			continue
		}
		if !ok || o.answer != tc.want || o.protobuf != tc.proto {
			t.Errorf("negotiate(%q) = %v %v, want %s protobuf=%v", tc.accept, o, ok, tc.want, tc.proto)
		}
	}
}

func get(t *testing.T, d *Docs, method, target string, header map[string]string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	d.ServeHTTP(rec, req)
	return rec.Result()
}

func readAll(t *testing.T, r *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func discoveryDoc(t *testing.T, d *Docs) v3Discovery {
	t.Helper()
	resp := get(t, d, http.MethodGet, "/openapi/v3", nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != mediaJSON {
		t.Fatalf("GET /openapi/v3: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var disco v3Discovery
	if err := json.Unmarshal(readAll(t, resp), &disco); err != nil {
		t.Fatal(err)
	}
	return disco
}

func TestV3DiscoveryListsEveryGroupVersion(t *testing.T) {
	d := testDocs(t)
	disco := discoveryDoc(t, d)
	gvs := registry.Default().GroupVersions()
	if len(disco.Paths) != len(gvs) {
		t.Errorf("discovery has %d group versions, catalog %d", len(disco.Paths), len(gvs))
	}
	for _, gv := range gvs {
		entry, ok := disco.Paths[gvPath(gv)]
		if !ok {
			t.Errorf("discovery lacks %s", gvPath(gv))
			continue
		}
		u, err := url.Parse(entry.ServerRelativeURL)
		if err != nil {
			t.Fatal(err)
		}
		if u.Path != "/openapi/v3/"+gvPath(gv) || u.Query().Get("hash") == "" {
			t.Errorf("%s URL = %s", gv, entry.ServerRelativeURL)
			continue
		}
		resp := get(t, d, http.MethodGet, entry.ServerRelativeURL, map[string]string{"Accept": "application/json"})
		body := readAll(t, resp)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d", entry.ServerRelativeURL, resp.StatusCode)
			continue
		}
		if got := resp.Header.Get("ETag"); got != strconv.Quote(u.Query().Get("hash")) {
			t.Errorf("%s ETag %s does not match its hash", gv, got)
		}
		if got := resp.Header.Get("Cache-Control"); got != "public, immutable" {
			t.Errorf("%s Cache-Control = %q", gv, got)
		}
		var doc spec3.OpenAPI
		if err := json.Unmarshal(body, &doc); err != nil {
			t.Errorf("%s: decoding: %v", gv, err)
			continue
		}
		if doc.Version != "3.0.0" || doc.Components == nil || len(doc.Components.Schemas) == 0 || doc.Paths == nil {
			t.Errorf("%s: document is incomplete", gv)
		}
		for _, r := range registry.Default().InGroupVersion(gv) {
			name := definitionName(reflect.TypeOf(r.New()))
			s, ok := doc.Components.Schemas[name]
			if !ok {
				t.Errorf("%s lacks schema %s", gv, name)
				continue
			}
			if _, ok := s.Properties["metadata"]; !ok {
				t.Errorf("%s has no metadata property", name)
			}
		}
	}
}

func TestV3SchemaShapes(t *testing.T) {
	d := testDocs(t)
	var doc spec3.OpenAPI
	if err := json.Unmarshal(d.v3["api/v1"].json, &doc); err != nil {
		t.Fatal(err)
	}
	s := doc.Components.Schemas
	ios := s["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]
	if ios == nil || len(ios.OneOf) != 2 || ios.OneOf[0].Type[0] != "integer" || ios.OneOf[1].Type[0] != "string" || ios.Format != "int-or-string" {
		t.Errorf("v3 IntOrString = %+v", ios)
	}
	q := s["io.k8s.apimachinery.pkg.api.resource.Quantity"]
	if q == nil || len(q.OneOf) != 2 || q.OneOf[0].Type[0] != "string" || q.OneOf[1].Type[0] != "number" || len(q.Type) != 0 {
		t.Errorf("v3 Quantity = %+v", q)
	}
	// A reference with a description is wrapped in allOf, as OpenAPI 3.0
	// ignores siblings of $ref.
	meta := s["io.k8s.api.core.v1.Pod"].Properties["metadata"]
	if meta.Ref.String() != "" || len(meta.AllOf) != 1 || meta.AllOf[0].Ref.String() != v3RefPrefix+"io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" || meta.Description == "" {
		t.Errorf("v3 Pod.metadata = %+v", meta)
	}
	containers := s["io.k8s.api.core.v1.PodSpec"].Properties["containers"]
	if containers.Extensions[extPatchMergeKey] != "name" || containers.Extensions[extListType] != "map" {
		t.Errorf("v3 PodSpec.containers extensions = %v", containers.Extensions)
	}
}

func TestV3StaleHashRedirects(t *testing.T) {
	d := testDocs(t)
	resp := get(t, d, http.MethodGet, "/openapi/v3/apis/apps/v1?hash=OLD", nil)
	if resp.StatusCode != http.StatusMovedPermanently {
		t.Fatalf("stale hash: %d, want 301", resp.StatusCode)
	}
	want := v3URL("apis/apps/v1", d.v3["apis/apps/v1"].etag)
	if got := resp.Header.Get("Location"); got != want {
		t.Errorf("Location = %s, want %s", got, want)
	}
	// Without a hash the document is served, but not as immutable.
	resp = get(t, d, http.MethodGet, "/openapi/v3/apis/apps/v1", nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "" {
		t.Errorf("unpinned: %d Cache-Control=%q", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
}

func TestImmutableExpiresUsesClock(t *testing.T) {
	d := *testDocs(t)
	d.now = func() time.Time { return time.Date(2030, 6, 1, 0, 0, 0, 0, time.UTC) }
	doc := d.v3["api/v1"]
	resp := get(t, &d, http.MethodGet, v3URL("api/v1", doc.etag), nil)
	if got, want := resp.Header.Get("Expires"), "Sun, 01 Jun 2031 00:00:00 GMT"; got != want {
		t.Errorf("Expires = %q, want %q", got, want)
	}
}

func TestConditionalAndErrorAnswers(t *testing.T) {
	d := testDocs(t)
	for _, tc := range []struct {
		name, method, target string
		header               map[string]string
		code                 int
		contentType          string
	}{
		{"v2 json", "GET", "/openapi/v2", nil, 200, mediaJSON},
		{"v2 head", "HEAD", "/openapi/v2", nil, 200, mediaJSON},
		{"v2 unchanged", "GET", "/openapi/v2", map[string]string{"If-None-Match": strconv.Quote(d.v2.etag)}, 304, ""},
		{"v2 not acceptable", "GET", "/openapi/v2", map[string]string{"Accept": "text/html"}, 406, mediaJSON},
		{"v3 root unchanged", "GET", "/openapi/v3", map[string]string{"If-None-Match": strconv.Quote(d.v3Root.etag)}, 304, ""},
		{"v3 root with slash", "GET", "/openapi/v3/", nil, 200, mediaJSON},
		{"v3 protobuf", "GET", "/openapi/v3/api/v1", map[string]string{"Accept": mediaV3ProtobufAsked}, 200, mediaV3Protobuf},
		{"unknown group version", "GET", "/openapi/v3/apis/nope/v1", nil, 404, mediaJSON},
		{"unknown path", "GET", "/openapi/v4", nil, 404, mediaJSON},
		{"post", "POST", "/openapi/v2", nil, 405, mediaJSON},
	} {
		resp := get(t, d, tc.method, tc.target, tc.header)
		if resp.StatusCode != tc.code {
			t.Errorf("%s: status %d, want %d", tc.name, resp.StatusCode, tc.code)
		}
		if tc.contentType != "" && resp.Header.Get("Content-Type") != tc.contentType {
			t.Errorf("%s: Content-Type %q, want %q", tc.name, resp.Header.Get("Content-Type"), tc.contentType)
		}
	}
}

func TestProtobufForms(t *testing.T) {
	d := testDocs(t)
	resp := get(t, d, http.MethodGet, "/openapi/v2", map[string]string{"Accept": mediaV2ProtobufAsked})
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != mediaV2Protobuf {
		t.Fatalf("v2 protobuf: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var v2 openapiv2.Document
	if err := proto.Unmarshal(readAll(t, resp), &v2); err != nil {
		t.Fatalf("v2 protobuf does not decode: %v", err)
	}
	if v2.GetSwagger() != "2.0" || len(v2.GetDefinitions().GetAdditionalProperties()) != len(d.Schemas()) {
		t.Errorf("v2 protobuf: swagger %q, %d definitions, want %d", v2.GetSwagger(), len(v2.GetDefinitions().GetAdditionalProperties()), len(d.Schemas()))
	}
	resp = get(t, d, http.MethodGet, "/openapi/v3/apis/batch/v1", map[string]string{"Accept": mediaV3Protobuf})
	var v3 openapiv3.Document
	if err := proto.Unmarshal(readAll(t, resp), &v3); err != nil {
		t.Fatalf("v3 protobuf does not decode: %v", err)
	}
	if v3.GetOpenapi() != "3.0.0" || len(v3.GetComponents().GetSchemas().GetAdditionalProperties()) == 0 {
		t.Errorf("v3 protobuf is incomplete")
	}
}

func TestV2DocumentOperations(t *testing.T) {
	d := testDocs(t)
	var sw spec.Swagger
	if err := json.Unmarshal(d.v2.json, &sw); err != nil {
		t.Fatal(err)
	}
	if sw.Swagger != "2.0" || sw.Info.Version != "v1.37.2-skiff" {
		t.Errorf("swagger %q info %+v", sw.Swagger, sw.Info)
	}
	ids := map[string]string{}
	for path, item := range sw.Paths.Paths {
		for method, op := range map[string]*spec.Operation{"get": item.Get, "put": item.Put, "post": item.Post, "delete": item.Delete, "patch": item.Patch} {
			if op == nil {
				continue
			}
			if prev, dup := ids[op.ID]; dup {
				t.Errorf("operation id %s used by %s and %s %s", op.ID, prev, method, path)
			}
			ids[op.ID] = method + " " + path
			if _, ok := op.Extensions[extAction]; !ok {
				t.Errorf("%s %s has no x-kubernetes-action", method, path)
			}
			if _, ok := op.Extensions[extGVK]; !ok {
				t.Errorf("%s %s has no x-kubernetes-group-version-kind", method, path)
			}
		}
	}
	for _, tc := range []struct {
		path, method, id, action string
		params                   []string
	}{
		{"/api/v1/namespaces/{namespace}/pods", "get", "listCoreV1NamespacedPod", "list", []string{"watch", "labelSelector", "limit"}},
		{"/api/v1/namespaces/{namespace}/pods", "post", "createCoreV1NamespacedPod", "post", []string{"body", "dryRun", "fieldManager", "fieldValidation"}},
		{"/api/v1/namespaces/{namespace}/pods", "delete", "deleteCoreV1CollectionNamespacedPod", "deletecollection", []string{"body", "labelSelector", "propagationPolicy"}},
		{"/api/v1/namespaces/{namespace}/pods/{name}", "get", "readCoreV1NamespacedPod", "get", nil},
		{"/api/v1/namespaces/{namespace}/pods/{name}", "put", "replaceCoreV1NamespacedPod", "put", []string{"fieldValidation"}},
		{"/api/v1/namespaces/{namespace}/pods/{name}", "patch", "patchCoreV1NamespacedPod", "patch", []string{"fieldValidation", "force", "fieldManager", "dryRun"}},
		{"/api/v1/namespaces/{namespace}/pods/{name}", "delete", "deleteCoreV1NamespacedPod", "delete", []string{"gracePeriodSeconds"}},
		{"/api/v1/namespaces/{namespace}/pods/{name}/status", "patch", "patchCoreV1NamespacedPodStatus", "patch", []string{"fieldValidation"}},
		{"/api/v1/pods", "get", "listCoreV1PodForAllNamespaces", "list", nil},
		{"/api/v1/watch/namespaces/{namespace}/pods/{name}", "get", "watchCoreV1NamespacedPod", "watch", nil},
		{"/api/v1/watch/pods", "get", "watchCoreV1PodListForAllNamespaces", "watchlist", nil},
		{"/api/v1/nodes/{name}", "get", "readCoreV1Node", "get", nil},
		{"/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale", "patch", "patchAppsV1NamespacedDeploymentScale", "patch", []string{"fieldValidation"}},
		{"/apis/rbac.authorization.k8s.io/v1/clusterroles", "get", "listRbacAuthorizationV1ClusterRole", "list", nil},
	} {
		item, ok := sw.Paths.Paths[tc.path]
		if !ok {
			t.Errorf("no path %s", tc.path)
			continue
		}
		op := map[string]*spec.Operation{"get": item.Get, "put": item.Put, "post": item.Post, "delete": item.Delete, "patch": item.Patch}[tc.method]
		if op == nil {
			t.Errorf("%s has no %s", tc.path, tc.method)
			continue
		}
		if op.ID != tc.id || op.Extensions[extAction] != tc.action {
			t.Errorf("%s %s: id %s action %v, want %s %s", tc.method, tc.path, op.ID, op.Extensions[extAction], tc.id, tc.action)
		}
		have := map[string]bool{}
		for _, p := range op.Parameters {
			have[p.Name] = true
		}
		for _, p := range item.Parameters {
			have[p.Name] = true
		}
		for _, p := range tc.params {
			if !have[p] {
				t.Errorf("%s %s lacks parameter %s", tc.method, tc.path, p)
			}
		}
	}
	scale := sw.Paths.Paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"].Get
	if gvk, _ := scale.Extensions[extGVK].(map[string]interface{}); gvk["kind"] != "Scale" || gvk["group"] != "autoscaling" {
		t.Errorf("scale GVK = %v", scale.Extensions[extGVK])
	}
	if strings.Contains(string(d.v2.json), `"#/definitions/"`) {
		t.Error("empty reference in v2 document")
	}
}
