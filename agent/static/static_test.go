package static

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestSyncMirrorsManifests(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("web.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: c\n    image: nginx\n")
	write("bad.yaml", "kind: Deployment\nmetadata:\n  name: x\n")
	write("notes.txt", "ignored")
	client := fake.NewClientset()
	s := &Syncer{Dir: dir, NodeName: "n1", NodeUID: "uid-n1", Client: client}
	s.Log = nil
	s.Period = 0
	ctx := context.Background()
	s.Log = discard()
	if err := s.sync(ctx); err != nil {
		t.Fatal(err)
	}
	p, err := client.CoreV1().Pods("default").Get(ctx, "web-n1", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("mirror pod not created: %v", err)
	}
	if p.Spec.NodeName != "n1" || p.Annotations[AnnotationMirror] == "" || p.Annotations[AnnotationSource] != "file" || len(p.OwnerReferences) != 1 {
		t.Fatalf("mirror pod wrong: node=%q annotations=%v owners=%v", p.Spec.NodeName, p.Annotations, p.OwnerReferences)
	}
	pods, _ := client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if len(pods.Items) != 1 {
		t.Fatalf("want only the valid manifest mirrored, got %d pods", len(pods.Items))
	}
	// Editing the manifest replaces the pod (deleted now, created on the next pass).
	write("web.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: c\n    image: busybox\n")
	if err := s.sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Pods("default").Get(ctx, "web-n1", metav1.GetOptions{}); err == nil {
		t.Fatal("changed static pod was not deleted for replacement")
	}
	if err := s.sync(ctx); err != nil {
		t.Fatal(err)
	}
	p, err = client.CoreV1().Pods("default").Get(ctx, "web-n1", metav1.GetOptions{})
	if err != nil || p.Spec.Containers[0].Image != "busybox" {
		t.Fatalf("replacement not created: %v %v", p, err)
	}
	// Removing the file deletes the pod.
	os.Remove(filepath.Join(dir, "web.yaml"))
	if err := s.sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Pods("default").Get(ctx, "web-n1", metav1.GetOptions{}); err == nil {
		t.Fatal("static pod without a manifest was not deleted")
	}
}
