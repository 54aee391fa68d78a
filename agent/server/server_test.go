package server

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/agent/labels"
)

const apiServerUser = "skiff:apiserver"

func instance(id string, created int64, attempt uint32, state runtimeapi.ContainerState) *runtimeapi.Container {
	return &runtimeapi.Container{
		Id: id, CreatedAt: created, State: state,
		Metadata: &runtimeapi.ContainerMetadata{Name: "app", Attempt: attempt},
		Labels: map[string]string{
			labels.PodNamespace: "default", labels.PodName: "web", labels.ContainerName: "app",
			labels.PodUID: "uid-1", labels.ManagedBy: "node-a",
		},
	}
}

const (
	running = runtimeapi.ContainerState_CONTAINER_RUNNING
	exited  = runtimeapi.ContainerState_CONTAINER_EXITED
	created = runtimeapi.ContainerState_CONTAINER_CREATED
)

func TestPickLogContainer(t *testing.T) {
	cases := []struct {
		name      string
		instances []*runtimeapi.Container
		previous  bool
		want      string
		wantErr   string
	}{
		{name: "none", wantErr: `container "app" in pod "web" is waiting to start: ContainerCreating`},
		{name: "none previous", previous: true, wantErr: `previous terminated container "app" in pod "web" not found`},
		{name: "only running", instances: []*runtimeapi.Container{instance("a", 1, 0, running)}, want: "a"},
		{name: "only running previous", instances: []*runtimeapi.Container{instance("a", 1, 0, running)}, previous: true,
			wantErr: `previous terminated container "app" in pod "web" not found`},
		{name: "current after a restart", instances: []*runtimeapi.Container{instance("old", 1, 0, exited), instance("cur", 2, 1, running)}, want: "cur"},
		{name: "previous after a restart", instances: []*runtimeapi.Container{instance("cur", 2, 1, running), instance("old", 1, 0, exited)}, previous: true, want: "old"},
		{name: "newest exited is current", instances: []*runtimeapi.Container{instance("b", 2, 1, exited), instance("a", 1, 0, exited)}, want: "b"},
		{name: "previous of an exited current", instances: []*runtimeapi.Container{instance("b", 2, 1, exited), instance("a", 1, 0, exited)}, previous: true, want: "a"},
		{name: "single exited has no previous", instances: []*runtimeapi.Container{instance("a", 1, 0, exited)}, previous: true,
			wantErr: `previous terminated container "app" in pod "web" not found`},
		{name: "created current is waiting", instances: []*runtimeapi.Container{instance("new", 2, 1, created), instance("a", 1, 0, exited)},
			wantErr: `container "app" in pod "web" is waiting to start: ContainerCreating`},
		{name: "created current still has a previous", instances: []*runtimeapi.Container{instance("new", 2, 1, created), instance("a", 1, 0, exited)}, previous: true, want: "a"},
		{name: "previous skips running instances", instances: []*runtimeapi.Container{instance("c", 3, 2, running), instance("b", 2, 1, running), instance("a", 1, 0, exited)}, previous: true, want: "a"},
		{name: "attempt breaks creation ties", instances: []*runtimeapi.Container{instance("x", 5, 0, exited), instance("y", 5, 1, running)}, want: "y"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := pickLogContainer(c.instances, c.previous, "web", "app")
			if c.wantErr != "" {
				var he *httpError
				if err == nil || err.Error() != c.wantErr {
					t.Fatalf("err = %v, want %q", err, c.wantErr)
				}
				if !asHTTPError(err, &he) || he.code != http.StatusBadRequest {
					t.Fatalf("err %v is not a 400", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Id != c.want {
				t.Fatalf("got %s, want %s", got.Id, c.want)
			}
		})
	}
}

func asHTTPError(err error, he **httpError) bool {
	e, ok := err.(*httpError)
	*he = e
	return ok
}

// newLogFixture is a fake runtime with a restarted container: "old"
// (exited) and "cur" (running), each with a CRI log file.
func newLogFixture(t *testing.T) (*fakeRuntime, string) {
	t.Helper()
	dir := t.TempDir()
	rt := &fakeRuntime{
		containers: []*runtimeapi.Container{instance("old", 1, 0, exited), instance("cur", 2, 1, running)},
		logPaths:   map[string]string{"old": filepath.Join(dir, "0.log"), "cur": filepath.Join(dir, "1.log")},
	}
	write := func(path string, recs ...logRecord) {
		if err := os.WriteFile(path, []byte(crilog(recs...)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(rt.logPaths["old"], rec(0, "stdout", false, "first run"), rec(1, "stderr", false, "crashed"))
	write(rt.logPaths["cur"], rec(10, "stdout", false, "second run"), rec(11, "stdout", true, "hel"), rec(12, "stdout", false, "lo"), rec(13, "stderr", false, "warn"))
	return rt, dir
}

func get(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func TestAuthorization(t *testing.T) {
	p := newTestPKI(t)
	rt, _ := newLogFixture(t)
	base := startAgentServer(t, Config{TLS: p.serverTLS(), AllowedUsers: []string{apiServerUser}, Runtime: rt})

	api := httpClient(p.clientTLS(t, apiServerUser))
	other := httpClient(p.clientTLS(t, "system:node:node-b"))

	if code, body := get(t, api, base+"/healthz"); code != http.StatusOK || body != "ok" {
		t.Errorf("allowed /healthz: %d %q", code, body)
	}
	if code, _ := get(t, api, base+"/containerLogs/default/web/app"); code != http.StatusOK {
		t.Errorf("allowed logs: %d", code)
	}
	if code, _ := get(t, other, base+"/healthz"); code != http.StatusOK {
		t.Errorf("other user /healthz: %d, want 200", code)
	}
	code, body := get(t, other, base+"/containerLogs/default/web/app")
	if code != http.StatusForbidden || !strings.Contains(body, "user=system:node:node-b") {
		t.Errorf("other user logs: %d %q, want 403", code, body)
	}

	// No certificate, or one from another CA: the handshake fails.
	noCert := httpClient(&tls.Config{RootCAs: p.pool, MinVersion: tls.VersionTLS12})
	if resp, err := noCert.Get(base + "/healthz"); err == nil {
		_ = resp.Body.Close()
		t.Errorf("request without a client certificate got %d", resp.StatusCode)
	}
	stranger := newTestPKI(t)
	tc := stranger.clientTLS(t, apiServerUser)
	tc.RootCAs = p.pool
	if resp, err := httpClient(tc).Get(base + "/healthz"); err == nil {
		_ = resp.Body.Close()
		t.Errorf("request with a foreign CA's certificate got %d", resp.StatusCode)
	}
}

func TestContainerLogs(t *testing.T) {
	p := newTestPKI(t)
	rt, _ := newLogFixture(t)
	base := startAgentServer(t, Config{TLS: p.serverTLS(), AllowedUsers: []string{apiServerUser}, Runtime: rt, NodeName: "node-a"})
	api := httpClient(p.clientTLS(t, apiServerUser))
	ts := func(sec int) string { return t0.Add(time.Duration(sec)*time.Second).Format(timestampLayout) + " " }

	cases := []struct {
		query    string
		path     string
		wantCode int
		want     string
	}{
		{query: "", wantCode: 200, want: "second run\nhello\nwarn\n"},
		{query: "previous=true", wantCode: 200, want: "first run\ncrashed\n"},
		{query: "tailLines=2", wantCode: 200, want: "hello\nwarn\n"},
		{query: "tailLines=0", wantCode: 200, want: ""},
		{query: "timestamps=true&tailLines=1", wantCode: 200, want: ts(13) + "warn\n"},
		{query: "limitBytes=13", wantCode: 200, want: "second run\nhe"},
		{query: "sinceTime=" + url.QueryEscape(t0.Add(12*time.Second).Format(time.RFC3339)), wantCode: 200, want: "lo\nwarn\n"},
		{query: "stream=Stderr", wantCode: 200, want: "warn\n"},
		{query: "follow=true&previous=true", wantCode: 200, want: "first run\ncrashed\n"},
		{query: "tailLines=-3", wantCode: 400, want: "tailLines: Invalid value: -3: must be greater than or equal to 0"},
		{path: "/containerLogs/default/web/sidecar", wantCode: 400, want: `container "sidecar" in pod "web" is waiting to start: ContainerCreating`},
		{path: "/containerLogs/default/other/app?previous=true", wantCode: 400, want: `previous terminated container "app" in pod "other" not found`},
	}
	for _, c := range cases {
		path := c.path
		if path == "" {
			path = "/containerLogs/default/web/app?" + c.query
		}
		code, body := get(t, api, base+path)
		if code != c.wantCode || body != c.want {
			t.Errorf("%s: %d %q, want %d %q", path, code, body, c.wantCode, c.want)
		}
	}

	// Another node's containers are not this agent's.
	otherNode := startAgentServer(t, Config{TLS: p.serverTLS(), AllowedUsers: []string{apiServerUser}, Runtime: rt, NodeName: "node-b"})
	if code, _ := get(t, api, otherNode+"/containerLogs/default/web/app"); code != http.StatusBadRequest {
		t.Errorf("logs through another node's agent: %d, want 400", code)
	}
}

func TestFollowLogs(t *testing.T) {
	p := newTestPKI(t)
	rt, _ := newLogFixture(t)
	base := startAgentServer(t, Config{TLS: p.serverTLS(), AllowedUsers: []string{apiServerUser}, Runtime: rt})
	api := httpClient(p.clientTLS(t, apiServerUser))

	resp, err := api.Get(base + "/containerLogs/default/web/app?follow=true&tailLines=1")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	lines := make(chan string, 10)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	next := func() (string, bool) {
		select {
		case l, ok := <-lines:
			return l, ok
		case <-time.After(10 * time.Second):
			t.Fatal("no log line within 10s")
			return "", false
		}
	}
	if l, _ := next(); l != "warn" {
		t.Fatalf("first line %q, want warn", l)
	}
	f, err := os.OpenFile(rt.logPaths["cur"], os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	// A record arriving in two writes is sent once it is whole.
	line := crilog(rec(20, "stdout", false, "new line"))
	if _, err := f.WriteString(line[:10]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * followPoll)
	if _, err := f.WriteString(line[10:]); err != nil {
		t.Fatal(err)
	}
	if l, _ := next(); l != "new line" {
		t.Fatalf("followed line %q, want %q", l, "new line")
	}
	// The container exits after a last line: the stream sends it and ends.
	if _, err := f.WriteString(crilog(rec(21, "stdout", false, "bye"))); err != nil {
		t.Fatal(err)
	}
	rt.setState("cur", exited)
	if l, _ := next(); l != "bye" {
		t.Fatalf("last line %q, want bye", l)
	}
	if l, ok := next(); ok {
		t.Fatalf("stream went on after the container exited: %q", l)
	}
}

// upgradeEcho is a stand-in for the runtime's streaming server: it
// accepts any upgrade and echoes what it receives.
func upgradeEcho(t *testing.T) (*httptest.Server, chan string) {
	t.Helper()
	seen := make(chan string, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Method + " " + r.URL.Path
		if r.Header.Get("Upgrade") == "" {
			http.Error(w, "upgrade required", http.StatusBadRequest)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		defer func() { _ = conn.Close() }()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: " + r.Header.Get("Upgrade") + "\r\n\r\n")
		_ = brw.Flush()
		_, _ = io.Copy(conn, brw)
	}))
	t.Cleanup(srv.Close)
	return srv, seen
}

// upgrade sends an upgrade request over a fresh TLS connection and
// returns the connection and the response.
func upgrade(t *testing.T, tc *tls.Config, base, method, path string) (net.Conn, *bufio.Reader, *http.Response) {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	tc = tc.Clone()
	tc.NextProtos = []string{"http/1.1"}
	conn, err := tls.Dial("tcp", u.Host, tc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	req, err := http.NewRequest(method, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "SPDY/3.1")
	if err := req.Write(conn); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		t.Fatal(err)
	}
	return conn, br, resp
}

func expectEcho(t *testing.T, conn net.Conn, br *bufio.Reader) {
	t.Helper()
	if _, err := conn.Write([]byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := br.ReadString('\n')
	if err != nil || got != "ping\n" {
		t.Fatalf("echo: %q, %v", got, err)
	}
}

func TestStreamingSplice(t *testing.T) {
	p := newTestPKI(t)
	echo, seen := upgradeEcho(t)
	rt := &fakeRuntime{
		containers: []*runtimeapi.Container{instance("old", 1, 0, exited), instance("cur", 2, 1, running)},
		sandboxes: []*runtimeapi.PodSandbox{
			{Id: "sb-old", CreatedAt: 1, State: runtimeapi.PodSandboxState_SANDBOX_NOTREADY, Labels: map[string]string{labels.PodNamespace: "default", labels.PodName: "web"}},
			{Id: "sb-1", CreatedAt: 2, State: runtimeapi.PodSandboxState_SANDBOX_READY, Labels: map[string]string{labels.PodNamespace: "default", labels.PodName: "web"}},
			{Id: "sb-2", CreatedAt: 3, State: runtimeapi.PodSandboxState_SANDBOX_READY, Labels: map[string]string{labels.PodNamespace: "default", labels.PodName: "web"}},
		},
		streamURL: echo.URL,
	}
	base := startAgentServer(t, Config{TLS: p.serverTLS(), AllowedUsers: []string{apiServerUser}, Runtime: rt})
	tc := p.clientTLS(t, apiServerUser)

	t.Run("exec", func(t *testing.T) {
		conn, br, resp := upgrade(t, tc, base, "POST", "/exec/default/web/app?command=sh&command=-c&command=echo+hi&stdin=1&stdout=1&stderr=1&tty=1")
		if resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if got := <-seen; got != "POST /exec/token" {
			t.Fatalf("runtime saw %q", got)
		}
		expectEcho(t, conn, br)
		rt.mu.Lock()
		last := rt.execs[len(rt.execs)-1]
		rt.mu.Unlock()
		if last.ContainerId != "cur" || !slices.Equal(last.Cmd, []string{"sh", "-c", "echo hi"}) || !last.Stdin || !last.Stdout || last.Stderr || !last.Tty {
			t.Fatalf("exec request %+v (tty drops stderr)", last)
		}
	})
	t.Run("attach", func(t *testing.T) {
		conn, br, resp := upgrade(t, tc, base, "GET", "/attach/default/web/uid-1/app?stdout=true")
		if resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if got := <-seen; got != "GET /attach/token" {
			t.Fatalf("runtime saw %q", got)
		}
		expectEcho(t, conn, br)
		rt.mu.Lock()
		last := rt.attaches[len(rt.attaches)-1]
		rt.mu.Unlock()
		if last.ContainerId != "cur" || !last.Stdout || last.Stdin {
			t.Fatalf("attach request %+v", last)
		}
	})
	t.Run("portForward", func(t *testing.T) {
		conn, br, resp := upgrade(t, tc, base, "POST", "/portForward/default/web?port=80,8080")
		if resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if got := <-seen; got != "POST /portforward/token" {
			t.Fatalf("runtime saw %q", got)
		}
		expectEcho(t, conn, br)
		rt.mu.Lock()
		last := rt.forwards[len(rt.forwards)-1]
		rt.mu.Unlock()
		if last.PodSandboxId != "sb-2" || !slices.Equal(last.Port, []int32{80, 8080}) {
			t.Fatalf("port-forward request %+v", last)
		}
	})

	errorCases := []struct {
		name, method, path string
		upgrade            bool
		wantCode           int
		wantBody           string
	}{
		{"exec without upgrade", "POST", "/exec/default/web/app?command=ls&stdout=1", false, 400, "Upgrade request required"},
		{"exec without command", "POST", "/exec/default/web/app?stdout=1", true, 400, "you must specify at least one command for the container"},
		{"exec without streams", "POST", "/exec/default/web/app?command=ls", true, 400, "you must specify at least 1 of stdin, stdout, stderr"},
		{"exec in a missing container", "POST", "/exec/default/web/nope?command=ls&stdout=1", true, 404, `container "nope" not found in pod "web"`},
		{"exec with the wrong uid", "POST", "/exec/default/web/uid-2/app?command=ls&stdout=1", true, 404, `container "app" not found in pod "web"`},
		{"port-forward to a pod without sandbox", "POST", "/portForward/default/gone", true, 404, `pod "gone" in namespace "default" has no running sandbox on this node`},
		{"port-forward to a bad port", "POST", "/portForward/default/web?port=70000", true, 400, `invalid port "70000"`},
	}
	for _, c := range errorCases {
		t.Run(c.name, func(t *testing.T) {
			var resp *http.Response
			if c.upgrade {
				_, _, resp = upgrade(t, tc, base, c.method, c.path)
			} else {
				req, err := http.NewRequest(c.method, base+c.path, nil)
				if err != nil {
					t.Fatal(err)
				}
				if resp, err = httpClient(tc).Do(req); err != nil {
					t.Fatal(err)
				}
			}
			defer func() { _ = resp.Body.Close() }()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != c.wantCode || !strings.Contains(string(body), c.wantBody) {
				t.Fatalf("%d %q, want %d %q", resp.StatusCode, body, c.wantCode, c.wantBody)
			}
		})
	}
	rt.setState("cur", exited)
	t.Run("exec in a stopped container", func(t *testing.T) {
		_, _, resp := upgrade(t, tc, base, "POST", "/exec/default/web/app?command=ls&stdout=1")
		defer func() { _ = resp.Body.Close() }()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 400 || string(body) != `container "app" in pod "web" is not running` {
			t.Fatalf("%d %q", resp.StatusCode, body)
		}
	})
}

func TestRun(t *testing.T) {
	p := newTestPKI(t)
	rt := &fakeRuntime{
		containers: []*runtimeapi.Container{instance("cur", 2, 1, running)},
		execSync:   &runtimeapi.ExecSyncResponse{Stdout: []byte("out\n"), Stderr: []byte("err\n")},
	}
	base := startAgentServer(t, Config{TLS: p.serverTLS(), AllowedUsers: []string{apiServerUser}, Runtime: rt})
	c := httpClient(p.clientTLS(t, apiServerUser))
	resp, err := c.Post(base+"/run/default/web/app?cmd=cat+/etc/hostname", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "out\nerr\n" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	if got := rt.execs[0].Cmd; !slices.Equal(got, []string{"cat", "/etc/hostname"}) {
		t.Fatalf("command %q", got)
	}
	rt.execSync = &runtimeapi.ExecSyncResponse{Stdout: []byte("partial"), ExitCode: 3}
	resp, err = c.Post(base+"/run/default/web/app?command=false", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != 500 || string(body) != "partialcommand terminated with non-zero exit code: 3" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
}

func TestExtraHandlers(t *testing.T) {
	rt := &fakeRuntime{}
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("metrics")) })
	if _, err := newHandler(Config{Runtime: rt, Extra: map[string]http.Handler{"GET /healthz": metrics}}); err == nil {
		t.Error("an extra handler on /healthz was accepted")
	}
	if _, err := newHandler(Config{Runtime: rt, Extra: map[string]http.Handler{"GET /metrics": nil}}); err == nil {
		t.Error("a nil extra handler was accepted")
	}
	if _, err := newHandler(Config{}); err == nil {
		t.Error("a handler without runtime was built")
	}
	p := newTestPKI(t)
	base := startAgentServer(t, Config{TLS: p.serverTLS(), AllowedUsers: []string{apiServerUser}, Runtime: rt, Extra: map[string]http.Handler{"GET /metrics": metrics}})
	if code, body := get(t, httpClient(p.clientTLS(t, apiServerUser)), base+"/metrics"); code != 200 || body != "metrics" {
		t.Errorf("extra handler: %d %q", code, body)
	}
	if code, _ := get(t, httpClient(p.clientTLS(t, "someone")), base+"/metrics"); code != 403 {
		t.Errorf("extra handler for another user: %d, want 403", code)
	}
}
