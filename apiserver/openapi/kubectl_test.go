package openapi

import (
	"bytes"
	"net/http/httptest"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/resource"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/kubectl/pkg/explain"
	explainv2 "k8s.io/kubectl/pkg/explain/v2"
	kubectlopenapi "k8s.io/kubectl/pkg/util/openapi"

	"github.com/skiff-sh/skiff/apiserver/registry"
)

// These tests run kubectl's own client code (client-go's OpenAPI clients,
// cli-runtime's field-validation verifiers, kubectl explain's renderers)
// against the documents served over HTTP.

func testClients(t *testing.T) (*discovery.DiscoveryClient, dynamic.Interface) {
	t.Helper()
	srv := httptest.NewServer(testDocs(t))
	t.Cleanup(srv.Close)
	cfg := &rest.Config{Host: srv.URL}
	disco, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return disco, dyn
}

func TestFieldValidationVerifiersAcceptEveryKind(t *testing.T) {
	disco, dyn := testClients(t)
	v3 := resource.NewQueryParamVerifierV3(dyn, disco.OpenAPIV3(), resource.QueryParamFieldValidation)
	v2 := resource.NewQueryParamVerifier(dyn, disco, resource.QueryParamFieldValidation)
	for _, r := range registry.Default().All() {
		gvk := r.GroupVersionKind()
		if err := v3.HasSupport(gvk); err != nil {
			t.Errorf("v3 verifier, %v: %v", gvk, err)
		}
		if err := v2.HasSupport(gvk); err != nil {
			t.Errorf("v2 verifier, %v: %v", gvk, err)
		}
	}
	// The verifiers are not fooled into accepting anything.
	missing := schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Nothing"}
	if err := v3.HasSupport(missing); err == nil {
		t.Errorf("v3 verifier accepted %v", missing)
	}
}

func TestExplainOpenAPIV3(t *testing.T) {
	disco, _ := testClients(t)
	for _, tc := range []struct {
		gvr    schema.GroupVersionResource
		fields []string
		want   []string
	}{
		{
			schema.GroupVersionResource{Version: "v1", Resource: "pods"}, []string{"spec", "containers"},
			[]string{"KIND:       Pod", "VERSION:    v1", "FIELD: containers <[]Container>", "name\t<string> -required-", "ports\t<[]ContainerPort>"},
		},
		{
			schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, nil,
			[]string{"GROUP:      apps", "KIND:       Deployment", "metadata\t<ObjectMeta>", "spec\t<DeploymentSpec>"},
		},
		{
			schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, []string{"spec", "strategy", "rollingUpdate", "maxSurge"},
			[]string{"FIELD: maxSurge <IntOrString>"},
		},
		{
			schema.GroupVersionResource{Version: "v1", Resource: "pods"}, []string{"metadata", "creationTimestamp"},
			[]string{"FIELD: creationTimestamp <string>"},
		},
	} {
		var out bytes.Buffer
		if err := explainv2.PrintModelDescription(tc.fields, &out, disco.OpenAPIV3(), tc.gvr, false, 0, "plaintext"); err != nil {
			t.Errorf("explain %v %v: %v", tc.gvr, tc.fields, err)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("explain %v %v lacks %q:\n%s", tc.gvr, tc.fields, w, out.String())
			}
		}
	}
}

func TestExplainOpenAPIV2(t *testing.T) {
	disco, _ := testClients(t)
	doc, err := disco.OpenAPISchema()
	if err != nil {
		t.Fatalf("OpenAPISchema: %v", err)
	}
	resources, err := kubectlopenapi.NewOpenAPIData(doc)
	if err != nil {
		t.Fatalf("NewOpenAPIData: %v", err)
	}
	gvk := schema.GroupVersionKind{Version: "v1", Kind: "Pod"}
	pod := resources.LookupResource(gvk)
	if pod == nil {
		t.Fatal("v2 document has no Pod")
	}
	var out bytes.Buffer
	if err := explain.PrintModelDescription([]string{"spec", "containers"}, &out, pod, gvk, false, 0); err != nil {
		t.Fatalf("explain: %v", err)
	}
	for _, w := range []string{"KIND:     Pod", "RESOURCE: containers <[]Object>", "List of containers belonging to the pod", "name\t<string> -required-", "Name of the container specified"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("explain (v2) lacks %q:\n%s", w, out.String())
		}
	}
	if got := resources.GetConsumes(schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, "PATCH"); len(got) == 0 {
		t.Error("no PATCH media types for Deployment")
	}
}
