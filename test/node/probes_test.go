package node

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// TestProbesAndHooks checks liveness, readiness and startup probes and the
// lifecycle hooks on a real node.
func TestProbesAndHooks(t *testing.T) {
	c := startCluster(t)
	t.Run("group", func(t *testing.T) {
		t.Run("LivenessRestarts", func(t *testing.T) { t.Parallel(); testLiveness(t, c) })
		t.Run("ReadinessTogglesReady", func(t *testing.T) { t.Parallel(); testReadiness(t, c) })
		t.Run("PreStopBeforeSIGTERM", func(t *testing.T) { t.Parallel(); testPreStop(t, c) })
		t.Run("PostStartAndStartupProbe", func(t *testing.T) { t.Parallel(); testPostStart(t, c) })
	})
}

func testLiveness(t *testing.T, c *cluster) {
	ns := c.namespace(t, "liveness")
	pod := busyboxPod(ns, "unhealthy", "sh", "-c", "touch /tmp/healthy; sleep 2; rm /tmp/healthy; exec sleep 3600")
	pod.Spec.Containers[0].LivenessProbe = &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"cat", "/tmp/healthy"}}},
		PeriodSeconds: 1, FailureThreshold: 2,
	}
	c.createPod(t, pod)
	p := c.waitPod(t, ns, "unhealthy", 60*time.Second, "restarted by its liveness probe", func(p *corev1.Pod) bool {
		return len(p.Status.ContainerStatuses) > 0 && p.Status.ContainerStatuses[0].RestartCount >= 1
	})
	ev := c.events(ns, "unhealthy")
	if !strings.Contains(ev, "Unhealthy: Liveness probe failed") || !strings.Contains(ev, "failed liveness probe, will be restarted") {
		t.Errorf("events:\n%s", ev)
	}
	if last := p.Status.ContainerStatuses[0].LastTerminationState.Terminated; last == nil {
		t.Errorf("no lastState after a liveness restart: %s", statusString(p))
	}
}

func testReadiness(t *testing.T, c *cluster) {
	ns := c.namespace(t, "readiness")
	// busybox httpd serves /www: the health page exists until the test
	// removes it, then the httpGet probe sees 404.
	pod := busyboxPod(ns, "web", "sh", "-c", "mkdir -p /www && echo ok > /www/healthz && exec httpd -f -p 8080 -h /www")
	pod.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}
	pod.Spec.Containers[0].ReadinessProbe = &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http")}},
		PeriodSeconds: 1, FailureThreshold: 1,
	}
	c.createPod(t, pod)
	c.waitPod(t, ns, "web", 60*time.Second, "ready", ready)
	// Make the app's health check fail: the pod leaves Ready but keeps running.
	c.kubectl(t, "exec", "-n", ns, "web", "--", "rm", "/www/healthz")
	p := c.waitPod(t, ns, "web", 30*time.Second, "unready", func(p *corev1.Pod) bool { return !ready(p) })
	if p.Status.Phase != corev1.PodRunning || p.Status.ContainerStatuses[0].RestartCount != 0 {
		t.Errorf("a readiness failure must not restart: %s", statusString(p))
	}
	if ev := c.events(ns, "web"); !strings.Contains(ev, "Readiness probe failed: HTTP probe failed with statuscode: 404") {
		t.Errorf("events:\n%s", ev)
	}
	c.kubectl(t, "exec", "-n", ns, "web", "--", "sh", "-c", "echo ok > /www/healthz")
	c.waitPod(t, ns, "web", 30*time.Second, "ready again", ready)
}

func testPreStop(t *testing.T, c *cluster) {
	ns := c.namespace(t, "prestop")
	// The main process records SIGTERM in a file on a hostPath-free emptyDir
	// shared with a watcher container that outlives it... simpler: the
	// preStop hook and the TERM trap both append to the same file, which
	// the test reads through a second container before the pod is gone.
	grace := int64(10)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ordered-stop"},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: &grace,
			Volumes:                       []corev1.Volume{{Name: "shared", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: t.TempDir()}}}},
			Containers: []corev1.Container{{
				Name: "main", Image: "busybox",
				Command:      []string{"sh", "-c", "trap 'echo sigterm >> /shared/log; exit 0' TERM; while true; do sleep 0.1; done"},
				VolumeMounts: []corev1.VolumeMount{{Name: "shared", MountPath: "/shared"}},
				Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{
					Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "echo prestop >> /shared/log; sleep 1"}},
				}},
			}},
		},
	}
	c.createPod(t, pod)
	c.waitPod(t, ns, "ordered-stop", 60*time.Second, "ready", ready)
	dir := pod.Spec.Volumes[0].HostPath.Path
	start := time.Now()
	if err := c.client.CoreV1().Pods(ns).Delete(context.Background(), "ordered-stop", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	c.waitGone(t, ns, "ordered-stop", 30*time.Second)
	took := time.Since(start)
	log := readFile(t, dir+"/log")
	if log != "prestop\nsigterm\n" {
		t.Errorf("want preStop then SIGTERM, log = %q", log)
	}
	if took > 8*time.Second {
		t.Errorf("a pod that exits on SIGTERM took %s to go (grace 10s)", took)
	}
}

func testPostStart(t *testing.T, c *cluster) {
	ns := c.namespace(t, "poststart")
	pod := busyboxPod(ns, "hooked", "sh", "-c", "exec sleep 3600")
	pod.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{PostStart: &corev1.LifecycleHandler{
		Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "echo started > /tmp/poststart"}},
	}}
	pod.Spec.Containers[0].StartupProbe = &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"cat", "/tmp/poststart"}}},
		PeriodSeconds: 1,
	}
	c.createPod(t, pod)
	p := c.waitPod(t, ns, "hooked", 60*time.Second, "ready", ready)
	if s := p.Status.ContainerStatuses[0].Started; s == nil || !*s {
		t.Errorf("started = %v after the startup probe passed", s)
	}
	if out := c.kubectl(t, "exec", "-n", ns, "hooked", "--", "cat", "/tmp/poststart"); out != "started\n" {
		t.Errorf("postStart did not run: %q", out)
	}
}
