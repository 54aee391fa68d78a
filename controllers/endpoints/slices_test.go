package endpoints

import (
	"fmt"
	"slices"
	"sort"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// world is a fake store of slices that applies plans the way the API
// server would.
type world struct {
	slices map[string]*discoveryv1.EndpointSlice
	next   int
}

func newWorld() *world { return &world{slices: map[string]*discoveryv1.EndpointSlice{}} }

func (w *world) list() []*discoveryv1.EndpointSlice {
	out := make([]*discoveryv1.EndpointSlice, 0, len(w.slices))
	for _, es := range w.slices {
		out = append(out, es)
	}
	return out
}

func (w *world) apply(t *testing.T, p slicePlan) {
	t.Helper()
	for _, es := range p.Create {
		if es.Name != "" || es.GenerateName == "" {
			t.Fatalf("create with name %q generateName %q", es.Name, es.GenerateName)
		}
		es = es.DeepCopy()
		w.next++
		es.Name = fmt.Sprintf("%s%03d", es.GenerateName, w.next)
		es.UID = types.UID("slice-" + es.Name)
		w.slices[es.Name] = es
	}
	for _, es := range p.Update {
		if _, ok := w.slices[es.Name]; !ok {
			t.Fatalf("update of unknown slice %s", es.Name)
		}
		w.slices[es.Name] = es.DeepCopy()
	}
	for _, es := range p.Delete {
		if _, ok := w.slices[es.Name]; !ok {
			t.Fatalf("delete of unknown slice %s", es.Name)
		}
		delete(w.slices, es.Name)
	}
}

// check verifies the invariants every plan result must hold, and returns
// the endpoints by pod name.
func (w *world) check(t *testing.T, svc *corev1.Service, maxPer int) map[string]discoveryv1.Endpoint {
	t.Helper()
	seen := map[string]discoveryv1.Endpoint{}
	for _, es := range w.slices {
		if len(es.Endpoints) > maxPer {
			t.Errorf("slice %s has %d endpoints, max %d", es.Name, len(es.Endpoints), maxPer)
		}
		if es.Labels[discoveryv1.LabelServiceName] != svc.Name || es.Labels[discoveryv1.LabelManagedBy] != ManagedBy {
			t.Errorf("slice %s labels %v", es.Name, es.Labels)
		}
		ref := metav1.GetControllerOf(es)
		if ref == nil || ref.UID != svc.UID || ref.Kind != "Service" || ref.APIVersion != "v1" || ref.BlockOwnerDeletion == nil || !*ref.BlockOwnerDeletion {
			t.Errorf("slice %s owner %+v", es.Name, es.OwnerReferences)
		}
		for _, ep := range es.Endpoints {
			key := string(es.AddressType) + "/" + ep.TargetRef.Name
			if _, dup := seen[key]; dup {
				t.Errorf("%s listed twice", key)
			}
			seen[key] = ep
		}
	}
	return seen
}

func plan(w *world, svc *corev1.Service, pods []*corev1.Pod, maxPer int) slicePlan {
	return planSlices(svc, w.list(), sliceEndpoints(svc, members(svc, pods, nil)), maxPer)
}

func pods(n int, mut ...func(*corev1.Pod)) []*corev1.Pod {
	out := make([]*corev1.Pod, n)
	for i := range out {
		out[i] = testPod(i+1, mut...)
	}
	return out
}

func TestSlicesIncremental(t *testing.T) {
	svc := testService()
	w := newWorld()
	ps := pods(250)

	p := plan(w, svc, ps, 100)
	if len(p.Create) != 3 || len(p.Update) != 0 || len(p.Delete) != 0 {
		t.Fatalf("first plan: %d creates %d updates %d deletes", len(p.Create), len(p.Update), len(p.Delete))
	}
	sizes := []int{len(p.Create[0].Endpoints), len(p.Create[1].Endpoints), len(p.Create[2].Endpoints)}
	if !slices.Equal(sizes, []int{100, 100, 50}) {
		t.Errorf("slice sizes %v", sizes)
	}
	es := p.Create[0]
	if es.AddressType != discoveryv1.AddressTypeIPv4 || es.GenerateName != "web-" || es.Namespace != "ns" || es.Labels["team"] != "a" {
		t.Errorf("slice meta %+v", es.ObjectMeta)
	}
	if len(es.Ports) != 1 || *es.Ports[0].Name != "http" || *es.Ports[0].Port != 8080 || *es.Ports[0].Protocol != corev1.ProtocolTCP {
		t.Errorf("slice ports %+v", es.Ports)
	}
	w.apply(t, p)
	if got := w.check(t, svc, 100); len(got) != 250 {
		t.Fatalf("%d endpoints published, want 250", len(got))
	}

	if p := plan(w, svc, ps, 100); !p.empty() {
		t.Fatalf("nothing changed, yet the plan is %d/%d/%d", len(p.Create), len(p.Update), len(p.Delete))
	}

	// One pod turns not ready: exactly the slice holding it is rewritten.
	var holder string
	for name, es := range w.slices {
		for _, ep := range es.Endpoints {
			if ep.TargetRef.Name == "pod-137" {
				holder = name
			}
		}
	}
	ps[136] = testPod(137, notReady)
	p = plan(w, svc, ps, 100)
	if len(p.Create)+len(p.Delete) != 0 || len(p.Update) != 1 || p.Update[0].Name != holder {
		t.Fatalf("readiness flip: %d creates, %d deletes, updates %v (holder %s)", len(p.Create), len(p.Delete), names(p.Update), holder)
	}
	w.apply(t, p)
	ep := w.check(t, svc, 100)["IPv4/pod-137"]
	if *ep.Conditions.Ready || *ep.Conditions.Serving || *ep.Conditions.Terminating {
		t.Errorf("pod-137 conditions %+v", ep.Conditions)
	}

	// A new pod fills the slice with room rather than making a new one.
	ps = append(ps, testPod(251))
	p = plan(w, svc, ps, 100)
	if len(p.Create)+len(p.Delete) != 0 || len(p.Update) != 1 || len(p.Update[0].Endpoints) != 51 {
		t.Fatalf("new pod: %d creates, %d deletes, updates %v", len(p.Create), len(p.Delete), names(p.Update))
	}
	w.apply(t, p)

	// A removed pod rewrites only its slice.
	ps = slices.Delete(ps, 9, 10) // pod-10
	p = plan(w, svc, ps, 100)
	if len(p.Create)+len(p.Delete) != 0 || len(p.Update) != 1 || len(p.Update[0].Endpoints) != 99 {
		t.Fatalf("removed pod: %d creates, %d deletes, updates %v", len(p.Create), len(p.Delete), names(p.Update))
	}
	w.apply(t, p)
	if got := w.check(t, svc, 100); len(got) != 250 {
		t.Fatalf("%d endpoints, want 250", len(got))
	}

	// Every pod gone: one empty placeholder stays.
	p = plan(w, svc, nil, 100)
	if len(p.Create) != 0 || len(p.Update) != 1 || len(p.Delete) != 2 {
		t.Fatalf("no pods: %d creates, %d updates, %d deletes", len(p.Create), len(p.Update), len(p.Delete))
	}
	w.apply(t, p)
	if len(w.slices) != 1 {
		t.Fatalf("%d slices, want the placeholder", len(w.slices))
	}
	for _, es := range w.slices {
		if len(es.Endpoints) != 0 || len(es.Ports) != 0 {
			t.Errorf("placeholder %+v", es)
		}
	}
	if p := plan(w, svc, nil, 100); !p.empty() {
		t.Errorf("placeholder rewritten: %+v", p)
	}
	// Pods come back: the placeholder is reused.
	p = plan(w, svc, pods(3), 100)
	if len(p.Create) != 0 || len(p.Update) != 1 || len(p.Delete) != 0 || len(p.Update[0].Endpoints) != 3 {
		t.Fatalf("pods back: %d creates, %d updates, %d deletes", len(p.Create), len(p.Update), len(p.Delete))
	}
}

func names(ss []*discoveryv1.EndpointSlice) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.Name)
	}
	sort.Strings(out)
	return out
}

func TestSliceConditions(t *testing.T) {
	tests := []struct {
		name                          string
		publish                       bool
		pod                           *corev1.Pod
		ready, serving, terminatingOK bool
	}{
		{"ready", false, testPod(1), true, true, false},
		{"not ready", false, testPod(1, notReady), false, false, false},
		{"terminating while ready", false, testPod(1, terminating), false, true, true},
		{"terminating not ready", false, testPod(1, terminating, notReady), false, false, true},
		{"publishNotReady, not ready", true, testPod(1, notReady), true, false, false},
		{"publishNotReady, terminating", true, testPod(1, terminating), true, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := testService(func(s *corev1.Service) { s.Spec.PublishNotReadyAddresses = tt.publish })
			eps := sliceEndpoints(svc, members(svc, []*corev1.Pod{tt.pod}, nil))[discoveryv1.AddressTypeIPv4]
			if len(eps) != 1 {
				t.Fatalf("%d endpoints", len(eps))
			}
			c := eps[0].Endpoint.Conditions
			if *c.Ready != tt.ready || *c.Serving != tt.serving || *c.Terminating != tt.terminatingOK {
				t.Errorf("ready %v serving %v terminating %v", *c.Ready, *c.Serving, *c.Terminating)
			}
		})
	}
}

func TestSliceEndpointDetails(t *testing.T) {
	svc := testService()
	pod := testPod(1, func(p *corev1.Pod) { p.Spec.Hostname, p.Spec.Subdomain = "one", "web" })
	ms := members(svc, []*corev1.Pod{pod, testPod(2)}, func(string) string { return "zone-a" })
	eps := sliceEndpoints(svc, ms)[discoveryv1.AddressTypeIPv4]
	e := eps[0].Endpoint
	if e.Addresses[0] != "10.1.0.2" || e.Hostname == nil || *e.Hostname != "one" || *e.NodeName != "node-1" || *e.Zone != "zone-a" {
		t.Errorf("endpoint %+v", e)
	}
	if r := e.TargetRef; r.Kind != "Pod" || r.Name != "pod-1" || r.Namespace != "ns" || r.UID != "uid-1" {
		t.Errorf("targetRef %+v", r)
	}
	if eps[1].Endpoint.Hostname != nil {
		t.Errorf("hostname on a pod without one: %v", *eps[1].Endpoint.Hostname)
	}
}

func TestSlicesGroupByResolvedPorts(t *testing.T) {
	// The named port resolves differently per pod; a pod without it has
	// no ports and still gets an endpoint, in a slice of its own kind.
	svc := testService()
	w := newWorld()
	ps := []*corev1.Pod{
		testPod(1),
		testPod(2, func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].ContainerPort = 9090 }),
		testPod(3),
		testPod(4, func(p *corev1.Pod) { p.Spec.Containers[0].Ports = nil }),
	}
	p := plan(w, svc, ps, 100)
	if len(p.Create) != 3 {
		t.Fatalf("%d slices, want 3 (8080, 9090, no ports)", len(p.Create))
	}
	got := map[string][]string{}
	for _, es := range p.Create {
		k := "none"
		if len(es.Ports) == 1 {
			k = fmt.Sprint(*es.Ports[0].Port)
		}
		for _, ep := range es.Endpoints {
			got[k] = append(got[k], ep.TargetRef.Name)
		}
	}
	want := map[string][]string{"8080": {"pod-1", "pod-3"}, "9090": {"pod-2"}, "none": {"pod-4"}}
	for k, v := range want {
		if !slices.Equal(got[k], v) {
			t.Errorf("ports %s: %v, want %v", k, got[k], v)
		}
	}
	w.apply(t, p)
	// The pod's port changes (a new pod with the same UID cannot, but a
	// recreated one with the same name does): it moves between slices.
	ps[1] = testPod(2)
	p = plan(w, svc, ps, 100)
	if len(p.Create) != 0 || len(p.Update) != 1 || len(p.Delete) != 1 {
		t.Fatalf("move: %d creates, %d updates, %d deletes", len(p.Create), len(p.Update), len(p.Delete))
	}
}

func TestSlicesRepairs(t *testing.T) {
	svc := testService()
	w := newWorld()
	w.apply(t, plan(w, svc, pods(3), 100))
	var first *discoveryv1.EndpointSlice
	for _, es := range w.slices {
		first = es
	}

	// A duplicate of an endpoint in a second slice is dropped.
	dup := first.DeepCopy()
	dup.Name, dup.UID = "web-dup", "dup"
	dup.Endpoints = dup.Endpoints[:1]
	w.slices[dup.Name] = dup
	p := plan(w, svc, pods(3), 100)
	w.apply(t, p)
	if got := w.check(t, svc, 100); len(got) != 3 {
		t.Errorf("%d endpoints after repair", len(got))
	}
	if len(w.slices) != 1 {
		t.Errorf("%d slices after removing the duplicate, want 1", len(w.slices))
	}

	// A slice of an earlier Service of the same name is replaced.
	for _, es := range w.slices {
		es.OwnerReferences[0].UID = "old-service"
	}
	p = plan(w, svc, pods(3), 100)
	if len(p.Create) != 1 || len(p.Delete) != 1 {
		t.Errorf("old owner: %d creates, %d deletes", len(p.Create), len(p.Delete))
	}
	w.apply(t, p)

	// Changed Service labels reach every slice.
	svc.Labels["team"] = "b"
	p = plan(w, svc, pods(3), 100)
	if len(p.Update) != 1 || p.Update[0].Labels["team"] != "b" {
		t.Errorf("labels: %+v", p.Update)
	}
	w.apply(t, p)
	w.check(t, svc, 100)

	// Reserved labels on the Service do not override the controller's.
	svc.Labels[discoveryv1.LabelManagedBy] = "someone-else"
	p = plan(w, svc, pods(3), 100)
	w.apply(t, p)
	w.check(t, svc, 100)
}

func TestSlicesDualStackAndHeadless(t *testing.T) {
	svc := testService(func(s *corev1.Service) {
		s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}
	})
	dual := func(p *corev1.Pod) {
		p.Status.PodIPs = append(p.Status.PodIPs, corev1.PodIP{IP: "fd00::" + p.Name[4:]})
	}
	w := newWorld()
	p := plan(w, svc, []*corev1.Pod{testPod(1, dual), testPod(2)}, 100)
	types := map[discoveryv1.AddressType]int{}
	for _, es := range p.Create {
		types[es.AddressType] += len(es.Endpoints)
	}
	if types[discoveryv1.AddressTypeIPv4] != 2 || types[discoveryv1.AddressTypeIPv6] != 1 {
		t.Errorf("endpoints by type %v", types)
	}
	w.apply(t, p)
	// Back to IPv4 only: the IPv6 slice goes.
	svc.Spec.IPFamilies = svc.Spec.IPFamilies[:1]
	p = plan(w, svc, []*corev1.Pod{testPod(1, dual), testPod(2)}, 100)
	if len(p.Delete) != 1 || p.Delete[0].AddressType != discoveryv1.AddressTypeIPv6 || len(p.Create)+len(p.Update) != 0 {
		t.Errorf("dropping IPv6: %+v", p)
	}

	hl := testService(func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.Ports = corev1.ClusterIPNone, nil })
	p = planSlices(hl, nil, sliceEndpoints(hl, members(hl, pods(2), nil)), 100)
	if len(p.Create) != 1 || len(p.Create[0].Ports) != 0 || len(p.Create[0].Endpoints) != 2 {
		t.Fatalf("headless: %+v", p.Create)
	}
	if _, ok := p.Create[0].Labels[corev1.IsHeadlessService]; !ok {
		t.Error("headless slice without the headless label")
	}
}

func TestSlicePrefix(t *testing.T) {
	long := testService(func(s *corev1.Service) {
		s.Name = "a23456789-123456789-123456789-123456789-123456789-123456789-123"
		s.Spec.Ports[0].TargetPort = intstr.FromInt32(80)
	})
	if p := slicePrefix(long); len(p) != 58 || p[57] != '-' {
		t.Errorf("prefix %q (%d)", p, len(p))
	}
	if p := slicePrefix(testService()); p != "web-" {
		t.Errorf("prefix %q", p)
	}
}
