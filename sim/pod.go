package sim

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Annotations that steer a simulated pod.
const (
	// AnnotationExitCode makes the containers of a pod that can terminate
	// (restartPolicy Never or OnFailure) exit with this code; default 0.
	AnnotationExitCode = "sim.skiff.dev/exit-code"
	// AnnotationRunSeconds is how long, in seconds (fractions allowed),
	// those containers run before they exit; default Options.RunDuration.
	AnnotationRunSeconds = "sim.skiff.dev/run-seconds"
)

// The life of a pod on a simulated node. Every arrow is one status write,
// decided by planPod from the pod as stored and the time; timestamps are
// to the second, as the API stores them.
//
//	bound to a sim node (spec.nodeName)
//	    │
//	    ├── StartupDelay > 0 ──> Pending, ContainerCreating ──(startTime + StartupDelay)──┐
//	    │                                                                                 v
//	    └───────────────────────────────────────────────────────────────────────────> Running, Ready
//	                                                                                      │
//	            restartPolicy Always: runs until deleted                                  │
//	            Never/OnFailure: containers exit after run-seconds ───────────────────────┤
//	                                                                                      │
//	     exit 0 ──> Succeeded            exit N, Never ──> Failed                         │
//	     exit N, OnFailure ──> Running, CrashLoopBackOff (restartCount+1) ──(backoff)──> Running
//
//	deletionTimestamp set, at any point: after TerminationDelay (at most the grace
//	period) the containers are stopped (exit 143, Failed) and then the deletion is
//	confirmed with grace period 0; a pod that never started is deleted at once.

// timing is the part of Options the pod lifecycle reads.
type timing struct {
	startup, run, restartBackoff, termination time.Duration
}

func timingOf(o Options) timing {
	return timing{startup: o.StartupDelay, run: o.RunDuration, restartBackoff: o.RestartBackoff, termination: o.TerminationDelay}
}

// maxRestartBackoff caps CrashLoopBackOff, as a kubelet's five minutes.
const maxRestartBackoff = 5 * time.Minute

// minWait is the shortest "look again" a plan asks for.
const minWait = 10 * time.Millisecond

// exitCodeKilled is what a container stopped by SIGTERM exits with.
const exitCodeKilled = 143

// podPlan is what the node does next about one pod.
type podPlan struct {
	// status, if set, is the pod's new status.
	status *corev1.PodStatus
	// delete confirms a graceful deletion (grace period 0).
	delete bool
	// after, if positive, is when to look at the pod again without an event.
	after time.Duration
}

// planPod decides the next step for pod, bound to node, at now. podIP is
// the pod's address on the node (needed only when it starts).
func planPod(pod *corev1.Pod, node simNode, podIP string, now time.Time, t timing) podPlan {
	if pod.DeletionTimestamp != nil {
		return planDeletion(pod, now, t)
	}
	st := &pod.Status
	if st.Phase == corev1.PodSucceeded || st.Phase == corev1.PodFailed {
		return podPlan{}
	}
	stamp := metav1.NewTime(now.Truncate(time.Second))
	switch {
	case st.StartTime == nil && t.startup > 0:
		return podPlan{status: creatingStatus(pod, node, podIP, stamp), after: t.startup}
	case st.StartTime == nil:
		return startPlan(pod, node, podIP, stamp, stamp, now, t)
	case st.Phase != corev1.PodRunning:
		at := st.StartTime.Add(t.startup)
		if now.Before(at) {
			return podPlan{after: at.Sub(now)}
		}
		return startPlan(pod, node, podIP, *st.StartTime, stamp, now, t)
	case pod.Spec.RestartPolicy == corev1.RestartPolicyAlways || len(st.ContainerStatuses) == 0:
		return podPlan{} // runs until deleted
	}
	cs := st.ContainerStatuses[0]
	switch {
	case cs.State.Running != nil:
		end := cs.State.Running.StartedAt.Add(runFor(pod, t))
		if now.Before(end) {
			return podPlan{after: end.Sub(now)}
		}
		return exitPlan(pod, exitCode(pod), stamp, t)
	case cs.State.Waiting != nil && cs.LastTerminationState.Terminated != nil:
		at := cs.LastTerminationState.Terminated.FinishedAt.Add(restartBackoff(cs.RestartCount, t))
		if now.Before(at) {
			return podPlan{after: at.Sub(now)}
		}
		s := runningStatus(pod, stamp, cs.RestartCount, cs.LastTerminationState)
		return podPlan{status: s, after: max(runFor(pod, t), minWait)}
	}
	return podPlan{}
}

// startPlan starts the containers at stamp; a pod that can terminate is
// looked at again when its containers are due to exit.
func startPlan(pod *corev1.Pod, node simNode, podIP string, startTime, stamp metav1.Time, now time.Time, t timing) podPlan {
	s := runningStatus(pod, stamp, 0, corev1.ContainerState{})
	setPlacement(s, node, podIP, startTime)
	p := podPlan{status: s}
	if pod.Spec.RestartPolicy != corev1.RestartPolicyAlways {
		// At least a moment: the start itself must be written first.
		p.after = max(stamp.Add(runFor(pod, t)).Sub(now), minWait)
	}
	return p
}

// exitPlan is the containers exiting with code at stamp.
func exitPlan(pod *corev1.Pod, code int32, stamp metav1.Time, t timing) podPlan {
	started := stamp
	if cs := pod.Status.ContainerStatuses; len(cs) > 0 && cs[0].State.Running != nil {
		started = cs[0].State.Running.StartedAt
	}
	reason := "Completed"
	if code != 0 {
		reason = "Error"
	}
	term := corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
		ExitCode: code, Reason: reason, StartedAt: started, FinishedAt: stamp,
	}}
	if code != 0 && pod.Spec.RestartPolicy == corev1.RestartPolicyOnFailure {
		restarts := int32(0)
		if cs := pod.Status.ContainerStatuses; len(cs) > 0 {
			restarts = cs[0].RestartCount
		}
		restarts++
		s := crashLoopStatus(pod, restarts, term, restartBackoff(restarts, t))
		return podPlan{status: s, after: restartBackoff(restarts, t)}
	}
	phase := corev1.PodSucceeded
	if code != 0 {
		phase = corev1.PodFailed
	}
	return podPlan{status: terminatedStatus(pod, phase, term, stamp)}
}

// planDeletion stops the containers of a pod being deleted once the node
// has had TerminationDelay (capped at the grace period) to do so, then
// confirms the deletion.
func planDeletion(pod *corev1.Pod, now time.Time, t timing) podPlan {
	deadline := pod.DeletionTimestamp.Time
	var grace time.Duration
	if g := pod.DeletionGracePeriodSeconds; g != nil {
		grace = time.Duration(*g) * time.Second
	}
	stopAt := deadline.Add(-grace).Add(t.termination)
	if stopAt.After(deadline) {
		stopAt = deadline
	}
	if now.Before(stopAt) {
		return podPlan{after: stopAt.Sub(now)}
	}
	st := &pod.Status
	if st.StartTime != nil && st.Phase != corev1.PodSucceeded && st.Phase != corev1.PodFailed {
		stamp := metav1.NewTime(now.Truncate(time.Second))
		started := stamp
		if cs := st.ContainerStatuses; len(cs) > 0 && cs[0].State.Running != nil {
			started = cs[0].State.Running.StartedAt
		}
		term := corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: exitCodeKilled, Reason: "Error", StartedAt: started, FinishedAt: stamp,
		}}
		return podPlan{status: terminatedStatus(pod, corev1.PodFailed, term, stamp)}
	}
	return podPlan{delete: true}
}

// exitCode is the code the pod's containers exit with: the annotation's,
// or 0 when it is absent or not a number.
func exitCode(pod *corev1.Pod) int32 {
	n, err := strconv.ParseInt(strings.TrimSpace(pod.Annotations[AnnotationExitCode]), 10, 32)
	if err != nil {
		return 0
	}
	return int32(n)
}

// runFor is how long the pod's containers run before they exit.
func runFor(pod *corev1.Pod, t timing) time.Duration {
	if v, ok := pod.Annotations[AnnotationRunSeconds]; ok {
		if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && f >= 0 {
			return time.Duration(f * float64(time.Second))
		}
	}
	return t.run
}

// restartBackoff is the CrashLoopBackOff wait before restart number n.
func restartBackoff(n int32, t timing) time.Duration {
	d := t.restartBackoff
	for i := int32(1); i < n && d < maxRestartBackoff; i++ {
		d *= 2
	}
	return min(d, maxRestartBackoff)
}

// imageID and containerID are stable, runtime-looking identifiers.
func imageID(image string) string { return "sim://sha256:" + stableHex("image", image) }

func containerID(uid types.UID, name string, restarts int32) string {
	return "sim://" + stableHex("container", string(uid), name, strconv.Itoa(int(restarts)))
}

// setPlacement fills where the pod runs.
func setPlacement(s *corev1.PodStatus, node simNode, podIP string, startTime metav1.Time) {
	s.HostIP = node.hostIP
	s.HostIPs = []corev1.HostIP{{IP: node.hostIP}}
	s.PodIP = podIP
	s.PodIPs = []corev1.PodIP{{IP: podIP}}
	s.StartTime = &startTime
}

// containerStatus is one container's status.
func containerStatus(pod *corev1.Pod, c corev1.Container, restarts int32, state, last corev1.ContainerState) corev1.ContainerStatus {
	running := state.Running != nil
	cs := corev1.ContainerStatus{
		Name: c.Name, Image: c.Image, ImageID: imageID(c.Image),
		Ready: running, Started: &running, RestartCount: restarts,
		State: state, LastTerminationState: last,
	}
	if state.Waiting == nil || state.Waiting.Reason != "ContainerCreating" {
		cs.ContainerID = containerID(pod.UID, c.Name, restarts)
	}
	return cs
}

// isSidecar says whether an init container keeps running beside the
// main containers (restartPolicy Always on the init container).
func isSidecar(c corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

// creatingStatus is a pod accepted by the node whose containers are being
// created.
func creatingStatus(pod *corev1.Pod, node simNode, podIP string, stamp metav1.Time) *corev1.PodStatus {
	s := pod.Status.DeepCopy()
	s.Phase = corev1.PodPending
	s.InitContainerStatuses = s.InitContainerStatuses[:0]
	for _, c := range pod.Spec.InitContainers {
		w := corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "PodInitializing"}}
		s.InitContainerStatuses = append(s.InitContainerStatuses, containerStatus(pod, c, 0, w, corev1.ContainerState{}))
	}
	s.ContainerStatuses = s.ContainerStatuses[:0]
	for _, c := range pod.Spec.Containers {
		w := corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}
		s.ContainerStatuses = append(s.ContainerStatuses, containerStatus(pod, c, 0, w, corev1.ContainerState{}))
	}
	setPlacement(s, node, podIP, stamp)
	setConditions(pod, s, false, len(pod.Spec.InitContainers) == 0, stamp)
	return s
}

// runningStatus is the pod with its containers running since stamp.
func runningStatus(pod *corev1.Pod, stamp metav1.Time, restarts int32, last corev1.ContainerState) *corev1.PodStatus {
	s := pod.Status.DeepCopy()
	s.Phase = corev1.PodRunning
	s.InitContainerStatuses = initStatuses(pod, stamp, false)
	s.ContainerStatuses = s.ContainerStatuses[:0]
	for _, c := range pod.Spec.Containers {
		r := corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: stamp}}
		s.ContainerStatuses = append(s.ContainerStatuses, containerStatus(pod, c, restarts, r, last))
	}
	setConditions(pod, s, true, true, stamp)
	return s
}

// crashLoopStatus is the pod after its containers failed, waiting to be
// restarted.
func crashLoopStatus(pod *corev1.Pod, restarts int32, term corev1.ContainerState, wait time.Duration) *corev1.PodStatus {
	s := pod.Status.DeepCopy()
	s.ContainerStatuses = s.ContainerStatuses[:0]
	for _, c := range pod.Spec.Containers {
		w := corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
			Reason: "CrashLoopBackOff",
			Message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)",
				wait, c.Name, pod.Name, pod.Namespace, pod.UID),
		}}
		cs := containerStatus(pod, c, restarts, w, term)
		cs.ContainerID = containerID(pod.UID, c.Name, restarts-1)
		s.ContainerStatuses = append(s.ContainerStatuses, cs)
	}
	setConditions(pod, s, true, true, term.Terminated.FinishedAt)
	return s
}

// terminatedStatus is the pod after its containers exited for good.
func terminatedStatus(pod *corev1.Pod, phase corev1.PodPhase, term corev1.ContainerState, stamp metav1.Time) *corev1.PodStatus {
	s := pod.Status.DeepCopy()
	s.Phase = phase
	s.InitContainerStatuses = initStatuses(pod, stamp, true)
	restarts := int32(0)
	if len(s.ContainerStatuses) > 0 {
		restarts = s.ContainerStatuses[0].RestartCount
	}
	s.ContainerStatuses = s.ContainerStatuses[:0]
	for _, c := range pod.Spec.Containers {
		cs := containerStatus(pod, c, restarts, term, corev1.ContainerState{})
		s.ContainerStatuses = append(s.ContainerStatuses, cs)
	}
	setConditions(pod, s, false, true, stamp)
	return s
}

// initStatuses: init containers ran to completion when the pod started;
// sidecars run beside the main containers until the pod ends.
func initStatuses(pod *corev1.Pod, stamp metav1.Time, podDone bool) []corev1.ContainerStatus {
	var out []corev1.ContainerStatus
	started := stamp
	if pod.Status.StartTime != nil {
		started = *pod.Status.StartTime
	}
	for _, c := range pod.Spec.InitContainers {
		var state corev1.ContainerState
		if isSidecar(c) && !podDone {
			state.Running = &corev1.ContainerStateRunning{StartedAt: started}
		} else {
			finished := started
			if isSidecar(c) {
				finished = stamp
			}
			state.Terminated = &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed", StartedAt: started, FinishedAt: finished}
		}
		out = append(out, containerStatus(pod, c, 0, state, corev1.ContainerState{}))
	}
	return out
}

// setConditions writes the kubelet-owned conditions from the container
// statuses in s: sandboxReady says whether the pod's sandbox exists,
// initialized whether its init containers are done. Conditions others own
// (readiness gates, DisruptionTarget) are kept; PodScheduled is added if
// the pod was bound without it.
func setConditions(pod *corev1.Pod, s *corev1.PodStatus, sandboxReady, initialized bool, stamp metav1.Time) {
	terminal := s.Phase == corev1.PodSucceeded || s.Phase == corev1.PodFailed
	var unready []string
	for _, cs := range s.ContainerStatuses {
		if !cs.Ready {
			unready = append(unready, cs.Name)
		}
	}
	containersReady := len(unready) == 0 && !terminal
	var notReadyReason, notReadyMsg string
	switch {
	case terminal:
		notReadyReason = "PodCompleted"
	case !containersReady:
		notReadyReason = "ContainersNotReady"
		notReadyMsg = fmt.Sprintf("containers with unready status: [%s]", strings.Join(unready, " "))
	}
	ready, readyReason, readyMsg := containersReady, notReadyReason, notReadyMsg
	if containersReady {
		var gates []string
		for _, g := range pod.Spec.ReadinessGates {
			if !conditionTrue(s, g.ConditionType) {
				gates = append(gates, string(g.ConditionType))
			}
		}
		if len(gates) > 0 {
			ready, readyReason = false, "ReadinessGatesNotReady"
			readyMsg = fmt.Sprintf("corresponding condition of pod readiness gate %q does not exist.", gates[0])
		}
	}
	initReason := ""
	if !initialized {
		initReason = "ContainersNotInitialized"
	}
	set := func(t corev1.PodConditionType, ok bool, reason, msg string) {
		status := corev1.ConditionFalse
		if ok {
			status, reason, msg = corev1.ConditionTrue, "", ""
		}
		setPodCondition(s, corev1.PodCondition{Type: t, Status: status, Reason: reason, Message: msg, LastTransitionTime: stamp})
	}
	set(corev1.PodReadyToStartContainers, sandboxReady, "", "")
	set(corev1.PodInitialized, initialized, initReason, "")
	set(corev1.PodReady, ready, readyReason, readyMsg)
	set(corev1.ContainersReady, containersReady, notReadyReason, notReadyMsg)
	if !slices.ContainsFunc(s.Conditions, func(c corev1.PodCondition) bool { return c.Type == corev1.PodScheduled }) {
		set(corev1.PodScheduled, true, "", "")
	}
}

func conditionTrue(s *corev1.PodStatus, t corev1.PodConditionType) bool {
	for _, c := range s.Conditions {
		if c.Type == t {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// setPodCondition sets c, keeping the old transition time when the status
// did not change.
func setPodCondition(s *corev1.PodStatus, c corev1.PodCondition) {
	for i := range s.Conditions {
		if s.Conditions[i].Type == c.Type {
			if s.Conditions[i].Status == c.Status {
				c.LastTransitionTime = s.Conditions[i].LastTransitionTime
			}
			s.Conditions[i] = c
			return
		}
	}
	s.Conditions = append(s.Conditions, c)
}
