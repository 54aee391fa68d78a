package endpoints

import (
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// member is one pod as a Service sees it: where it can be reached, on
// which of the Service's ports, and whether it should get traffic.
type member struct {
	Pod *corev1.Pod
	// IPs are the pod's addresses by family.
	IPs map[corev1.IPFamily]string
	// Ports are the Service ports this pod serves, each resolved to the
	// pod's port number, in the Service's order. A named target port the
	// pod does not declare leaves that port out.
	Ports []resolvedPort
	// Serving: the pod's Ready condition is True.
	Serving bool
	// Terminating: the pod is being deleted.
	Terminating bool
	// Hostname is set when the pod asks for a DNS name under this
	// Service (spec.hostname set, spec.subdomain the Service's name).
	Hostname string
	NodeName string
	Zone     string
}

// resolvedPort is a Service port as served by one pod.
type resolvedPort struct {
	Name        string
	Port        int32
	Protocol    corev1.Protocol
	AppProtocol *string
}

// members returns the pods that belong in a Service's endpoints: they have
// an address and have not finished (Succeeded or Failed). Terminating pods
// are included, marked; what to do with them is up to the caller. zoneOf
// gives a node's zone ("" when unknown).
func members(svc *corev1.Service, pods []*corev1.Pod, zoneOf func(node string) string) []member {
	out := make([]member, 0, len(pods))
	for _, pod := range pods {
		if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			continue
		}
		ips := podIPs(pod)
		if len(ips) == 0 {
			continue
		}
		m := member{
			Pod:         pod,
			IPs:         ips,
			Serving:     podReady(pod),
			Terminating: pod.DeletionTimestamp != nil,
			NodeName:    pod.Spec.NodeName,
		}
		if pod.Spec.Hostname != "" && pod.Spec.Subdomain == svc.Name && pod.Namespace == svc.Namespace {
			m.Hostname = pod.Spec.Hostname
		}
		if m.NodeName != "" && zoneOf != nil {
			m.Zone = zoneOf(m.NodeName)
		}
		for i := range svc.Spec.Ports {
			sp := &svc.Spec.Ports[i]
			if n, ok := findPort(pod, sp); ok {
				m.Ports = append(m.Ports, resolvedPort{Name: sp.Name, Port: n, Protocol: protocol(sp.Protocol), AppProtocol: sp.AppProtocol})
			}
		}
		out = append(out, m)
	}
	return out
}

// podIPs are a pod's addresses by family, from status.podIPs (or the
// older status.podIP); the first of each family wins.
func podIPs(pod *corev1.Pod) map[corev1.IPFamily]string {
	var ips map[corev1.IPFamily]string
	add := func(s string) {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return
		}
		fam := corev1.IPv4Protocol
		if a.Is6() && !a.Is4In6() {
			fam = corev1.IPv6Protocol
		}
		if ips == nil {
			ips = map[corev1.IPFamily]string{}
		}
		if _, ok := ips[fam]; !ok {
			ips[fam] = a.Unmap().String()
		}
	}
	for _, ip := range pod.Status.PodIPs {
		add(ip.IP)
	}
	add(pod.Status.PodIP)
	return ips
}

// podReady says whether the pod's Ready condition is True.
func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func protocol(p corev1.Protocol) corev1.Protocol {
	if p == "" {
		return corev1.ProtocolTCP
	}
	return p
}

// findPort resolves a Service port's target on a pod: a number is taken
// as it is (zero means the Service port itself); a name is looked up among
// the ports the pod's containers, and its sidecars (init containers that
// keep running), declare with the same protocol.
func findPort(pod *corev1.Pod, sp *corev1.ServicePort) (int32, bool) {
	tp := sp.TargetPort
	if tp.Type == intstr.Int {
		if tp.IntVal == 0 {
			return sp.Port, true
		}
		return tp.IntVal, true
	}
	if tp.StrVal == "" {
		return sp.Port, true
	}
	want := protocol(sp.Protocol)
	search := func(cs []corev1.Container, sidecarsOnly bool) (int32, bool) {
		for i := range cs {
			c := &cs[i]
			if sidecarsOnly && (c.RestartPolicy == nil || *c.RestartPolicy != corev1.ContainerRestartPolicyAlways) {
				continue
			}
			for _, p := range c.Ports {
				if p.Name == tp.StrVal && protocol(p.Protocol) == want {
					return p.ContainerPort, true
				}
			}
		}
		return 0, false
	}
	if n, ok := search(pod.Spec.Containers, false); ok {
		return n, true
	}
	return search(pod.Spec.InitContainers, true)
}

// headless says whether the Service has no cluster IP.
func headless(svc *corev1.Service) bool {
	return svc.Spec.ClusterIP == corev1.ClusterIPNone || svc.Spec.ClusterIP == ""
}

// families are the address families a Service's endpoints are kept for,
// primary first.
func families(svc *corev1.Service) []corev1.IPFamily {
	if len(svc.Spec.IPFamilies) > 0 {
		return svc.Spec.IPFamilies
	}
	if a, err := netip.ParseAddr(svc.Spec.ClusterIP); err == nil && a.Is6() && !a.Is4In6() {
		return []corev1.IPFamily{corev1.IPv6Protocol}
	}
	return []corev1.IPFamily{corev1.IPv4Protocol}
}
