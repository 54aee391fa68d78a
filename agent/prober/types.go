// Package prober runs the container probes (liveness, readiness, startup)
// and lifecycle hooks (postStart, preStop) of the pods on a Skiff node, with
// the semantics and event wording the kubelet documents.
//
// Run performs a single probe attempt (httpGet, tcpSocket, grpc or exec)
// and RunHandler a single lifecycle hook. Manager keeps one worker per
// probe of each running container instance, applies the timing fields of
// the probe (initialDelaySeconds, periodSeconds, thresholds), gates
// liveness and readiness behind the startup probe, and reports result
// changes to its caller. Time comes from an injected k8s.io/utils/clock so
// tests drive it with a fake clock.
package prober

import (
	"context"
	"errors"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// KubeletVersion is the version the probes claim in their User-Agent
// headers (kube-probe/<version>, kube-lifecycle/<version>), matching the
// Kubernetes API version Skiff serves.
const KubeletVersion = "1.37"

// maxOutput bounds how much of an HTTP body or exec output a probe keeps.
const maxOutput = 10 * 1024

// ExecFunc runs a command in a container (the agent implements it with CRI
// ExecSync). timeout 0 means no timeout beyond ctx. It returns the exit
// code and the combined output; err is for failures to run the command at
// all. A command that ran past its timeout should be reported as an error
// wrapping ErrExecTimeout or context.DeadlineExceeded (a gRPC
// DeadlineExceeded status is recognised too).
type ExecFunc func(ctx context.Context, containerID string, cmd []string, timeout time.Duration) (exitCode int, output []byte, err error)

// ErrExecTimeout is what an ExecFunc wraps when a command timed out.
var ErrExecTimeout = errors.New("exec timed out")

// Target is the container a probe or hook runs against.
type Target struct {
	// PodIP is the host for httpGet, tcpSocket and grpc when the action
	// names no host.
	PodIP string
	Pod   *v1.Pod
	// Container resolves named ports (containerPort names).
	Container   *v1.Container
	ContainerID string
	// Exec runs exec probes and hooks; nil makes them error.
	Exec ExecFunc
}

// Result is the outcome of a probe.
type Result int

const (
	// Unknown means the probe could not be run (an error, a cancelled
	// context, a container that is not running). It never counts towards
	// a threshold.
	Unknown Result = iota
	// Success means the probe passed.
	Success
	// Failure means the probe ran and failed.
	Failure
)

// String returns "Success", "Failure" or "Unknown".
func (r Result) String() string {
	switch r {
	case Success:
		return "Success"
	case Failure:
		return "Failure"
	default:
		return "Unknown"
	}
}

// Kind is the kind of a probe.
type Kind int

const (
	// Liveness probes restart the container when they fail.
	Liveness Kind = iota
	// Readiness probes decide whether the container is ready.
	Readiness
	// Startup probes hold back the other probes until they succeed.
	Startup
)

// String returns "Liveness", "Readiness" or "Startup", as the kubelet
// starts its probe event messages.
func (k Kind) String() string {
	switch k {
	case Liveness:
		return "Liveness"
	case Readiness:
		return "Readiness"
	case Startup:
		return "Startup"
	default:
		return "Unknown"
	}
}

// Update reports a probe worker's result.
type Update struct {
	PodUID        types.UID
	ContainerName string
	ContainerID   string
	Kind          Kind
	Result        Result
	// Message is the attempt's message as Run returns it (empty for a
	// plain success).
	Message string
	// GracePeriodSeconds is set on liveness and startup failures: the
	// probe's terminationGracePeriodSeconds, else the pod's, else nil
	// (the caller's default applies). The container is to be killed with
	// it.
	GracePeriodSeconds *int64
}
