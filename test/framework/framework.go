// Package framework starts real Skiff servers for tests: in-process (the
// same cluster.RunServer the binary runs) or as the built binary, each on
// its own data dir and free loopback port, stopped in t.Cleanup.
package framework

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/skiff-sh/skiff/cluster"
)

// Server is a running in-process Skiff server.
type Server struct {
	t          testing.TB
	DataDir    string
	Port       int
	Kubeconfig string
	// EtcdEndpoints, when set, is the external etcd the server uses.
	EtcdEndpoints []string

	opts Options

	runner
}

// Options shape a test server.
type Options struct {
	// DataDir reuses a data dir (a restart); empty makes a fresh one.
	DataDir string
	// Port reuses a port; 0 picks a free one.
	Port          int
	EtcdEndpoints []string
	// Log, when set, receives the server's logs; default discards them.
	Log io.Writer
	// ControlPlane is what runs beside the API (controlplane.All() for the
	// whole control plane). None by default: a test of one controller runs
	// that controller itself.
	ControlPlane []cluster.ElectedGroup
	// Election shortens leader election for tests of failover.
	Election cluster.ControlPlaneTiming
	// BindAddress is where the API listens (default 127.0.0.1); tests with
	// nodes in other network namespaces listen on their gateway address.
	BindAddress string
	// AdvertiseAddress defaults to 127.0.0.1.
	AdvertiseAddress string
	// Network, required for a server with nodes, gives the cluster its
	// service CIDR and its nodes their pod network (ClaimNetwork). The
	// ControlPlane's node IPAM must use its PodCIDR.
	Network *Network
}

// StartServer starts a server and waits until it is ready.
func StartServer(t testing.TB, opts Options) *Server {
	t.Helper()
	s := &Server{t: t, DataDir: opts.DataDir, Port: opts.Port, EtcdEndpoints: opts.EtcdEndpoints, opts: opts}
	if s.DataDir == "" {
		s.DataDir = t.TempDir()
	}
	s.Kubeconfig = filepath.Join(s.DataDir, "admin.kubeconfig")
	s.start(opts.Log)
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) start(logw io.Writer) {
	s.t.Helper()
	var l net.Listener
	var err error
	for i := 0; i < 50; i++ {
		bind := s.opts.BindAddress
		if bind == "" {
			bind = "127.0.0.1"
		}
		l, err = net.Listen("tcp", net.JoinHostPort(bind, fmt.Sprint(s.Port)))
		if err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond) // a restart may wait for the old port
	}
	if err != nil {
		s.t.Fatalf("framework: listen: %v", err)
	}
	s.Port = l.Addr().(*net.TCPAddr).Port
	if logw == nil {
		logw = io.Discard
	}
	advertise := s.opts.AdvertiseAddress
	if advertise == "" {
		advertise = "127.0.0.1"
	}
	cfg := cluster.ServerConfig{
		DataDir:          s.DataDir,
		Listener:         l,
		AdvertiseAddress: advertise,
		EtcdEndpoints:    s.EtcdEndpoints,
		Log:              slog.New(slog.NewTextHandler(logw, nil)),
		ControlPlane:     s.opts.ControlPlane,
		Election:         s.opts.Election,
	}
	if s.opts.Network != nil {
		cfg.ServiceCIDR = s.opts.Network.ServiceCIDR
	}
	s.runner.start(s.t, "server", 60*time.Second, func(ctx context.Context, ready func()) error {
		cfg.Ready = func(cluster.ReadyInfo) { ready() }
		return cluster.RunServer(ctx, cfg)
	})
}

// Stop stops the server; it is safe to call twice.
func (s *Server) Stop() { s.runner.stop(s.t, "server", 30*time.Second) }

// Restart stops the server and starts it again on the same data dir and
// port.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start(nil)
}

// RESTConfig is the admin's client configuration.
func (s *Server) RESTConfig() *rest.Config {
	s.t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", s.Kubeconfig)
	if err != nil {
		s.t.Fatalf("framework: kubeconfig: %v", err)
	}
	cfg.QPS = -1 // no client-side rate limit: tests measure the server
	return cfg
}

// Client is an admin clientset.
func (s *Server) Client() kubernetes.Interface {
	s.t.Helper()
	c, err := kubernetes.NewForConfig(s.RESTConfig())
	if err != nil {
		s.t.Fatalf("framework: client: %v", err)
	}
	return c
}

// HTTPClient is an admin HTTP client for raw requests, and the base URL.
func (s *Server) HTTPClient() (*http.Client, string) {
	s.t.Helper()
	cfg := s.RESTConfig()
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		s.t.Fatalf("framework: http client: %v", err)
	}
	return hc, cfg.Host
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary builds bin/skiff once per test process and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		root := RepoRoot()
		if p := os.Getenv("SKIFF_BIN"); p != "" {
			binPath = p
			return
		}
		binPath = filepath.Join(root, "bin", "skiff")
		flags, err := exec.Command(filepath.Join(root, "scripts", "ldflags.sh")).Output()
		if err != nil {
			buildErr = fmt.Errorf("scripts/ldflags.sh: %v", err)
			return
		}
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", strings.TrimSpace(string(flags)), "-o", binPath, "./cmd/skiff")
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// RepoRoot is the repository's top directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return strings.TrimSuffix(filepath.Dir(file), filepath.Join("test", "framework"))
}
