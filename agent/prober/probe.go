package prober

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// outcome is the raw result of one probe action before it is worded for
// an event: err set means the probe could not run (Unknown).
type outcome struct {
	result  Result
	warning bool
	output  string
	err     error
}

func succeeded() outcome                  { return outcome{result: Success} }
func failed(msg string) outcome           { return outcome{result: Failure, output: msg} }
func errored(err error) outcome           { return outcome{result: Unknown, err: err} }
func warned(msg string) outcome           { return outcome{result: Success, warning: true, output: msg} }
func erroredf(f string, a ...any) outcome { return errored(fmt.Errorf(f, a...)) }

// Run performs one probe attempt with the probe's timeoutSeconds (default
// 1) and returns its result and the message the kubelet puts in its
// events: "<Kind> probe failed: <output>" for a failure, "<Kind> probe
// errored: <error>" when the probe could not run (Unknown), "<Kind> probe
// warning: <output>" for a success with a warning (a redirect the probe
// did not follow) and "" for a plain success.
func Run(ctx context.Context, kind Kind, p *v1.Probe, t Target) (Result, string) {
	if p == nil {
		return Unknown, fmt.Sprintf("%s probe errored: no probe", kind)
	}
	o := runHandler(ctx, &p.ProbeHandler, t, probeTimeout(p))
	switch {
	case o.err != nil:
		return Unknown, fmt.Sprintf("%s probe errored: %v", kind, o.err)
	case o.result == Failure:
		return Failure, fmt.Sprintf("%s probe failed: %s", kind, o.output)
	case o.warning:
		return Success, fmt.Sprintf("%s probe warning: %s", kind, o.output)
	}
	return o.result, ""
}

func probeTimeout(p *v1.Probe) time.Duration {
	if p.TimeoutSeconds <= 0 {
		return time.Second
	}
	return time.Duration(p.TimeoutSeconds) * time.Second
}

func runHandler(ctx context.Context, h *v1.ProbeHandler, t Target, timeout time.Duration) outcome {
	switch {
	case h.Exec != nil:
		return probeExec(ctx, h.Exec.Command, t, timeout)
	case h.HTTPGet != nil:
		return probeHTTP(ctx, h.HTTPGet, t, timeout)
	case h.TCPSocket != nil:
		return probeTCP(ctx, h.TCPSocket, t, timeout)
	case h.GRPC != nil:
		return probeGRPC(ctx, h.GRPC, t, timeout)
	}
	return erroredf("missing probe handler for container %q", containerName(t))
}

// probeExec runs the command through t.Exec: exit code 0 passes, any
// other fails with the command's output as the message, and running past
// the timeout fails.
func probeExec(ctx context.Context, cmd []string, t Target, timeout time.Duration) outcome {
	if t.Exec == nil {
		return erroredf("exec probes are not supported here")
	}
	if t.ContainerID == "" {
		return erroredf("container %q has no container ID", containerName(t))
	}
	ectx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	code, out, err := t.Exec(ectx, t.ContainerID, cmd, timeout)
	if err != nil {
		if ctx.Err() != nil {
			return errored(fmt.Errorf("exec probe abandoned: %w", ctx.Err()))
		}
		if isTimeout(err) || ectx.Err() != nil {
			return failed(fmt.Sprintf("command %q timed out", strings.Join(cmd, " ")))
		}
		return errored(fmt.Errorf("exec in container %q: %w", containerName(t), err))
	}
	if code == 0 {
		return succeeded()
	}
	if len(out) > maxOutput {
		out = out[:maxOutput]
	}
	return failed(string(out))
}

func isTimeout(err error) bool {
	if errors.Is(err, ErrExecTimeout) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	if s, ok := status.FromError(err); ok && s.Code() == codes.DeadlineExceeded {
		return true
	}
	return false
}

// probeTCP passes when a TCP connection to the port opens.
func probeTCP(ctx context.Context, a *v1.TCPSocketAction, t Target, timeout time.Duration) outcome {
	addr, err := hostPort(a.Host, a.Port, t)
	if err != nil {
		return errored(err)
	}
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		if ctx.Err() != nil {
			return errored(fmt.Errorf("tcp probe abandoned: %w", ctx.Err()))
		}
		return failed(err.Error())
	}
	if err := conn.Close(); err != nil {
		return failed(fmt.Sprintf("close connection to %s: %v", addr, err))
	}
	return succeeded()
}

// hostPort is the dial address of an action: its host or the pod IP, and
// its port resolved against the container's named ports.
func hostPort(host string, port intstr.IntOrString, t Target) (string, error) {
	n, err := resolvePort(port, t.Container)
	if err != nil {
		return "", err
	}
	if host == "" {
		host = t.PodIP
	}
	if host == "" {
		return "", fmt.Errorf("pod %s has no IP address", podRef(t.Pod))
	}
	return net.JoinHostPort(host, strconv.Itoa(n)), nil
}

// resolvePort turns a number or a containerPort name into a port number.
// A name that matches no port but is all digits is taken as a number.
func resolvePort(p intstr.IntOrString, c *v1.Container) (int, error) {
	n := 0
	switch p.Type {
	case intstr.Int:
		n = int(p.IntVal)
	default:
		found := false
		if c != nil {
			for _, cp := range c.Ports {
				if cp.Name == p.StrVal {
					n, found = int(cp.ContainerPort), true
					break
				}
			}
		}
		if !found {
			v, err := strconv.Atoi(p.StrVal)
			if err != nil {
				cn := ""
				if c != nil {
					cn = c.Name
				}
				return 0, fmt.Errorf("port %q not found in container %q", p.StrVal, cn)
			}
			n = v
		}
	}
	if n < 1 || n > 65535 {
		return 0, fmt.Errorf("invalid port number: %d", n)
	}
	return n, nil
}

func containerName(t Target) string {
	if t.Container == nil {
		return ""
	}
	return t.Container.Name
}

// podRef names a pod as the kubelet does in its messages:
// name_namespace(uid).
func podRef(p *v1.Pod) string {
	if p == nil {
		return ""
	}
	return fmt.Sprintf("%s_%s(%s)", p.Name, p.Namespace, p.UID)
}
