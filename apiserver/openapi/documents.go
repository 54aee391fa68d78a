package openapi

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/kube-openapi/pkg/openapiconv"
	"k8s.io/kube-openapi/pkg/spec3"
	"k8s.io/kube-openapi/pkg/validation/spec"

	"github.com/skiff-sh/skiff/apiserver/registry"
)

// model is what reflection over a catalog yields: every definition and
// the paths of each group version.
type model struct {
	defs  *definitions
	paths map[schema.GroupVersion]pathSet
	gvs   []schema.GroupVersion
}

func buildModel(c *registry.Catalog) (*model, error) {
	merge, err := loadMergeInfo()
	if err != nil {
		return nil, err
	}
	m := &model{
		defs:  newDefinitions(merge),
		paths: map[schema.GroupVersion]pathSet{},
		gvs:   c.GroupVersions(),
	}
	for _, r := range c.All() {
		gv := r.GroupVersion()
		if m.paths[gv] == nil {
			m.paths[gv] = pathSet{}
		}
		if err := addResource(m.defs, r, m.paths[gv]); err != nil {
			return nil, err
		}
	}
	m.defs.finish()
	return m, nil
}

func info(version string) *spec.Info {
	return &spec.Info{InfoProps: spec.InfoProps{Title: "Kubernetes", Version: version}}
}

// swagger assembles a Swagger 2.0 document from paths and the definitions
// they reach.
func (m *model) swagger(version string, paths pathSet) *spec.Swagger {
	defs := spec.Definitions{}
	for name := range m.reachable(paths) {
		if s, ok := m.defs.defs[name]; ok {
			defs[name] = *s
		}
	}
	sw := &spec.Swagger{}
	sw.Swagger = "2.0"
	sw.Info = info(version)
	sw.Paths = &spec.Paths{Paths: paths}
	sw.Definitions = defs
	sw.SecurityDefinitions = spec.SecurityDefinitions{"BearerToken": &spec.SecurityScheme{
		SecuritySchemeProps: spec.SecuritySchemeProps{
			Type: "apiKey", Name: "authorization", In: "header",
			Description: "Bearer token authentication",
		},
	}}
	sw.Security = []map[string][]string{{"BearerToken": {}}}
	return sw
}

// swaggerAll is the /openapi/v2 document: every path, every definition.
func (m *model) swaggerAll(version string) *spec.Swagger {
	return m.swagger(version, m.allPaths())
}

func (m *model) allPaths() pathSet {
	all := pathSet{}
	for _, ps := range m.paths {
		for p, item := range ps {
			all[p] = item
		}
	}
	return all
}

// openAPIV3 is the OpenAPI 3.0 document of one group version.
func (m *model) openAPIV3(version string, gv schema.GroupVersion) *spec3.OpenAPI {
	doc := openapiconv.ConvertV2ToV3(m.swagger(version, m.paths[gv]))
	doc.Info = info(version)
	// OpenAPI v3 can say what v2 cannot: a Quantity is a string or a
	// number, an IntOrString an integer or a string.
	for name, types := range m.defs.oneOf {
		old, ok := doc.Components.Schemas[name]
		if !ok {
			continue
		}
		s := &spec.Schema{}
		s.Description = old.Description
		s.Format = old.Format
		s.Extensions = old.Extensions
		for _, t := range types {
			s.OneOf = append(s.OneOf, spec.Schema{SchemaProps: spec.SchemaProps{Type: spec.StringOrArray{t}}})
		}
		doc.Components.Schemas[name] = s
	}
	return doc
}

// reachable returns the names of the definitions paths refer to, directly
// or through other definitions.
func (m *model) reachable(paths pathSet) map[string]bool {
	seen := map[string]bool{}
	var visit func(s *spec.Schema)
	visit = func(s *spec.Schema) {
		if s == nil {
			return
		}
		if ref := s.Ref.String(); ref != "" {
			name := strings.TrimPrefix(ref, v2RefPrefix)
			if !seen[name] {
				seen[name] = true
				visit(m.defs.defs[name])
			}
		}
		for _, p := range s.Properties {
			visit(&p)
		}
		if s.Items != nil {
			visit(s.Items.Schema)
			for i := range s.Items.Schemas {
				visit(&s.Items.Schemas[i])
			}
		}
		if s.AdditionalProperties != nil {
			visit(s.AdditionalProperties.Schema)
		}
		for _, list := range [][]spec.Schema{s.AllOf, s.OneOf, s.AnyOf} {
			for i := range list {
				visit(&list[i])
			}
		}
	}
	for _, item := range paths {
		for _, op := range []*spec.Operation{item.Get, item.Put, item.Post, item.Delete, item.Patch} {
			if op == nil {
				continue
			}
			for _, p := range op.Parameters {
				visit(p.Schema)
			}
			if op.Responses != nil {
				for _, r := range op.Responses.StatusCodeResponses {
					visit(r.Schema)
				}
			}
		}
	}
	return seen
}

// checkRefs reports a reference to a missing definition; it guards the
// builder against producing a document clients cannot resolve.
func (m *model) checkRefs() error {
	for name := range m.reachable(m.allPaths()) {
		if _, ok := m.defs.defs[name]; !ok {
			return fmt.Errorf("openapi: reference to undefined %s", name)
		}
	}
	return nil
}
