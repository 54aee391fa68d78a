package e2e

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// applied names the objects of the apply manifest as kubectl prints them,
// with the get arguments that read each back.
var applied = []struct{ printed, get string }{
	{"deployment.apps/web", "deployment/web"},
	{"service/web", "service/web"},
	{"configmap/web-config", "configmap/web-config"},
	{"secret/web-secret", "secret/web-secret"},
}

// objectList is the part of a `get -o json` List the apply test reads.
type objectList struct {
	Items []struct {
		Kind     string            `json:"kind"`
		Metadata metav1.ObjectMeta `json:"metadata"`
	} `json:"items"`
}

// versions reads the resourceVersion and generation of every applied
// object, keyed by kind/name.
func versions(k *kubectl) map[string]metav1.ObjectMeta {
	k.t.Helper()
	args := []string{"-n", k.ns}
	for _, a := range applied {
		args = append(args, a.get)
	}
	var l objectList
	k.getJSON(&l, args...)
	if len(l.Items) != len(applied) {
		k.t.Fatalf("got %d objects, want %d", len(l.Items), len(applied))
	}
	m := map[string]metav1.ObjectMeta{}
	for _, it := range l.Items {
		m[strings.ToLower(it.Kind)+"/"+it.Metadata.Name] = it.Metadata
	}
	return m
}

// applyLines checks kubectl apply printed one line per object, each with
// the given verb, except those listed in other.
func applyLines(t *testing.T, out, verb string, other map[string]string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(applied) {
		t.Errorf("apply printed %d lines, want %d:\n%s", len(lines), len(applied), out)
	}
	for _, a := range applied {
		want := verb
		if v, ok := other[a.printed]; ok {
			want = v
		}
		wantContains(t, out, a.printed+" "+want)
	}
}

// TestApply applies a manifest, re-applies it unchanged, then applies a
// metadata-only change and a spec change.
func TestApply(t *testing.T) {
	base := docs(webDeployment, webService, webConfigMap, webSecretData)
	eachClient(t, func(t *testing.T, k *kubectl) {
		k.createNamespace()
		f := k.file("app.yaml", base)
		applyLines(t, k.ok("apply", "-f", f), "created", nil)
		before := versions(k)

		applyLines(t, k.ok("apply", "-f", f), "unchanged", nil)
		after := versions(k)
		for key, m := range before {
			if after[key].ResourceVersion != m.ResourceVersion {
				t.Errorf("%s: unchanged apply moved resourceVersion %s -> %s", key, m.ResourceVersion, after[key].ResourceVersion)
			}
		}

		// A label is metadata: the object changes, its generation does not.
		labelled := strings.Replace(base, "  labels:\n    app: web\nspec:", "  labels:\n    app: web\n    tier: frontend\nspec:", 1)
		if labelled == base {
			t.Fatal("test manifest: label edit did not apply")
		}
		out := k.ok("apply", "-f", k.file("labelled.yaml", labelled))
		applyLines(t, out, "unchanged", map[string]string{"deployment.apps/web": "configured"})
		var d appsv1.Deployment
		k.getJSON(&d, "-n", k.ns, "deployment", "web")
		dep := before["deployment/web"]
		if d.Labels["tier"] != "frontend" {
			t.Errorf("labels after apply = %v, want tier=frontend", d.Labels)
		}
		if d.ResourceVersion == dep.ResourceVersion || d.Generation != dep.Generation {
			t.Errorf("label apply: resourceVersion %s -> %s, generation %d -> %d; want a new resourceVersion, same generation",
				dep.ResourceVersion, d.ResourceVersion, dep.Generation, d.Generation)
		}

		// Replicas are spec: the generation moves.
		scaled := strings.Replace(labelled, "replicas: 2", "replicas: 3", 1)
		out = k.ok("apply", "-f", k.file("scaled.yaml", scaled))
		applyLines(t, out, "unchanged", map[string]string{"deployment.apps/web": "configured"})
		var d2 appsv1.Deployment
		k.getJSON(&d2, "-n", k.ns, "deployment", "web")
		if d2.Spec.Replicas == nil || *d2.Spec.Replicas != 3 || d2.Labels["tier"] != "frontend" {
			t.Errorf("after spec apply: replicas %v labels %v, want 3 and tier=frontend", d2.Spec.Replicas, d2.Labels)
		}
		if d2.Generation != d.Generation+1 {
			t.Errorf("spec apply: generation %d -> %d, want +1", d.Generation, d2.Generation)
		}
		if ann := d2.Annotations[corev1.LastAppliedConfigAnnotation]; !strings.Contains(ann, `"replicas":3`) {
			t.Errorf("last-applied annotation does not record replicas 3: %s", ann)
		}

		// Removing the label from the manifest removes it from the object.
		out = k.ok("apply", "-f", f)
		wantContains(t, out, "deployment.apps/web configured")
		var d3 appsv1.Deployment
		k.getJSON(&d3, "-n", k.ns, "deployment", "web")
		if _, ok := d3.Labels["tier"]; ok || d3.Spec.Replicas == nil || *d3.Spec.Replicas != 2 {
			t.Errorf("after re-applying the base: labels %v replicas %v, want no tier and 2", d3.Labels, d3.Spec.Replicas)
		}

		// A stringData Secret always yields a patch (stringData is never
		// stored), so kubectl reports it configured; the server must see
		// the patch as a no-op and keep the resourceVersion.
		sf := k.file("stringdata.yaml", webSecretStringData)
		k.ok("apply", "-f", sf)
		var s1, s2 corev1.Secret
		k.getJSON(&s1, "-n", k.ns, "secret", "web-secret")
		k.ok("apply", "-f", sf)
		k.getJSON(&s2, "-n", k.ns, "secret", "web-secret")
		if s1.ResourceVersion != s2.ResourceVersion {
			t.Errorf("re-applying the same stringData moved resourceVersion %s -> %s", s1.ResourceVersion, s2.ResourceVersion)
		}
		if string(s2.Data["password"]) != "s3cr3t" {
			t.Errorf("secret data after stringData apply = %q", s2.Data)
		}
	})
}
