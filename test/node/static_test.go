package node

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/agent/labels"
	"github.com/skiff-sh/skiff/agent/runtime"
)

// TestStaticPods runs a pod from a manifest file in the node's manifests
// directory: it is mirrored to the API, replaced when the file changes,
// recreated when its mirror is deleted, and deleted with the file.
func TestStaticPods(t *testing.T) {
	c := startCluster(t)
	ns := c.namespace(t, "static")
	dir := filepath.Join(c.node.DataDir, "manifests")
	file := filepath.Join(dir, "web.yaml")
	mirror := "web-" + c.node.Name
	manifest := func(version string) string {
		return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: %s
  labels:
    app: static-web
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "echo %s; exec sleep 3600"]
`, ns, version)
	}
	start := time.Now()
	step := func(what string) {
		t.Logf("%s after %s", what, time.Since(start).Round(100*time.Millisecond))
		start = time.Now()
	}
	writeManifest(t, file, manifest("version one"))

	// The mirror appears, bound to the node, and runs.
	p := c.waitPod(t, ns, mirror, 30*time.Second, "ready", ready)
	hash := p.Annotations["kubernetes.io/config.mirror"]
	if hash == "" || p.Annotations["kubernetes.io/config.hash"] != hash || p.Annotations["kubernetes.io/config.source"] != "file" {
		t.Errorf("mirror pod annotations: %v", p.Annotations)
	}
	if p.Spec.NodeName != c.node.Name || p.Labels["app"] != "static-web" {
		t.Errorf("mirror pod: node %q labels %v", p.Spec.NodeName, p.Labels)
	}
	if refs := p.OwnerReferences; len(refs) != 1 || refs[0].Kind != "Node" || refs[0].Name != c.node.Name {
		t.Errorf("mirror pod owner: %+v", refs)
	}
	if out := c.kubectl(t, "logs", "-n", ns, mirror); out != "version one\n" {
		t.Errorf("logs: %q", out)
	}
	first := p.UID
	step("mirror ready")

	// Editing the manifest replaces the pod.
	writeManifest(t, file, manifest("version two"))
	p = c.waitPod(t, ns, mirror, 40*time.Second, "replaced and ready", func(p *corev1.Pod) bool {
		return p.UID != first && p.DeletionTimestamp == nil && ready(p)
	})
	if p.Annotations["kubernetes.io/config.mirror"] == hash {
		t.Errorf("the edited manifest's mirror kept the old hash %s", hash)
	}
	if out := c.kubectl(t, "logs", "-n", ns, mirror); out != "version two\n" {
		t.Errorf("logs after the edit: %q", out)
	}
	second := p.UID
	step("edited manifest's pod ready")
	if n := countRunning(t, c, first); n != 0 {
		t.Errorf("the replaced pod still has %d running containers", n)
	}

	// Deleting the mirror through the API brings it back.
	c.kubectl(t, "delete", "pod", "-n", ns, mirror, "--wait=false")
	p = c.waitPod(t, ns, mirror, 40*time.Second, "recreated and ready", func(p *corev1.Pod) bool {
		return p.UID != second && p.DeletionTimestamp == nil && ready(p)
	})
	if out := c.kubectl(t, "logs", "-n", ns, mirror); out != "version two\n" {
		t.Errorf("logs of the recreated mirror: %q", out)
	}
	step("deleted mirror back and ready")

	// Removing the file deletes the pod for good.
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	c.waitGone(t, ns, mirror, 30*time.Second)
	step("pod gone with its manifest")
	time.Sleep(6 * time.Second) // a sync period: it must not come back
	if _, err := c.client.CoreV1().Pods(ns).Get(context.Background(), mirror, metav1.GetOptions{}); err == nil {
		t.Errorf("the mirror pod came back after its manifest was removed")
	}
}

// writeManifest replaces a manifest file at once (a reader never sees half
// of it): written beside it under a hidden name, then renamed.
func writeManifest(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// countRunning waits up to 15s for a pod UID to have no running
// containers in the node's runtime and returns how many are left.
func countRunning(t *testing.T, c *cluster, uid types.UID) int {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+runtime.SocketFor(filepath.Join(c.node.DataDir, "containerd")), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rt := runtimeapi.NewRuntimeServiceClient(conn)
	filter := &runtimeapi.ContainerFilter{
		State:         &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING},
		LabelSelector: map[string]string{labels.PodUID: string(uid)},
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := rt.ListContainers(context.Background(), &runtimeapi.ListContainersRequest{Filter: filter})
		if err != nil {
			t.Fatalf("listing containers: %v", err)
		}
		if n := len(resp.Containers); n == 0 || time.Now().After(deadline) {
			return n
		}
		time.Sleep(300 * time.Millisecond)
	}
}
