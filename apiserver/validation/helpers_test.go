package validation

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-sh/skiff/apiserver/defaults"
)

func ptr[T any](v T) *T { return &v }

func q(s string) resource.Quantity { return resource.MustParse(s) }

// e names an expected error by type and field path.
func e(t field.ErrorType, path string) string { return fmt.Sprintf("%s %s", t, path) }

const (
	required     = field.ErrorTypeRequired
	invalid      = field.ErrorTypeInvalid
	duplicate    = field.ErrorTypeDuplicate
	forbidden    = field.ErrorTypeForbidden
	notSupported = field.ErrorTypeNotSupported
	notFound     = field.ErrorTypeNotFound
	tooLong      = field.ErrorTypeTooLong
	tooMany      = field.ErrorTypeTooMany
)

// expectErrors compares errors with the wanted "type path" strings,
// ignoring order.
func expectErrors(t *testing.T, got field.ErrorList, want ...string) {
	t.Helper()
	var g []string
	for _, err := range got {
		g = append(g, e(err.Type, err.Field))
	}
	sort.Strings(g)
	w := append([]string(nil), want...)
	sort.Strings(w)
	if strings.Join(g, "\n") != strings.Join(w, "\n") {
		t.Errorf("errors:\n  got  %q\n  want %q\n  details: %v", g, w, got)
	}
}

// createCase is an object that, after defaulting, must fail creation with
// exactly the listed errors (none: it must pass).
type createCase struct {
	name string
	obj  runtime.Object
	want []string
	// raw skips defaulting, for shapes defaulting would repair.
	raw bool
}

func runCreate(t *testing.T, cases []createCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.raw {
				defaults.Apply(tc.obj)
			}
			expectErrors(t, ValidateCreate(tc.obj), tc.want...)
		})
	}
}

// updateCase changes a valid, defaulted object and expects exactly the
// listed errors from the update.
type updateCase struct {
	name   string
	old    runtime.Object
	change func(obj runtime.Object)
	want   []string
}

func runUpdate(t *testing.T, cases []updateCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			defaults.Apply(tc.old)
			if errs := ValidateCreate(tc.old); len(errs) > 0 {
				t.Fatalf("old object is invalid: %v", errs)
			}
			setRV(tc.old, "5")
			obj := tc.old.DeepCopyObject()
			tc.change(obj)
			defaults.Apply(obj)
			expectErrors(t, ValidateUpdate(obj, tc.old), tc.want...)
		})
	}
}

func setRV(obj runtime.Object, rv string) {
	if m, ok := obj.(metav1.Object); ok {
		m.SetResourceVersion(rv)
	}
}

func nsMeta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: "default"}
}

func clusterMeta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name}
}

func container(name string) corev1.Container {
	return corev1.Container{Name: name, Image: "nginx:1.25"}
}

func podSpec(cs ...corev1.Container) corev1.PodSpec {
	if len(cs) == 0 {
		cs = []corev1.Container{container("app")}
	}
	return corev1.PodSpec{Containers: cs}
}

func pod(mut func(p *corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: nsMeta("web"), Spec: podSpec()}
	if mut != nil {
		mut(p)
	}
	return p
}

var appLabels = map[string]string{"app": "web"}

func podTemplate(mut func(t *corev1.PodTemplateSpec)) corev1.PodTemplateSpec {
	t := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}}, Spec: podSpec()}
	if mut != nil {
		mut(&t)
	}
	return t
}
