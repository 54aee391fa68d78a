package prober

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func hookTarget(exec ExecFunc) Target {
	return Target{
		PodIP:       "127.0.0.1",
		Pod:         &v1.Pod{},
		Container:   &v1.Container{Name: "app"},
		ContainerID: "cid",
		Exec:        exec,
	}
}

func TestRunHandlerExec(t *testing.T) {
	var gotTimeout time.Duration = -1
	tests := []struct {
		name    string
		exec    ExecFunc
		wantErr string
	}{
		{"exit 0", func(_ context.Context, _ string, _ []string, timeout time.Duration) (int, []byte, error) {
			gotTimeout = timeout
			return 0, []byte("done"), nil
		}, ""},
		{"exit 3", func(context.Context, string, []string, time.Duration) (int, []byte, error) {
			return 3, []byte("boom\n"), nil
		}, `Exec lifecycle hook ([sh -c exit 3]) for Container "app" in Pod "web_default(u1)" failed - error: command 'sh -c exit 3' exited with 3: boom` + "\n" + `, message: "boom\n"`},
		{"runtime error", func(context.Context, string, []string, time.Duration) (int, []byte, error) {
			return 0, nil, errors.New("OCI runtime exec failed: executable file not found")
		}, `Exec lifecycle hook ([sh -c exit 3]) for Container "app" in Pod "web_default(u1)" failed - error: OCI runtime exec failed: executable file not found, message: ""`},
		{"no exec function", nil,
			`Exec lifecycle hook ([sh -c exit 3]) for Container "app" in Pod "web_default(u1)" failed - error: exec hooks are not supported here, message: ""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg := hookTarget(tt.exec)
			tg.Pod.Name, tg.Pod.Namespace, tg.Pod.UID = "web", "default", "u1"
			h := &v1.LifecycleHandler{Exec: &v1.ExecAction{Command: []string{"sh", "-c", "exit 3"}}}
			err := RunHandler(context.Background(), h, tg)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("RunHandler: %v", err)
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("RunHandler error\n got: %v\nwant: %s", err, tt.wantErr)
			}
		})
	}
	if gotTimeout != 0 {
		t.Fatalf("exec hook timeout = %v, want 0 (bounded by ctx only)", gotTimeout)
	}
}

func TestRunHandlerHTTP(t *testing.T) {
	s := newProbeServer(t, false)
	tg := hookTarget(nil)
	tg.Container.Ports = []v1.ContainerPort{{Name: "web", ContainerPort: int32(s.port)}}
	h := &v1.LifecycleHandler{HTTPGet: &v1.HTTPGetAction{
		Path: "/status/500", Port: intstr.FromString("web"),
		HTTPHeaders: []v1.HTTPHeader{{Name: "X-Hook", Value: "prestop"}},
	}}
	if err := RunHandler(context.Background(), h, tg); err != nil {
		t.Fatalf("RunHandler: %v (the status code is not checked)", err)
	}
	reqs := s.requests()
	if len(reqs) != 1 {
		t.Fatalf("server saw %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.URL.Path != "/status/500" || r.Header.Get("X-Hook") != "prestop" || r.Header.Get("User-Agent") != "kube-lifecycle/1.37" {
		t.Fatalf("request %s %v", r.URL.Path, r.Header)
	}

	port := closedTCPPort(t)
	h.HTTPGet.Port = intstr.FromInt32(int32(port))
	err := RunHandler(context.Background(), h, tg)
	want := fmt.Sprintf(`HTTP lifecycle hook (/status/500) for Container "app" in Pod "_()" failed - error: Get "http://127.0.0.1:%d/status/500": dial tcp 127.0.0.1:%d: connect: connection refused`, port, port)
	if err == nil || err.Error() != want {
		t.Fatalf("RunHandler error\n got: %v\nwant: %s", err, want)
	}
}

func TestRunHandlerTCPSocketIsIgnored(t *testing.T) {
	h := &v1.LifecycleHandler{TCPSocket: &v1.TCPSocketAction{Port: intstr.FromInt32(int32(closedTCPPort(t)))}}
	if err := RunHandler(context.Background(), h, hookTarget(nil)); err != nil {
		t.Fatalf("RunHandler: %v", err)
	}
	if IgnoredHook(h) == "" {
		t.Fatal("IgnoredHook gave no reason for a tcpSocket hook")
	}
	if r := IgnoredHook(&v1.LifecycleHandler{Sleep: &v1.SleepAction{Seconds: 1}}); r != "" {
		t.Fatalf("IgnoredHook(sleep) = %q", r)
	}
}

func TestRunHandlerSleep(t *testing.T) {
	if err := RunHandler(context.Background(), &v1.LifecycleHandler{Sleep: &v1.SleepAction{Seconds: 0}}, hookTarget(nil)); err != nil {
		t.Fatalf("sleep 0: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := RunHandler(ctx, &v1.LifecycleHandler{Sleep: &v1.SleepAction{Seconds: 30}}, hookTarget(nil))
	if err == nil || !strings.HasPrefix(err.Error(), `Sleep lifecycle hook (30) for Container "app" in Pod "_()" failed - error: container terminated before sleep hook finished`) {
		t.Fatalf("sleep cut short: %v", err)
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error does not wrap the context's: %v", err)
	}
}

func TestRunHandlerWithoutAction(t *testing.T) {
	if err := RunHandler(context.Background(), &v1.LifecycleHandler{}, hookTarget(nil)); err == nil {
		t.Fatal("a hook without an action ran")
	}
	if err := RunHandler(context.Background(), nil, hookTarget(nil)); err != nil {
		t.Fatalf("nil hook: %v", err)
	}
}
