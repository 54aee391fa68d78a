package openapi

import (
	"reflect"
	"strings"
	"unicode"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Reference prefixes of the two document formats.
const (
	v2RefPrefix = "#/definitions/"
	v3RefPrefix = "#/components/schemas/"
)

// modelNamer is implemented by the generated k8s.io types; its answer is
// the definition name Kubernetes itself publishes.
type modelNamer interface {
	OpenAPIModelName() string
}

// definitionName names the definition of a Go named type: the type's own
// OpenAPIModelName when it has one, otherwise its package path with the
// domain reversed ("k8s.io/api/core/v1".Pod -> "io.k8s.api.core.v1.Pod").
func definitionName(t reflect.Type) string {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if v, ok := reflect.Zero(t).Interface().(modelNamer); ok {
		if n := v.OpenAPIModelName(); n != "" {
			return n
		}
	}
	return packageName(t.PkgPath()) + "." + t.Name()
}

// packageName turns an import path into the dotted prefix of definition
// names: the first element, when it is a domain, is reversed and every
// slash becomes a dot.
func packageName(pkgPath string) string {
	if i := strings.LastIndex(pkgPath, "/vendor/"); i >= 0 {
		pkgPath = pkgPath[i+len("/vendor/"):]
	}
	parts := strings.Split(pkgPath, "/")
	if strings.Contains(parts[0], ".") {
		labels := strings.Split(parts[0], ".")
		for i, j := 0, len(labels)-1; i < j; i, j = i+1, j-1 {
			labels[i], labels[j] = labels[j], labels[i]
		}
		parts[0] = strings.Join(labels, ".")
	}
	return strings.Join(parts, ".")
}

// groupWords splits an API group into the words Kubernetes uses in
// operation ids and tags: the ".k8s.io" suffix is dropped and the core
// group is called "core" ("rbac.authorization.k8s.io" -> rbac, authorization).
func groupWords(group string) []string {
	if group == "" {
		return []string{"core"}
	}
	group = strings.TrimSuffix(group, ".k8s.io")
	return strings.FieldsFunc(group, func(r rune) bool { return r == '.' || r == '-' })
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	r := []rune(s)
	r[0] = unicode.ToUpper(r[0])
	return string(r)
}

// operationGV is the group-version part of operation ids: "CoreV1",
// "RbacAuthorizationV1".
func operationGV(gv schema.GroupVersion) string {
	var b strings.Builder
	for _, w := range groupWords(gv.Group) {
		b.WriteString(upperFirst(w))
	}
	b.WriteString(upperFirst(gv.Version))
	return b.String()
}

// operationTag is the tag operations of a group version carry: "core_v1",
// "rbacAuthorization_v1".
func operationTag(gv schema.GroupVersion) string {
	words := groupWords(gv.Group)
	var b strings.Builder
	b.WriteString(words[0])
	for _, w := range words[1:] {
		b.WriteString(upperFirst(w))
	}
	return b.String() + "_" + gv.Version
}

// gvPath is the URL path of a group version without a leading slash, as
// the OpenAPI v3 discovery document keys it: "api/v1", "apis/apps/v1".
func gvPath(gv schema.GroupVersion) string {
	if gv.Group == "" {
		return "api/" + gv.Version
	}
	return "apis/" + gv.Group + "/" + gv.Version
}

// gvkValue is a group-version-kind as an extension value, in the JSON
// shapes a decoder would produce so that consumers reading extensions
// directly (the managed-fields type converter) see what they expect.
func gvkValue(gvk schema.GroupVersionKind) map[string]interface{} {
	return map[string]interface{}{"group": gvk.Group, "version": gvk.Version, "kind": gvk.Kind}
}

// gvkListValue is the x-kubernetes-group-version-kind value of a
// definition: a list of group-version-kinds.
func gvkListValue(gvks []schema.GroupVersionKind) []interface{} {
	out := make([]interface{}, 0, len(gvks))
	for _, gvk := range gvks {
		out = append(out, gvkValue(gvk))
	}
	return out
}
