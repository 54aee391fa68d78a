package node

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"
)

// TestSecurityContext checks that pod and container security contexts and
// resource limits reach the container.
func TestSecurityContext(t *testing.T) {
	c := startCluster(t)
	t.Run("group", func(t *testing.T) {
		t.Run("UsersGroupsAndFSGroup", func(t *testing.T) { t.Parallel(); testUsersAndGroups(t, c) })
		t.Run("RunAsNonRootRefusesRoot", func(t *testing.T) { t.Parallel(); testRunAsNonRoot(t, c) })
		t.Run("ReadOnlyRootAndNoNewPrivs", func(t *testing.T) { t.Parallel(); testReadOnlyRoot(t, c) })
		t.Run("Capabilities", func(t *testing.T) { t.Parallel(); testCapabilities(t, c) })
		t.Run("Privileged", func(t *testing.T) { t.Parallel(); testPrivileged(t, c) })
		t.Run("MemoryLimitOOMKills", func(t *testing.T) { t.Parallel(); testOOMKilled(t, c) })
		t.Run("CPULimitSetsQuota", func(t *testing.T) { t.Parallel(); testCPUQuota(t, c) })
	})
}

func testUsersAndGroups(t *testing.T, c *cluster) {
	ns := c.namespace(t, "users")
	pod := busyboxPod(ns, "ids", "sh", "-c", "exec sleep 3600")
	pod.Spec.SecurityContext = &corev1.PodSecurityContext{
		RunAsUser: ptr.To(int64(1000)), RunAsGroup: ptr.To(int64(3000)), FSGroup: ptr.To(int64(2000)),
		SupplementalGroups: []int64{4000},
	}
	pod.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
	// A second container overrides the user.
	pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{
		Name: "other", Image: "busybox", Command: []string{"sleep", "3600"},
		SecurityContext: &corev1.SecurityContext{RunAsUser: ptr.To(int64(1001))},
	})
	c.createPod(t, pod)
	c.waitPod(t, ns, "ids", 60*time.Second, "ready", ready)
	id := c.exec(t, ns, "ids", "id")
	if !strings.HasPrefix(id, "uid=1000 gid=3000 groups=") {
		t.Errorf("id in the pod: %q", id)
	}
	groups := strings.TrimSpace(id[strings.Index(id, "groups=")+len("groups="):])
	for _, g := range []string{"2000", "3000", "4000"} {
		if !strings.Contains(","+groups+",", ","+g+",") {
			t.Errorf("group %s missing from %q", g, groups)
		}
	}
	if id := c.kubectl(t, "exec", "-n", ns, "ids", "-c", "other", "--", "id", "-u"); id != "1001\n" {
		t.Errorf("container runAsUser override: id -u = %q", id)
	}
	// fsGroup owns the emptyDir (setgid, so new files get the group too).
	out := c.exec(t, ns, "ids", "sh", "-c", "touch /data/f && stat -c '%u %g' /data/f && stat -c '%g %A' /data")
	if out != "1000 2000\n2000 drwxrwsrwx\n" {
		t.Errorf("fsGroup on the emptyDir: %q", out)
	}
}

func testRunAsNonRoot(t *testing.T, c *cluster) {
	ns := c.namespace(t, "nonroot")
	// busybox's image runs as root.
	root := busyboxPod(ns, "as-root", "sleep", "3600")
	root.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true)}
	c.createPod(t, root)
	// With a non-root runAsUser the same image is fine.
	ok := busyboxPod(ns, "as-user", "sleep", "3600")
	ok.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To(int64(1234))}
	c.createPod(t, ok)

	p := c.waitPod(t, ns, "as-root", 30*time.Second, "in CreateContainerConfigError", func(p *corev1.Pod) bool {
		return waitingReason(p, "CreateContainerConfigError")
	})
	msg := p.Status.ContainerStatuses[0].State.Waiting.Message
	if want := `container has runAsNonRoot and image will run as root (pod: "` + ns + `/as-root", container: main)`; msg != want {
		t.Errorf("message %q, want %q", msg, want)
	}
	c.waitEvent(t, ns, "as-root", "Failed: Error: container has runAsNonRoot and image will run as root", 10*time.Second)
	c.waitPod(t, ns, "as-user", 30*time.Second, "ready", ready)
}

func testReadOnlyRoot(t *testing.T, c *cluster) {
	ns := c.namespace(t, "readonly")
	pod := busyboxPod(ns, "locked", "sleep", "3600")
	pod.Spec.Volumes = []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp"}}
	pod.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{
		ReadOnlyRootFilesystem:   ptr.To(true),
		AllowPrivilegeEscalation: ptr.To(false),
	}
	c.createPod(t, pod)
	plain := busyboxPod(ns, "plain", "sleep", "3600")
	c.createPod(t, plain)
	c.waitPod(t, ns, "locked", 60*time.Second, "ready", ready)
	c.waitPod(t, ns, "plain", 60*time.Second, "ready", ready)

	if out := c.execFails(t, ns, "locked", "touch", "/x"); !strings.Contains(out, "Read-only file system") {
		t.Errorf("touch / on a read-only root: %q", out)
	}
	// Volumes stay writable.
	c.exec(t, ns, "locked", "touch", "/tmp/x")
	// allowPrivilegeEscalation: false is no_new_privs.
	if out := c.exec(t, ns, "locked", "grep", "NoNewPrivs", "/proc/self/status"); strings.Join(strings.Fields(out), " ") != "NoNewPrivs: 1" {
		t.Errorf("allowPrivilegeEscalation false: %q", out)
	}
	// The default leaves both alone.
	c.exec(t, ns, "plain", "touch", "/x")
	if out := c.exec(t, ns, "plain", "grep", "NoNewPrivs", "/proc/self/status"); strings.Join(strings.Fields(out), " ") != "NoNewPrivs: 0" {
		t.Errorf("default NoNewPrivs: %q", out)
	}
}

// capEff returns the CapEff line's value from /proc/self/status.
func (c *cluster) capEff(t *testing.T, ns, pod string) string {
	t.Helper()
	out := c.exec(t, ns, pod, "grep", "CapEff", "/proc/self/status")
	f := strings.Fields(out)
	if len(f) != 2 {
		t.Fatalf("CapEff line: %q", out)
	}
	return f[1]
}

func testCapabilities(t *testing.T, c *cluster) {
	ns := c.namespace(t, "caps")
	none := busyboxPod(ns, "no-caps", "sleep", "3600")
	none.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}
	c.createPod(t, none)
	netadmin := busyboxPod(ns, "net-admin", "sleep", "3600")
	netadmin.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Capabilities: &corev1.Capabilities{
		Drop: []corev1.Capability{"ALL"}, Add: []corev1.Capability{"NET_ADMIN"},
	}}
	c.createPod(t, netadmin)
	nochown := busyboxPod(ns, "no-chown", "sleep", "3600")
	nochown.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"CHOWN"}}}
	c.createPod(t, nochown)
	plain := busyboxPod(ns, "default-caps", "sleep", "3600")
	c.createPod(t, plain)
	for _, n := range []string{"no-caps", "net-admin", "no-chown", "default-caps"} {
		c.waitPod(t, ns, n, 60*time.Second, "ready", ready)
	}

	// Root without CAP_CHOWN cannot chown; with the default set it can.
	if out := c.execFails(t, ns, "no-caps", "sh", "-c", "touch /tmp/f && chown 1:1 /tmp/f"); !strings.Contains(out, "Operation not permitted") {
		t.Errorf("chown without CAP_CHOWN: %q", out)
	}
	if out := c.execFails(t, ns, "no-chown", "sh", "-c", "touch /tmp/f && chown 1:1 /tmp/f"); !strings.Contains(out, "Operation not permitted") {
		t.Errorf("chown with CHOWN dropped: %q", out)
	}
	c.exec(t, ns, "default-caps", "sh", "-c", "touch /tmp/f && chown 1:1 /tmp/f")
	if got := c.capEff(t, ns, "no-caps"); got != "0000000000000000" {
		t.Errorf("drop ALL: CapEff %s", got)
	}
	// NET_ADMIN is bit 12 and alone.
	if got := c.capEff(t, ns, "net-admin"); got != "0000000000001000" {
		t.Errorf("drop ALL add NET_ADMIN: CapEff %s", got)
	}
	c.exec(t, ns, "net-admin", "ip", "addr", "add", "10.99.99.99/32", "dev", "lo")
	if out := c.execFails(t, ns, "default-caps", "ip", "addr", "add", "10.99.99.99/32", "dev", "lo"); !strings.Contains(out, "not permitted") {
		t.Errorf("ip addr add without NET_ADMIN: %q", out)
	}
}

func testPrivileged(t *testing.T, c *cluster) {
	ns := c.namespace(t, "privileged")
	priv := busyboxPod(ns, "priv", "sleep", "3600")
	priv.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptr.To(true)}
	c.createPod(t, priv)
	plain := busyboxPod(ns, "plain", "sleep", "3600")
	c.createPod(t, plain)
	c.waitPod(t, ns, "priv", 60*time.Second, "ready", ready)
	c.waitPod(t, ns, "plain", 60*time.Second, "ready", ready)
	// The host's devices (this machine has /dev/loop-control and /dev/kmsg).
	c.exec(t, ns, "priv", "ls", "/dev/loop-control", "/dev/kmsg")
	if out := c.execFails(t, ns, "plain", "ls", "/dev/loop-control"); !strings.Contains(out, "No such file") {
		t.Errorf("an unprivileged container sees host devices: %q", out)
	}
	// Every capability the agent itself may grant (this machine's
	// bounding set can lack some, e.g. CAP_SYS_RESOURCE in a sandbox).
	if got, want := c.capEff(t, ns, "priv"), hostCapBnd(t); got != want {
		t.Errorf("privileged CapEff %s, want the host's bounding set %s", got, want)
	}
	// /proc/sys is writable only when privileged.
	c.exec(t, ns, "priv", "sh", "-c", "cat /proc/sys/net/ipv4/ip_forward > /proc/sys/net/ipv4/ip_forward")
	c.execFails(t, ns, "plain", "sh", "-c", "cat /proc/sys/net/ipv4/ip_forward > /proc/sys/net/ipv4/ip_forward")
}

// hostCapBnd is this process's capability bounding set, as /proc shows it.
func hostCapBnd(t *testing.T) string {
	t.Helper()
	for _, line := range strings.Split(readFile(t, "/proc/self/status"), "\n") {
		if v, ok := strings.CutPrefix(line, "CapBnd:"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatal("no CapBnd in /proc/self/status")
	return ""
}

func testOOMKilled(t *testing.T, c *cluster) {
	ns := c.namespace(t, "oom")
	// The shell keeps 64 MiB of zeros (as 'a's) in a variable.
	pod := busyboxPod(ns, "hog", "sh", "-c", "x=$(head -c 67108864 /dev/zero | tr '\\0' a); echo survived ${#x}")
	pod.Spec.RestartPolicy = corev1.RestartPolicyNever
	pod.Spec.Containers[0].Resources = corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("32Mi")}}
	c.createPod(t, pod)
	p := c.waitPod(t, ns, "hog", 60*time.Second, "Failed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	term := p.Status.ContainerStatuses[0].State.Terminated
	if term == nil || term.Reason != "OOMKilled" || term.ExitCode != 137 {
		t.Errorf("over its memory limit: %s", statusString(p))
	}

	// A restarting container shows the OOM kill as its last state.
	again := busyboxPod(ns, "hog-again", "sh", "-c", "x=$(head -c 67108864 /dev/zero | tr '\\0' a); echo survived ${#x}")
	again.Spec.Containers[0].Resources = pod.Spec.Containers[0].Resources
	c.createPod(t, again)
	p = c.waitPod(t, ns, "hog-again", 60*time.Second, "restarted after an OOM kill", func(p *corev1.Pod) bool {
		return len(p.Status.ContainerStatuses) > 0 && p.Status.ContainerStatuses[0].LastTerminationState.Terminated != nil
	})
	last := p.Status.ContainerStatuses[0].LastTerminationState.Terminated
	if last.Reason != "OOMKilled" || last.ExitCode != 137 {
		t.Errorf("lastState after an OOM kill: %+v", last)
	}
}

func testCPUQuota(t *testing.T, c *cluster) {
	ns := c.namespace(t, "cpu")
	pod := busyboxPod(ns, "capped", "sleep", "3600")
	pod.Spec.Containers[0].Resources = corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")},
		Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("48Mi")},
	}
	c.createPod(t, pod)
	c.waitPod(t, ns, "capped", 60*time.Second, "ready", ready)
	out := c.exec(t, ns, "capped", "cat", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us", "/sys/fs/cgroup/cpu/cpu.shares", "/sys/fs/cgroup/memory/memory.limit_in_bytes")
	if out != "50000\n100000\n256\n50331648\n" {
		t.Errorf("cgroup quota, period, shares, memory limit: %q", out)
	}
}
