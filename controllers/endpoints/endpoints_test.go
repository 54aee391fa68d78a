package endpoints

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// describe renders subsets compactly: "[http:8080] ready=pod-1,pod-2 notready=pod-3".
func describe(ss []corev1.EndpointSubset) string {
	var parts []string
	for _, s := range ss {
		var ports, ready, nr []string
		for _, p := range s.Ports {
			ports = append(ports, fmt.Sprintf("%s:%d", p.Name, p.Port))
		}
		for _, a := range s.Addresses {
			ready = append(ready, a.TargetRef.Name)
		}
		for _, a := range s.NotReadyAddresses {
			nr = append(nr, a.TargetRef.Name)
		}
		parts = append(parts, fmt.Sprintf("[%s] ready=%s notready=%s", strings.Join(ports, ","), strings.Join(ready, ","), strings.Join(nr, ",")))
	}
	return strings.Join(parts, " ")
}

func TestSubsets(t *testing.T) {
	twoPorts := func(s *corev1.Service) {
		s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "metrics", Port: 9100, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("metrics")})
	}
	withMetrics := func(p *corev1.Pod) {
		p.Spec.Containers[0].Ports = append(p.Spec.Containers[0].Ports, corev1.ContainerPort{Name: "metrics", ContainerPort: 9100, Protocol: corev1.ProtocolTCP})
	}
	tests := []struct {
		name string
		svc  *corev1.Service
		pods []*corev1.Pod
		want string
	}{
		{
			name: "ready and not ready, terminating dropped",
			svc:  testService(),
			pods: []*corev1.Pod{testPod(2), testPod(1), testPod(3, notReady), testPod(4, terminating)},
			want: "[http:8080] ready=pod-1,pod-2 notready=pod-3",
		},
		{
			name: "publishNotReadyAddresses lists everyone as ready, terminating too",
			svc:  testService(func(s *corev1.Service) { s.Spec.PublishNotReadyAddresses = true }),
			pods: []*corev1.Pod{testPod(1), testPod(3, notReady), testPod(4, terminating)},
			want: "[http:8080] ready=pod-1,pod-3,pod-4 notready=",
		},
		{
			name: "ports with the same pods share a subset",
			svc:  testService(twoPorts),
			pods: []*corev1.Pod{testPod(1, withMetrics), testPod(2, withMetrics)},
			want: "[http:8080,metrics:9100] ready=pod-1,pod-2 notready=",
		},
		{
			name: "a pod without the named port is left out of that port",
			svc:  testService(twoPorts),
			pods: []*corev1.Pod{testPod(1, withMetrics), testPod(2)},
			want: "[http:8080] ready=pod-1,pod-2 notready= [metrics:9100] ready=pod-1 notready=",
		},
		{
			name: "a pod with no port at all is not listed",
			svc:  testService(),
			pods: []*corev1.Pod{testPod(1), testPod(2, func(p *corev1.Pod) { p.Spec.Containers[0].Ports = nil })},
			want: "[http:8080] ready=pod-1 notready=",
		},
		{
			name: "headless without ports",
			svc:  testService(func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.Ports = corev1.ClusterIPNone, nil }),
			pods: []*corev1.Pod{testPod(1), testPod(2, notReady)},
			want: "[] ready=pod-1 notready=pod-2",
		},
		{
			name: "no pods",
			svc:  testService(),
			want: "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := describe(subsets(tt.svc, members(tt.svc, tt.pods, nil)))
			if got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestSubsetAddressDetails(t *testing.T) {
	svc := testService()
	pod := testPod(1, func(p *corev1.Pod) { p.Spec.Hostname, p.Spec.Subdomain = "one", "web" })
	ss := subsets(svc, members(svc, []*corev1.Pod{pod}, nil))
	if len(ss) != 1 || len(ss[0].Addresses) != 1 {
		t.Fatalf("subsets %+v", ss)
	}
	a := ss[0].Addresses[0]
	if a.IP != "10.1.0.2" || a.Hostname != "one" || a.NodeName == nil || *a.NodeName != "node-1" {
		t.Errorf("address %+v", a)
	}
	if r := a.TargetRef; r == nil || r.Kind != "Pod" || r.Namespace != "ns" || r.Name != "pod-1" || r.UID != "uid-1" {
		t.Errorf("targetRef %+v", a.TargetRef)
	}
	if p := ss[0].Ports[0]; p.Name != "http" || p.Port != 8080 || p.Protocol != corev1.ProtocolTCP {
		t.Errorf("port %+v", p)
	}
}

func addrs(n int) []corev1.EndpointAddress {
	out := make([]corev1.EndpointAddress, n)
	for i := range out {
		out[i] = corev1.EndpointAddress{IP: fmt.Sprintf("10.0.%d.%d", i/250, i%250+1), TargetRef: &corev1.ObjectReference{Name: fmt.Sprint(i)}}
	}
	return out
}

func TestTruncate(t *testing.T) {
	counts := func(ss []corev1.EndpointSubset) string {
		var parts []string
		for _, s := range ss {
			parts = append(parts, fmt.Sprintf("%d/%d", len(s.Addresses), len(s.NotReadyAddresses)))
		}
		return strings.Join(parts, " ")
	}
	tests := []struct {
		name    string
		ss      []corev1.EndpointSubset
		max     int
		want    string
		trimmed bool
	}{
		{"under", []corev1.EndpointSubset{{Addresses: addrs(5), NotReadyAddresses: addrs(5)}}, 10, "5/5", false},
		{"not ready trimmed first", []corev1.EndpointSubset{{Addresses: addrs(6), NotReadyAddresses: addrs(6)}}, 10, "6/4", true},
		{"not ready shared by proportion", []corev1.EndpointSubset{
			{Addresses: addrs(2), NotReadyAddresses: addrs(9)},
			{Addresses: addrs(2), NotReadyAddresses: addrs(3)},
		}, 10, "2/5 2/1", true},
		{"ready over capacity drops all not ready", []corev1.EndpointSubset{
			{Addresses: addrs(900), NotReadyAddresses: addrs(50)},
			{Addresses: addrs(300)},
		}, 1000, "750/0 250/0", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			trimmed := truncate(tt.ss, tt.max)
			if got := counts(tt.ss); got != tt.want || trimmed != tt.trimmed {
				t.Errorf("got %s (trimmed %v), want %s (%v)", got, trimmed, tt.want, tt.trimmed)
			}
			total := 0
			for _, s := range tt.ss {
				total += len(s.Addresses) + len(s.NotReadyAddresses)
			}
			if total > tt.max {
				t.Errorf("%d addresses after truncation, max %d", total, tt.max)
			}
		})
	}
}

func TestDesiredEndpoints(t *testing.T) {
	svc := testService()
	pods := []*corev1.Pod{testPod(1), testPod(2, notReady)}
	ss := func() []corev1.EndpointSubset { return subsets(svc, members(svc, pods, nil)) }

	created := desiredEndpoints(svc, nil, ss(), 1000)
	if created == nil || created.Name != "web" || created.Namespace != "ns" || created.Labels["team"] != "a" {
		t.Fatalf("new endpoints %+v", created)
	}
	if _, ok := created.Labels[corev1.IsHeadlessService]; ok {
		t.Error("ClusterIP service marked headless")
	}
	if _, ok := created.Annotations[corev1.EndpointsOverCapacity]; ok {
		t.Error("over-capacity annotation under capacity")
	}
	// The same state again is a no-op.
	stored := created.DeepCopy()
	stored.ResourceVersion = "5"
	if next := desiredEndpoints(svc, stored, ss(), 1000); next != nil {
		t.Errorf("no-op produced an update: %+v", next)
	}
	// A readiness flip is an update.
	pods[1] = testPod(2)
	next := desiredEndpoints(svc, stored, ss(), 1000)
	if next == nil || describe(next.Subsets) != "[http:8080] ready=pod-1,pod-2 notready=" || next.ResourceVersion != "5" {
		t.Errorf("after the flip: %+v", next)
	}
	// Over capacity: trimmed and annotated; back under: annotation removed.
	over := desiredEndpoints(svc, stored, ss(), 1)
	if over == nil || over.Annotations[corev1.EndpointsOverCapacity] != "truncated" || len(over.Subsets[0].Addresses) != 1 {
		t.Fatalf("over capacity: %+v", over)
	}
	if again := desiredEndpoints(svc, over, ss(), 1); again != nil {
		t.Errorf("trimmed endpoints rewritten: %+v", again)
	}
	under := desiredEndpoints(svc, over, ss(), 1000)
	if under == nil || under.Annotations[corev1.EndpointsOverCapacity] != "" || len(under.Subsets[0].Addresses) != 2 {
		t.Errorf("back under capacity: %+v", under)
	}
	if _, ok := under.Annotations[corev1.EndpointsOverCapacity]; ok {
		t.Error("annotation kept under capacity")
	}
	// Headless services are marked.
	hl := testService(func(s *corev1.Service) { s.Spec.ClusterIP = corev1.ClusterIPNone })
	if e := desiredEndpoints(hl, stored, subsets(hl, members(hl, pods, nil)), 1000); e == nil || e.Labels[corev1.IsHeadlessService] != "" {
		t.Errorf("headless endpoints %+v", e)
	} else if _, ok := e.Labels[corev1.IsHeadlessService]; !ok {
		t.Error("headless label missing")
	}
}
