package scheduler

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// PodInfo is a pod together with everything the filters and scores derive
// from it, computed once: requests, host ports, compiled affinity terms.
// It is immutable once built.
type PodInfo struct {
	Pod *corev1.Pod

	// Requests is what the pod asks of a node (see podRequests).
	Requests Resources
	// NonZeroCPU and NonZeroMem are the requests with scoring defaults.
	NonZeroCPU, NonZeroMem int64
	// Priority is spec.priority (0 when unset).
	Priority int32
	// Controller is the UID of the controlling owner (ReplicaSet,
	// StatefulSet, Job...), empty for a bare pod.
	Controller types.UID

	ports []hostPort

	requiredAffinity      []podTerm
	requiredAntiAffinity  []podTerm
	preferredAffinity     []podTerm
	preferredAntiAffinity []podTerm
}

// hostPort is one port a pod takes on its node's network.
type hostPort struct {
	ip       string // "" and 0.0.0.0 mean every address
	protocol corev1.Protocol
	port     int32
}

// conflicts reports whether two host ports cannot share a node.
func (a hostPort) conflicts(b hostPort) bool {
	if a.port != b.port || a.protocol != b.protocol {
		return false
	}
	return a.ip == b.ip || isAnyIP(a.ip) || isAnyIP(b.ip)
}

func isAnyIP(ip string) bool { return ip == "" || ip == "0.0.0.0" || ip == "::" }

// NewPodInfo derives a PodInfo from a pod.
func NewPodInfo(pod *corev1.Pod) *PodInfo {
	pi := &PodInfo{Pod: pod}
	pi.Requests, pi.NonZeroCPU, pi.NonZeroMem = podRequests(pod)
	if pod.Spec.Priority != nil {
		pi.Priority = *pod.Spec.Priority
	}
	if ref := metav1.GetControllerOfNoCopy(pod); ref != nil {
		pi.Controller = ref.UID
	}
	pi.ports = podHostPorts(pod)
	if a := pod.Spec.Affinity; a != nil {
		if pa := a.PodAffinity; pa != nil {
			pi.requiredAffinity = compileTerms(pod, pa.RequiredDuringSchedulingIgnoredDuringExecution)
			pi.preferredAffinity = compileWeighted(pod, pa.PreferredDuringSchedulingIgnoredDuringExecution)
		}
		if pa := a.PodAntiAffinity; pa != nil {
			pi.requiredAntiAffinity = compileTerms(pod, pa.RequiredDuringSchedulingIgnoredDuringExecution)
			pi.preferredAntiAffinity = compileWeighted(pod, pa.PreferredDuringSchedulingIgnoredDuringExecution)
		}
	}
	return pi
}

// hasAffinity reports whether the pod has any inter-pod term, which puts
// its node on the snapshot's list of nodes scanned by inter-pod scoring.
func (pi *PodInfo) hasAffinity() bool {
	return len(pi.requiredAffinity)+len(pi.requiredAntiAffinity)+
		len(pi.preferredAffinity)+len(pi.preferredAntiAffinity) > 0
}

func compileTerms(pod *corev1.Pod, terms []corev1.PodAffinityTerm) []podTerm {
	if len(terms) == 0 {
		return nil
	}
	out := make([]podTerm, len(terms))
	for i := range terms {
		out[i] = compilePodTerm(pod, &terms[i], 1)
	}
	return out
}

func compileWeighted(pod *corev1.Pod, terms []corev1.WeightedPodAffinityTerm) []podTerm {
	if len(terms) == 0 {
		return nil
	}
	out := make([]podTerm, len(terms))
	for i := range terms {
		out[i] = compilePodTerm(pod, &terms[i].PodAffinityTerm, terms[i].Weight)
	}
	return out
}

// podHostPorts lists the host ports of app containers and init containers
// (sidecars keep theirs; a plain init container's port is also reserved, as
// it may run while the others have not started).
func podHostPorts(pod *corev1.Pod) []hostPort {
	var out []hostPort
	collect := func(cs []corev1.Container) {
		for i := range cs {
			for _, p := range cs[i].Ports {
				if p.HostPort <= 0 {
					continue
				}
				proto := p.Protocol
				if proto == "" {
					proto = corev1.ProtocolTCP
				}
				out = append(out, hostPort{ip: p.HostIP, protocol: proto, port: p.HostPort})
			}
		}
	}
	collect(pod.Spec.InitContainers)
	collect(pod.Spec.Containers)
	return out
}

// isTerminal reports whether a pod has finished and no longer holds
// resources on its node.
func isTerminal(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}

// moreImportant orders pods for preemption: higher priority first, then
// the one that started earlier.
func moreImportant(a, b *PodInfo) bool {
	if a.Priority != b.Priority {
		return a.Priority > b.Priority
	}
	return startTime(a.Pod).Before(startTime(b.Pod))
}

// startTime is when the pod started, or was created if it has not.
func startTime(pod *corev1.Pod) time.Time {
	if pod.Status.StartTime != nil {
		return pod.Status.StartTime.Time
	}
	return pod.CreationTimestamp.Time
}
