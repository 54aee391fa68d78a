// Package etcdtest starts etcd servers for tests: the etcd binary from
// Debian's etcd-server package as a child process (StartExternal), or an
// in-process server (StartEmbedded). Both are stopped and their data
// removed when the test ends.
package etcdtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skiff-sh/skiff/storage/etcd"
)

// EtcdBinary is the etcd server StartExternal runs.
const EtcdBinary = "/usr/bin/etcd"

const (
	startTimeout = 20 * time.Second
	stopTimeout  = 10 * time.Second
	// attempts bounds retries when a port picked as free is taken before
	// etcd binds it.
	attempts = 3
)

// StartEmbedded starts an in-process etcd in a temporary directory and
// closes it when the test ends.
func StartEmbedded(t testing.TB) *etcd.Embedded {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	e, err := etcd.StartEmbedded(ctx, etcd.EmbeddedConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("etcdtest: %v", err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("etcdtest: close embedded etcd: %v", err)
		}
	})
	return e
}

// StartExternal runs /usr/bin/etcd on free loopback ports with a temporary
// data directory, waits until it is healthy and returns its client URLs.
// The server is stopped when the test ends. The binary comes from Debian's
// etcd-server package, which `make deps` installs.
func StartExternal(t testing.TB) []string {
	t.Helper()
	if _, err := os.Stat(EtcdBinary); err != nil {
		t.Fatalf("etcdtest: %s is missing (%v): run `make deps` to install Debian's etcd-server", EtcdBinary, err)
	}
	base := t.TempDir()
	var lastErr error
	for i := 1; i <= attempts; i++ {
		s, err := startProcess(filepath.Join(base, fmt.Sprintf("try%d", i)))
		if err == nil {
			t.Cleanup(func() {
				if err := s.stop(); err != nil {
					t.Errorf("etcdtest: %v", err)
				}
			})
			return []string{s.clientURL}
		}
		lastErr = err
		if !errors.Is(err, errPortTaken) {
			break
		}
	}
	t.Fatalf("etcdtest: start %s: %v", EtcdBinary, lastErr)
	return nil
}

var errPortTaken = errors.New("port taken")

// server is one running etcd process.
type server struct {
	cmd       *exec.Cmd
	exited    chan struct{}
	waitErr   error
	clientURL string
	logPath   string
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("pick a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func startProcess(dir string) (*server, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("make %s: %w", dir, err)
	}
	clientAddr, err := freePort()
	if err != nil {
		return nil, err
	}
	peerAddr, err := freePort()
	if err != nil {
		return nil, err
	}
	clientURL, peerURL := "http://"+clientAddr, "http://"+peerAddr
	logPath := filepath.Join(dir, "etcd.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("create etcd log: %w", err)
	}
	defer logFile.Close()
	cmd := exec.Command(EtcdBinary,
		"--name", "etcdtest",
		"--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", clientURL,
		"--advertise-client-urls", clientURL,
		"--listen-peer-urls", peerURL,
		"--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "etcdtest="+peerURL,
		"--initial-cluster-state", "new",
		"--initial-cluster-token", "etcdtest",
		"--logger", "zap",
		"--log-outputs", "stderr",
		"--log-level", "warn",
		"--snapshot-count", "10000",
	)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("run %s: %w", EtcdBinary, err)
	}
	s := &server{cmd: cmd, exited: make(chan struct{}), clientURL: clientURL, logPath: logPath}
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()
	if err := s.waitHealthy(); err != nil {
		_ = s.stop()
		return nil, err
	}
	return s, nil
}

// logTail returns the end of the server's log for error messages.
func (s *server) logTail() string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	const max = 2000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}

func (s *server) waitHealthy() error {
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			log := s.logTail()
			err := fmt.Errorf("etcd exited while starting (%v); log:\n%s", s.waitErr, log)
			if strings.Contains(log, "address already in use") {
				return fmt.Errorf("%w: %w", errPortTaken, err)
			}
			return err
		default:
		}
		resp, err := hc.Get(s.clientURL + "/health")
		if err == nil {
			healthy := resp.StatusCode == http.StatusOK
			resp.Body.Close()
			if healthy {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("etcd at %s not healthy after %v; log:\n%s", s.clientURL, startTimeout, s.logTail())
}

// stop asks etcd to exit and kills it if it does not in time.
func (s *server) stop() error {
	select {
	case <-s.exited:
		return nil
	default:
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("signal etcd: %w", err)
	}
	select {
	case <-s.exited:
		return nil
	case <-time.After(stopTimeout):
	}
	if err := s.cmd.Process.Kill(); err != nil {
		return fmt.Errorf("kill etcd: %w", err)
	}
	<-s.exited
	return fmt.Errorf("etcd did not stop within %v and was killed", stopTimeout)
}
