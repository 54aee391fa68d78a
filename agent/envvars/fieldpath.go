package envvars

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// FormatMap renders labels or annotations the way the downward API shows
// them: one `key="value"` line per entry (the value Go-quoted), sorted by
// key, lines separated by newlines with none after the last.
func FormatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(m[k]))
	}
	return b.String()
}

// subscript splits "metadata.labels['k']" into ("metadata.labels", "k",
// true); a path without a subscript comes back unchanged with false.
func subscript(path string) (string, string, bool) {
	open := strings.Index(path, "['")
	if open < 0 || !strings.HasSuffix(path, "']") || open+2 > len(path)-2 {
		return path, "", false
	}
	return path[:open], path[open+2 : len(path)-2], true
}

// PodField resolves a metadata field path of the downward API against pod:
// metadata.name, metadata.namespace, metadata.uid, metadata.labels,
// metadata.annotations (all of them, formatted by FormatMap) and
// metadata.labels['k'] / metadata.annotations['k'] (one value, empty when
// absent). Other paths are an error.
func PodField(pod *v1.Pod, path string) (string, error) {
	base, key, sub := subscript(path)
	if sub {
		switch base {
		case "metadata.labels":
			return pod.Labels[key], nil
		case "metadata.annotations":
			return pod.Annotations[key], nil
		}
		return "", fmt.Errorf("unsupported fieldPath %q", path)
	}
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "metadata.labels":
		return FormatMap(pod.Labels), nil
	case "metadata.annotations":
		return FormatMap(pod.Annotations), nil
	}
	return "", fmt.Errorf("unsupported fieldPath %q", path)
}

// FindContainer returns the pod's container (regular, init or ephemeral)
// with that name, or nil.
func FindContainer(pod *v1.Pod, name string) *v1.Container {
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			return &pod.Spec.Containers[i]
		}
	}
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return &pod.Spec.InitContainers[i]
		}
	}
	for i := range pod.Spec.EphemeralContainers {
		if pod.Spec.EphemeralContainers[i].Name == name {
			c := v1.Container(pod.Spec.EphemeralContainers[i].EphemeralContainerCommon)
			return &c
		}
	}
	return nil
}

// ResourceValue resolves a resourceFieldRef for container c: the named
// limit or request (cpu, memory, ephemeral-storage, hugepages-<size>)
// divided by the divisor (default 1) and rounded up to a whole number; cpu
// is divided in millicores, so a 250m limit with the default divisor gives
// "1" and with divisor 1m gives "250". An unset cpu, memory or
// ephemeral-storage limit is the node's allocatable amount; an unset
// request is the limit when the limit is set (as API defaulting does) and
// zero otherwise.
func ResourceValue(c *v1.Container, ref *v1.ResourceFieldSelector, allocatable v1.ResourceList) (string, error) {
	kind, name, ok := strings.Cut(ref.Resource, ".")
	if !ok || (kind != "limits" && kind != "requests") {
		return "", fmt.Errorf("unsupported container resource %q", ref.Resource)
	}
	res := v1.ResourceName(name)
	switch {
	case res == v1.ResourceCPU, res == v1.ResourceMemory, res == v1.ResourceEphemeralStorage:
	case strings.HasPrefix(name, v1.ResourceHugePagesPrefix):
	default:
		return "", fmt.Errorf("unsupported container resource %q", ref.Resource)
	}
	var q resource.Quantity
	limit, hasLimit := c.Resources.Limits[res]
	if kind == "limits" {
		q = limit
		if !hasLimit && !strings.HasPrefix(name, v1.ResourceHugePagesPrefix) {
			q = allocatable[res]
		}
	} else {
		req, hasReq := c.Resources.Requests[res]
		switch {
		case hasReq:
			q = req
		case hasLimit:
			q = limit
		}
	}
	divisor := ref.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	var n, d int64
	if res == v1.ResourceCPU {
		n, d = q.MilliValue(), divisor.MilliValue()
	} else {
		n, d = q.Value(), divisor.Value()
	}
	return strconv.FormatInt(ceilDiv(n, d), 10), nil
}

// ceilDiv divides rounding up, for non-negative n and positive d.
func ceilDiv(n, d int64) int64 {
	if d <= 0 {
		d = 1
	}
	if n <= 0 {
		return 0
	}
	return (n-1)/d + 1
}
