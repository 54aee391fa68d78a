package node

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestKubectlTop reads real containers' usage through metrics.k8s.io:
// the agent's samples (agent/stats) turned into rates by the API server.
func TestKubectlTop(t *testing.T) {
	c := startCluster(t)
	ns := c.namespace(t, "top")
	pod := busyboxPod(ns, "worker")
	// Mostly busy, with short sleeps so it never takes a whole core.
	pod.Spec.Containers = []corev1.Container{
		{Name: "busy", Image: "busybox", Command: []string{"sh", "-c", "while :; do i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; sleep 0.05; done"}},
		{Name: "idle", Image: "busybox", Command: []string{"sleep", "3600"}},
	}
	c.createPod(t, pod)
	c.waitPod(t, ns, "worker", 90*time.Second, "running", running)
	defer func() {
		_ = c.client.CoreV1().Pods(ns).Delete(context.Background(), "worker", metav1.DeleteOptions{})
	}()

	// Metrics need two samples; the first answer may lack the pod.
	var out string
	deadline := time.Now().Add(60 * time.Second)
	for {
		var err error
		out, err = c.kubectlErr(t, "", "top", "pod", "worker", "-n", ns, "--containers")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("kubectl top pod: no metrics after 60s: %v\n%s", err, out)
		}
		time.Sleep(2 * time.Second)
	}
	rows := topRows(t, out)
	busy, idle := rows["busy"], rows["idle"]
	if busy == nil || idle == nil {
		t.Fatalf("top pod --containers:\n%s", out)
	}
	if cpu := millicores(t, busy[2]); cpu < 20 {
		t.Errorf("busy container uses %dm of CPU:\n%s", cpu, out)
	}
	if millicores(t, idle[2]) > millicores(t, busy[2]) {
		t.Errorf("idle container busier than the busy one:\n%s", out)
	}
	if !strings.HasSuffix(busy[3], "Mi") {
		t.Errorf("busy container memory %q:\n%s", busy[3], out)
	}

	out = c.kubectl(t, "top", "pods", "-A")
	if r := topRows(t, out)[ns]; r == nil || r[1] != "worker" {
		t.Errorf("top pods -A lacks %s/worker:\n%s", ns, out)
	}
	out = c.kubectl(t, "top", "nodes")
	r := topRows(t, out)[c.node.Name]
	if r == nil || r[1] == "<unknown>" || millicores(t, r[1]) <= 0 {
		t.Errorf("top nodes:\n%s", out)
	}

	// The oldest supported kubectl reads the same API.
	if os.Getenv("KUBECTL") == "" {
		t.Setenv("KUBECTL", "/usr/lib/google-cloud-sdk/bin/kubectl.1.27")
		if r := topRows(t, c.kubectl(t, "top", "pod", "worker", "-n", ns))["worker"]; r == nil {
			t.Errorf("kubectl 1.27 top pod: no worker row")
		}
		if r := topRows(t, c.kubectl(t, "top", "node", c.node.Name))[c.node.Name]; r == nil || r[1] == "<unknown>" {
			t.Errorf("kubectl 1.27 top node: %v", r)
		}
	}
}

// topRows indexes kubectl top's table by its first column.
func topRows(t *testing.T, out string) map[string][]string {
	t.Helper()
	rows := map[string][]string{}
	for i, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) == 0 {
			continue
		}
		// With --containers the first column is the pod: key on the
		// container's name instead.
		if strings.HasPrefix(out, "POD") && len(f) > 1 {
			rows[f[1]] = f
			continue
		}
		rows[f[0]] = f
	}
	return rows
}

// millicores reads a CPU column ("250m").
func millicores(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(strings.TrimSuffix(s, "m"))
	if err != nil {
		t.Fatalf("CPU column %q: %v", s, err)
	}
	return n
}
