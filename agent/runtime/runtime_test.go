package runtime

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/agent/images"
	"github.com/skiff-sh/skiff/agent/labels"
)

// needContainerd skips unless the test can run a real containerd.
func needContainerd(t *testing.T) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root to run containerd")
	}
	for _, bin := range []string{"containerd", "ctr", "runc", "containerd-shim-runc-v2"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s: %v", bin, err)
		}
	}
	if _, err := os.Stat("/usr/bin/busybox"); err != nil {
		t.Skip("needs /usr/bin/busybox for the busybox image")
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// startRuntime starts containerd in dir and registers a cleanup that
// removes the node's pods and stops it even when the test fails.
func startRuntime(t *testing.T, dir, node string) *Runtime {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	began := time.Now()
	r, err := Start(ctx, Config{Dir: dir, NodeName: node, SandboxImage: images.PauseImage, CNIConfDir: filepath.Join(dir, "net.d"), Log: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("containerd for %s ready in %v", node, time.Since(began).Round(time.Millisecond))
	t.Cleanup(func() { stopAndClean(t, r, node) })
	return r
}

// stopAndClean removes the node's pods and stops containerd, unless the
// test already stopped it.
func stopAndClean(t *testing.T, r *Runtime, node string) {
	r.mu.Lock()
	stopped := r.stopped
	r.mu.Unlock()
	if stopped {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := CleanupNode(ctx, r.Runtime(), node); err != nil {
		t.Logf("cleanup: %v", err)
	}
	if err := r.Stop(); err != nil {
		t.Logf("cleanup: %v", err)
	}
}

func ensureImages(t *testing.T, r *Runtime, cacheDir, what string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	began := time.Now()
	names, err := images.EnsureBuiltins(ctx, r.Socket(), r.Images(), images.BuiltinOptions{CacheDir: cacheDir, Log: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("EnsureBuiltins (%s) took %v: %v", what, time.Since(began).Round(time.Millisecond), names)
	return names
}

// podConfig is a host-network sandbox, so no CNI is needed. (Such a pod
// shares the host's UTS namespace, so it must not set a hostname: runc
// refuses to.)
func podConfig(dir, node, name string) *runtimeapi.PodSandboxConfig {
	uid := "uid-" + name
	return &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "default", Uid: uid},
		LogDirectory: filepath.Join(dir, "logs", "default_"+name+"_"+uid),
		Labels:       map[string]string{labels.PodName: name, labels.PodNamespace: "default", labels.PodUID: uid, labels.ManagedBy: node},
		Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE},
		}},
	}
}

// runContainer creates and starts a busybox container running script.
func runContainer(t *testing.T, rt runtimeapi.RuntimeServiceClient, podID string, pod *runtimeapi.PodSandboxConfig, name, script string) string {
	t.Helper()
	ctx := context.Background()
	c, err := rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
		PodSandboxId:  podID,
		SandboxConfig: pod,
		Config: &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: name},
			Image:    &runtimeapi.ImageSpec{Image: images.BusyboxImage},
			Command:  []string{"sh", "-c", script},
			LogPath:  name + "/0.log",
			Labels:   map[string]string{labels.PodName: pod.Metadata.Name, labels.ContainerName: name, labels.ManagedBy: pod.Labels[labels.ManagedBy]},
		},
	})
	if err != nil {
		t.Fatalf("create container %s: %v", name, err)
	}
	if _, err := rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: c.ContainerId}); err != nil {
		t.Fatalf("start container %s: %v", name, err)
	}
	return c.ContainerId
}

func containerState(t *testing.T, rt runtimeapi.RuntimeServiceClient, id string) (runtimeapi.ContainerState, int) {
	t.Helper()
	st, err := rt.ContainerStatus(context.Background(), &runtimeapi.ContainerStatusRequest{ContainerId: id, Verbose: true})
	if err != nil {
		t.Fatalf("status of %s: %v", id, err)
	}
	var info struct {
		Pid int `json:"pid"`
	}
	_ = json.Unmarshal([]byte(st.Info["info"]), &info)
	return st.Status.State, info.Pid
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRuntimeRunsBusybox drives a real containerd through CRI: images,
// a host-network pod with a busybox container, survival of containers
// across a containerd stop/start, restart after a crash, and cleanup.
func TestRuntimeRunsBusybox(t *testing.T) {
	needContainerd(t)
	base := t.TempDir()
	dir := filepath.Join(base, "containerd")
	cache := filepath.Join(base, "images")
	const node = "node-a"
	r := startRuntime(t, dir, node)
	rt := r.Runtime()
	ctx := context.Background()

	v, err := rt.Version(ctx, &runtimeapi.VersionRequest{})
	if err != nil || v.RuntimeName != "containerd" || v.RuntimeApiVersion != "v1" {
		t.Fatalf("Version = %+v, %v", v, err)
	}
	names := ensureImages(t, r, cache, "cold")
	for _, want := range []string{images.PauseImage, images.BusyboxImage} {
		if !strings.Contains(strings.Join(names, " "), want) {
			t.Errorf("EnsureBuiltins names %v lack %s", names, want)
		}
	}
	tarInfo, err := os.Stat(filepath.Join(cache, "busybox.tar"))
	if err != nil {
		t.Fatal(err)
	}
	ensureImages(t, r, cache, "warm, same containerd")
	if again, err := os.Stat(filepath.Join(cache, "busybox.tar")); err != nil || !again.ModTime().Equal(tarInfo.ModTime()) {
		t.Errorf("warm EnsureBuiltins rebuilt the cached busybox archive")
	}

	pod := podConfig(base, node, "web")
	sb, err := rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: pod})
	if err != nil {
		t.Fatalf("RunPodSandbox: %v%s", err, logTail(r.p.logFile))
	}
	echo := runContainer(t, rt, sb.PodSandboxId, pod, "echo", "echo hello from skiff")
	waitFor(t, "echo container to exit", 10*time.Second, func() bool {
		s, _ := containerState(t, rt, echo)
		return s == runtimeapi.ContainerState_CONTAINER_EXITED
	})
	logPath := filepath.Join(pod.LogDirectory, "echo", "0.log")
	waitFor(t, "the echo log line", 5*time.Second, func() bool {
		b, _ := os.ReadFile(logPath)
		return strings.Contains(string(b), " stdout F hello from skiff")
	})

	// A running container survives containerd stopping and is adopted by
	// the next start.
	sleeper := runContainer(t, rt, sb.PodSandboxId, pod, "sleeper", "exec sleep 600")
	state, pid := containerState(t, rt, sleeper)
	if state != runtimeapi.ContainerState_CONTAINER_RUNNING || pid == 0 {
		t.Fatalf("sleeper state %v pid %d", state, pid)
	}
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	if !alive(pid) {
		t.Fatal("the container died with containerd")
	}
	r = startRuntime(t, dir, node)
	rt = r.Runtime()
	ensureImages(t, r, cache, "warm, after restart")
	if state, pid2 := containerState(t, rt, sleeper); state != runtimeapi.ContainerState_CONTAINER_RUNNING || pid2 != pid {
		t.Errorf("after restart the sleeper is %v pid %d, want running pid %d", state, pid2, pid)
	}

	// The supervisor restarts a crashed containerd.
	oldPid := readPid(t, dir)
	if err := syscall.Kill(oldPid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "containerd to be restarted", 15*time.Second, func() bool {
		if p := readPidOrZero(dir); p == 0 || p == oldPid {
			return false
		}
		c, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err := rt.Version(c, &runtimeapi.VersionRequest{})
		return err == nil
	})

	if err := CleanupNode(ctx, rt, node); err != nil {
		t.Fatal(err)
	}
	if ss, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{}); err != nil || len(ss.Items) != 0 {
		t.Errorf("sandboxes after CleanupNode: %v, %v", ss, err)
	}
	if alive(pid) {
		t.Error("the sleeper still runs after CleanupNode")
	}
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	checkNothingLeft(t, base, r.Socket(), dir)
}

func readPidOrZero(dir string) int {
	b, err := os.ReadFile(filepath.Join(dir, "containerd.pid"))
	if err != nil {
		return 0
	}
	p, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return p
}

func readPid(t *testing.T, dir string) int {
	t.Helper()
	p := readPidOrZero(dir)
	if p == 0 {
		t.Fatal("no containerd pid file")
	}
	return p
}

// checkNothingLeft fails if any process, mount or task state of the
// containerd in dir is left.
func checkNothingLeft(t *testing.T, base, socket, dir string) {
	t.Helper()
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		cmd := strings.ReplaceAll(string(b), "\x00", " ")
		if strings.Contains(cmd, socket) || strings.Contains(cmd, dir+"/") {
			t.Errorf("process %s left: %s", e.Name(), cmd)
		}
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mounts), "\n") {
		if strings.Contains(line, base) {
			t.Errorf("mount left: %s", line)
		}
	}
	for _, d := range []string{"state/io.containerd.runtime.v2.task/k8s.io", "state/netns", "state/runc/k8s.io"} {
		if left, _ := os.ReadDir(filepath.Join(dir, d)); len(left) != 0 {
			t.Errorf("%s not empty: %v", d, left)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "containerd.pid")); err == nil {
		t.Error("pid file left")
	}
	for _, s := range []string{socket, socket + ".ttrpc"} {
		if _, err := os.Stat(s); err == nil {
			t.Errorf("socket %s left", s)
		}
	}
}

// TestTwoRuntimesAtOnce runs two containerds side by side, one with a Dir
// long enough to move its socket to /run/skiff, each with a pod of the
// same name, and checks that neither sees or removes the other's.
func TestTwoRuntimesAtOnce(t *testing.T) {
	needContainerd(t)
	base := t.TempDir()
	cache := filepath.Join(base, "images")
	dirA := filepath.Join(base, "a")
	dirB := filepath.Join(base, strings.Repeat("long-directory-name-", 4), "b")
	if !strings.HasPrefix(SocketFor(dirB), "/run/skiff/") {
		t.Fatalf("dirB %s should need a /run/skiff socket", dirB)
	}
	type node struct {
		name, dir string
		r         *Runtime
		pod       string
	}
	nodes := []*node{{name: "node-a", dir: dirA}, {name: "node-b", dir: dirB}}
	errs := make(chan error, 2)
	for _, n := range nodes {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			r, err := Start(ctx, Config{Dir: n.dir, NodeName: n.name, SandboxImage: images.PauseImage, Log: testLogger(t)})
			n.r = r
			errs <- err
		}()
	}
	for range nodes {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range nodes {
		t.Cleanup(func() { stopAndClean(t, n.r, n.name) })
	}
	if nodes[0].r.Socket() == nodes[1].r.Socket() {
		t.Fatal("both runtimes use one socket")
	}
	ctx := context.Background()
	for _, n := range nodes {
		ensureImages(t, n.r, cache, n.name)
		pod := podConfig(n.dir, n.name, "same-name")
		sb, err := n.r.Runtime().RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: pod})
		if err != nil {
			t.Fatalf("%s: RunPodSandbox: %v", n.name, err)
		}
		n.pod = sb.PodSandboxId
		runContainer(t, n.r.Runtime(), sb.PodSandboxId, pod, "sleeper", "exec sleep 600")
	}
	for _, n := range nodes {
		ss, err := n.r.Runtime().ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
		if err != nil || len(ss.Items) != 1 || ss.Items[0].Id != n.pod {
			t.Errorf("%s sees sandboxes %v (%v), want only its own %s", n.name, ss, err, n.pod)
		}
	}
	// Cleaning node-a leaves node-b's pod running.
	if err := CleanupNode(ctx, nodes[0].r.Runtime(), nodes[0].name); err != nil {
		t.Fatal(err)
	}
	cs, err := nodes[1].r.Runtime().ListContainers(ctx, &runtimeapi.ListContainersRequest{})
	if err != nil || len(cs.Containers) != 1 || cs.Containers[0].State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("node-b containers after cleaning node-a: %v, %v", cs, err)
	}
	if err := CleanupNode(ctx, nodes[1].r.Runtime(), nodes[1].name); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if err := n.r.Stop(); err != nil {
			t.Fatal(err)
		}
		checkNothingLeft(t, n.dir, n.r.Socket(), n.dir)
	}
	if _, err := os.Stat(filepath.Dir(SocketFor(dirB))); err == nil {
		t.Errorf("socket directory %s left", filepath.Dir(SocketFor(dirB)))
	}
}

// TestStartStopsStaleContainerd starts a containerd the way a crashed
// agent would leave it, and checks that Start replaces it.
func TestStartStopsStaleContainerd(t *testing.T) {
	needContainerd(t)
	dir := filepath.Join(t.TempDir(), "containerd")
	r := startRuntime(t, dir, "node-s")
	stale := readPid(t, dir)
	// Pretend the agent died: forget the process without stopping it.
	r.mu.Lock()
	r.stopping = true // keep the supervisor from restarting it
	r.mu.Unlock()
	r2 := startRuntime(t, dir, "node-s")
	if alive(stale) {
		t.Errorf("stale containerd %d still runs", stale)
	}
	if p := readPid(t, dir); p == stale {
		t.Error("pid file still names the stale containerd")
	}
	// Stopping the forgotten runtime must not touch its successor.
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	if p := readPid(t, dir); !alive(p) {
		t.Error("the pid file does not name a live containerd")
	}
	if _, err := os.Stat(r2.Socket()); err != nil {
		t.Errorf("the successor's socket is gone: %v", err)
	}
	if _, err := r2.Runtime().Version(context.Background(), &runtimeapi.VersionRequest{}); err != nil {
		t.Fatal(err)
	}
}
