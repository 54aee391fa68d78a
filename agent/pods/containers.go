package pods

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/agent/prober"
)

// runInitContainers advances the init containers. done is true once every
// one of them finished successfully (or, for sidecars, is running).
func (m *Manager) runInitContainers(ctx context.Context, w *worker, pc *podContext, rt *podRuntime) (bool, time.Duration) {
	pod := pc.pod
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		if isSidecar(c) {
			d, _ := m.syncContainer(ctx, w, pc, rt, c, true)
			if l := rt.latest(c.Name); l == nil || l.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
				return false, minPositive(d, time.Second)
			}
			continue
		}
		latest := rt.latest(c.Name)
		if latest == nil {
			if err := m.createAndStart(ctx, w, pc, rt, c, 0); err != nil {
				return false, 2 * time.Second
			}
			return false, time.Second
		}
		switch latest.State {
		case runtimeapi.ContainerState_CONTAINER_RUNNING:
			return false, 5 * time.Second
		case runtimeapi.ContainerState_CONTAINER_CREATED:
			m.startCreated(ctx, w, pc, c, latest.Id)
			return false, time.Second
		}
		st, err := m.containerStatus(ctx, latest.Id)
		if err != nil {
			return false, 2 * time.Second
		}
		if st.ExitCode == 0 {
			continue
		}
		if pod.Spec.RestartPolicy == corev1.RestartPolicyNever {
			w.terminal = true
			return false, time.Second
		}
		return false, m.restartWithBackoff(ctx, w, pc, rt, c, latest)
	}
	return true, 0
}

func isSidecar(c *corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

func minPositive(a, b time.Duration) time.Duration {
	if a > 0 && a < b {
		return a
	}
	return b
}

// syncContainer keeps one container as the spec and restart policy want.
// finished is true when the container terminated for good.
func (m *Manager) syncContainer(ctx context.Context, w *worker, pc *podContext, rt *podRuntime, c *corev1.Container, sidecar bool) (next time.Duration, finished bool) {
	pod := pc.pod
	latest := rt.latest(c.Name)
	if latest == nil {
		if err := m.createAndStart(ctx, w, pc, rt, c, 0); err != nil {
			return m.waitAfterCreateError(w, pod, c), false
		}
		return 5 * time.Second, false
	}
	switch latest.State {
	case runtimeapi.ContainerState_CONTAINER_RUNNING:
		if u, ok := w.takeUnhealthy(latest.Id); ok {
			grace := gracePeriod(pod)
			if u.GracePeriodSeconds != nil {
				grace = *u.GracePeriodSeconds
			}
			m.events.Event(pod, corev1.EventTypeNormal, "Killing", fmt.Sprintf("Container %s failed %s probe, will be restarted", c.Name, lower(u.Kind.String())))
			m.killContainer(ctx, pod, c, latest.Id, grace, false)
			return 100 * time.Millisecond, false
		}
		m.ensureProbes(w, pc, c, latest)
		return 30 * time.Second, false
	case runtimeapi.ContainerState_CONTAINER_CREATED:
		m.startCreated(ctx, w, pc, c, latest.Id)
		return time.Second, false
	}
	m.probes.Stop(pod.UID, c.Name)
	st, err := m.containerStatus(ctx, latest.Id)
	if err != nil {
		return 2 * time.Second, false
	}
	exit := st.ExitCode
	restart := sidecar || pod.Spec.RestartPolicy == corev1.RestartPolicyAlways ||
		(pod.Spec.RestartPolicy == corev1.RestartPolicyOnFailure && exit != 0)
	if !restart {
		return 0, true
	}
	return m.restartWithBackoff(ctx, w, pc, rt, c, latest), false
}

// restartWithBackoff starts the next instance of an exited container, or
// reports CrashLoopBackOff while its back-off lasts.
func (m *Manager) restartWithBackoff(ctx context.Context, w *worker, pc *podContext, rt *podRuntime, c *corev1.Container, latest *runtimeapi.Container) time.Duration {
	pod := pc.pod
	key := string(pod.UID) + "/" + c.Name
	now := m.clock.Now()
	if wait, delay, until := m.backoff.waiting(key, now); wait {
		w.setWaiting(c.Name, "CrashLoopBackOff", fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)", delay, c.Name, pod.Name, pod.Namespace, pod.UID))
		m.events.Event(pod, corev1.EventTypeWarning, "BackOff", fmt.Sprintf("Back-off restarting failed container %s in pod %s_%s(%s)", c.Name, pod.Name, pod.Namespace, pod.UID))
		return until.Sub(now)
	}
	m.backoff.failed(key, now)
	m.metrics.restarts.Inc()
	if err := m.createAndStart(ctx, w, pc, rt, c, latest.Metadata.GetAttempt()+1); err != nil {
		return m.waitAfterCreateError(w, pod, c)
	}
	return 5 * time.Second
}

func (m *Manager) waitAfterCreateError(w *worker, pod *corev1.Pod, c *corev1.Container) time.Duration {
	if wait, _, until := m.backoff.waiting(string(pod.UID)+"/image/"+c.Image, m.clock.Now()); wait {
		return until.Sub(m.clock.Now())
	}
	return 2 * time.Second
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 32
		}
	}
	return string(b)
}

// createAndStart pulls the image if needed, creates and starts one
// instance of a container, runs its postStart hook and starts its probes.
func (m *Manager) createAndStart(ctx context.Context, w *worker, pc *podContext, rt *podRuntime, c *corev1.Container, attempt uint32) error {
	pod := pc.pod
	imageRef, err := m.ensureImage(ctx, w, pod, c)
	if err != nil {
		return err
	}
	cfg, err := m.containerConfig(ctx, pc, c, attempt, imageRef)
	if err != nil {
		w.setWaiting(c.Name, "CreateContainerConfigError", err.Error())
		m.events.Event(pod, corev1.EventTypeWarning, "Failed", "Error: "+err.Error())
		return err
	}
	resp, err := m.cfg.Runtime.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
		PodSandboxId: pc.sandboxID, Config: cfg, SandboxConfig: pc.sandboxConfig,
	})
	if err != nil {
		w.setWaiting(c.Name, "CreateContainerError", err.Error())
		m.events.Event(pod, corev1.EventTypeWarning, "Failed", "Error: "+err.Error())
		return err
	}
	m.events.Event(pod, corev1.EventTypeNormal, "Created", "Created container: "+c.Name)
	// Keep one exited instance (for logs --previous); older ones go.
	for _, old := range rt.containers[c.Name] {
		if old.Metadata.GetAttempt()+1 < attempt {
			_, _ = m.cfg.Runtime.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: old.Id})
		}
	}
	m.startCreated(ctx, w, pc, c, resp.ContainerId)
	return nil
}

// startCreated starts a created container, then its postStart hook and
// probes.
func (m *Manager) startCreated(ctx context.Context, w *worker, pc *podContext, c *corev1.Container, id string) {
	pod := pc.pod
	if _, err := m.cfg.Runtime.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: id}); err != nil {
		m.metrics.startErrors.WithLabelValues("RunContainerError").Inc()
		w.setWaiting(c.Name, "RunContainerError", err.Error())
		m.events.Event(pod, corev1.EventTypeWarning, "Failed", "Error: "+err.Error())
		return
	}
	w.setWaiting(c.Name, "", "")
	m.metrics.startedContainers.Inc()
	m.events.Event(pod, corev1.EventTypeNormal, "Started", "Started container "+c.Name)
	target := m.probeTarget(pc, c, id)
	if c.Lifecycle != nil && c.Lifecycle.PostStart != nil {
		hctx, cancel := context.WithTimeout(ctx, time.Duration(gracePeriod(pod)+30)*time.Second)
		err := prober.RunHandler(hctx, c.Lifecycle.PostStart, target)
		cancel()
		if err != nil {
			m.events.Event(pod, corev1.EventTypeWarning, "FailedPostStartHook", err.Error())
			m.killContainer(ctx, pod, c, id, gracePeriod(pod), false)
			return
		}
	}
	m.probes.Start(pod, c, id, m.clock.Now(), target)
	w.markProbed(id)
}

// ensureProbes starts probe workers for a running container found in the
// runtime (adopted after an agent restart).
func (m *Manager) ensureProbes(w *worker, pc *podContext, c *corev1.Container, ctr *runtimeapi.Container) {
	if w.probed(ctr.Id) {
		return
	}
	started := time.Unix(0, ctr.CreatedAt)
	m.probes.Start(pc.pod, c, ctr.Id, started, m.probeTarget(pc, c, ctr.Id))
	w.markProbed(ctr.Id)
}

func (m *Manager) probeTarget(pc *podContext, c *corev1.Container, id string) prober.Target {
	ip := ""
	if len(pc.podIPs) > 0 {
		ip = pc.podIPs[0]
	}
	return prober.Target{PodIP: ip, Pod: pc.pod, Container: c, ContainerID: id, Exec: m.execSync}
}

// execSync runs a command in a container through CRI.
func (m *Manager) execSync(ctx context.Context, id string, cmd []string, timeout time.Duration) (int, []byte, error) {
	secs := int64(timeout / time.Second)
	if secs < 1 {
		secs = 1
	}
	resp, err := m.cfg.Runtime.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: cmd, Timeout: secs})
	if err != nil {
		return -1, nil, err
	}
	out := append(resp.Stdout, resp.Stderr...)
	return int(resp.ExitCode), out, nil
}

func (m *Manager) containerStatus(ctx context.Context, id string) (*runtimeapi.ContainerStatus, error) {
	resp, err := m.cfg.Runtime.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id})
	if err != nil {
		return nil, err
	}
	return resp.Status, nil
}

// killContainer runs the preStop hook (if hook), then stops the container
// with what is left of the grace period: SIGTERM, then SIGKILL.
func (m *Manager) killContainer(ctx context.Context, pod *corev1.Pod, c *corev1.Container, id string, grace int64, hook bool) {
	start := m.clock.Now()
	if hook && pod != nil && c != nil && c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
		hctx, cancel := context.WithTimeout(ctx, time.Duration(grace)*time.Second)
		ip := ""
		if len(pod.Status.PodIPs) > 0 {
			ip = pod.Status.PodIPs[0].IP
		}
		err := prober.RunHandler(hctx, c.Lifecycle.PreStop, prober.Target{PodIP: ip, Pod: pod, Container: c, ContainerID: id, Exec: m.execSync})
		cancel()
		if err != nil {
			m.events.Event(pod, corev1.EventTypeWarning, "FailedPreStopHook", err.Error())
		}
	}
	left := grace - int64(m.clock.Since(start)/time.Second)
	if left < 2 && grace > 0 {
		left = 2
	}
	if pod != nil && c != nil {
		m.events.Event(pod, corev1.EventTypeNormal, "Killing", "Stopping container "+c.Name)
	}
	if _, err := m.cfg.Runtime.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: left}); err != nil {
		m.log.Warn("stopping container", "id", id, "err", err)
	}
}

// stopPodContainers stops every running container of the pod at once,
// each with its preStop hook.
func (m *Manager) stopPodContainers(ctx context.Context, w *worker, pod *corev1.Pod, rt *podRuntime, grace int64) {
	var wg sync.WaitGroup
	for name, list := range rt.containers {
		for _, ctr := range list {
			if ctr.State != runtimeapi.ContainerState_CONTAINER_RUNNING && ctr.State != runtimeapi.ContainerState_CONTAINER_CREATED {
				continue
			}
			spec := findContainer(pod, name)
			wg.Add(1)
			go func(id string) {
				defer wg.Done()
				m.killContainer(ctx, pod, spec, id, grace, true)
			}(ctr.Id)
		}
	}
	wg.Wait()
	if pod != nil {
		m.probes.StopPod(pod.UID)
	}
}

func findContainer(pod *corev1.Pod, name string) *corev1.Container {
	if pod == nil {
		return nil
	}
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			return &pod.Spec.Containers[i]
		}
	}
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return &pod.Spec.InitContainers[i]
		}
	}
	return nil
}

// stopSandboxes stops (but keeps) the pod's ready sandboxes, releasing
// their network.
func (m *Manager) stopSandboxes(ctx context.Context, rt *podRuntime) {
	for _, sb := range rt.sandboxes {
		if sb.State == runtimeapi.PodSandboxState_SANDBOX_READY {
			if _, err := m.cfg.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: sb.Id}); err != nil {
				m.log.Warn("stopping sandbox", "id", sb.Id, "err", err)
			}
		}
	}
}

// removeSandbox stops and removes a sandbox with its containers.
func (m *Manager) removeSandbox(ctx context.Context, id string) error {
	if _, err := m.cfg.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
		return fmt.Errorf("stopping sandbox %s: %w", id, err)
	}
	if _, err := m.cfg.Runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
		return fmt.Errorf("removing sandbox %s: %w", id, err)
	}
	return nil
}
