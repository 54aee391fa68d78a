package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/skiff-sh/skiff/test/framework"
)

// stockDir is where the stock kubectl binaries live.
const stockDir = "/usr/lib/google-cloud-sdk/bin"

// commandTimeout bounds every kubectl run so a hang fails the test instead
// of the whole package.
const commandTimeout = 90 * time.Second

// client is one kubectl under test.
type client struct {
	name string
	// path is a stock kubectl binary; empty means `skiff kubectl`.
	path string
}

var clients = []client{
	{name: "embedded"},
	{name: "kubectl-1.27", path: filepath.Join(stockDir, "kubectl.1.27")},
	{name: "kubectl-1.33", path: filepath.Join(stockDir, "kubectl.1.33")},
}

// kubectl runs one client against one server, in its own namespace, with
// a private HOME and discovery cache.
type kubectl struct {
	t      *testing.T
	srv    *framework.Server
	argv   []string // the command, before the user's arguments
	env    []string
	ns     string
	tmp    string
	client client
}

// eachClient starts one server for the calling test and runs fn once per
// client, in parallel subtests that share that server. Each client gets its
// own namespace name (not created; see kubectl.createNamespace).
func eachClient(t *testing.T, fn func(t *testing.T, k *kubectl)) {
	t.Helper()
	srv := framework.StartServer(t, framework.Options{})
	for _, c := range clients {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			fn(t, newKubectl(t, srv, c))
		})
	}
}

// newKubectl prepares c to talk to srv; a stock binary that is absent
// skips the test.
func newKubectl(t *testing.T, srv *framework.Server, c client) *kubectl {
	t.Helper()
	var argv []string
	if c.path == "" {
		argv = []string{framework.Binary(t), "kubectl"}
	} else {
		if _, err := os.Stat(c.path); err != nil {
			t.Skipf("stock kubectl %s is not installed: %v", c.path, err)
		}
		argv = []string{c.path}
	}
	tmp := t.TempDir()
	home := filepath.Join(tmp, "home")
	cache := filepath.Join(tmp, "cache")
	for _, d := range []string{home, cache} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatalf("mkdir %s: %v", d, err)
		}
	}
	argv = append(argv, "--cache-dir="+cache)
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case name == "KUBECONFIG", name == "HOME", name == "EDITOR", name == "KUBE_EDITOR",
			name == "KUBECACHEDIR", strings.HasPrefix(name, "KUBECTL_"):
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "KUBECONFIG="+srv.Kubeconfig, "HOME="+home)
	return &kubectl{
		t: t, srv: srv, argv: argv, env: env, tmp: tmp, client: c,
		ns: "e2e-" + strings.ReplaceAll(c.name, ".", "-"),
	}
}

// result is what one kubectl run did.
type result struct {
	stdout string
	stderr string
	code   int
}

// run runs kubectl with args and extra environment variables; stdin may be
// empty. It fails the test only when kubectl could not be run at all.
func (k *kubectl) runWith(extraEnv []string, stdin string, args ...string) result {
	k.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	full := append(append([]string{}, k.argv...), args...)
	cmd := exec.CommandContext(ctx, full[0], full[1:]...)
	cmd.Env = append(append([]string{}, k.env...), extraEnv...)
	cmd.Dir = k.tmp
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := result{stdout: out.String(), stderr: errb.String()}
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		k.t.Fatalf("kubectl %s: timed out after %s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), commandTimeout, res.stdout, res.stderr)
	case errors.As(err, &exit):
		res.code = exit.ExitCode()
	case err != nil:
		k.t.Fatalf("kubectl %s: %v", strings.Join(args, " "), err)
	}
	return res
}

// run runs kubectl with args.
func (k *kubectl) run(args ...string) result {
	k.t.Helper()
	return k.runWith(nil, "", args...)
}

// ok runs kubectl and fails the test unless it exits 0; it returns stdout.
func (k *kubectl) ok(args ...string) string {
	k.t.Helper()
	r := k.run(args...)
	if r.code != 0 {
		k.t.Fatalf("kubectl %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// fails runs kubectl and fails the test if it exits 0.
func (k *kubectl) fails(args ...string) result {
	k.t.Helper()
	r := k.run(args...)
	if r.code == 0 {
		k.t.Fatalf("kubectl %s: exit 0, want failure\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.stdout, r.stderr)
	}
	return r
}

// getJSON runs `kubectl get args... -o json` and decodes the output.
func (k *kubectl) getJSON(into any, args ...string) {
	k.t.Helper()
	out := k.ok(append(append([]string{"get"}, args...), "-o", "json")...)
	if err := json.Unmarshal([]byte(out), into); err != nil {
		k.t.Fatalf("kubectl get %s -o json: decode: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// getYAML runs `kubectl get args... -o yaml` and decodes the output.
func (k *kubectl) getYAML(into any, args ...string) {
	k.t.Helper()
	out := k.ok(append(append([]string{"get"}, args...), "-o", "yaml")...)
	if err := yaml.Unmarshal([]byte(out), into); err != nil {
		k.t.Fatalf("kubectl get %s -o yaml: decode: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// file writes content, with NAMESPACE replaced by the client's namespace,
// to a file in the client's scratch dir and returns its path.
func (k *kubectl) file(name, content string) string {
	k.t.Helper()
	p := filepath.Join(k.tmp, name)
	if err := os.WriteFile(p, []byte(strings.ReplaceAll(content, "NAMESPACE", k.ns)), 0o600); err != nil {
		k.t.Fatalf("write %s: %v", p, err)
	}
	return p
}

// script writes an executable shell script and returns its path.
func (k *kubectl) script(name, body string) string {
	k.t.Helper()
	p := filepath.Join(k.tmp, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\nset -e\n"+body+"\n"), 0o700); err != nil {
		k.t.Fatalf("write %s: %v", p, err)
	}
	return p
}

// createNamespace creates the client's namespace.
func (k *kubectl) createNamespace() {
	k.t.Helper()
	out := k.ok("create", "namespace", k.ns)
	wantContains(k.t, out, "namespace/"+k.ns+" created")
}

// stream is a long-running kubectl (get -w) whose stdout is read line by
// line.
type stream struct {
	lines  chan string
	seen   []string
	stderr lockedBuffer
}

// lockedBuffer is a bytes.Buffer safe for one writer and one reader.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// start runs kubectl in the background; it is killed when the test ends.
func (k *kubectl) start(args ...string) *stream {
	k.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	full := append(append([]string{}, k.argv...), args...)
	cmd := exec.CommandContext(ctx, full[0], full[1:]...)
	cmd.Env = k.env
	cmd.Dir = k.tmp
	s := &stream{lines: make(chan string, 1024)}
	cmd.Stderr = &s.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		k.t.Fatalf("kubectl %s: stdout: %v", strings.Join(args, " "), err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		k.t.Fatalf("kubectl %s: start: %v", strings.Join(args, " "), err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(s.lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
	}()
	k.t.Cleanup(func() {
		cancel() // kills this one process
		<-done
		_ = cmd.Wait()
	})
	return s
}

// waitFor reads lines until one satisfies match, failing the test after
// timeout or when the command ends first.
func (s *stream) waitFor(t *testing.T, what string, timeout time.Duration, match func(line string) bool) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case line, open := <-s.lines:
			if !open {
				t.Fatalf("watch ended before %s; output:\n%s\nstderr:\n%s", what, strings.Join(s.seen, "\n"), s.stderr.String())
			}
			s.seen = append(s.seen, line)
			if match(line) {
				return line
			}
		case <-deadline:
			t.Fatalf("no %s within %s; output so far:\n%s", what, timeout, strings.Join(s.seen, "\n"))
		}
	}
}

// tryFor is waitFor without failing: it reports whether a line matched
// within timeout.
func (s *stream) tryFor(timeout time.Duration, match func(line string) bool) bool {
	deadline := time.After(timeout)
	for {
		select {
		case line, open := <-s.lines:
			if !open {
				return false
			}
			s.seen = append(s.seen, line)
			if match(line) {
				return true
			}
		case <-deadline:
			return false
		}
	}
}

// wantContains fails the test unless s contains every one of subs.
func wantContains(t *testing.T, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("output lacks %q:\n%s", sub, s)
		}
	}
}

var ansi = regexp.MustCompile(`\x1b\[[0-9;]*m`)

// plain removes terminal colour codes.
func plain(s string) string { return ansi.ReplaceAllString(s, "") }
