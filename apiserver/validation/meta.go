package validation

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/api/validation/path"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Name rules of the kinds.
var (
	nameIsSubdomain   = apivalidation.NameIsDNSSubdomain
	nameIsLabel       = apivalidation.NameIsDNSLabel
	nameIs1035Label   = apivalidation.NameIsDNS1035Label
	nameIsPathSegment = path.ValidatePathSegmentName
)

var metadataPath = field.NewPath("metadata")

// validateMeta checks the metadata of a new object: its name by nameFn, its
// namespace by scope, labels, annotations, owner references and finalizers.
func validateMeta(m *metav1.ObjectMeta, namespaced bool, nameFn apivalidation.ValidateNameFunc) field.ErrorList {
	return apivalidation.ValidateObjectMetaAccessor(m, namespaced, nameFn, metadataPath)
}

// validateMetaUpdate checks the metadata of an update. The resourceVersion
// precondition is the caller's business and is not reported.
func validateMetaUpdate(m, old *metav1.ObjectMeta) field.ErrorList {
	var out field.ErrorList
	rv := metadataPath.Child("resourceVersion").String()
	for _, e := range apivalidation.ValidateObjectMetaAccessorUpdate(m, old, metadataPath) {
		if e.Field != rv {
			out = append(out, e)
		}
	}
	return out
}

// withMetaUpdate prefixes errs with the metadata errors of an update.
func withMetaUpdate(m, old *metav1.ObjectMeta, errs field.ErrorList) field.ErrorList {
	return append(validateMetaUpdate(m, old), errs...)
}

func immutable(newVal, oldVal any, p *field.Path) field.ErrorList {
	return apivalidation.ValidateImmutableField(newVal, oldVal, p)
}

func nonNegative(v int64, p *field.Path) field.ErrorList {
	return apivalidation.ValidateNonnegativeField(v, p)
}

func nonNegativePtr[T int32 | int64](v *T, p *field.Path) field.ErrorList {
	if v == nil {
		return nil
	}
	return nonNegative(int64(*v), p)
}

// oneOf checks a required enum field.
func oneOf[T ~string](v T, p *field.Path, allowed ...T) field.ErrorList {
	if v == "" {
		return field.ErrorList{field.Required(p, "")}
	}
	return optionalOneOf(v, p, allowed...)
}

// optionalOneOf checks an enum field that may be empty.
func optionalOneOf[T ~string](v T, p *field.Path, allowed ...T) field.ErrorList {
	if v == "" {
		return nil
	}
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return field.ErrorList{field.NotSupported(p, v, allowed)}
}

// msgs turns the messages of a format check into Invalid errors.
func msgs(p *field.Path, value any, messages []string) field.ErrorList {
	var out field.ErrorList
	for _, m := range messages {
		out = append(out, field.Invalid(p, value, m))
	}
	return out
}

func dnsLabel(v string, p *field.Path) field.ErrorList {
	return msgs(p, v, validation.IsDNS1123Label(v))
}

func dnsSubdomain(v string, p *field.Path) field.ErrorList {
	return msgs(p, v, validation.IsDNS1123Subdomain(v))
}

func qualifiedName(v string, p *field.Path) field.ErrorList {
	return msgs(p, v, validation.IsQualifiedName(v))
}

func annotations(m map[string]string, p *field.Path) field.ErrorList {
	return apivalidation.ValidateAnnotations(m, p)
}

func labels(m map[string]string, p *field.Path) field.ErrorList {
	return metav1validation.ValidateLabels(m, p)
}

func labelSelector(s *metav1.LabelSelector, p *field.Path) field.ErrorList {
	return metav1validation.ValidateLabelSelector(s, metav1validation.LabelSelectorValidationOptions{}, p)
}

// portNum checks a port number, which must be set.
func portNum(v int32, p *field.Path) field.ErrorList {
	return msgs(p, v, validation.IsValidPortNum(int(v)))
}

// portNumOrName checks a port given by number or by IANA service name.
func portNumOrName(v intstr.IntOrString, p *field.Path) field.ErrorList {
	if v.Type == intstr.String {
		if v.StrVal == "" {
			return field.ErrorList{field.Required(p, "")}
		}
		return msgs(p, v.StrVal, validation.IsValidPortName(v.StrVal))
	}
	return msgs(p, v.IntVal, validation.IsValidPortNum(int(v.IntVal)))
}

var protocols = []corev1.Protocol{corev1.ProtocolSCTP, corev1.ProtocolTCP, corev1.ProtocolUDP}

// intOrPercent checks a count or percentage: a non-negative number or a
// string "N%".
func intOrPercent(v *intstr.IntOrString, p *field.Path) field.ErrorList {
	if v == nil {
		return nil
	}
	if v.Type == intstr.String {
		return msgs(p, v.StrVal, validation.IsValidPercent(v.StrVal))
	}
	return nonNegative(int64(v.IntVal), p)
}

// atMost100Percent rejects percentages above 100%.
func atMost100Percent(v *intstr.IntOrString, p *field.Path) field.ErrorList {
	if v == nil || v.Type != intstr.String {
		return nil
	}
	if n, ok := percentValue(v.StrVal); ok && n > 100 {
		return field.ErrorList{field.Invalid(p, v.StrVal, "must not be greater than 100%")}
	}
	return nil
}

func percentValue(s string) (int, bool) {
	if !strings.HasSuffix(s, "%") {
		return 0, false
	}
	var n int
	if _, err := fmt.Sscanf(s, "%d%%", &n); err != nil {
		return 0, false
	}
	return n, true
}

// isZeroIntOrPercent reports whether v is 0 or "0%".
func isZeroIntOrPercent(v *intstr.IntOrString) bool {
	if v == nil {
		return true
	}
	if v.Type == intstr.String {
		n, ok := percentValue(v.StrVal)
		return ok && n == 0
	}
	return v.IntVal == 0
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func sortedResourceNames(l corev1.ResourceList) []corev1.ResourceName {
	names := make([]corev1.ResourceName, 0, len(l))
	for k := range l {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool { return names[i] < names[j] })
	return names
}

func nonNegativeQuantity(v resource.Quantity, p *field.Path) field.ErrorList {
	if v.Sign() < 0 {
		return field.ErrorList{field.Invalid(p, v.String(), apivalidation.IsNegativeErrorMsg)}
	}
	return nil
}

func positiveQuantity(v resource.Quantity, p *field.Path) field.ErrorList {
	if v.Sign() <= 0 {
		return field.ErrorList{field.Invalid(p, v.String(), "must be greater than zero")}
	}
	return nil
}

// localPath checks a path that must stay inside its volume: relative and
// without "..".
func localPath(v string, p *field.Path) field.ErrorList {
	var out field.ErrorList
	if strings.HasPrefix(v, "/") {
		out = append(out, field.Invalid(p, v, "must be a relative path"))
	}
	out = append(out, noBacksteps(v, p)...)
	return out
}

func noBacksteps(v string, p *field.Path) field.ErrorList {
	for _, part := range strings.Split(v, "/") {
		if part == ".." {
			return field.ErrorList{field.Invalid(p, v, "must not contain '..'")}
		}
	}
	return nil
}
