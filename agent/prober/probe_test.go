package prober

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestResolvePort(t *testing.T) {
	c := &v1.Container{Name: "app", Ports: []v1.ContainerPort{
		{Name: "http", ContainerPort: 8080},
		{Name: "metrics", ContainerPort: 9090},
	}}
	tests := []struct {
		name    string
		port    intstr.IntOrString
		c       *v1.Container
		want    int
		wantErr string
	}{
		{"number", intstr.FromInt32(80), c, 80, ""},
		{"name", intstr.FromString("metrics"), c, 9090, ""},
		{"digits as name", intstr.FromString("8443"), c, 8443, ""},
		{"unknown name", intstr.FromString("grpc"), c, 0, `port "grpc" not found in container "app"`},
		{"name without container", intstr.FromString("http"), nil, 0, `port "http" not found`},
		{"zero", intstr.FromInt32(0), c, 0, "invalid port number: 0"},
		{"too big", intstr.FromInt32(70000), c, 0, "invalid port number: 70000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := resolvePort(tt.port, tt.c)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %d, %v; want %d", got, err, tt.want)
			}
		})
	}
}

func TestFirstTick(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := time.Second
	tests := []struct {
		name            string
		origin, from    time.Time
		delay, period   time.Duration
		wantAfterOrigin time.Duration
	}{
		{"no delay", t0, t0, 0, 10 * s, 0},
		{"delay equal to period", t0, t0, 10 * s, 10 * s, 10 * s},
		{"delay rounds up to a tick", t0, t0, 15 * s, 10 * s, 20 * s},
		{"delay shorter than period", t0, t0, 3 * s, 10 * s, 10 * s},
		{"container started before the worker", t0, t0.Add(-12 * s), 15 * s, 5 * s, 5 * s},
		{"delay already over", t0, t0.Add(-time.Minute), 15 * s, 5 * s, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := firstTick(tt.origin, tt.from, tt.delay, tt.period)
			if d := got.Sub(tt.origin); d != tt.wantAfterOrigin {
				t.Fatalf("first tick at origin+%v, want +%v", d, tt.wantAfterOrigin)
			}
		})
	}
}

func execProbe(cmd ...string) *v1.Probe {
	return &v1.Probe{ProbeHandler: v1.ProbeHandler{Exec: &v1.ExecAction{Command: cmd}}}
}

func TestRunExec(t *testing.T) {
	long := strings.Repeat("x", maxOutput+100)
	tests := []struct {
		name     string
		exec     ExecFunc
		id       string
		want     Result
		wantMsg  string
		wantTime time.Duration
	}{
		{
			name: "exit 0",
			exec: func(context.Context, string, []string, time.Duration) (int, []byte, error) {
				return 0, []byte("fine"), nil
			},
			want: Success, wantMsg: "",
		},
		{
			name: "exit 1 reports output",
			exec: func(context.Context, string, []string, time.Duration) (int, []byte, error) {
				return 1, []byte("cat: can't open '/tmp/healthy': No such file or directory\n"), nil
			},
			want: Failure, wantMsg: "Liveness probe failed: cat: can't open '/tmp/healthy': No such file or directory\n",
		},
		{
			name: "output is bounded",
			exec: func(context.Context, string, []string, time.Duration) (int, []byte, error) {
				return 2, []byte(long), nil
			},
			want: Failure, wantMsg: "Liveness probe failed: " + long[:maxOutput],
		},
		{
			name: "ErrExecTimeout is a failure",
			exec: func(context.Context, string, []string, time.Duration) (int, []byte, error) {
				return 0, nil, fmt.Errorf("exec sync: %w", ErrExecTimeout)
			},
			want: Failure, wantMsg: `Liveness probe failed: command "cat /tmp/healthy" timed out`,
		},
		{
			name: "gRPC DeadlineExceeded is a failure",
			exec: func(context.Context, string, []string, time.Duration) (int, []byte, error) {
				return 0, nil, status.Error(codes.DeadlineExceeded, "deadline")
			},
			want: Failure, wantMsg: `Liveness probe failed: command "cat /tmp/healthy" timed out`,
		},
		{
			name: "runtime error is unknown",
			exec: func(context.Context, string, []string, time.Duration) (int, []byte, error) {
				return 0, nil, errors.New("container is not running")
			},
			want: Unknown, wantMsg: `Liveness probe errored: exec in container "app": container is not running`,
		},
		{
			name: "no exec function",
			want: Unknown, wantMsg: "Liveness probe errored: exec probes are not supported here",
		},
		{
			name: "no container ID",
			exec: func(context.Context, string, []string, time.Duration) (int, []byte, error) {
				return 0, nil, nil
			},
			id:   "-",
			want: Unknown, wantMsg: `Liveness probe errored: container "app" has no container ID`,
		},
		{
			name: "timeout is passed on",
			exec: func(ctx context.Context, id string, cmd []string, timeout time.Duration) (int, []byte, error) {
				dl, ok := ctx.Deadline()
				if !ok || time.Until(dl) > timeout || id != "cid" || strings.Join(cmd, " ") != "cat /tmp/healthy" {
					return 1, []byte(fmt.Sprintf("bad call: %v %v %q %q", timeout, ok, id, cmd)), nil
				}
				return 0, nil, nil
			},
			want: Success,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := execProbe("cat", "/tmp/healthy")
			p.TimeoutSeconds = 3
			id := "cid"
			if tt.id == "-" {
				id = ""
			}
			tg := Target{Container: &v1.Container{Name: "app"}, ContainerID: id, Exec: tt.exec}
			got, msg := Run(context.Background(), Liveness, p, tg)
			if got != tt.want || msg != tt.wantMsg {
				t.Fatalf("Run = %v, %q; want %v, %q", got, msg, tt.want, tt.wantMsg)
			}
		})
	}
}

func TestRunExecCancelledIsUnknown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	exec := func(ctx context.Context, _ string, _ []string, _ time.Duration) (int, []byte, error) {
		cancel()
		<-ctx.Done()
		return 0, nil, ctx.Err()
	}
	got, msg := Run(ctx, Readiness, execProbe("true"), Target{ContainerID: "c", Exec: exec})
	if got != Unknown || !strings.HasPrefix(msg, "Readiness probe errored: ") {
		t.Fatalf("Run = %v, %q; want Unknown", got, msg)
	}
}

func TestRunWithoutHandler(t *testing.T) {
	got, msg := Run(context.Background(), Startup, &v1.Probe{}, Target{Container: &v1.Container{Name: "app"}})
	if got != Unknown || msg != `Startup probe errored: missing probe handler for container "app"` {
		t.Fatalf("Run = %v, %q", got, msg)
	}
}

func TestRunTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	openPort := ln.Addr().(*net.TCPAddr).Port
	closedPort := closedTCPPort(t)

	c := &v1.Container{Name: "app", Ports: []v1.ContainerPort{{Name: "svc", ContainerPort: int32(openPort)}}}
	tcp := func(host string, port intstr.IntOrString) *v1.Probe {
		return &v1.Probe{ProbeHandler: v1.ProbeHandler{TCPSocket: &v1.TCPSocketAction{Host: host, Port: port}}}
	}
	tests := []struct {
		name    string
		probe   *v1.Probe
		podIP   string
		want    Result
		wantMsg string
	}{
		{"open port via pod IP", tcp("", intstr.FromInt32(int32(openPort))), "127.0.0.1", Success, ""},
		{"named port", tcp("", intstr.FromString("svc")), "127.0.0.1", Success, ""},
		{"host overrides pod IP", tcp("127.0.0.1", intstr.FromInt32(int32(openPort))), "192.0.2.1", Success, ""},
		{"closed port", tcp("", intstr.FromInt32(int32(closedPort))), "127.0.0.1", Failure,
			fmt.Sprintf("Readiness probe failed: dial tcp 127.0.0.1:%d: connect: connection refused", closedPort)},
		{"no pod IP", tcp("", intstr.FromInt32(80)), "", Unknown, "Readiness probe errored: pod  has no IP address"},
		{"unknown port name", tcp("", intstr.FromString("nope")), "127.0.0.1", Unknown,
			`Readiness probe errored: port "nope" not found in container "app"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, msg := Run(context.Background(), Readiness, tt.probe, Target{PodIP: tt.podIP, Container: c})
			if got != tt.want || msg != tt.wantMsg {
				t.Fatalf("Run = %v, %q; want %v, %q", got, msg, tt.want, tt.wantMsg)
			}
		})
	}
}

// closedTCPPort returns a loopback port nothing listens on.
func closedTCPPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return port
}

func TestResultAndKindStrings(t *testing.T) {
	for v, want := range map[fmt.Stringer]string{
		Success: "Success", Failure: "Failure", Unknown: "Unknown",
		Liveness: "Liveness", Readiness: "Readiness", Startup: "Startup",
	} {
		if v.String() != want {
			t.Errorf("%#v.String() = %q, want %q", v, v.String(), want)
		}
	}
}
