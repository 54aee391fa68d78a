package openapi

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/kube-openapi/pkg/validation/spec"
)

// scalarDocs describes the types serialised by their own code, which have
// no SwaggerDoc method.
var scalarDocs = map[reflect.Type]string{
	reflect.TypeFor[metav1.Time]():          "A point in time, written as an RFC 3339 string in UTC with second precision.",
	reflect.TypeFor[metav1.MicroTime]():     "A point in time with microsecond precision, written as an RFC 3339 string.",
	reflect.TypeFor[metav1.Duration]():      "A length of time written as a Go duration string, for example \"1h30m\".",
	reflect.TypeFor[resource.Quantity]():    "A fixed-point number, optionally with a decimal SI suffix (m, k, M, G, T, P, E), a binary suffix (Ki, Mi, Gi, Ti, Pi, Ei) or an exponent (e3), for example \"100m\" or \"1.5Gi\". The server writes it back in canonical form.",
	reflect.TypeFor[intstr.IntOrString]():   "Either a 32-bit integer or a string, as in a port given by number or by name.",
	reflect.TypeFor[runtime.RawExtension](): "An embedded object of any kind, kept as raw JSON.",
}

// Methods of k8s.io types that shape their schema.
type (
	swaggerDocer interface {
		SwaggerDoc() map[string]string
	}
	// schemaTyper: a type serialised as a JSON scalar (Time, Quantity,
	// IntOrString, Duration) names its OpenAPI type and format.
	schemaTyper interface {
		OpenAPISchemaType() []string
	}
	schemaFormatter interface {
		OpenAPISchemaFormat() string
	}
	// oneOfTyper: in OpenAPI v3 the scalar may be one of several types.
	oneOfTyper interface {
		OpenAPIV3OneOfTypes() []string
	}
)

var (
	swaggerDocerType   = reflect.TypeFor[swaggerDocer]()
	schemaTyperType    = reflect.TypeFor[schemaTyper]()
	schemaFormatType   = reflect.TypeFor[schemaFormatter]()
	oneOfTyperType     = reflect.TypeFor[oneOfTyper]()
	jsonMarshalerType  = reflect.TypeFor[json.Marshaler]()
	intOrStringFormat  = "int-or-string"
	extGVK             = "x-kubernetes-group-version-kind"
	extPatchStrategy   = "x-kubernetes-patch-strategy"
	extPatchMergeKey   = "x-kubernetes-patch-merge-key"
	extListType        = "x-kubernetes-list-type"
	extListMapKeys     = "x-kubernetes-list-map-keys"
	extMapType         = "x-kubernetes-map-type"
	extIntOrString     = "x-kubernetes-int-or-string"
	extAction          = "x-kubernetes-action"
	extPreserveUnknown = "x-kubernetes-preserve-unknown-fields"
)

// definitions builds the OpenAPI v2 definitions of Go types by reflection.
type definitions struct {
	merge *mergeInfo
	defs  map[string]*spec.Schema
	types map[string]reflect.Type
	// oneOf holds, per definition, the v3 alternative types of scalars.
	oneOf map[string][]string
	gvks  map[string][]schema.GroupVersionKind
}

func newDefinitions(merge *mergeInfo) *definitions {
	return &definitions{
		merge: merge,
		defs:  map[string]*spec.Schema{},
		types: map[string]reflect.Type{},
		oneOf: map[string][]string{},
		gvks:  map[string][]schema.GroupVersionKind{},
	}
}

// implements reports whether t or *t has the method set of iface.
func implements(t, iface reflect.Type) bool {
	return t.Implements(iface) || reflect.PointerTo(t).Implements(iface)
}

// instance returns a value of t (or *t) usable to call the methods of iface.
func instance(t, iface reflect.Type) interface{} {
	if t.Implements(iface) {
		return reflect.Zero(t).Interface()
	}
	return reflect.New(t).Interface()
}

func swaggerDoc(t reflect.Type) map[string]string {
	if !implements(t, swaggerDocerType) {
		return nil
	}
	return instance(t, swaggerDocerType).(swaggerDocer).SwaggerDoc()
}

// define makes sure the named struct type t has a definition and returns
// its name.
func (d *definitions) define(t reflect.Type) (string, error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t.Name() == "" {
		return "", fmt.Errorf("openapi: %v is not a named struct", t)
	}
	name := definitionName(t)
	if prev, ok := d.types[name]; ok {
		if prev != t {
			return "", fmt.Errorf("openapi: types %v and %v share definition name %s", prev, t, name)
		}
		return name, nil
	}
	d.types[name] = t // before building: types may refer to themselves
	s, err := d.build(t, name)
	if err != nil {
		return "", err
	}
	d.defs[name] = s
	return name, nil
}

// addGVK records that definition name is the schema of gvk.
func (d *definitions) addGVK(name string, gvk schema.GroupVersionKind) {
	for _, have := range d.gvks[name] {
		if have == gvk {
			return
		}
	}
	d.gvks[name] = append(d.gvks[name], gvk)
}

// finish attaches the group-version-kind extensions.
func (d *definitions) finish() {
	for name, gvks := range d.gvks {
		sort.Slice(gvks, func(i, j int) bool {
			a, b := gvks[i], gvks[j]
			if a.Group != b.Group {
				return a.Group < b.Group
			}
			if a.Version != b.Version {
				return a.Version < b.Version
			}
			return a.Kind < b.Kind
		})
		setExt(d.defs[name], extGVK, gvkListValue(gvks))
	}
}

func setExt(s *spec.Schema, key string, v interface{}) {
	if s.Extensions == nil {
		s.Extensions = spec.Extensions{}
	}
	s.Extensions[key] = v
}

// build makes the definition of struct type t.
func (d *definitions) build(t reflect.Type, name string) (*spec.Schema, error) {
	s := &spec.Schema{}
	s.Description = swaggerDoc(t)[""]
	if s.Description == "" {
		s.Description = scalarDocs[t]
	}
	switch {
	case implements(t, schemaTyperType):
		s.Type = instance(t, schemaTyperType).(schemaTyper).OpenAPISchemaType()
		if implements(t, schemaFormatType) {
			s.Format = instance(t, schemaFormatType).(schemaFormatter).OpenAPISchemaFormat()
		}
		if implements(t, oneOfTyperType) {
			d.oneOf[name] = instance(t, oneOfTyperType).(oneOfTyper).OpenAPIV3OneOfTypes()
		}
		if s.Format == intOrStringFormat {
			setExt(s, extIntOrString, true)
		}
		return s, nil
	case implements(t, jsonMarshalerType):
		// Serialised by its own code (RawExtension, FieldsV1): an object
		// whose shape the schema does not describe.
		s.Type = spec.StringOrArray{"object"}
		return s, nil
	}
	s.Type = spec.StringOrArray{"object"}
	if err := d.addFields(s, t, name); err != nil {
		return nil, err
	}
	if d.merge.atomicStruct(name) {
		setExt(s, extMapType, "atomic")
	}
	return s, nil
}

// jsonTag is a parsed `json:"..."` struct tag.
type jsonTag struct {
	name      string
	omitempty bool
	skip      bool
}

func parseJSONTag(tag string) jsonTag {
	if tag == "-" {
		return jsonTag{skip: true}
	}
	parts := strings.Split(tag, ",")
	out := jsonTag{name: parts[0]}
	for _, opt := range parts[1:] {
		if opt == "omitempty" || opt == "omitzero" {
			out.omitempty = true
		}
	}
	return out
}

// addFields adds the JSON fields of struct t to s. Embedded structs
// without a JSON name are flattened into s, as encoding/json does; owner
// is the definition the fields end up in.
func (d *definitions) addFields(s *spec.Schema, t reflect.Type, owner string) error {
	docs := swaggerDoc(t)
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := parseJSONTag(f.Tag.Get("json"))
		if tag.skip {
			continue
		}
		if f.Anonymous && tag.name == "" {
			et := f.Type
			for et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				if err := d.addFields(s, et, owner); err != nil {
					return err
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		name := tag.name
		if name == "" {
			name = f.Name
		}
		prop, err := d.property(f, owner, name)
		if err != nil {
			return fmt.Errorf("%s.%s: %w", owner, name, err)
		}
		prop.Description = docs[name]
		if s.Properties == nil {
			s.Properties = map[string]spec.Schema{}
		}
		s.Properties[name] = *prop
		if !tag.omitempty {
			s.Required = append(s.Required, name)
		}
	}
	return nil
}

// property is the schema of field f, published as name in definition
// owner, with its merge extensions.
func (d *definitions) property(f reflect.StructField, owner, name string) (*spec.Schema, error) {
	s, err := d.typeSchema(f.Type)
	if err != nil {
		return nil, err
	}
	strategy := f.Tag.Get("patchStrategy")
	mergeKey := f.Tag.Get("patchMergeKey")
	if strategy != "" {
		setExt(s, extPatchStrategy, strategy)
	}
	if mergeKey != "" {
		setExt(s, extPatchMergeKey, mergeKey)
	}
	m := d.merge.field(owner, name)
	if s.Type.Contains("array") {
		switch {
		case m.list != nil && len(m.list.Keys) > 0:
			setExt(s, extListType, "map")
			setExt(s, extListMapKeys, stringList(m.list.Keys))
		case m.list != nil && m.list.ElementRelationship == "associative":
			setExt(s, extListType, "set")
		case m.list != nil:
			if strings.Contains(strategy, "merge") {
				// Declared atomic although its tags say merge: say so,
				// since the tags alone would make it associative.
				setExt(s, extListType, "atomic")
			}
		case !m.known && mergeKey != "":
			setExt(s, extListType, "map")
			setExt(s, extListMapKeys, stringList([]string{mergeKey}))
		}
	}
	if m.atomicMap && (s.Type.Contains("object") || s.Ref.String() != "") {
		setExt(s, extMapType, "atomic")
	}
	if m.hasDefault {
		s.Default = m.def
	}
	return s, nil
}

func stringList(ss []string) []interface{} {
	out := make([]interface{}, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// typeSchema is the schema of a value of type t: a reference for named
// structs, an inline schema otherwise.
func (d *definitions) typeSchema(t reflect.Type) (*spec.Schema, error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	s := &spec.Schema{}
	switch t.Kind() {
	case reflect.Struct:
		name, err := d.define(t)
		if err != nil {
			return nil, err
		}
		s.Ref = spec.MustCreateRef(v2RefPrefix + name)
	case reflect.String:
		s.Type = spec.StringOrArray{"string"}
	case reflect.Bool:
		s.Type = spec.StringOrArray{"boolean"}
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Uint8, reflect.Uint16, reflect.Int:
		s.Type, s.Format = spec.StringOrArray{"integer"}, "int32"
	case reflect.Int64, reflect.Uint32, reflect.Uint64, reflect.Uint:
		s.Type, s.Format = spec.StringOrArray{"integer"}, "int64"
	case reflect.Float32:
		s.Type, s.Format = spec.StringOrArray{"number"}, "float"
	case reflect.Float64:
		s.Type, s.Format = spec.StringOrArray{"number"}, "double"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			s.Type, s.Format = spec.StringOrArray{"string"}, "byte"
			break
		}
		items, err := d.typeSchema(t.Elem())
		if err != nil {
			return nil, err
		}
		s.Type = spec.StringOrArray{"array"}
		s.Items = &spec.SchemaOrArray{Schema: items}
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return nil, fmt.Errorf("openapi: map key %v is not a string", t.Key())
		}
		values, err := d.typeSchema(t.Elem())
		if err != nil {
			return nil, err
		}
		s.Type = spec.StringOrArray{"object"}
		s.AdditionalProperties = &spec.SchemaOrBool{Allows: true, Schema: values}
	case reflect.Interface:
		// Any JSON value.
		setExt(s, extPreserveUnknown, true)
	default:
		return nil, fmt.Errorf("openapi: cannot describe Go type %v", t)
	}
	return s, nil
}
