package proxy

import (
	"context"
	"net/netip"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/knftables"
)

var testNode = nodeView{
	name:        "node1",
	nodeIPs:     []netip.Addr{netip.MustParseAddr("192.0.2.10")},
	clusterCIDR: netip.MustParsePrefix("10.42.0.0/16"),
}

func ptr[T any](v T) *T { return &v }

// svc builds a ClusterIP Service; mods adjust it.
func svc(ns, name, clusterIP string, ports []corev1.ServicePort, mods ...func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{
			Type:       corev1.ServiceTypeClusterIP,
			ClusterIP:  clusterIP,
			ClusterIPs: []string{clusterIP},
			Ports:      append([]corev1.ServicePort(nil), ports...), // mods edit them
		},
	}
	if clusterIP == "" || clusterIP == corev1.ClusterIPNone {
		s.Spec.ClusterIPs = nil
	}
	for _, m := range mods {
		m(s)
	}
	return s
}

func sport(name string, port int32, target intstr.IntOrString) corev1.ServicePort {
	return corev1.ServicePort{Name: name, Port: port, Protocol: corev1.ProtocolTCP, TargetPort: target}
}

func nodePort(np int32) func(*corev1.Service) {
	return func(s *corev1.Service) {
		s.Spec.Type = corev1.ServiceTypeNodePort
		for i := range s.Spec.Ports {
			s.Spec.Ports[i].NodePort = np + int32(i)
		}
	}
}

func loadBalancer(np int32) func(*corev1.Service) {
	return func(s *corev1.Service) {
		nodePort(np)(s)
		s.Spec.Type = corev1.ServiceTypeLoadBalancer
	}
}

func etpLocal(s *corev1.Service) {
	s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
}
func itpLocal(s *corev1.Service) {
	s.Spec.InternalTrafficPolicy = ptr(corev1.ServiceInternalTrafficPolicyLocal)
}

func affinity(seconds int32) func(*corev1.Service) {
	return func(s *corev1.Service) {
		s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
		if seconds > 0 {
			s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr(seconds)}}
		}
	}
}

// epState is an endpoint's conditions, for ep().
type epState int

const (
	ready epState = iota
	notReady
	terminatingServing // ready=false serving=true terminating=true
	terminatingGone    // ready=false serving=false terminating=true
)

func ep(ip, node string, st epState) discoveryv1.Endpoint {
	e := discoveryv1.Endpoint{Addresses: []string{ip}}
	if node != "" {
		e.NodeName = ptr(node)
	}
	switch st {
	case ready:
		e.Conditions = discoveryv1.EndpointConditions{Ready: ptr(true), Serving: ptr(true), Terminating: ptr(false)}
	case notReady:
		e.Conditions = discoveryv1.EndpointConditions{Ready: ptr(false), Serving: ptr(false), Terminating: ptr(false)}
	case terminatingServing:
		e.Conditions = discoveryv1.EndpointConditions{Ready: ptr(false), Serving: ptr(true), Terminating: ptr(true)}
	case terminatingGone:
		e.Conditions = discoveryv1.EndpointConditions{Ready: ptr(false), Serving: ptr(false), Terminating: ptr(true)}
	}
	return e
}

func eport(name string, port int32) discoveryv1.EndpointPort {
	return discoveryv1.EndpointPort{Name: ptr(name), Port: ptr(port), Protocol: ptr(corev1.ProtocolTCP)}
}

func slice(ns, service, name string, ports []discoveryv1.EndpointPort, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: name,
			Labels: map[string]string{discoveryv1.LabelServiceName: service},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       ports,
		Endpoints:   eps,
	}
}

// programFake writes rs into a new fake table with a full sync.
func programFake(t testing.TB, rs *ruleset) *knftables.Fake {
	t.Helper()
	fake := knftables.NewFake(knftables.IPv4Family, "skiff-test")
	syncFake(t, fake, syncFull, nil, rs)
	return fake
}

func syncFake(t testing.TB, fake *knftables.Fake, mode syncMode, prev, want *ruleset) *knftables.Transaction {
	t.Helper()
	ctx := context.Background()
	var existing map[string][]string
	if mode != syncIncremental {
		all, err := fake.ListAll(ctx)
		if err != nil && !knftables.IsNotFound(err) {
			t.Fatalf("ListAll: %v", err)
		}
		existing = all
	}
	tx := fake.NewTransaction()
	plan(tx, mode, prev, want, existing)
	if err := fake.Run(ctx, tx); err != nil {
		t.Fatalf("%s sync: %v\n%s", mode, err, tx)
	}
	return tx
}

// tableState is the content of a fake table in comparable form: chain ->
// rules in order; map -> sorted "key : value"; set -> sorted keys, plus
// the definitions of sets (flags, timeout).
type tableState struct {
	chains map[string][]string
	maps   map[string][]string
	sets   map[string][]string
	defs   map[string]string
}

func stateOf(fake *knftables.Fake) tableState {
	fake.RLock()
	defer fake.RUnlock()
	st := tableState{chains: map[string][]string{}, maps: map[string][]string{}, sets: map[string][]string{}, defs: map[string]string{}}
	if fake.Table == nil {
		return st
	}
	for name, c := range fake.Table.Chains {
		rules := []string{}
		for _, r := range c.Rules {
			rules = append(rules, r.Rule)
		}
		st.chains[name] = rules
	}
	for name, m := range fake.Table.Maps {
		els := []string{}
		for _, e := range m.Elements {
			els = append(els, strings.Join(e.Key, " . ")+" : "+strings.Join(e.Value, " "))
		}
		sort.Strings(els)
		st.maps[name] = els
	}
	for name, s := range fake.Table.Sets {
		els := []string{}
		for _, e := range s.Elements {
			els = append(els, strings.Join(e.Key, " . "))
		}
		sort.Strings(els)
		st.sets[name] = els
		def := s.Type
		for _, f := range s.Flags {
			def += " " + string(f)
		}
		if s.Timeout != nil {
			def += " timeout " + s.Timeout.String()
		}
		st.defs[name] = def
	}
	return st
}
