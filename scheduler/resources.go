package scheduler

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Defaults counted, for scoring only, for a container that requests no CPU
// or memory: without them a node full of best-effort pods would look empty to
// the spreading scores.
const (
	defaultMilliCPURequest int64 = 100               // 0.1 core
	defaultMemoryRequest   int64 = 200 * 1024 * 1024 // 200 MiB
)

// Resources is an amount of every resource the scheduler accounts for:
// the requests of a pod, the sum of requests on a node, or a node's
// allocatable capacity. CPU is in millicores, everything else in units.
type Resources struct {
	MilliCPU         int64
	Memory           int64
	EphemeralStorage int64
	// Pods is the number of pods (allocatable only).
	Pods int64
	// Scalars holds extended resources (example.com/gpu) and hugepages.
	// Nil when there are none, which is the common case.
	Scalars map[corev1.ResourceName]int64
}

// add adds r2 into r.
func (r *Resources) add(r2 *Resources) {
	r.MilliCPU += r2.MilliCPU
	r.Memory += r2.Memory
	r.EphemeralStorage += r2.EphemeralStorage
	for name, v := range r2.Scalars {
		r.setScalar(name, r.Scalars[name]+v)
	}
}

// sub removes r2 from r.
func (r *Resources) sub(r2 *Resources) {
	r.MilliCPU -= r2.MilliCPU
	r.Memory -= r2.Memory
	r.EphemeralStorage -= r2.EphemeralStorage
	for name, v := range r2.Scalars {
		r.setScalar(name, r.Scalars[name]-v)
	}
}

func (r *Resources) setScalar(name corev1.ResourceName, v int64) {
	if r.Scalars == nil {
		r.Scalars = make(map[corev1.ResourceName]int64, 1)
	}
	r.Scalars[name] = v
}

// clone returns a copy that shares nothing with r.
func (r Resources) clone() Resources {
	if r.Scalars != nil {
		m := make(map[corev1.ResourceName]int64, len(r.Scalars))
		for k, v := range r.Scalars {
			m[k] = v
		}
		r.Scalars = m
	}
	return r
}

// setMax raises each resource of r to at least the one in r2.
func (r *Resources) setMax(r2 *Resources) {
	r.MilliCPU = max(r.MilliCPU, r2.MilliCPU)
	r.Memory = max(r.Memory, r2.Memory)
	r.EphemeralStorage = max(r.EphemeralStorage, r2.EphemeralStorage)
	for name, v := range r2.Scalars {
		if v > r.Scalars[name] {
			r.setScalar(name, v)
		}
	}
}

// isScalar reports whether a resource name is one the scheduler checks
// beyond CPU, memory and ephemeral storage: hugepages and extended resources
// (a domain-prefixed name outside kubernetes.io).
func isScalar(name corev1.ResourceName) bool {
	s := string(name)
	if strings.HasPrefix(s, corev1.ResourceHugePagesPrefix) {
		return true
	}
	if !strings.Contains(s, "/") || strings.HasPrefix(s, "requests.") {
		return false
	}
	return !strings.HasPrefix(s, "kubernetes.io/") && !strings.Contains(s, ".kubernetes.io/")
}

// fromList converts a ResourceList into Resources.
func fromList(list corev1.ResourceList) Resources {
	var r Resources
	for name, q := range list {
		switch name {
		case corev1.ResourceCPU:
			r.MilliCPU = q.MilliValue()
		case corev1.ResourceMemory:
			r.Memory = q.Value()
		case corev1.ResourceEphemeralStorage:
			r.EphemeralStorage = q.Value()
		case corev1.ResourcePods:
			r.Pods = q.Value()
		default:
			if isScalar(name) {
				r.setScalar(name, q.Value())
			}
		}
	}
	return r
}

// podRequests computes what a pod asks of a node:
//
//	max( sum(app containers) + sum(sidecars),
//	     max over init containers i of (request(i) + sidecars started before i) )
//	+ pod overhead
//
// Sidecars are init containers with restartPolicy Always; they keep running
// beside the app containers. Pod-level resources (spec.resources), when set,
// replace the per-container sum for the resources they name.
// The second and third results are the CPU and memory requests with the
// scoring defaults applied to containers that request nothing.
func podRequests(pod *corev1.Pod) (req Resources, nonZeroCPU, nonZeroMem int64) {
	var sidecars, initMax Resources
	var sidecarCPU, sidecarMem, initMaxCPU, initMaxMem int64
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		cr := fromList(c.Resources.Requests)
		cpu, mem := nonZero(c.Resources.Requests)
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			sidecars.add(&cr)
			sidecarCPU += cpu
			sidecarMem += mem
			initMax.setMax(&sidecars)
			initMaxCPU = max(initMaxCPU, sidecarCPU)
			initMaxMem = max(initMaxMem, sidecarMem)
			continue
		}
		cr.add(&sidecars)
		initMax.setMax(&cr)
		initMaxCPU = max(initMaxCPU, cpu+sidecarCPU)
		initMaxMem = max(initMaxMem, mem+sidecarMem)
	}
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		cr := fromList(c.Resources.Requests)
		req.add(&cr)
		cpu, mem := nonZero(c.Resources.Requests)
		nonZeroCPU += cpu
		nonZeroMem += mem
	}
	req.add(&sidecars)
	nonZeroCPU += sidecarCPU
	nonZeroMem += sidecarMem
	if pr := pod.Spec.Resources; pr != nil && len(pr.Requests) > 0 {
		podLevel := fromList(pr.Requests)
		if _, ok := pr.Requests[corev1.ResourceCPU]; ok {
			req.MilliCPU, nonZeroCPU = podLevel.MilliCPU, podLevel.MilliCPU
			initMax.MilliCPU, initMaxCPU = 0, 0
		}
		if _, ok := pr.Requests[corev1.ResourceMemory]; ok {
			req.Memory, nonZeroMem = podLevel.Memory, podLevel.Memory
			initMax.Memory, initMaxMem = 0, 0
		}
	}
	req.setMax(&initMax)
	nonZeroCPU = max(nonZeroCPU, initMaxCPU)
	nonZeroMem = max(nonZeroMem, initMaxMem)
	if len(pod.Spec.Overhead) > 0 {
		oh := fromList(pod.Spec.Overhead)
		oh.Pods = 0
		req.add(&oh)
		nonZeroCPU += oh.MilliCPU
		nonZeroMem += oh.Memory
	}
	return req, nonZeroCPU, nonZeroMem
}

// nonZero returns a container's CPU and memory requests, with the scoring
// defaults for those it leaves out.
func nonZero(list corev1.ResourceList) (cpu, mem int64) {
	cpu, mem = defaultMilliCPURequest, defaultMemoryRequest
	if q, ok := list[corev1.ResourceCPU]; ok {
		cpu = q.MilliValue()
	}
	if q, ok := list[corev1.ResourceMemory]; ok {
		mem = q.Value()
	}
	return cpu, mem
}
