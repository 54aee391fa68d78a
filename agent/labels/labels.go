// Package labels names the labels and annotations the agent puts on the
// sandboxes and containers it creates through CRI, so that every part of
// the agent (pod workers, the streaming server, metrics, adoption after a
// restart) finds a pod's containers the same way. The keys are the ones
// the kubelet uses, so CRI tools show Skiff's containers as they would a
// kubelet's.
package labels

const (
	// PodName, PodNamespace and PodUID identify the pod of a sandbox or
	// container.
	PodName      = "io.kubernetes.pod.name"
	PodNamespace = "io.kubernetes.pod.namespace"
	PodUID       = "io.kubernetes.pod.uid"
	// ContainerName is the container's name in the pod spec.
	ContainerName = "io.kubernetes.container.name"
	// ManagedBy marks everything Skiff's agent created; the value is the
	// node name, so agents sharing a containerd never touch each other's.
	ManagedBy = "sh.skiff.node"

	// Annotations on containers.

	// RestartCount is the container's restart count when it was created.
	RestartCount = "io.kubernetes.container.restartCount"
	// TerminationGracePeriod is the pod's grace period in seconds.
	TerminationGracePeriod = "io.kubernetes.pod.terminationGracePeriod"
	// InitContainer is "true" on init containers.
	InitContainer = "sh.skiff.init-container"
	// SpecHash is a hash of the container's spec, to notice changes.
	SpecHash = "sh.skiff.container-hash"
)
