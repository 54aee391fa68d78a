package node

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-sh/skiff/agent/runtime"
)

// TestPods runs the pod lifecycle on one real node.
func TestPods(t *testing.T) {
	c := startCluster(t)
	t.Run("group", func(t *testing.T) {
		t.Run("RunsAndReports", func(t *testing.T) { t.Parallel(); testRunsAndReports(t, c) })
		t.Run("InitContainersInOrder", func(t *testing.T) { t.Parallel(); testInitContainers(t, c) })
		t.Run("RestartPolicies", func(t *testing.T) { t.Parallel(); testRestartPolicies(t, c) })
		t.Run("GracePeriodOverride", func(t *testing.T) { t.Parallel(); testGracePeriod(t, c) })
		t.Run("AgentMetrics", func(t *testing.T) { t.Parallel(); testAgentMetrics(t, c) })
		t.Run("LostLocalImageIsRestored", func(t *testing.T) { t.Parallel(); testLostLocalImage(t, c) })
	})
}

// testGracePeriod: a process that ignores SIGTERM is killed when the grace
// period given to kubectl delete ends, not the pod's 30 s.
func testGracePeriod(t *testing.T, c *cluster) {
	ns := c.namespace(t, "grace")
	pod := busyboxPod(ns, "stubborn", "sh", "-c", "trap '' TERM; while true; do sleep 0.2; done")
	thirty := int64(30)
	pod.Spec.TerminationGracePeriodSeconds = &thirty
	c.createPod(t, pod)
	c.waitPod(t, ns, "stubborn", 60*time.Second, "ready", ready)
	start := time.Now()
	c.kubectl(t, "delete", "pod", "-n", ns, "stubborn", "--grace-period=2")
	took := time.Since(start)
	if took < 2*time.Second || took > 10*time.Second {
		t.Errorf("kubectl delete --grace-period=2 of a pod ignoring SIGTERM took %s", took)
	}
	c.waitGone(t, ns, "stubborn", 10*time.Second)
}

// testAgentMetrics reads the agent's Prometheus metrics through the API
// server's node proxy.
func testAgentMetrics(t *testing.T, c *cluster) {
	out := c.kubectl(t, "get", "--raw", "/api/v1/nodes/"+c.node.Name+"/proxy/metrics")
	for _, want := range []string{"kubelet_running_pods", "kubelet_running_containers{container_state=\"running\"}", "kubelet_pod_start_duration_seconds_bucket", "kubelet_node_name{node=\"" + c.node.Name + "\"} 1"} {
		if !strings.Contains(out, want) {
			t.Errorf("agent metrics lack %s", want)
		}
	}
}

func testRunsAndReports(t *testing.T, c *cluster) {
	ns := c.namespace(t, "basic")
	pod := busyboxPod(ns, "hello", "sh", "-c", "echo hello from skiff; echo to stderr >&2; exec sleep 3600")
	pod.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "GREETING", Value: "hi"}}
	c.createPod(t, pod)
	p := c.waitPod(t, ns, "hello", 60*time.Second, "ready", ready)
	cs := p.Status.ContainerStatuses[0]
	if p.Status.PodIP == "" || !strings.HasPrefix(p.Status.PodIP, "10.1") {
		t.Errorf("podIP = %q, want one from the node's podCIDR", p.Status.PodIP)
	}
	if p.Status.HostIP != "127.0.0.1" || p.Status.StartTime == nil {
		t.Errorf("hostIP=%q startTime=%v", p.Status.HostIP, p.Status.StartTime)
	}
	if cs.State.Running == nil || !cs.Ready || cs.Started == nil || !*cs.Started || cs.RestartCount != 0 {
		t.Errorf("container status: %+v", cs)
	}
	if !strings.HasPrefix(cs.ContainerID, "containerd://") || cs.ImageID == "" || cs.Image != "docker.io/library/busybox:latest" {
		t.Errorf("container ids: id=%q imageID=%q image=%q", cs.ContainerID, cs.ImageID, cs.Image)
	}
	for _, want := range []corev1.PodConditionType{corev1.PodScheduled, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady} {
		found := false
		for _, cond := range p.Status.Conditions {
			if cond.Type == want && cond.Status == corev1.ConditionTrue {
				found = true
			}
		}
		if !found {
			t.Errorf("condition %s not True: %v", want, p.Status.Conditions)
		}
	}
	events := c.events(ns, "hello")
	for _, reason := range []string{"Pulled", "Created", "Started"} {
		if !strings.Contains(events, " "+reason+":") {
			t.Errorf("no %s event; events:\n%s", reason, events)
		}
	}
	// Graceful deletion: the pod goes away and so does its container.
	if err := c.client.CoreV1().Pods(ns).Delete(context.Background(), "hello", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	c.waitGone(t, ns, "hello", 30*time.Second)
}

func testInitContainers(t *testing.T, c *cluster) {
	ns := c.namespace(t, "init")
	pod := busyboxPod(ns, "ordered", "sh", "-c", "cat /work/log; exec sleep 3600")
	pod.Spec.Volumes = []corev1.Volume{{Name: "work", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	mount := []corev1.VolumeMount{{Name: "work", MountPath: "/work"}}
	pod.Spec.Containers[0].VolumeMounts = mount
	pod.Spec.InitContainers = []corev1.Container{
		{Name: "first", Image: "busybox", Command: []string{"sh", "-c", "sleep 1; echo first >> /work/log"}, VolumeMounts: mount},
		{Name: "second", Image: "busybox", Command: []string{"sh", "-c", "echo second >> /work/log"}, VolumeMounts: mount},
	}
	c.createPod(t, pod)
	p := c.waitPod(t, ns, "ordered", 60*time.Second, "ready", ready)
	for _, s := range p.Status.InitContainerStatuses {
		if s.State.Terminated == nil || s.State.Terminated.ExitCode != 0 || s.State.Terminated.Reason != "Completed" {
			t.Errorf("init container %s: %s", s.Name, stateString(s.State))
		}
	}
	out := c.kubectl(t, "logs", "-n", ns, "ordered")
	if out != "first\nsecond\n" {
		t.Errorf("init containers ran out of order; main saw %q", out)
	}
}

func testRestartPolicies(t *testing.T, c *cluster) {
	ns := c.namespace(t, "restarts")
	never := busyboxPod(ns, "never-fails", "sh", "-c", "echo bye; exit 3")
	never.Spec.RestartPolicy = corev1.RestartPolicyNever
	c.createPod(t, never)
	ok := busyboxPod(ns, "onfailure-ok", "true")
	ok.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
	c.createPod(t, ok)
	crash := busyboxPod(ns, "crasher", "sh", "-c", "exit 1")
	c.createPod(t, crash)

	p := c.waitPod(t, ns, "never-fails", 60*time.Second, "Failed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	if term := p.Status.ContainerStatuses[0].State.Terminated; term == nil || term.ExitCode != 3 || term.Reason != "Error" {
		t.Errorf("never-fails: %s", stateString(p.Status.ContainerStatuses[0].State))
	}
	c.waitPod(t, ns, "onfailure-ok", 60*time.Second, "Succeeded", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
	// A crash-looping container restarts with growing back-off, shown as
	// CrashLoopBackOff.
	p = c.waitPod(t, ns, "crasher", 60*time.Second, "in CrashLoopBackOff after a restart", func(p *corev1.Pod) bool {
		if len(p.Status.ContainerStatuses) == 0 {
			return false
		}
		cs := p.Status.ContainerStatuses[0]
		return cs.RestartCount >= 1 && cs.State.Waiting != nil && cs.State.Waiting.Reason == "CrashLoopBackOff"
	})
	cs := p.Status.ContainerStatuses[0]
	if cs.LastTerminationState.Terminated == nil || cs.LastTerminationState.Terminated.ExitCode != 1 {
		t.Errorf("crasher lastState: %+v", cs.LastTerminationState)
	}
	if !strings.Contains(cs.State.Waiting.Message, "back-off 10s") && !strings.Contains(cs.State.Waiting.Message, "back-off 20s") {
		t.Errorf("crasher back-off message: %q", cs.State.Waiting.Message)
	}
	// The delays grow: the back-off after the next crash is twice as long.
	first := cs.State.Waiting.Message
	p = c.waitPod(t, ns, "crasher", 60*time.Second, "backing off longer", func(p *corev1.Pod) bool {
		w := p.Status.ContainerStatuses[0].State.Waiting
		return w != nil && w.Reason == "CrashLoopBackOff" && w.Message != first &&
			(strings.Contains(w.Message, "back-off 20s") || strings.Contains(w.Message, "back-off 40s"))
	})
	if r := p.Status.ContainerStatuses[0].RestartCount; r < 2 {
		t.Errorf("longer back-off after only %d restarts", r)
	}
	if !strings.Contains(c.events(ns, "crasher"), "BackOff: Back-off restarting failed container main") {
		t.Errorf("no BackOff event:\n%s", c.events(ns, "crasher"))
	}
}

// testLostLocalImage removes the local nginx image from containerd behind
// the agent's back: a pod using it still starts, the agent re-imports it
// instead of trying a registry that does not have it.
func testLostLocalImage(t *testing.T, c *cluster) {
	ns := c.namespace(t, "lostimage")
	sock := runtime.SocketFor(filepath.Join(c.node.DataDir, "containerd"))
	if out, err := exec.Command("ctr", "-a", sock, "-n", "k8s.io", "images", "rm", "docker.io/library/nginx:latest").CombinedOutput(); err != nil {
		t.Fatalf("removing the nginx image: %v: %s", err, out)
	}
	pod := busyboxPod(ns, "web", "nginx", "-g", "daemon off;")
	pod.Spec.Containers[0].Image = "nginx"
	c.createPod(t, pod)
	c.waitPod(t, ns, "web", 60*time.Second, "ready", ready)
	if ev := c.events(ns, "web"); strings.Contains(ev, "Pulling") {
		t.Errorf("the agent tried to pull a local image:\n%s", ev)
	}
}
