package node

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestAgentRestartAdopts restarts the agent under running pods: the
// containers keep running (same container, no restart), and the restarted
// agent still manages them.
func TestAgentRestartAdopts(t *testing.T) {
	c := startCluster(t)
	ns := c.namespace(t, "adopt")
	c.createPod(t, busyboxPod(ns, "survivor", "sh", "-c", "exec sleep 3600"))
	before := c.waitPod(t, ns, "survivor", 60*time.Second, "ready", ready)
	id := before.Status.ContainerStatuses[0].ContainerID

	c.node.Restart()

	// The pod stays Running on the same container, and keeps being reported.
	time.Sleep(3 * time.Second)
	p := c.waitPod(t, ns, "survivor", 30*time.Second, "ready after the agent restart", ready)
	cs := p.Status.ContainerStatuses[0]
	if cs.ContainerID != id || cs.RestartCount != 0 {
		t.Fatalf("container replaced by the restart: before %s, after %s (restarts %d)", id, cs.ContainerID, cs.RestartCount)
	}
	if out := c.kubectl(t, "exec", "-n", ns, "survivor", "--", "echo", "still here"); out != "still here\n" {
		t.Errorf("exec after restart: %q", out)
	}
	// The restarted agent still runs new pods and deletes old ones.
	c.createPod(t, busyboxPod(ns, "newcomer", "sh", "-c", "exec sleep 3600"))
	c.waitPod(t, ns, "newcomer", 60*time.Second, "ready", ready)
	if err := c.client.CoreV1().Pods(ns).Delete(context.Background(), "survivor", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	c.waitGone(t, ns, "survivor", 30*time.Second)
	// A pod deleted while its agent is down is cleaned up when it returns.
	c.node.Stop()
	zero := int64(0)
	if err := c.client.CoreV1().Pods(ns).Delete(context.Background(), "newcomer", metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	c.node.Restart()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := c.nodeState(t)
		if st.sandboxes == 0 && st.containers == 0 && len(st.podDirs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod deleted while the agent was down was not cleaned up: %s", st)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
