package node

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestKubectlStreaming drives logs, exec, attach, port-forward and cp with
// stock kubectl through the API server to the agent.
func TestKubectlStreaming(t *testing.T) {
	all := startCluster(t)
	// kubectl 1.27 speaks SPDY only; 1.33 WebSocket first.
	for _, v := range []string{"1.27", "1.33"} {
		t.Run("kubectl-"+v, func(t *testing.T) {
			testStreaming(t, all.with("/usr/lib/google-cloud-sdk/bin/kubectl."+v), "stream-"+strings.ReplaceAll(v, ".", "-"))
		})
	}
}

func testStreaming(t *testing.T, c *cluster, name string) {
	ns := c.namespace(t, name)
	ticker := busyboxPod(ns, "ticker", "sh", "-c", "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.3; done")
	c.createPod(t, ticker)
	web := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "demo", Image: "skiff.local/demo:1",
			Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
		}}},
	}
	c.createPod(t, web)
	c.waitPod(t, ns, "ticker", 60*time.Second, "ready", ready)
	c.waitPod(t, ns, "web", 60*time.Second, "ready", ready)

	t.Run("group", func(t *testing.T) {
		t.Run("LogsFollow", func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, c.kubectlPath(), "logs", "-f", "-n", ns, "ticker", "--tail=1")
			cmd.Env = append(os.Environ(), "KUBECONFIG="+c.srv.Kubeconfig, "HOME="+t.TempDir())
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { cancel(); _ = cmd.Wait() }()
			sc := bufio.NewScanner(out)
			var lines []string
			for len(lines) < 4 && sc.Scan() {
				lines = append(lines, sc.Text())
			}
			if len(lines) < 4 {
				t.Fatalf("logs -f saw only %q", lines)
			}
			var first, last int
			fmt.Sscanf(lines[0], "tick %d", &first)
			fmt.Sscanf(lines[3], "tick %d", &last)
			if last != first+3 {
				t.Errorf("logs -f lines not consecutive new lines: %q", lines)
			}
		})
		t.Run("ExecWithPTY", func(t *testing.T) {
			t.Parallel()
			// script gives kubectl a terminal, so -t really allocates one.
			out, err := c.kubectlErr(t, "", "exec", "-n", ns, "ticker", "--", "sh", "-c", "echo out; echo err >&2; exit 7")
			if err == nil || !strings.Contains(out, "out") || !strings.Contains(out, "err") {
				t.Errorf("exec without tty: err=%v out=%q", err, out)
			}
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 7 {
				t.Errorf("exec exit code: %v", err)
			}
			cmdline := fmt.Sprintf("%s exec -it -n %s ticker -- sh -c 'tty; echo rows=$(stty size)'", c.kubectlPath(), ns)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, "script", "-qec", cmdline, "/dev/null")
			cmd.Env = append(os.Environ(), "KUBECONFIG="+c.srv.Kubeconfig, "HOME="+t.TempDir())
			b, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(b), "/dev/pts/") {
				t.Errorf("exec -it: err=%v out=%q", err, b)
			}
			// stdin reaches the process.
			got, err := c.kubectlErr(t, "piped input\n", "exec", "-i", "-n", ns, "ticker", "--", "cat")
			if err != nil || got != "piped input\n" {
				t.Errorf("exec -i: err=%v out=%q", err, got)
			}
		})
		t.Run("PortForward", func(t *testing.T) {
			t.Parallel()
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			port := l.Addr().(*net.TCPAddr).Port
			l.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, c.kubectlPath(), "port-forward", "-n", ns, "pod/web", fmt.Sprintf("%d:8080", port))
			cmd.Env = append(os.Environ(), "KUBECONFIG="+c.srv.Kubeconfig, "HOME="+t.TempDir())
			stdout, _ := cmd.StdoutPipe()
			cmd.Stderr = cmd.Stdout
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { cancel(); _ = cmd.Wait() }()
			sc := bufio.NewScanner(stdout)
			if !sc.Scan() || !strings.Contains(sc.Text(), "Forwarding from") {
				t.Fatalf("port-forward did not start: %q", sc.Text())
			}
			go func() { _, _ = io.Copy(io.Discard, stdout) }()
			for i := 0; i < 3; i++ {
				resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
				if err != nil {
					t.Fatalf("GET through port-forward: %v", err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || !strings.Contains(string(body), "web") {
					t.Fatalf("GET through port-forward: %d %q", resp.StatusCode, body)
				}
			}
		})
		t.Run("Copy", func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			src := filepath.Join(dir, "up.txt")
			if err := os.WriteFile(src, []byte("copied up\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			c.kubectl(t, "cp", src, ns+"/ticker:/tmp/up.txt")
			if out := c.kubectl(t, "exec", "-n", ns, "ticker", "--", "cat", "/tmp/up.txt"); out != "copied up\n" {
				t.Errorf("cp into the pod: %q", out)
			}
			c.kubectl(t, "exec", "-n", ns, "ticker", "--", "sh", "-c", "echo copied down > /tmp/down.txt")
			dst := filepath.Join(dir, "down.txt")
			c.kubectl(t, "cp", ns+"/ticker:/tmp/down.txt", dst)
			if b, err := os.ReadFile(dst); err != nil || string(b) != "copied down\n" {
				t.Errorf("cp out of the pod: %q %v", b, err)
			}
		})
		t.Run("AttachAndPrevious", func(t *testing.T) {
			t.Parallel()
			echo := busyboxPod(ns, "echoer", "sh", "-c", "while read l; do echo \"got $l\"; done; echo stdin closed")
			echo.Spec.Containers[0].Stdin = true
			echo.Spec.Containers[0].StdinOnce = true
			c.createPod(t, echo)
			c.waitPod(t, ns, "echoer", 60*time.Second, "ready", ready)
			out, err := c.kubectlErr(t, "hello attach\n", "attach", "-i", "-n", ns, "echoer")
			if err != nil || !strings.Contains(out, "got hello attach") {
				t.Errorf("attach -i: err=%v out=%q", err, out)
			}
			// The container exited when its stdin closed and was restarted:
			// the previous instance's log is still there.
			c.waitPod(t, ns, "echoer", 60*time.Second, "restarted", func(p *corev1.Pod) bool {
				return len(p.Status.ContainerStatuses) > 0 && p.Status.ContainerStatuses[0].RestartCount >= 1
			})
			prev, err := c.kubectlErr(t, "", "logs", "--previous", "-n", ns, "echoer")
			if err != nil || !strings.Contains(prev, "got hello attach") || !strings.Contains(prev, "stdin closed") {
				t.Errorf("logs --previous: err=%v out=%q", err, prev)
			}
			ts := c.kubectl(t, "logs", "--previous", "--timestamps", "--tail=1", "-n", ns, "echoer")
			if !strings.HasSuffix(strings.TrimSpace(ts), "stdin closed") || !strings.Contains(ts, "T") || strings.Count(ts, "\n") != 1 {
				t.Errorf("logs --timestamps --tail=1: %q", ts)
			}
		})
		t.Run("RunInteractiveRemove", func(t *testing.T) {
			t.Parallel()
			out, err := c.kubectlErr(t, "hello through attach\n", "run", "-n", ns, "oneshot", "-i", "--rm", "--restart=Never", "--image=busybox", "--", "sh", "-c", "read line; echo got: $line")
			if err != nil || !strings.Contains(out, "got: hello through attach") {
				t.Errorf("run -i --rm: err=%v out=%q", err, out)
			}
			c.waitGone(t, ns, "oneshot", 30*time.Second)
		})
	})
}
