package printers

import (
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// nodeLostReason is the pod status reason the node lifecycle controller
// sets on pods of a node it can no longer reach.
const nodeLostReason = "NodeLost"

func podPrinters() map[schema.GroupKind]kindPrinter {
	return map[schema.GroupKind]kindPrinter{
		{Kind: "Pod"}: printer([]metav1.TableColumnDefinition{
			nameColumn(),
			column("Ready", typeString, "Ready containers out of all containers (sidecars included)."),
			column("Status", typeString, "A one-word summary of the pod's state, taken from its phase, reason and container states."),
			column("Restarts", typeString, "Container restarts, and how long ago the latest one happened."),
			ageColumn(),
			wide(column("IP", typeString, "The pod's first IP address.")),
			wide(column("Node", typeString, "The node the pod is bound to.")),
			wide(column("Nominated Node", typeString, "The node the scheduler has nominated the pod for after preempting others.")),
			wide(column("Readiness Gates", typeString, "Readiness gate conditions that are true, out of all declared.")),
		}, podCells),
	}
}

func podCells(pod *corev1.Pod, now time.Time) []interface{} {
	s := summarizePod(pod)
	restarts := strconv.Itoa(s.restarts)
	if s.restarts != 0 && !s.lastRestart.IsZero() {
		restarts = fmt.Sprintf("%d (%s ago)", s.restarts, since(s.lastRestart, now))
	}

	ip := pod.Status.PodIP
	if len(pod.Status.PodIPs) > 0 {
		ip = pod.Status.PodIPs[0].IP
	}
	return []interface{}{
		pod.Name,
		fmt.Sprintf("%d/%d", s.ready, s.total),
		s.status,
		restarts,
		since(pod.CreationTimestamp, now),
		orNone(ip),
		orNone(pod.Spec.NodeName),
		orNone(pod.Status.NominatedNodeName),
		readinessGates(pod),
	}
}

// podSummary is what the pod row says about the containers.
type podSummary struct {
	ready, total int
	status       string
	restarts     int
	lastRestart  metav1.Time
}

// isSidecar reports whether an init container keeps running beside the
// main containers (restartPolicy Always).
func isSidecar(c *corev1.Container) bool {
	return c != nil && c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

// summarizePod works out READY, STATUS and RESTARTS the way kubectl users
// see them: the phase (or status.reason) is refined by the first init
// container still at work, then by the main containers' states, and
// finally by deletion.
func summarizePod(pod *corev1.Pod) podSummary {
	s := podSummary{total: len(pod.Spec.Containers), status: string(pod.Status.Phase)}
	if pod.Status.Reason != "" {
		s.status = pod.Status.Reason
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Reason == corev1.PodReasonSchedulingGated {
			s.status = corev1.PodReasonSchedulingGated
		}
	}

	initSpecs := make(map[string]*corev1.Container, len(pod.Spec.InitContainers))
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		initSpecs[c.Name] = c
		if isSidecar(c) {
			s.total++
		}
	}

	// Init containers: every restart counts while the pod initializes;
	// once it has, only the sidecars' restarts do.
	var sidecarRestarts int
	var sidecarLastRestart metav1.Time
	initializing := false
	for i, st := range pod.Status.InitContainerStatuses {
		sidecar := isSidecar(initSpecs[st.Name])
		s.restarts += int(st.RestartCount)
		s.lastRestart = later(s.lastRestart, st.LastTerminationState)
		if sidecar {
			sidecarRestarts += int(st.RestartCount)
			sidecarLastRestart = later(sidecarLastRestart, st.LastTerminationState)
		}
		if st.State.Terminated != nil && st.State.Terminated.ExitCode == 0 {
			continue // finished fine
		}
		if sidecar && st.Started != nil && *st.Started {
			if st.Ready {
				s.ready++
			}
			continue // a running sidecar does not hold initialization up
		}
		initializing = true
		switch {
		case st.State.Terminated != nil:
			s.status = "Init:" + terminatedWord(st.State.Terminated)
		case st.State.Waiting != nil && st.State.Waiting.Reason != "" && st.State.Waiting.Reason != "PodInitializing":
			s.status = "Init:" + st.State.Waiting.Reason
		default:
			s.status = fmt.Sprintf("Init:%d/%d", i, len(pod.Spec.InitContainers))
		}
		break
	}

	if !initializing || podConditionTrue(pod, corev1.PodInitialized) {
		s.restarts = sidecarRestarts
		s.lastRestart = sidecarLastRestart
		running := false
		// The first container with something to say has the last word,
		// so walk them from the end.
		for i := len(pod.Status.ContainerStatuses) - 1; i >= 0; i-- {
			st := pod.Status.ContainerStatuses[i]
			s.restarts += int(st.RestartCount)
			s.lastRestart = later(s.lastRestart, st.LastTerminationState)
			switch {
			case st.State.Waiting != nil && st.State.Waiting.Reason != "":
				s.status = st.State.Waiting.Reason
			case st.State.Terminated != nil:
				s.status = terminatedWord(st.State.Terminated)
			case st.Ready && st.State.Running != nil:
				running = true
				s.ready++
			}
		}
		// Some containers completed while others still run: the pod runs.
		if s.status == "Completed" && running {
			if podConditionTrue(pod, corev1.PodReady) {
				s.status = "Running"
			} else {
				s.status = "NotReady"
			}
		}
	}

	if pod.DeletionTimestamp != nil {
		switch {
		case pod.Status.Reason == nodeLostReason:
			s.status = "Unknown"
		case pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed:
			s.status = "Terminating"
		}
	}
	return s
}

// terminatedWord names a terminated state: its reason, else the signal,
// else the exit code.
func terminatedWord(t *corev1.ContainerStateTerminated) string {
	switch {
	case t.Reason != "":
		return t.Reason
	case t.Signal != 0:
		return fmt.Sprintf("Signal:%d", t.Signal)
	default:
		return fmt.Sprintf("ExitCode:%d", t.ExitCode)
	}
}

// later returns the later of t and the finish time of a last termination.
func later(t metav1.Time, last corev1.ContainerState) metav1.Time {
	if last.Terminated == nil {
		return t
	}
	if t.Before(&last.Terminated.FinishedAt) {
		return last.Terminated.FinishedAt
	}
	return t
}

func podConditionTrue(pod *corev1.Pod, t corev1.PodConditionType) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == t {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// readinessGates prints how many readiness gates are satisfied.
func readinessGates(pod *corev1.Pod) string {
	if len(pod.Spec.ReadinessGates) == 0 {
		return none
	}
	met := 0
	for _, g := range pod.Spec.ReadinessGates {
		if podConditionTrue(pod, g.ConditionType) {
			met++
		}
	}
	return fmt.Sprintf("%d/%d", met, len(pod.Spec.ReadinessGates))
}
