package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// readyPoll is how often /readyz is polled while a server starts: the
// resolution of the start-to-ready figure.
const readyPoll = 5 * time.Millisecond

// readyTimeout bounds one start; a server that is not ready by then is a
// failed measurement, not a slow one.
const readyTimeout = 2 * time.Minute

// stopTimeout is how long a server gets to exit after SIGTERM before it
// is killed.
const stopTimeout = 30 * time.Second

// Lab owns every server process and data dir the benchmark makes, so that
// one Close removes them all, whatever state the run ended in.
type Lab struct {
	bin  string
	root string // temp dir holding every data dir and server log
	logs io.Writer

	mu      sync.Mutex
	servers map[*Server]struct{}
	seq     int
	closed  bool
}

// NewLab makes the temp dir the benchmark's servers live in.
func NewLab(bin string, logs io.Writer) (*Lab, error) {
	abs, err := filepath.Abs(bin)
	if err != nil {
		return nil, fmt.Errorf("binary path: %w", err)
	}
	if st, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("skiff binary: %w", err)
	} else if st.IsDir() || st.Mode()&0o111 == 0 {
		return nil, fmt.Errorf("skiff binary %s is not an executable file", abs)
	}
	root, err := os.MkdirTemp("", "skiff-bench-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	return &Lab{bin: abs, root: root, logs: logs, servers: map[*Server]struct{}{}}, nil
}

// NewDataDir names a fresh, not yet existing data dir inside the lab.
func (l *Lab) NewDataDir(label string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	return filepath.Join(l.root, fmt.Sprintf("%02d-%s", l.seq, label))
}

// RemoveDataDir deletes a data dir once its server is stopped, so that
// the big ones (50k pods) do not pile up on disk.
func (l *Lab) RemoveDataDir(dir string) error {
	if !strings.HasPrefix(dir, l.root+string(os.PathSeparator)) {
		return fmt.Errorf("refusing to remove %s: not inside %s", dir, l.root)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove data dir: %w", err)
	}
	return nil
}

// Close stops every server still running and removes the lab's temp dir.
// It is safe to call more than once and from a signal handler.
func (l *Lab) Close() {
	l.mu.Lock()
	l.closed = true
	servers := make([]*Server, 0, len(l.servers))
	for s := range l.servers {
		servers = append(servers, s)
	}
	l.mu.Unlock()
	for _, s := range servers {
		if err := s.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		}
	}
	if err := os.RemoveAll(l.root); err != nil {
		fmt.Fprintf(os.Stderr, "bench: remove %s: %v\n", l.root, err)
	}
}

// Server is one running `skiff server` subprocess.
type Server struct {
	lab     *Lab
	DataDir string
	Port    int
	PID     int
	// StartToReady is the time from exec to the first /readyz 200.
	StartToReady time.Duration
	// Started is when the process was executed.
	Started time.Time

	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
	waitErr error

	stopOnce sync.Once
	stopErr  error
}

// Start execs `skiff server` on dataDir (made if missing, reused if not)
// and a free loopback port, with any extra flags (--disable-controllers),
// and returns once /readyz answers 200.
func (l *Lab) Start(ctx context.Context, dataDir string, extra ...string) (*Server, error) {
	// The control-plane measurements run no node agent.
	return l.start(ctx, dataDir, append([]string{"--disable-agent"}, extra...))
}

// StartWithAgent starts `skiff server` with its own node agent (containerd,
// pods) on this machine, on a pod network and bridge of the benchmark's
// own so that it stays clear of any other cluster here.
func (l *Lab) StartWithAgent(ctx context.Context, dataDir string, extra ...string) (*Server, error) {
	return l.startWithAgent(ctx, dataDir, append([]string{"--disable-ingress"}, extra...))
}

// StartWithIngress is StartWithAgent with the agent's ingress controller
// on, serving HTTP and HTTPS on the given addresses (free loopback ports,
// never the host's 80 and 443).
func (l *Lab) StartWithIngress(ctx context.Context, dataDir, httpAddr, httpsAddr string, extra ...string) (*Server, error) {
	return l.startWithAgent(ctx, dataDir, append([]string{"--ingress-http", httpAddr, "--ingress-https", httpsAddr}, extra...))
}

func (l *Lab) startWithAgent(ctx context.Context, dataDir string, extra []string) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	return l.start(ctx, dataDir, append([]string{"--cluster-cidr", benchPodNetwork, "--bridge", benchBridge,
		"--kubelet-port", strconv.Itoa(port), "--node-ip", "127.0.0.1", "--node-name", benchNode}, extra...))
}

// The benchmark's own pod network, bridge and node name.
const (
	benchPodNetwork = "10.199.0.0/16"
	benchBridge     = "skbench0"
	benchNode       = "bench-node"
	// benchServiceCIDR is the Service range of the network measurements'
	// servers: clear of a `make run` cluster's 10.43.0.0/16 once an agent
	// programs service rules for it.
	benchServiceCIDR = "10.198.0.0/16"
)

func (l *Lab) start(ctx context.Context, dataDir string, extra []string) (*Server, error) {
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		s, err := l.startOnce(ctx, dataDir, extra)
		if err == nil {
			return s, nil
		}
		lastErr = err
		// Another process may take the free port between our probe and
		// the server's listen; only that is worth another try.
		if !errors.Is(err, errPortTaken) || ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

var errPortTaken = errors.New("API port taken by another process")

func (l *Lab) startOnce(ctx context.Context, dataDir string, extra []string) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	logPath := dataDir + ".log"
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("server log: %w", err)
	}
	args := []string{"server",
		"--data-dir", dataDir,
		"--api-port", strconv.Itoa(port),
		"--bind-address", "127.0.0.1",
		"--advertise-address", "127.0.0.1"}
	cmd := exec.Command(l.bin, append(args, extra...)...)
	var out io.Writer = logFile
	if l.logs != nil {
		out = io.MultiWriter(logFile, l.logs)
	}
	cmd.Stdout, cmd.Stderr = out, out
	// Own process group: a Ctrl-C in the terminal reaches only the
	// benchmark, which then stops its servers itself. Pdeathsig kills the
	// server should the benchmark die without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	s := &Server{lab: l, DataDir: dataDir, Port: port, cmd: cmd, logPath: logPath, exited: make(chan struct{})}

	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		logFile.Close()
		return nil, errors.New("lab is closed")
	}
	start := time.Now()
	err = cmd.Start()
	if err == nil {
		l.servers[s] = struct{}{}
	}
	l.mu.Unlock()
	if err != nil {
		logFile.Close()
		return nil, fmt.Errorf("exec %s: %w", l.bin, err)
	}
	s.PID = cmd.Process.Pid
	go func() {
		s.waitErr = cmd.Wait()
		logFile.Close()
		close(s.exited)
	}()

	elapsed, err := s.waitReady(ctx, start)
	if err != nil {
		stopErr := s.Stop()
		tail := s.LogTail(20)
		if strings.Contains(tail, "address already in use") {
			return nil, fmt.Errorf("%w: port %d", errPortTaken, port)
		}
		if stopErr != nil {
			err = errors.Join(err, stopErr)
		}
		return nil, fmt.Errorf("start skiff server: %w\nserver log (%s):\n%s", err, logPath, tail)
	}
	s.StartToReady = elapsed
	s.Started = start
	return s, nil
}

// waitReady polls /readyz until it answers 200 and returns the time since
// start. The probe skips certificate checks: on a fresh data dir the CA
// does not exist yet when polling begins, and /readyz needs no credentials.
func (s *Server) waitReady(ctx context.Context, start time.Time) (time.Duration, error) {
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // loopback readiness probe only
		ForceAttemptHTTP2: true,
	}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 2 * time.Second}
	url := fmt.Sprintf("https://127.0.0.1:%d/readyz", s.Port)
	deadline := time.NewTimer(readyTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(readyPoll)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return 0, fmt.Errorf("readyz request: %w", err)
		}
		if resp, err := hc.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(start), nil
			}
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-s.exited:
			return 0, fmt.Errorf("server exited before ready: %v", s.waitErr)
		case <-deadline.C:
			return 0, fmt.Errorf("server not ready after %s", readyTimeout)
		case <-tick.C:
		}
	}
}

// Stop sends SIGTERM, waits for the server to exit (SIGKILL after
// stopTimeout), and forgets it. A clean exit or one by our signal is not
// an error.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		defer func() {
			s.lab.mu.Lock()
			delete(s.lab.servers, s)
			s.lab.mu.Unlock()
		}()
		select {
		case <-s.exited:
			return
		default:
		}
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(stopTimeout):
			_ = s.cmd.Process.Kill()
			<-s.exited
			s.stopErr = fmt.Errorf("skiff server (pid %d) ignored SIGTERM for %s; killed", s.PID, stopTimeout)
		}
	})
	return s.stopErr
}

// LogTail is the last n lines the server wrote.
func (s *Server) LogTail(n int) string {
	data, err := os.ReadFile(s.logPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// RESTConfig is the admin client configuration from the server's
// kubeconfig, with client-side rate limiting effectively off and JSON on
// the wire.
func (s *Server) RESTConfig() (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(s.DataDir, "admin.kubeconfig"))
	if err != nil {
		return nil, fmt.Errorf("admin kubeconfig: %w", err)
	}
	cfg.QPS, cfg.Burst = 1e6, 1e6
	cfg.ContentType = "application/json"
	cfg.AcceptContentTypes = "application/json"
	cfg.UserAgent = "skiff-bench"
	cfg.Timeout = 5 * time.Minute
	return cfg, nil
}

// Mem is a snapshot of the server's memory counters.
type Mem struct {
	RSS int64 // VmRSS, bytes
	HWM int64 // VmHWM (peak RSS since start or the last ResetPeak), bytes
}

// Mem reads VmRSS and VmHWM from /proc/PID/status.
func (s *Server) Mem() (Mem, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.PID))
	if err != nil {
		return Mem{}, fmt.Errorf("read process status: %w", err)
	}
	return parseStatus(data)
}

// ResetPeak resets VmHWM to the current RSS (clear_refs 5), so the next
// Mem().HWM is the peak of what happens in between.
func (s *Server) ResetPeak() error {
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", s.PID), []byte("5"), 0); err != nil {
		return fmt.Errorf("reset peak RSS: %w", err)
	}
	return nil
}

// parseStatus picks VmRSS and VmHWM out of a /proc/PID/status file.
func parseStatus(data []byte) (Mem, error) {
	var m Mem
	var seenRSS, seenHWM bool
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		fields := strings.Fields(val)
		if len(fields) != 2 || fields[1] != "kB" {
			return Mem{}, fmt.Errorf("unexpected %s line %q", key, sc.Text())
		}
		kb, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return Mem{}, fmt.Errorf("parse %s: %w", key, err)
		}
		if key == "VmRSS" {
			m.RSS, seenRSS = kb*1024, true
		} else {
			m.HWM, seenHWM = kb*1024, true
		}
	}
	if !seenRSS || !seenHWM {
		return Mem{}, errors.New("process status has no VmRSS/VmHWM (process gone?)")
	}
	return m, nil
}

// freePort asks the kernel for a loopback port nobody listens on.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
