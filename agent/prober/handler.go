package prober

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
)

// RunHandler runs a lifecycle hook (postStart or preStop) to completion or
// until ctx ends. The returned error's text is the message of the
// kubelet's FailedPostStartHook/FailedPreStopHook events, e.g.
//
//	Exec lifecycle hook ([sh -c exit 3]) for Container "app" in Pod "web_default(uid)" failed - error: command 'sh -c exit 3' exited with 3: , message: ""
//
// exec runs through t.Exec without a timeout of its own (ctx bounds it)
// and fails on a non-zero exit code. httpGet fails only when the request
// cannot be made or answered; as with the kubelet, the status code is not
// checked. tcpSocket is not supported by Kubernetes for hooks and is
// ignored (nil). sleep waits its seconds and fails if ctx ends first.
func RunHandler(ctx context.Context, h *v1.LifecycleHandler, t Target) error {
	if h == nil {
		return nil
	}
	switch {
	case h.Exec != nil:
		out, err := execHook(ctx, h.Exec.Command, t)
		if err != nil {
			return fmt.Errorf("Exec lifecycle hook (%v) for Container %q in Pod %q failed - error: %w, message: %q",
				h.Exec.Command, containerName(t), podRef(t.Pod), err, out)
		}
		return nil
	case h.HTTPGet != nil:
		if err := httpHook(ctx, h.HTTPGet, t); err != nil {
			return fmt.Errorf("HTTP lifecycle hook (%s) for Container %q in Pod %q failed - error: %w",
				h.HTTPGet.Path, containerName(t), podRef(t.Pod), err)
		}
		return nil
	case h.TCPSocket != nil:
		// Deprecated and never implemented by Kubernetes: a no-op.
		return nil
	case h.Sleep != nil:
		if err := sleepHook(ctx, h.Sleep.Seconds); err != nil {
			return fmt.Errorf("Sleep lifecycle hook (%d) for Container %q in Pod %q failed - error: %w",
				h.Sleep.Seconds, containerName(t), podRef(t.Pod), err)
		}
		return nil
	}
	return fmt.Errorf("invalid lifecycle hook for Container %q in Pod %q: no action", containerName(t), podRef(t.Pod))
}

// IgnoredHook says why RunHandler does nothing for a hook (a tcpSocket
// hook), so the caller can warn about it; "" when the hook runs.
func IgnoredHook(h *v1.LifecycleHandler) string {
	if h != nil && h.TCPSocket != nil && h.Exec == nil && h.HTTPGet == nil && h.Sleep == nil {
		return "tcpSocket lifecycle hooks are not supported and were ignored"
	}
	return ""
}

func execHook(ctx context.Context, cmd []string, t Target) (string, error) {
	if t.Exec == nil {
		return "", fmt.Errorf("exec hooks are not supported here")
	}
	if t.ContainerID == "" {
		return "", fmt.Errorf("container has no container ID")
	}
	code, out, err := t.Exec(ctx, t.ContainerID, cmd, 0)
	if len(out) > maxOutput {
		out = out[:maxOutput]
	}
	if err != nil {
		return string(out), err
	}
	if code != 0 {
		return string(out), fmt.Errorf("command '%s' exited with %d: %s", strings.Join(cmd, " "), code, out)
	}
	return string(out), nil
}

func httpHook(ctx context.Context, g *v1.HTTPGetAction, t Target) error {
	req, err := newHTTPRequest(ctx, g, t, "kube-lifecycle/"+KubeletVersion)
	if err != nil {
		return err
	}
	client, done := newHTTPClient(0)
	defer done()
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if _, err := io.Copy(io.Discard, io.LimitReader(resp.Body, maxOutput)); err != nil {
		return fmt.Errorf("read response of %s: %w", req.URL, err)
	}
	return nil
}

func sleepHook(ctx context.Context, seconds int64) error {
	if seconds <= 0 {
		return nil
	}
	timer := time.NewTimer(time.Duration(seconds) * time.Second)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("container terminated before sleep hook finished: %w", ctx.Err())
	}
}
