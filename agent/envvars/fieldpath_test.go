package envvars

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestFormatMap(t *testing.T) {
	cases := []struct {
		in   map[string]string
		want string
	}{
		{nil, ""},
		{map[string]string{"a": "1"}, `a="1"`},
		{map[string]string{"zone": "us", "app": "web", "k8s.io/x": `q"uote` + "\n"}, `app="web"` + "\n" + `k8s.io/x="q\"uote\n"` + "\n" + `zone="us"`},
	}
	for _, c := range cases {
		if got := FormatMap(c.in); got != c.want {
			t.Errorf("FormatMap(%v) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestPodField(t *testing.T) {
	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{
		Name: "web", Namespace: "shop", UID: "u-1",
		Labels:      map[string]string{"app": "web", "tier": "front"},
		Annotations: map[string]string{"note": "hi"},
	}}
	cases := []struct {
		path, want string
		err        bool
	}{
		{"metadata.name", "web", false},
		{"metadata.namespace", "shop", false},
		{"metadata.uid", "u-1", false},
		{"metadata.labels", "app=\"web\"\ntier=\"front\"", false},
		{"metadata.annotations", `note="hi"`, false},
		{"metadata.labels['tier']", "front", false},
		{"metadata.labels['absent']", "", false},
		{"metadata.annotations['note']", "hi", false},
		{"metadata.generateName", "", true},
		{"spec.nodeName", "", true},
		{"metadata.name['x']", "", true},
	}
	for _, c := range cases {
		got, err := PodField(pod, c.path)
		if (err != nil) != c.err || got != c.want {
			t.Errorf("PodField(%q) = %q, %v; want %q, err %v", c.path, got, err, c.want, c.err)
		}
	}
}

func TestResourceValue(t *testing.T) {
	q := resource.MustParse
	c := &v1.Container{Resources: v1.ResourceRequirements{
		Limits:   v1.ResourceList{v1.ResourceCPU: q("250m"), v1.ResourceMemory: q("128Mi"), "hugepages-2Mi": q("4Mi")},
		Requests: v1.ResourceList{v1.ResourceCPU: q("100m")},
	}}
	alloc := v1.ResourceList{v1.ResourceCPU: q("4"), v1.ResourceMemory: q("8Gi"), v1.ResourceEphemeralStorage: q("20Gi")}
	cases := []struct {
		res, divisor, want string
		err                bool
	}{
		{"limits.cpu", "", "1", false},
		{"limits.cpu", "1m", "250", false},
		{"limits.cpu", "100m", "3", false},
		{"requests.cpu", "1m", "100", false},
		{"limits.memory", "", "134217728", false},
		{"limits.memory", "1Mi", "128", false},
		{"limits.memory", "1Gi", "1", false},
		{"requests.memory", "1Mi", "128", false}, // request defaults to the limit
		{"limits.ephemeral-storage", "1Gi", "20", false},
		{"requests.ephemeral-storage", "", "0", false},
		{"limits.hugepages-2Mi", "1Mi", "4", false},
		{"requests.hugepages-1Gi", "", "0", false},
		{"limits.gpu", "", "", true},
		{"cpu", "", "", true},
		{"status.cpu", "", "", true},
	}
	for _, tc := range cases {
		ref := &v1.ResourceFieldSelector{Resource: tc.res}
		if tc.divisor != "" {
			ref.Divisor = q(tc.divisor)
		}
		got, err := ResourceValue(c, ref, alloc)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ResourceValue(%s, %s) = %q, %v; want %q, err %v", tc.res, tc.divisor, got, err, tc.want, tc.err)
		}
	}
	// An unset cpu limit is the node's allocatable.
	empty := &v1.Container{}
	if got, _ := ResourceValue(empty, &v1.ResourceFieldSelector{Resource: "limits.cpu"}, alloc); got != "4" {
		t.Errorf("unset cpu limit = %q, want allocatable 4", got)
	}
	if got, _ := ResourceValue(empty, &v1.ResourceFieldSelector{Resource: "limits.memory", Divisor: q("1Gi")}, nil); got != "0" {
		t.Errorf("unset memory limit without allocatable = %q, want 0", got)
	}
}
