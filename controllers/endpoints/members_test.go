package endpoints

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestFindPort(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	pod := testPod(1, func(p *corev1.Pod) {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "dns", Ports: []corev1.ContainerPort{
			{Name: "dns", ContainerPort: 53, Protocol: corev1.ProtocolUDP},
			{Name: "dns-tcp", ContainerPort: 5353}, // protocol left empty: TCP
		}})
		p.Spec.InitContainers = []corev1.Container{
			{Name: "setup", Ports: []corev1.ContainerPort{{Name: "setup", ContainerPort: 9000, Protocol: corev1.ProtocolTCP}}},
			{Name: "proxy", RestartPolicy: &always, Ports: []corev1.ContainerPort{{Name: "proxy", ContainerPort: 15001, Protocol: corev1.ProtocolTCP}}},
		}
	})
	tests := []struct {
		name   string
		port   corev1.ServicePort
		want   int32
		wantOK bool
	}{
		{"number", corev1.ServicePort{Port: 80, TargetPort: intstr.FromInt32(9090)}, 9090, true},
		{"zero means the service port", corev1.ServicePort{Port: 80}, 80, true},
		{"name", corev1.ServicePort{Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("http")}, 8080, true},
		{"name, protocol defaulted", corev1.ServicePort{Port: 80, TargetPort: intstr.FromString("http")}, 8080, true},
		{"name in another container", corev1.ServicePort{Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromString("dns")}, 53, true},
		{"name with the wrong protocol", corev1.ServicePort{Port: 53, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("dns")}, 0, false},
		{"container port with empty protocol", corev1.ServicePort{Port: 53, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("dns-tcp")}, 5353, true},
		{"sidecar", corev1.ServicePort{Port: 1, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("proxy")}, 15001, true},
		{"plain init container", corev1.ServicePort{Port: 1, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("setup")}, 0, false},
		{"unknown name", corev1.ServicePort{Port: 1, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("metrics")}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := findPort(pod, &tt.port)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("findPort = %d, %v; want %d, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestMembers(t *testing.T) {
	svc := testService(func(s *corev1.Service) {
		s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "metrics", Port: 9100, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("metrics")})
	})
	pods := []*corev1.Pod{
		testPod(1),
		testPod(2, notReady),
		testPod(3, terminating),
		testPod(4, func(p *corev1.Pod) { p.Status.PodIP, p.Status.PodIPs = "", nil }),          // no address yet
		testPod(5, func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }),               // finished
		testPod(6, func(p *corev1.Pod) { p.Status.Phase = corev1.PodFailed }),                  // finished
		testPod(7, func(p *corev1.Pod) { p.Spec.Hostname, p.Spec.Subdomain = "seven", "web" }), // DNS name under the Service
		testPod(8, func(p *corev1.Pod) { p.Spec.Hostname, p.Spec.Subdomain = "eight", "other" }),
		testPod(9, func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = append(p.Spec.Containers[0].Ports, corev1.ContainerPort{Name: "metrics", ContainerPort: 9100, Protocol: corev1.ProtocolTCP})
			p.Status.PodIPs = append(p.Status.PodIPs, corev1.PodIP{IP: "fd00::9"})
			p.Spec.NodeName = "node-z"
		}),
	}
	zones := map[string]string{"node-z": "zone-b"}
	ms := members(svc, pods, func(n string) string { return zones[n] })
	byName := map[string]member{}
	for _, m := range ms {
		byName[m.Pod.Name] = m
	}
	for _, absent := range []string{"pod-4", "pod-5", "pod-6"} {
		if _, ok := byName[absent]; ok {
			t.Errorf("%s is a member", absent)
		}
	}
	if len(ms) != 6 {
		t.Fatalf("%d members, want 6", len(ms))
	}
	if m := byName["pod-1"]; !m.Serving || m.Terminating || len(m.Ports) != 1 || m.Ports[0].Port != 8080 || m.Ports[0].Name != "http" || m.Zone != "" || m.NodeName != "node-1" {
		t.Errorf("pod-1: %+v", m)
	}
	if m := byName["pod-2"]; m.Serving {
		t.Errorf("pod-2 serving")
	}
	if m := byName["pod-3"]; !m.Terminating || !m.Serving {
		t.Errorf("pod-3: terminating %v serving %v", m.Terminating, m.Serving)
	}
	if m := byName["pod-7"]; m.Hostname != "seven" {
		t.Errorf("pod-7 hostname %q", m.Hostname)
	}
	if m := byName["pod-8"]; m.Hostname != "" {
		t.Errorf("pod-8 hostname %q under another subdomain", m.Hostname)
	}
	m9 := byName["pod-9"]
	if len(m9.Ports) != 2 || m9.Ports[1].Name != "metrics" || m9.Ports[1].Port != 9100 {
		t.Errorf("pod-9 ports %+v", m9.Ports)
	}
	if m9.IPs[corev1.IPv6Protocol] != "fd00::9" || m9.IPs[corev1.IPv4Protocol] != "10.1.0.10" || m9.Zone != "zone-b" {
		t.Errorf("pod-9 IPs %v zone %q", m9.IPs, m9.Zone)
	}
}

func TestPodChanged(t *testing.T) {
	base := testPod(1)
	tests := []struct {
		name string
		mut  func(*corev1.Pod)
		want bool
	}{
		{"nothing", func(*corev1.Pod) {}, false},
		{"restart count", func(p *corev1.Pod) {
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", RestartCount: 3}}
		}, false},
		{"another condition", func(p *corev1.Pod) {
			p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: corev1.ContainersReady, Status: corev1.ConditionTrue})
		}, false},
		{"annotation", func(p *corev1.Pod) { p.Annotations = map[string]string{"a": "b"} }, false},
		{"readiness", notReady, true},
		{"deletion", terminating, true},
		{"labels", func(p *corev1.Pod) { p.Labels = map[string]string{"app": "api"} }, true},
		{"address", func(p *corev1.Pod) { p.Status.PodIP, p.Status.PodIPs = "10.9.9.9", []corev1.PodIP{{IP: "10.9.9.9"}} }, true},
		{"phase", func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }, true},
		{"node", func(p *corev1.Pod) { p.Spec.NodeName = "node-2" }, true},
		{"hostname", func(p *corev1.Pod) { p.Spec.Hostname = "h" }, true},
		{"subdomain", func(p *corev1.Pod) { p.Spec.Subdomain = "web" }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next := base.DeepCopy()
			tt.mut(next)
			if got := podChanged(base, next); got != tt.want {
				t.Errorf("podChanged = %v, want %v", got, tt.want)
			}
		})
	}
}
