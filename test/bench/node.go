package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
)

// NodeResult is the node agent's figures: start to node Ready, pod startup
// latency with the image present, and the agent's memory.
type NodeResult struct {
	// ServerStartToNodeReadySeconds: exec of `skiff server` (with its own
	// agent, fresh data dir) to its node Ready.
	ServerStartToNodeReadySeconds Stat `json:"server_start_to_node_ready_seconds"`
	// Paced: 30 pods created one per second; Burst: 10 at once. Latency is
	// from the create call to phase Running seen on a watch, in seconds.
	PacedP50 Stat `json:"paced_p50_seconds"`
	PacedP99 Stat `json:"paced_p99_seconds"`
	BurstP50 Stat `json:"burst_p50_seconds"`
	BurstP99 Stat `json:"burst_p99_seconds"`
	// Memory of a separate `skiff agent` process and its containerd.
	AgentIdleMiB        Stat `json:"agent_idle_rss_mib"`
	AgentWith30MiB      Stat `json:"agent_30_pods_rss_mib"`
	ContainerdIdleMiB   Stat `json:"containerd_idle_rss_mib"`
	ContainerdWith30MiB Stat `json:"containerd_30_pods_rss_mib"`
}

func measureNode(ctx context.Context, e *env) error {
	runs := e.opts.runs
	if runs > 3 {
		runs = 3
	}
	r := &NodeResult{}
	var ready []float64
	for i := range runs {
		dir := e.lab.NewDataDir("node-ready")
		s, err := e.lab.StartWithAgent(ctx, dir)
		if err != nil {
			return err
		}
		client, err := clientFor(s)
		if err != nil {
			return err
		}
		err = waitNodeReady(ctx, client, benchNode, 2*time.Minute)
		took := time.Since(s.Started)
		stopErr := s.Stop()
		cleanErr := e.lab.CleanupAgent(ctx, filepath.Join(dir, "agent"))
		if err != nil {
			return err
		}
		if stopErr != nil {
			return stopErr
		}
		if cleanErr != nil {
			return cleanErr
		}
		if err := e.lab.RemoveDataDir(dir); err != nil {
			return err
		}
		ready = append(ready, took.Seconds())
		e.progress("node run %d/%d: server start to node Ready %.3f s", i+1, runs, took.Seconds())
	}
	r.ServerStartToNodeReadySeconds = Summarize(ready)

	var pp50, pp99, bp50, bp99, aIdle, a30, cIdle, c30 []float64
	for i := range runs {
		res, err := podStartupRun(ctx, e)
		if err != nil {
			return err
		}
		pp50, pp99 = append(pp50, res.paced[0]), append(pp99, res.paced[1])
		bp50, bp99 = append(bp50, res.burst[0]), append(bp99, res.burst[1])
		aIdle, a30 = append(aIdle, res.agentIdle), append(a30, res.agent30)
		cIdle, c30 = append(cIdle, res.ctrdIdle), append(c30, res.ctrd30)
		e.progress("pods run %d/%d: paced p50 %.3f s p99 %.3f s; burst p50 %.3f s p99 %.3f s; agent %.1f→%.1f MiB, containerd %.1f→%.1f MiB",
			i+1, runs, res.paced[0], res.paced[1], res.burst[0], res.burst[1], res.agentIdle, res.agent30, res.ctrdIdle, res.ctrd30)
	}
	r.PacedP50, r.PacedP99, r.BurstP50, r.BurstP99 = Summarize(pp50), Summarize(pp99), Summarize(bp50), Summarize(bp99)
	r.AgentIdleMiB, r.AgentWith30MiB = Summarize(aIdle), Summarize(a30)
	r.ContainerdIdleMiB, r.ContainerdWith30MiB = Summarize(cIdle), Summarize(c30)
	e.rep.Node = r
	e.rep.add("server start to node Ready", "%s", fmtStat(r.ServerStartToNodeReadySeconds, "s", 3))
	e.rep.add("pod startup, 30 at 1/s p50", "%s", fmtStat(r.PacedP50, "s", 3))
	e.rep.add("pod startup, 30 at 1/s p99", "%s", fmtStat(r.PacedP99, "s", 3))
	e.rep.add("pod startup, burst of 10 p50", "%s", fmtStat(r.BurstP50, "s", 3))
	e.rep.add("pod startup, burst of 10 p99", "%s", fmtStat(r.BurstP99, "s", 3))
	e.rep.add("agent RSS idle / 30 pods", "%s / %s", fmtStat(r.AgentIdleMiB, "MiB", 1), fmtStat(r.AgentWith30MiB, "MiB", 1))
	e.rep.add("containerd RSS idle / 30 pods", "%s / %s", fmtStat(r.ContainerdIdleMiB, "MiB", 1), fmtStat(r.ContainerdWith30MiB, "MiB", 1))
	return nil
}

type podRunResult struct {
	paced, burst                         [2]float64 // p50, p99 seconds
	agentIdle, agent30, ctrdIdle, ctrd30 float64    // MiB
}

// podStartupRun starts a server without an agent and a separate `skiff
// agent` joined with the server's token, then measures pod startup and
// the agent's memory.
func podStartupRun(ctx context.Context, e *env) (podRunResult, error) {
	var res podRunResult
	dir := e.lab.NewDataDir("pods")
	s, err := e.lab.Start(ctx, dir, "--cluster-cidr", benchPodNetwork)
	if err != nil {
		return res, err
	}
	defer s.Stop()
	agentDir := filepath.Join(dir, "agent")
	a, err := e.lab.StartAgent(ctx, s, agentDir)
	if err != nil {
		return res, err
	}
	defer func() {
		a.stop()
		_ = e.lab.CleanupAgent(context.Background(), agentDir)
	}()
	client, err := clientFor(s)
	if err != nil {
		return res, err
	}
	if err := waitNodeReady(ctx, client, benchNode, 2*time.Minute); err != nil {
		return res, fmt.Errorf("%w\nagent log:\n%s", err, a.logTail())
	}
	ns := "bench"
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return res, err
	}
	w := newRunningWatch(ctx, client, ns)
	defer w.stop()
	// Warm up: the first pod pays for the bridge and the first sandbox.
	if _, err := w.createAndWait(ctx, "warmup"); err != nil {
		return res, err
	}
	if err := sleep(ctx, 10*time.Second); err != nil {
		return res, err
	}
	res.agentIdle, res.ctrdIdle = a.rss()

	var paced []float64
	var mu sync.Mutex
	var wg sync.WaitGroup
	var firstErr error
	for i := 0; i < 30; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			d, err := w.createAndWait(ctx, fmt.Sprintf("paced-%d", i))
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			paced = append(paced, d.Seconds())
		}(i)
		if err := sleep(ctx, time.Second); err != nil {
			return res, err
		}
	}
	wg.Wait()
	if firstErr != nil {
		return res, firstErr
	}
	if err := sleep(ctx, 5*time.Second); err != nil {
		return res, err
	}
	res.agent30, res.ctrd30 = a.rss()
	var burst []float64
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			d, err := w.createAndWait(ctx, fmt.Sprintf("burst-%d", i))
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			burst = append(burst, d.Seconds())
		}(i)
	}
	wg.Wait()
	if firstErr != nil {
		return res, firstErr
	}
	res.paced = [2]float64{percentile(paced, 50), percentile(paced, 99)}
	res.burst = [2]float64{percentile(burst, 50), percentile(burst, 99)}
	return res, nil
}

// percentile is the nearest-rank percentile of xs.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	rank := int(p/100*float64(len(s))+0.999999) - 1
	if rank < 0 {
		rank = 0
	}
	if rank >= len(s) {
		rank = len(s) - 1
	}
	return s[rank]
}

// runningWatch watches a namespace's pods and tells waiters when each is
// first seen Running.
type runningWatch struct {
	client kubernetes.Interface
	ns     string
	cancel context.CancelFunc

	mu      sync.Mutex
	seen    map[string]time.Time
	waiters map[string]chan time.Time
}

func newRunningWatch(ctx context.Context, client kubernetes.Interface, ns string) *runningWatch {
	ctx, cancel := context.WithCancel(ctx)
	w := &runningWatch{client: client, ns: ns, cancel: cancel, seen: map[string]time.Time{}, waiters: map[string]chan time.Time{}}
	started := make(chan struct{})
	go w.loop(ctx, started)
	<-started
	return w
}

func (w *runningWatch) stop() { w.cancel() }

func (w *runningWatch) loop(ctx context.Context, started chan struct{}) {
	once := sync.OnceFunc(func() { close(started) })
	defer once()
	rv := ""
	for ctx.Err() == nil {
		wi, err := w.client.CoreV1().Pods(w.ns).Watch(ctx, metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true})
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		once()
		for ev := range wi.ResultChan() {
			now := time.Now()
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			rv = p.ResourceVersion
			if ev.Type == watch.Bookmark || p.Status.Phase != corev1.PodRunning {
				continue
			}
			w.mu.Lock()
			if _, done := w.seen[p.Name]; !done {
				w.seen[p.Name] = now
				if ch := w.waiters[p.Name]; ch != nil {
					ch <- now
				}
			}
			w.mu.Unlock()
		}
	}
}

// createAndWait creates a busybox pod and returns the time from the create
// call to its Running phase on the watch.
func (w *runningWatch) createAndWait(ctx context.Context, name string) (time.Duration, error) {
	ch := make(chan time.Time, 1)
	w.mu.Lock()
	w.waiters[name] = ch
	w.mu.Unlock()
	zero := int64(0)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: &zero,
			Containers:                    []corev1.Container{{Name: "main", Image: "busybox", ImagePullPolicy: corev1.PullIfNotPresent, Command: []string{"sleep", "3600"}}},
		},
	}
	start := time.Now()
	if _, err := w.client.CoreV1().Pods(w.ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		return 0, err
	}
	select {
	case t := <-ch:
		return t.Sub(start), nil
	case <-time.After(2 * time.Minute):
		return 0, fmt.Errorf("pod %s not Running after 2m", name)
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func clientFor(s *Server) (kubernetes.Interface, error) {
	cfg, err := s.RESTConfig()
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}

func waitNodeReady(ctx context.Context, client kubernetes.Interface, name string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		n, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			for _, c := range n.Status.Conditions {
				if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
					return nil
				}
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("node %s not Ready after %s", name, timeout)
		}
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
}

// Agent is a `skiff agent` subprocess.
type Agent struct {
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
}

// StartAgent runs `skiff agent` joined to s with the server's token.
func (l *Lab) StartAgent(ctx context.Context, s *Server, dir string) (*Agent, error) {
	token, err := os.ReadFile(filepath.Join(s.DataDir, "node-token"))
	if err != nil {
		return nil, fmt.Errorf("node token: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	logPath := dir + ".log"
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(l.bin, "agent", "--server", fmt.Sprintf("https://127.0.0.1:%d", s.Port),
		"--token", strings.TrimSpace(string(token)), "--data-dir", dir, "--node-name", benchNode,
		"--node-ip", "127.0.0.1", "--kubelet-port", strconv.Itoa(port), "--bridge", benchBridge, "--disable-ingress")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	a := &Agent{cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); logFile.Close(); close(a.exited) }()
	return a, nil
}

func (a *Agent) stop() {
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.exited:
	case <-time.After(stopTimeout):
		_ = a.cmd.Process.Kill()
		<-a.exited
	}
}

func (a *Agent) logTail() string {
	b, _ := os.ReadFile(a.logPath)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// rss is the agent's and its containerd's VmRSS in MiB.
func (a *Agent) rss() (agent, containerd float64) {
	agent = pidRSS(a.cmd.Process.Pid)
	out, _ := exec.Command("pgrep", "-P", strconv.Itoa(a.cmd.Process.Pid), "containerd").Output()
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil {
			containerd += pidRSS(pid)
		}
	}
	return agent, containerd
}

func pidRSS(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	m, err := parseStatus(data)
	if err != nil {
		return 0
	}
	return mib(m.RSS)
}

// CleanupAgent removes what an agent left (containers, volumes, bridge).
func (l *Lab) CleanupAgent(ctx context.Context, dir string) error {
	if _, err := os.Stat(dir); err != nil {
		return nil
	}
	out, err := exec.CommandContext(ctx, l.bin, "agent", "--cleanup", "--data-dir", dir, "--node-name", benchNode, "--bridge", benchBridge).CombinedOutput()
	if err != nil {
		return fmt.Errorf("agent cleanup: %v\n%s", err, out)
	}
	// containerd's leftover mounts (none once containers are gone) and the
	// shared mount of the volume root.
	data, _ := os.ReadFile("/proc/self/mountinfo")
	var mounts []string
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], dir) {
			mounts = append(mounts, f[4])
		}
	}
	for i := len(mounts) - 1; i >= 0; i-- {
		_ = syscall.Unmount(mounts[i], syscall.MNT_DETACH)
	}
	return nil
}
