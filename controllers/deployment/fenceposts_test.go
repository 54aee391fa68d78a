package deployment

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestResolveFenceposts(t *testing.T) {
	tests := []struct {
		surge, unavail intstr.IntOrString
		replicas       int32
		wantS, wantU   int32
	}{
		{intstr.FromString("25%"), intstr.FromString("25%"), 10, 3, 2}, // 2.5 up, 2.5 down
		{intstr.FromString("25%"), intstr.FromString("25%"), 1, 1, 0},
		{intstr.FromString("25%"), intstr.FromString("25%"), 4, 1, 1},
		{intstr.FromInt32(3), intstr.FromInt32(2), 10, 3, 2},
		{intstr.FromString("0%"), intstr.FromString("10%"), 5, 0, 1},  // both round to 0: one may be unavailable
		{intstr.FromString("100%"), intstr.FromString("0%"), 7, 7, 0}, // blue-green-like
		{intstr.FromInt32(0), intstr.FromString("34%"), 3, 0, 1},
		{intstr.FromString("50%"), intstr.FromString("50%"), 0, 0, 1},
	}
	for _, tt := range tests {
		s, u, err := ResolveFenceposts(&tt.surge, &tt.unavail, tt.replicas)
		if err != nil {
			t.Fatalf("%s/%s of %d: %v", tt.surge.String(), tt.unavail.String(), tt.replicas, err)
		}
		if s != tt.wantS || u != tt.wantU {
			t.Errorf("%s/%s of %d = %d/%d, want %d/%d", tt.surge.String(), tt.unavail.String(), tt.replicas, s, u, tt.wantS, tt.wantU)
		}
	}
	bad := intstr.FromString("lots")
	if _, _, err := ResolveFenceposts(&bad, nil, 3); err == nil {
		t.Errorf("an invalid maxSurge resolved")
	}
}

func TestFencepostsOfADeployment(t *testing.T) {
	d := withStrategy(deploy(3, "a"), intstr.FromInt32(2), intstr.FromInt32(5))
	if s, u, _ := fenceposts(d); s != 2 || u != 3 {
		t.Errorf("surge/unavailable = %d/%d, want 2/3 (unavailability capped at replicas)", s, u)
	}
	d.Spec.Replicas = ptr(int32(0))
	if _, u, _ := fenceposts(d); u != 0 {
		t.Errorf("a deployment scaled to 0 may lose %d pods, want 0", u)
	}
	d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
	if s, u, _ := fenceposts(d); s != 0 || u != 0 {
		t.Errorf("Recreate surge/unavailable = %d/%d, want 0/0", s, u)
	}
}

func TestTemplateHash(t *testing.T) {
	a, b := template("nginx:1"), template("nginx:2")
	ha := TemplateHash(&a, nil)
	if ha != TemplateHash(&a, nil) {
		t.Fatalf("hash is not stable")
	}
	if ha == TemplateHash(&b, nil) {
		t.Errorf("different templates hash alike")
	}
	if ha == TemplateHash(&a, ptr(int32(1))) || TemplateHash(&a, ptr(int32(1))) == TemplateHash(&a, ptr(int32(2))) {
		t.Errorf("the collision count does not change the hash")
	}
	for _, c := range ha {
		if c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u' || c == '0' || c == '1' || c == '3' {
			t.Errorf("hash %q has %q, outside the alphabet of generated names", ha, c)
		}
	}
	// A golden value: the hash names ReplicaSets, so it must not change
	// between Skiff versions (a change would roll every Deployment).
	if want := "6c9c649cb9"; TemplateHash(&b, nil) != want {
		t.Errorf("hash of the nginx:2 template = %q, want %q", TemplateHash(&b, nil), want)
	}
}

func TestEqualIgnoreHash(t *testing.T) {
	a := template("nginx:1")
	b := template("nginx:1")
	b.Labels = withLabel(b.Labels, HashLabel, "abc")
	if !equalIgnoreHash(&a, &b) {
		t.Errorf("templates differing only in the hash label are not equal")
	}
	if b.Labels[HashLabel] != "abc" {
		t.Errorf("equalIgnoreHash changed its argument")
	}
	c := template("nginx:1")
	c.Labels = withLabel(c.Labels, "extra", "x")
	if equalIgnoreHash(&a, &c) {
		t.Errorf("an extra label went unnoticed")
	}
	d := template("nginx:1")
	d.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "X", Value: "1"}}
	if equalIgnoreHash(&a, &d) {
		t.Errorf("a spec change went unnoticed")
	}
	e := template("nginx:1")
	e.Annotations = map[string]string{"kubectl.kubernetes.io/restartedAt": "now"}
	if equalIgnoreHash(&a, &e) {
		t.Errorf("a template annotation (rollout restart) went unnoticed")
	}
}
