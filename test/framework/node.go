package framework

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skiff-sh/skiff/agent"
	"github.com/skiff-sh/skiff/cluster"
)

// Node is a node agent running in-process against a test server, with its
// own containerd.
type Node struct {
	t       testing.TB
	Name    string
	DataDir string
	// IngressHTTP and IngressHTTPS are the ingress controller's addresses
	// when NodeOptions.Ingress is set.
	IngressHTTP, IngressHTTPS string
	// Bridge is the node's pod bridge, unique so that test nodes sharing
	// the host's network namespace (and a `make run` cluster) never meet.
	Bridge string
	srv    *Server
	opts   NodeOptions
	// logTail keeps the end of the agent's log (when NodeOptions.Log is
	// not set), shown when the test fails.
	logTail tailBuffer

	runner
}

// NodeOptions shape a test node.
type NodeOptions struct {
	// Name defaults to "node-1".
	Name string
	// Log, when set, receives the agent's logs.
	Log io.Writer
	// Ingress runs the built-in ingress controller on free loopback ports
	// (Node.IngressHTTP, Node.IngressHTTPS); the server's controller
	// manager writes Ingress status.
	Ingress bool
	// DNSUpstreams are the resolvers the node's cluster DNS forwards to
	// (default: the host's).
	DNSUpstreams []string
}

// NeedRoot skips nothing: it fails the test when it cannot run agents
// (they need root for containerd, mounts and network namespaces).
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("framework: node tests need root (containerd, mounts, network namespaces); run them as root")
	}
	for _, bin := range []string{"containerd", "runc", "ctr"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("framework: %s not found; run `make deps`", bin)
		}
	}
}

// StartNode starts an agent for srv on this machine and waits until its
// node is Ready. Its API listens on loopback; it is stopped, and everything
// it created removed, when the test ends.
func StartNode(t testing.TB, srv *Server, opts NodeOptions) *Node {
	t.Helper()
	NeedRoot(t)
	if srv.opts.Network == nil {
		t.Fatal("framework: StartNode needs a server started with Options.Network (ClaimNetwork)")
	}
	if opts.Name == "" {
		opts.Name = "node-1"
	}
	// Short paths: containerd's sockets live under the data dir.
	dir, err := os.MkdirTemp("", "skiff-node-")
	if err != nil {
		t.Fatal(err)
	}
	n := &Node{t: t, Name: opts.Name, DataDir: dir, srv: srv, opts: opts, Bridge: fmt.Sprintf("skt%d", rand.IntN(1e6))}
	n.start()
	t.Cleanup(n.Remove)
	return n
}

func (n *Node) start() {
	n.t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		n.t.Fatal(err)
	}
	url := fmt.Sprintf("https://127.0.0.1:%d", n.srv.Port)
	creds, err := cluster.IssueNodeCredentials(n.srv.DataDir, n.DataDir, n.Name, url, []net.IP{net.IPv4(127, 0, 0, 1)}, []string{n.Name})
	if err != nil {
		n.t.Fatalf("framework: node credentials: %v", err)
	}
	logw := n.opts.Log
	if logw == nil {
		logw = &n.logTail
	}
	cfg := agent.Config{
		DataDir:      n.DataDir,
		NodeName:     n.Name,
		Bridge:       n.Bridge,
		NodeIP:       "127.0.0.1",
		ClusterCIDR:  n.srv.opts.Network.PodCIDR,
		DNSUpstreams: n.opts.DNSUpstreams,
		Listener:     l,
		Credentials:  &agent.Credentials{Kubeconfig: creds.Kubeconfig, ServingCert: creds.ServingCert, ServingKey: creds.ServingKey, CACertPEM: creds.CACertPEM},
		DemoBinary:   DemoBinary(n.t),
		Version:      cluster.Version.GitVersion,
		Log:          slog.New(slog.NewTextHandler(logw, nil)),
	}
	if n.opts.Ingress {
		if n.IngressHTTP == "" {
			n.IngressHTTP, n.IngressHTTPS = freeAddr(n.t), freeAddr(n.t)
		}
		cfg.Ingress = true
		cfg.IngressHTTP, cfg.IngressHTTPS = n.IngressHTTP, n.IngressHTTPS
	}
	n.runner.start(n.t, "agent "+n.Name, 120*time.Second, func(ctx context.Context, ready func()) error {
		cfg.Ready = func(string, time.Duration) { ready() }
		return agent.Run(ctx, cfg)
	})
}

// Stop stops the agent; its containers keep running (as on a real node).
func (n *Node) Stop() { n.runner.stop(n.t, "agent "+n.Name, 60*time.Second) }

// Restart stops the agent and starts it again on the same data dir.
func (n *Node) Restart() {
	n.t.Helper()
	n.Stop()
	n.start()
}

// Remove stops the agent and removes everything it created: containers,
// sandboxes, volumes, and its data dir.
func (n *Node) Remove() {
	n.Stop()
	if n.t.Failed() && n.opts.Log == nil {
		n.t.Logf("framework: the end of node %s's agent log:\n%s", n.Name, n.logTail.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := agent.Cleanup(ctx, agent.Config{DataDir: n.DataDir, NodeName: n.Name, Bridge: n.Bridge, ClusterCIDR: n.srv.opts.Network.PodCIDR, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}); err != nil {
		n.t.Errorf("framework: cleaning up node %s: %v", n.Name, err)
	}
	for _, table := range []string{"skiff_" + n.Bridge, "skiff_svc_" + n.Bridge, "skiff_pol_" + n.Bridge} {
		if out, err := exec.Command("nft", "list", "table", "ip", table).CombinedOutput(); err == nil {
			n.t.Errorf("framework: node %s left its nftables table %s after cleanup:\n%.2000s", n.Name, table, out)
		}
	}
	if _, err := os.Stat("/sys/fs/cgroup/memory/skiff/" + n.Name); err == nil {
		n.t.Errorf("framework: node %s left its cgroup /skiff/%s after cleanup", n.Name, n.Name)
	}
	if _, err := net.InterfaceByName(n.Bridge); err == nil {
		n.t.Errorf("framework: node %s left its bridge %s after cleanup", n.Name, n.Bridge)
	}
	unmountUnder(n.DataDir)
	if err := os.RemoveAll(n.DataDir); err != nil {
		n.t.Errorf("framework: removing node dir: %v", err)
	}
}

// unmountUnder unmounts whatever is still mounted below dir (containerd's
// overlay and shm mounts of containers that were already removed).
func unmountUnder(dir string) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var mounts []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			mounts = append(mounts, f[4])
		}
	}
	for i := len(mounts) - 1; i >= 0; i-- {
		_ = exec.Command("umount", "-l", mounts[i]).Run()
	}
}

var (
	demoOnce sync.Once
	demoPath string
	demoErr  error
)

// DemoBinary builds bin/skiff-demo once per test process.
func DemoBinary(t testing.TB) string {
	t.Helper()
	demoOnce.Do(func() {
		root := RepoRoot()
		demoPath = filepath.Join(root, "bin", "skiff-demo")
		cmd := exec.Command("go", "build", "-trimpath", "-o", demoPath, "./cmd/skiff-demo")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			demoErr = fmt.Errorf("building skiff-demo: %v\n%s", err, out)
		}
	})
	if demoErr != nil {
		t.Fatal(demoErr)
	}
	return demoPath
}

// freeAddr is a free loopback address.
func freeAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// tailBuffer keeps the last tailSize bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

const tailSize = 16 << 10

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > 2*tailSize {
		b.buf = append(b.buf[:0], b.buf[len(b.buf)-tailSize:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.buf) > tailSize {
		return string(b.buf[len(b.buf)-tailSize:])
	}
	return string(b.buf)
}
