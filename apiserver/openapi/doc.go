// Package openapi builds and serves the OpenAPI documents of the resources
// in a registry.Catalog, the way kube-apiserver publishes them:
//
//	/openapi/v2                   one Swagger 2.0 document, JSON or protobuf
//	/openapi/v3                   discovery: a hash-pinned URL per group version
//	/openapi/v3/api/v1            an OpenAPI 3.0 document per group version
//	/openapi/v3/apis/GROUP/VERSION
//
// The documents are generated once, at start-up, by reflection over the
// k8s.io/api Go types: JSON tags give the fields (embedded structs are
// flattened, pointers unwrapped, fields without omitempty are required),
// SwaggerDoc methods the descriptions, patchStrategy and patchMergeKey tags
// the strategic-merge extensions, and the OpenAPISchemaType family of
// methods the scalar types (Time, Quantity, IntOrString). Definitions are
// named as Kubernetes names them (io.k8s.api.core.v1.Pod). How server-side
// apply merges lists and maps is not in the Go types; it comes from the
// structured-merge-diff schema client-go ships (see mergeInfo).
//
// kubectl relies on these documents: `kubectl explain` reads the v3 (or,
// with --output=plaintext-openapiv2, the v2) schemas, and kubectl asks the
// v3 document whether PATCH of a kind accepts fieldValidation before it
// sends server-side field validation. Docs.Schemas feeds server-side
// apply's type converter.
package openapi
