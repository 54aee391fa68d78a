// Package runtime runs the node's container runtime for the Skiff agent:
// it writes a containerd 1.6 configuration whose every path lives under
// the agent's own directory, starts containerd as a supervised child
// process (restarting it with backoff if it dies), and hands out the CRI
// v1 gRPC clients the rest of the agent uses. Containers outlive
// containerd: their shims keep them running across a containerd or agent
// restart, and the next Start adopts them.
package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Config says where and how to run containerd.
type Config struct {
	// Dir holds config.toml, root/, state/, containerd.log and the pid
	// file (and the socket, when the path is short enough; see SocketFor).
	Dir string
	// NodeName is the node this runtime serves; used in log lines.
	NodeName string
	// SandboxImage is the pause image CRI runs as each pod's sandbox.
	SandboxImage string
	// CNIBinDir holds the CNI plugins (default /usr/lib/cni).
	CNIBinDir string
	// CNIConfDir is where the CNI conflist is (default Dir/../cni/net.d).
	CNIConfDir string
	// ContainerdPath is the containerd binary (default "containerd" from PATH).
	ContainerdPath string
	// Log receives the supervisor's messages (default slog.Default()).
	Log *slog.Logger
}

const (
	// maxMsgSize matches containerd's default gRPC message limits.
	maxMsgSize = 16 << 20
	// stopTimeout is how long containerd gets to exit after SIGTERM.
	stopTimeout = 10 * time.Second
	// startTimeout bounds Start when ctx has no deadline.
	startTimeout = 60 * time.Second
	// maxLogSize is the size at which containerd.log is rotated at start.
	maxLogSize = 32 << 20
	// restart backoff after an unexpected exit; reset once containerd has
	// run for stableRun.
	minBackoff = 200 * time.Millisecond
	maxBackoff = 10 * time.Second
	stableRun  = 30 * time.Second
)

// Runtime is a running, supervised containerd and the CRI clients on it.
type Runtime struct {
	cfg  Config
	p    paths
	log  *slog.Logger
	conn *grpc.ClientConn
	rt   runtimeapi.RuntimeServiceClient
	img  runtimeapi.ImageServiceClient

	ready atomic.Bool   // set once CRI answered; later exits are restarted
	quit  chan struct{} // closed by Stop
	done  chan struct{} // closed when the supervisor goroutine ends
	// startErr receives the error that ends supervision before ready.
	startErr chan error

	mu       sync.Mutex
	proc     *os.Process // the running containerd, nil between runs
	lastPid  int         // the pid written to the pid file
	stopping bool
	stopped  bool
}

// Start writes containerd's configuration under cfg.Dir, stops a
// containerd left over from an earlier run with the same Dir, starts a new
// one as a child and returns once its CRI service answers Version. ctx
// bounds only this wait; containerd runs until Stop.
func Start(ctx context.Context, cfg Config) (*Runtime, error) {
	began := time.Now()
	if cfg.Dir == "" {
		return nil, errors.New("runtime: Config.Dir is required")
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("runtime: resolve %s: %w", cfg.Dir, err)
	}
	cfg.Dir = dir
	if cfg.CNIBinDir == "" {
		cfg.CNIBinDir = "/usr/lib/cni"
	}
	if cfg.CNIConfDir == "" {
		cfg.CNIConfDir = filepath.Join(filepath.Dir(dir), "cni", "net.d")
	}
	if cfg.ContainerdPath == "" {
		cfg.ContainerdPath = "containerd"
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	bin, err := exec.LookPath(cfg.ContainerdPath)
	if err != nil {
		return nil, fmt.Errorf("runtime: find containerd: %w", err)
	}
	cfg.ContainerdPath = bin
	p := pathsFor(dir)
	r := &Runtime{
		cfg:      cfg,
		p:        p,
		log:      cfg.Log.With("component", "containerd", "node", cfg.NodeName),
		quit:     make(chan struct{}),
		done:     make(chan struct{}),
		startErr: make(chan error, 1),
	}
	if err := r.prepare(); err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient("unix://"+p.socket,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMsgSize), grpc.MaxCallSendMsgSize(maxMsgSize)),
		// Reconnect quickly after containerd restarts; the default backoff
		// grows to two minutes.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 20 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: 2 * time.Second,
		}))
	if err != nil {
		return nil, fmt.Errorf("runtime: CRI client for %s: %w", p.socket, err)
	}
	r.conn = conn
	r.rt = runtimeapi.NewRuntimeServiceClient(conn)
	r.img = runtimeapi.NewImageServiceClient(conn)

	go r.supervise()
	if err := r.waitReady(ctx); err != nil {
		r.Stop()
		return nil, err
	}
	r.log.Info("containerd ready", "socket", p.socket, "elapsed", time.Since(began).Round(time.Millisecond))
	return r, nil
}

// prepare creates the directories, stops stale daemons and writes the config.
func (r *Runtime) prepare() error {
	p := r.p
	for _, d := range []string{p.dir, p.root, p.state, filepath.Dir(p.socket)} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return fmt.Errorf("runtime: create %s: %w", d, err)
		}
	}
	if err := stopStale(p, filepath.Base(r.cfg.ContainerdPath), r.log); err != nil {
		return err
	}
	if conn, err := net.DialTimeout("unix", p.socket, 200*time.Millisecond); err == nil {
		conn.Close()
		return fmt.Errorf("runtime: socket %s is held by a process that is not this Dir's containerd", p.socket)
	}
	for _, s := range []string{p.socket, p.socket + ".ttrpc"} {
		if err := os.Remove(s); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("runtime: remove stale socket: %w", err)
		}
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return fmt.Errorf("runtime: read own capabilities: %w", err)
	}
	restrictOOM := !hasCapability(string(status), capSysResource)
	if restrictOOM {
		r.log.Warn("no CAP_SYS_RESOURCE: containerd will not lower oom_score_adj below its own")
	}
	if err := writeFileAtomic(p.config, []byte(renderConfig(r.cfg, p, restrictOOM)), 0o600); err != nil {
		return fmt.Errorf("runtime: write containerd config: %w", err)
	}
	if fi, err := os.Stat(p.logFile); err == nil && fi.Size() > maxLogSize {
		if err := os.Rename(p.logFile, p.logFile+".1"); err != nil {
			return fmt.Errorf("runtime: rotate containerd log: %w", err)
		}
	}
	return nil
}

// waitReady polls CRI Version until it answers, containerd exits, or the
// start deadline passes.
func (r *Runtime) waitReady(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, startTimeout)
		defer cancel()
	}
	for {
		select {
		case err := <-r.startErr:
			return fmt.Errorf("runtime: containerd did not start: %w%s", err, logTail(r.p.logFile))
		default:
		}
		if conn, err := net.Dial("unix", r.p.socket); err == nil {
			conn.Close()
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := r.rt.Version(cctx, &runtimeapi.VersionRequest{}, grpc.WaitForReady(true))
			cancel()
			if err == nil {
				r.ready.Store(true)
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("runtime: containerd CRI not ready: %w%s", ctx.Err(), logTail(r.p.logFile))
		case err := <-r.startErr:
			return fmt.Errorf("runtime: containerd did not start: %w%s", err, logTail(r.p.logFile))
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// supervise runs containerd until Stop, restarting it with backoff when
// it exits on its own after it was once ready. It holds its OS thread
// because Pdeathsig fires when the thread that forked the child ends.
func (r *Runtime) supervise() {
	goruntime.LockOSThread()
	defer goruntime.UnlockOSThread()
	defer close(r.done)
	delay := minBackoff
	for {
		cmd, err := r.spawn()
		if err != nil {
			if !r.ready.Load() {
				r.startErr <- err
				return
			}
			r.log.Error("containerd restart failed", "err", err, "retry-in", delay)
		} else {
			began := time.Now()
			werr := cmd.Wait()
			r.mu.Lock()
			r.proc = nil
			stopping := r.stopping
			r.mu.Unlock()
			if stopping {
				return
			}
			if !r.ready.Load() {
				r.startErr <- fmt.Errorf("containerd exited: %v", werr)
				return
			}
			if time.Since(began) > stableRun {
				delay = minBackoff
			}
			r.log.Error("containerd exited unexpectedly; restarting", "err", werr, "ran", time.Since(began).Round(time.Millisecond), "retry-in", delay)
		}
		select {
		case <-r.quit:
			return
		case <-time.After(delay):
		}
		delay = min(delay*2, maxBackoff)
	}
}

// spawn starts one containerd process and records it.
func (r *Runtime) spawn() (*exec.Cmd, error) {
	logf, err := os.OpenFile(r.p.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open containerd log: %w", err)
	}
	defer logf.Close() // the child has its own copy
	cmd := exec.Command(r.cfg.ContainerdPath, "--config", r.p.config)
	cmd.Dir = r.p.dir
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.Env = os.Environ()
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// containerd dies with the agent; its shims (re-parented to init
		// when they daemonize) keep the containers running.
		Pdeathsig: syscall.SIGKILL,
		Setpgid:   true,
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopping {
		return nil, errors.New("runtime is stopping")
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", r.cfg.ContainerdPath, err)
	}
	r.proc = cmd.Process
	r.lastPid = cmd.Process.Pid
	if err := writeFileAtomic(r.p.pidFile, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		r.log.Warn("cannot write containerd pid file", "err", err)
	}
	return cmd, nil
}

// Runtime returns the CRI runtime service client.
func (r *Runtime) Runtime() runtimeapi.RuntimeServiceClient { return r.rt }

// Images returns the CRI image service client.
func (r *Runtime) Images() runtimeapi.ImageServiceClient { return r.img }

// Socket returns containerd's gRPC socket path (for ctr and the images package).
func (r *Runtime) Socket() string { return r.p.socket }

// Stop stops containerd: SIGTERM, then SIGKILL after a grace period. The
// containers keep running under their shims. Stop is idempotent.
func (r *Runtime) Stop() error {
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		return nil
	}
	r.stopped = true
	r.stopping = true
	proc := r.proc
	lastPid := r.lastPid
	close(r.quit)
	r.mu.Unlock()

	var errs []error
	if proc != nil {
		if err := proc.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			errs = append(errs, fmt.Errorf("signal containerd: %w", err))
		}
	}
	select {
	case <-r.done:
	case <-time.After(stopTimeout):
		r.log.Warn("containerd did not stop after SIGTERM; killing it")
		if proc != nil {
			_ = proc.Kill()
		}
		<-r.done
	}
	if r.conn != nil {
		if err := r.conn.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close CRI connection: %w", err))
		}
	}
	// A later Start on the same Dir may already run a newer containerd
	// (the pid file names it); its pid file and sockets are not ours.
	successor := false
	if b, err := os.ReadFile(r.p.pidFile); err == nil {
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		successor = pid != lastPid && pid > 0 && alive(pid)
	}
	if !successor {
		// containerd removes its gRPC socket but leaves the ttrpc one.
		for _, f := range []string{r.p.pidFile, r.p.socket, r.p.socket + ".ttrpc"} {
			if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
		if sockDir := filepath.Dir(r.p.socket); sockDir != r.p.dir {
			_ = os.Remove(sockDir) // the /run/skiff/<hash> dir, now empty
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("runtime: stop containerd: %w", err)
	}
	r.log.Info("containerd stopped")
	return nil
}

// writeFileAtomic writes data to path through a temporary file and rename.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, perm); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// logTail returns the end of containerd's log, for error messages.
func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil || len(b) == 0 {
		return ""
	}
	const n = 2000
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return "\ncontainerd.log ends with:\n" + string(b)
}
