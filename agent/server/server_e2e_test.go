package server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/tools/remotecommand"
	clientspdy "k8s.io/client-go/transport/spdy"
	utilexec "k8s.io/client-go/util/exec"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/streaming/pkg/httpstream"

	"github.com/skiff-sh/skiff/agent/images"
	"github.com/skiff-sh/skiff/agent/labels"
	"github.com/skiff-sh/skiff/agent/runtime"
)

// e2ePod is a host-network busybox pod run through a real containerd.
type e2ePod struct {
	rt      runtimeapi.RuntimeServiceClient
	node    string
	sandbox string
	config  *runtimeapi.PodSandboxConfig
}

// startE2EPod starts containerd in a temp dir, imports the built-in
// images and runs pod default/web; everything is removed at cleanup.
func startE2EPod(t *testing.T) *e2ePod {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root to run containerd")
	}
	for _, bin := range []string{"containerd", "ctr", "runc", "containerd-shim-runc-v2", "/usr/bin/busybox"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s: %v", bin, err)
		}
	}
	dir := t.TempDir()
	node := "server-e2e"
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	r, err := runtime.Start(ctx, runtime.Config{Dir: filepath.Join(dir, "containerd"), NodeName: node, SandboxImage: images.PauseImage,
		CNIConfDir: filepath.Join(dir, "net.d"), Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := runtime.CleanupNode(ctx, r.Runtime(), node); err != nil {
			t.Logf("cleanup: %v", err)
		}
		if err := r.Stop(); err != nil {
			t.Logf("stop containerd: %v", err)
		}
	})
	if _, err := images.EnsureBuiltins(ctx, r.Socket(), r.Images(), images.BuiltinOptions{CacheDir: filepath.Join(dir, "images"), Log: log}); err != nil {
		t.Fatal(err)
	}
	uid := "uid-web"
	cfg := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: "web", Namespace: "default", Uid: uid},
		LogDirectory: filepath.Join(dir, "logs", "default_web_"+uid),
		Labels:       map[string]string{labels.PodName: "web", labels.PodNamespace: "default", labels.PodUID: uid, labels.ManagedBy: node},
		Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE},
		}},
	}
	sb, err := r.Runtime().RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	return &e2ePod{rt: r.Runtime(), node: node, sandbox: sb.PodSandboxId, config: cfg}
}

// run creates and starts attempt of container app running script.
func (p *e2ePod) run(t *testing.T, attempt uint32, script string) string {
	t.Helper()
	ctx := context.Background()
	lbl := map[string]string{}
	for k, v := range p.config.Labels {
		lbl[k] = v
	}
	lbl[labels.ContainerName] = "app"
	c, err := p.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
		PodSandboxId:  p.sandbox,
		SandboxConfig: p.config,
		Config: &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: "app", Attempt: attempt},
			Image:    &runtimeapi.ImageSpec{Image: images.BusyboxImage},
			Command:  []string{"sh", "-c", script},
			LogPath:  fmt.Sprintf("app/%d.log", attempt),
			Labels:   lbl,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: c.ContainerId}); err != nil {
		t.Fatal(err)
	}
	return c.ContainerId
}

func TestAgentServerWithContainerd(t *testing.T) {
	pod := startE2EPod(t)
	first := pod.run(t, 0, "echo hello; i=0; while true; do i=$((i+1)); echo tick $i; sleep 1; done")

	p := newTestPKI(t)
	base := startAgentServer(t, Config{TLS: p.serverTLS(), AllowedUsers: []string{apiServerUser}, Runtime: pod.rt, NodeName: pod.node})
	api := httpClient(p.clientTLS(t, apiServerUser))
	rest := p.restConfig(t, base, apiServerUser)

	t.Run("logs follow", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"/containerLogs/default/web/app?follow=true&timestamps=true", nil)
		resp, err := api.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		if resp.StatusCode != 200 {
			body, _ := io.ReadAll(resp.Body)
			t.Fatalf("%d %q", resp.StatusCode, body)
		}
		sc := bufio.NewScanner(resp.Body)
		var lines []string
		for len(lines) < 3 && sc.Scan() {
			lines = append(lines, sc.Text())
		}
		if len(lines) < 3 {
			t.Fatalf("followed lines %q: %v", lines, sc.Err())
		}
		if !strings.HasSuffix(lines[0], " hello") || !strings.HasSuffix(lines[2], " tick 2") {
			t.Fatalf("followed lines %q", lines)
		}
		if _, err := time.Parse(time.RFC3339Nano, strings.Fields(lines[0])[0]); err != nil {
			t.Fatalf("timestamp of %q: %v", lines[0], err)
		}
	})

	t.Run("exec over SPDY", func(t *testing.T) {
		q := url.Values{"command": {"sh", "-c", "echo out; echo err >&2; cat; exit 3"}, "stdin": {"1"}, "stdout": {"1"}, "stderr": {"1"}}
		u, _ := url.Parse(base + "/exec/default/web/app?" + q.Encode())
		e, err := remotecommand.NewSPDYExecutor(rest, "POST", u)
		if err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err = e.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: strings.NewReader("piped\n"), Stdout: &stdout, Stderr: &stderr})
		var exit utilexec.CodeExitError
		if !errors.As(err, &exit) || exit.Code != 3 {
			t.Fatalf("exec error %v, want exit code 3", err)
		}
		if stdout.String() != "out\npiped\n" || stderr.String() != "err\n" {
			t.Fatalf("stdout %q, stderr %q", stdout.String(), stderr.String())
		}
	})

	t.Run("exec over WebSocket v5 is an upgrade failure", func(t *testing.T) {
		// kubectl 1.30+ tries this first and falls back to SPDY when the
		// upgrade fails; the API server translates, the agent need not.
		e, err := remotecommand.NewWebSocketExecutor(rest, "GET", base+"/exec/default/web/app?command=true&stdout=1")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err = e.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: io.Discard})
		if !httpstream.IsUpgradeFailure(err) {
			t.Fatalf("WebSocket exec: %v, want an upgrade failure", err)
		}
	})

	t.Run("port-forward", func(t *testing.T) {
		// The pod shares the host network, so a listener here is one in
		// the pod.
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = l.Close() }()
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				go func() {
					defer func() { _ = c.Close() }()
					line, _ := bufio.NewReader(c).ReadString('\n')
					_, _ = c.Write([]byte(strings.ToUpper(line)))
				}()
			}
		}()
		port := l.Addr().(*net.TCPAddr).Port
		transport, upgrader, err := clientspdy.RoundTripperFor(rest)
		if err != nil {
			t.Fatal(err)
		}
		u, _ := url.Parse(base + "/portForward/default/web")
		dialer := clientspdy.NewDialerForStreaming(upgrader, &http.Client{Transport: transport}, "POST", u)
		stop, ready := make(chan struct{}), make(chan struct{})
		pf, err := portforward.NewOnAddressesForStreaming(dialer, []string{"127.0.0.1"}, []string{fmt.Sprintf(":%d", port)}, stop, ready, io.Discard, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		errc := make(chan error, 1)
		go func() { errc <- pf.ForwardPorts() }()
		defer func() {
			close(stop)
			<-errc
		}()
		select {
		case <-ready:
		case err := <-errc:
			t.Fatalf("port-forward ended: %v", err)
		case <-time.After(30 * time.Second):
			t.Fatal("port-forward not ready")
		}
		ports, err := pf.GetPorts()
		if err != nil {
			t.Fatal(err)
		}
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", ports[0].Local))
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = c.Close() }()
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		if _, err := c.Write([]byte("through the pod\n")); err != nil {
			t.Fatal(err)
		}
		got, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || got != "THROUGH THE POD\n" {
			t.Fatalf("forwarded answer %q, %v", got, err)
		}
	})

	t.Run("previous after a restart", func(t *testing.T) {
		if _, err := pod.rt.StopContainer(context.Background(), &runtimeapi.StopContainerRequest{ContainerId: first, Timeout: 0}); err != nil {
			t.Fatal(err)
		}
		pod.run(t, 1, "echo second run; exec sleep 1000")
		deadline := time.Now().Add(20 * time.Second)
		for {
			code, body := get(t, api, base+"/containerLogs/default/web/app")
			if code == 200 && body == "second run\n" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("current log %d %q, want the second run's", code, body)
			}
			time.Sleep(100 * time.Millisecond)
		}
		code, body := get(t, api, base+"/containerLogs/default/web/app?previous=true&limitBytes=11")
		if code != 200 || body != "hello\ntick " {
			t.Fatalf("previous log %d %q", code, body)
		}
	})
}
