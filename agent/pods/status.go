package pods

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/agent/images"
)

func everything() labels.Selector { return labels.Everything() }

// writeStatus computes the pod's status and writes it if it changed.
func (m *Manager) writeStatus(ctx context.Context, w *worker, pod *corev1.Pod, rt *podRuntime) {
	if rt == nil {
		return
	}
	st := m.computeStatus(ctx, w, pod, rt)
	if apiequality.Semantic.DeepEqual(&pod.Status, st) {
		return
	}
	if w.lastStatus != nil && apiequality.Semantic.DeepEqual(w.lastStatus, st) && w.ownWrite(pod.ResourceVersion) {
		return
	}
	cp := pod.DeepCopy()
	cp.Status = *st
	updated, err := m.cfg.Client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, cp, metav1.UpdateOptions{})
	if err != nil {
		if !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) && ctx.Err() == nil {
			m.log.Warn("writing pod status", "pod", pod.Namespace+"/"+pod.Name, "err", err)
		}
		return
	}
	w.lastStatus = st
	w.wrote(updated.ResourceVersion)
	if st.Phase == corev1.PodRunning && !w.reportedRunning {
		w.reportedRunning = true
		if !w.startTime.IsZero() {
			m.metrics.podStart.Observe(m.clock.Since(w.startTime).Seconds())
		}
	}
}

// seconds truncates a time as the API stores it.
func seconds(t time.Time) metav1.Time { return metav1.NewTime(t.Truncate(time.Second)) }

func fromNanos(ns int64) metav1.Time {
	if ns == 0 {
		return metav1.Time{}
	}
	return seconds(time.Unix(0, ns))
}

// computeStatus derives the pod status from the runtime, the probes and
// the worker's notes, as Kubernetes reports it.
func (m *Manager) computeStatus(ctx context.Context, w *worker, pod *corev1.Pod, rt *podRuntime) *corev1.PodStatus {
	st := pod.Status.DeepCopy()
	now := seconds(m.clock.Now())
	st.HostIP, st.HostIPs = "", nil
	for _, a := range m.cfg.NodeIPs {
		if st.HostIP == "" {
			st.HostIP = a.String()
		}
		st.HostIPs = append(st.HostIPs, corev1.HostIP{IP: a.String()})
	}
	if sb := rt.readySandbox(); sb != nil {
		if ips, err := m.sandboxIPs(ctx, sb.Id, pod); err == nil && len(ips) > 0 {
			st.PodIP = ips[0]
			st.PodIPs = nil
			for _, ip := range ips {
				st.PodIPs = append(st.PodIPs, corev1.PodIP{IP: ip})
			}
		}
	}
	if !w.startTime.IsZero() {
		t := seconds(w.startTime)
		st.StartTime = &t
	}

	mainStarted := rt.anyMainStarted(pod)
	initDone := true
	var incompleteInit []string
	st.InitContainerStatuses = nil
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		cs := m.containerStatusFor(ctx, w, pod, c, rt, "PodInitializing")
		if !mainStarted {
			done := cs.State.Terminated != nil && cs.State.Terminated.ExitCode == 0
			if isSidecar(c) {
				done = cs.State.Running != nil
			}
			if !done {
				initDone = false
				incompleteInit = append(incompleteInit, c.Name)
			}
		}
		st.InitContainerStatuses = append(st.InitContainerStatuses, cs)
	}
	st.ContainerStatuses = nil
	var unready []string
	fresh, running, restarting, okCount, failCount := 0, 0, 0, 0, 0
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		waitReason := "ContainerCreating"
		if !initDone {
			waitReason = "PodInitializing"
		}
		cs := m.containerStatusFor(ctx, w, pod, c, rt, waitReason)
		st.ContainerStatuses = append(st.ContainerStatuses, cs)
		if !cs.Ready {
			unready = append(unready, c.Name)
		}
		switch {
		case cs.State.Running != nil:
			running++
		case cs.State.Terminated != nil && cs.State.Terminated.ExitCode == 0:
			okCount++
		case cs.State.Terminated != nil:
			failCount++
		case cs.LastTerminationState.Terminated != nil:
			restarting++
		default:
			fresh++
		}
	}

	switch {
	case w.terminal && !initDone:
		st.Phase = corev1.PodFailed
	case w.terminal || isTerminal(pod):
		if failCount == 0 && okCount == len(pod.Spec.Containers) {
			st.Phase = corev1.PodSucceeded
		} else {
			st.Phase = corev1.PodFailed
		}
	case !initDone || fresh > 0:
		st.Phase = corev1.PodPending
	default:
		st.Phase = corev1.PodRunning
	}
	// Once terminal, a pod never goes back.
	if isTerminal(pod) {
		st.Phase = pod.Status.Phase
	}

	terminal := st.Phase == corev1.PodSucceeded || st.Phase == corev1.PodFailed
	setCondition(st, corev1.PodReadyToStartContainers, rt.readySandbox() != nil, "", "", now)
	if initDone {
		setCondition(st, corev1.PodInitialized, true, "", "", now)
	} else {
		setCondition(st, corev1.PodInitialized, false, "ContainersNotInitialized",
			fmt.Sprintf("containers with incomplete status: [%s]", strings.Join(incompleteInit, " ")), now)
	}
	switch {
	case terminal:
		setCondition(st, corev1.ContainersReady, false, "PodCompleted", "", now)
		setCondition(st, corev1.PodReady, false, "PodCompleted", "", now)
	case len(unready) == 0:
		setCondition(st, corev1.ContainersReady, true, "", "", now)
		ready, msg := readinessGates(pod, st)
		if ready {
			setCondition(st, corev1.PodReady, true, "", "", now)
		} else {
			setCondition(st, corev1.PodReady, false, "ReadinessGatesNotReady", msg, now)
		}
	default:
		msg := fmt.Sprintf("containers with unready status: [%s]", strings.Join(unready, " "))
		setCondition(st, corev1.ContainersReady, false, "ContainersNotReady", msg, now)
		setCondition(st, corev1.PodReady, false, "ContainersNotReady", msg, now)
	}
	return st
}

// readinessGates checks the pod's extra readiness conditions.
func readinessGates(pod *corev1.Pod, st *corev1.PodStatus) (bool, string) {
	var missing []string
	for _, g := range pod.Spec.ReadinessGates {
		ok := false
		for _, c := range st.Conditions {
			if c.Type == g.ConditionType && c.Status == corev1.ConditionTrue {
				ok = true
			}
		}
		if !ok {
			missing = append(missing, string(g.ConditionType))
		}
	}
	if len(missing) == 0 {
		return true, ""
	}
	return false, fmt.Sprintf("corresponding condition of pod readiness gate %q does not exist.", missing[0])
}

// setCondition sets a condition, keeping its transition time when its
// status does not change.
func setCondition(st *corev1.PodStatus, t corev1.PodConditionType, ok bool, reason, msg string, now metav1.Time) {
	status := corev1.ConditionFalse
	if ok {
		status = corev1.ConditionTrue
	}
	for i := range st.Conditions {
		c := &st.Conditions[i]
		if c.Type != t {
			continue
		}
		if c.Status != status {
			c.LastTransitionTime = now
		}
		c.Status, c.Reason, c.Message = status, reason, msg
		c.LastProbeTime = metav1.Time{}
		return
	}
	st.Conditions = append(st.Conditions, corev1.PodCondition{Type: t, Status: status, Reason: reason, Message: msg, LastTransitionTime: now})
	sort.SliceStable(st.Conditions, func(i, j int) bool {
		return conditionOrder(st.Conditions[i].Type) < conditionOrder(st.Conditions[j].Type)
	})
}

func conditionOrder(t corev1.PodConditionType) int {
	switch t {
	case corev1.PodReadyToStartContainers:
		return 0
	case corev1.PodInitialized:
		return 1
	case corev1.PodReady:
		return 2
	case corev1.ContainersReady:
		return 3
	case corev1.PodScheduled:
		return 4
	}
	return 5
}

// containerStatusFor reports one container from its newest two instances.
func (m *Manager) containerStatusFor(ctx context.Context, w *worker, pod *corev1.Pod, c *corev1.Container, rt *podRuntime, waitReason string) corev1.ContainerStatus {
	cs := corev1.ContainerStatus{Name: c.Name, Image: images.NormalizeRef(c.Image)}
	list := rt.containers[c.Name]
	f := false
	cs.Started = &f
	if len(list) == 0 {
		reason, msg := waitReason, ""
		if wr, ok := w.getWaiting(c.Name); ok {
			reason, msg = wr.reason, wr.message
		}
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: reason, Message: msg}
		return cs
	}
	latest := list[0]
	cs.RestartCount = int32(latest.Metadata.GetAttempt())
	cs.ContainerID = "containerd://" + latest.Id
	cs.ImageID = latest.ImageRef
	s, err := m.containerStatus(ctx, latest.Id)
	if err != nil {
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerStatusUnknown", Message: err.Error()}
		return cs
	}
	if s.ImageRef != "" {
		cs.ImageID = s.ImageRef
	}
	switch s.State {
	case runtimeapi.ContainerState_CONTAINER_RUNNING:
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: fromNanos(s.StartedAt)}
		started := m.probes.Started(pod.UID, c.Name)
		cs.Started = &started
		cs.Ready = started && m.probes.Ready(pod.UID, c.Name)
	case runtimeapi.ContainerState_CONTAINER_CREATED:
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
	default:
		term := m.terminated(pod, c, s)
		if wr, ok := w.getWaiting(c.Name); ok {
			// Waiting to be restarted (back-off, image, config errors).
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: wr.reason, Message: wr.message}
			cs.LastTerminationState.Terminated = term
			return cs
		}
		cs.State.Terminated = term
	}
	if len(list) > 1 && cs.LastTerminationState.Terminated == nil {
		if prev, err := m.containerStatus(ctx, list[1].Id); err == nil && prev.State == runtimeapi.ContainerState_CONTAINER_EXITED {
			cs.LastTerminationState.Terminated = m.terminated(pod, c, prev)
		}
	}
	return cs
}

// terminated reports an exited container instance.
func (m *Manager) terminated(pod *corev1.Pod, c *corev1.Container, s *runtimeapi.ContainerStatus) *corev1.ContainerStateTerminated {
	reason := s.Reason
	if reason == "" {
		reason = "Error"
		if s.ExitCode == 0 {
			reason = "Completed"
		}
	}
	msg := s.Message
	if attempt := s.Metadata.GetAttempt(); msg == "" {
		path := m.terminationLogPath(pod, c.Name, attempt)
		if b, err := readLimited(path, 4096); err == nil {
			msg = string(b)
		}
		if msg == "" && s.ExitCode != 0 && c.TerminationMessagePolicy == corev1.TerminationMessageFallbackToLogsOnError && s.LogPath != "" {
			msg = tailLog(s.LogPath, 80, 2048)
		}
	}
	return &corev1.ContainerStateTerminated{
		ExitCode:    s.ExitCode,
		Reason:      reason,
		Message:     msg,
		StartedAt:   fromNanos(s.StartedAt),
		FinishedAt:  fromNanos(s.FinishedAt),
		ContainerID: "containerd://" + s.Id,
	}
}

func (m *Manager) terminationLogPath(pod *corev1.Pod, name string, attempt uint32) string {
	return fmt.Sprintf("%s/%s/containers/%s/termination-log-%d", m.cfg.PodDir, pod.UID, name, attempt)
}

func readLimited(path string, n int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, n)
	k, _ := f.Read(buf)
	return buf[:k], nil
}

// tailLog returns the last lines of a CRI log file, message parts only.
func tailLog(path string, lines, max int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	var b strings.Builder
	for _, l := range all {
		// <time> <stream> <P|F> <content>
		parts := strings.SplitN(l, " ", 4)
		if len(parts) == 4 {
			b.WriteString(parts[3])
			if parts[2] == "F" {
				b.WriteByte('\n')
			}
		}
	}
	out := b.String()
	if len(out) > max {
		out = out[len(out)-max:]
	}
	return out
}
