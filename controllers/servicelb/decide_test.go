package servicelb

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/skiff-sh/skiff/proxy"
)

func node(name string, ready bool, addrs ...string) *corev1.Node {
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Status:     corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: st}}},
	}
	for _, a := range addrs {
		n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: a})
	}
	return n
}

func excluded(n *corev1.Node) *corev1.Node {
	n.Labels = map[string]string{proxy.LabelExcludeFromLB: ""}
	return n
}

func service(typ corev1.ServiceType, class string, ingress ...corev1.LoadBalancerIngress) *corev1.Service {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web"},
		Spec:       corev1.ServiceSpec{Type: typ},
		Status:     corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: ingress}},
	}
	if class != "" {
		svc.Spec.LoadBalancerClass = &class
	}
	return svc
}

func ip(s string) corev1.LoadBalancerIngress { return corev1.LoadBalancerIngress{IP: s} }

func vip(s string) corev1.LoadBalancerIngress {
	return corev1.LoadBalancerIngress{IP: s, IPMode: ptr.To(corev1.LoadBalancerIPModeVIP)}
}

func TestDecide(t *testing.T) {
	lb := corev1.ServiceTypeLoadBalancer
	a := node("a", true, "192.0.2.1")
	b := node("b", true, "192.0.2.2")
	down := node("c", false, "192.0.2.3")
	cases := []struct {
		name       string
		svc        *corev1.Service
		nodes      []*corev1.Node
		remembered []string
		want       plan // event message not compared
	}{
		{"new LoadBalancer gets the Ready nodes", service(lb, ""), []*corev1.Node{b, a, down},
			nil, plan{write: true, ingress: []corev1.LoadBalancerIngress{vip("192.0.2.1"), vip("192.0.2.2")}, event: event{reason: ReasonUpdated, kind: corev1.EventTypeNormal}}},
		{"already right: no write", service(lb, "", vip("192.0.2.1"), vip("192.0.2.2")), []*corev1.Node{a, b},
			nil, plan{}},
		{"ipMode unset reads as VIP", service(lb, "", ip("192.0.2.1")), []*corev1.Node{a},
			nil, plan{}},
		{"a node goes NotReady", service(lb, "", vip("192.0.2.1"), vip("192.0.2.2")), []*corev1.Node{a, node("b", false, "192.0.2.2")},
			nil, plan{write: true, ingress: []corev1.LoadBalancerIngress{vip("192.0.2.1")}, event: event{reason: ReasonUpdated, kind: corev1.EventTypeNormal}}},
		{"a node gets the exclude label", service(lb, "", vip("192.0.2.1"), vip("192.0.2.2")), []*corev1.Node{a, excluded(node("b", true, "192.0.2.2"))},
			nil, plan{write: true, ingress: []corev1.LoadBalancerIngress{vip("192.0.2.1")}, event: event{reason: ReasonUpdated, kind: corev1.EventTypeNormal}}},
		{"no Ready node: cleared with a warning", service(lb, "", vip("192.0.2.1")), []*corev1.Node{down},
			nil, plan{write: true, event: event{reason: ReasonUnavailable, kind: corev1.EventTypeWarning}}},
		{"no Ready node and nothing written: no write", service(lb, ""), []*corev1.Node{down},
			nil, plan{}},
		{"foreign ingress on our Service is replaced", service(lb, "", corev1.LoadBalancerIngress{Hostname: "lb.example"}), []*corev1.Node{a},
			nil, plan{write: true, ingress: []corev1.LoadBalancerIngress{vip("192.0.2.1")}, event: event{reason: ReasonUpdated, kind: corev1.EventTypeNormal}}},
		{"empty class is ours", service(lb, "", vip("192.0.2.9")), []*corev1.Node{a},
			nil, plan{write: true, ingress: []corev1.LoadBalancerIngress{vip("192.0.2.1")}, event: event{reason: ReasonUpdated, kind: corev1.EventTypeNormal}}},
		{"class with someone else's status: left alone", service(lb, "example.com/lb", vip("203.0.113.7")), []*corev1.Node{a},
			nil, plan{}},
		{"class with our old status: cleared", service(lb, "example.com/lb", vip("192.0.2.1")), []*corev1.Node{a},
			nil, plan{write: true, event: event{reason: ReasonDeleted, kind: corev1.EventTypeNormal}}},
		{"class without status: nothing", service(lb, "example.com/lb"), []*corev1.Node{a},
			nil, plan{}},
		{"now ClusterIP: our status cleared", service(corev1.ServiceTypeClusterIP, "", vip("192.0.2.1"), vip("192.0.2.3")), []*corev1.Node{a, down},
			nil, plan{write: true, event: event{reason: ReasonDeleted, kind: corev1.EventTypeNormal}}},
		{"now NodePort, node gone but remembered: cleared", service(corev1.ServiceTypeNodePort, "", vip("192.0.2.2")), []*corev1.Node{a},
			[]string{"192.0.2.2"}, plan{write: true, event: event{reason: ReasonDeleted, kind: corev1.EventTypeNormal}}},
		{"now ClusterIP, unknown address: left alone", service(corev1.ServiceTypeClusterIP, "", vip("192.0.2.2")), []*corev1.Node{a},
			nil, plan{}},
		{"hostname entry is not ours", service(corev1.ServiceTypeClusterIP, "", vip("192.0.2.1"), corev1.LoadBalancerIngress{Hostname: "x"}), []*corev1.Node{a},
			nil, plan{}},
		{"proxy ipMode is not ours", service(corev1.ServiceTypeClusterIP, "", corev1.LoadBalancerIngress{IP: "192.0.2.1", IPMode: ptr.To(corev1.LoadBalancerIPModeProxy)}), []*corev1.Node{a},
			nil, plan{}},
		{"ports are not ours", service(corev1.ServiceTypeClusterIP, "", corev1.LoadBalancerIngress{IP: "192.0.2.1", Ports: []corev1.PortStatus{{Port: 80}}}), []*corev1.Node{a},
			nil, plan{}},
		{"being deleted: nothing", func() *corev1.Service {
			s := service(lb, "")
			s.DeletionTimestamp = ptr.To(metav1.Now())
			return s
		}(), []*corev1.Node{a}, nil, plan{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := decide(c.svc, c.nodes, c.remembered)
			if got.write != c.want.write || !reflect.DeepEqual(got.ingress, c.want.ingress) ||
				got.event.reason != c.want.event.reason || got.event.kind != c.want.event.kind {
				t.Errorf("decide = %+v, want %+v", got, c.want)
			}
			if got.write && got.event.message == "" {
				t.Error("a write without an event message")
			}
		})
	}
}

func TestDecideMessages(t *testing.T) {
	a := node("a", true, "192.0.2.1")
	p := decide(service(corev1.ServiceTypeLoadBalancer, "", vip("192.0.2.9")), []*corev1.Node{a}, nil)
	if want := "LoadBalancer ingress changed from [192.0.2.9] to [192.0.2.1]"; p.event.message != want {
		t.Errorf("message %q, want %q", p.event.message, want)
	}
	p = decide(service(corev1.ServiceTypeClusterIP, "", vip("192.0.2.1")), []*corev1.Node{a}, nil)
	if want := "Skiff no longer serves this Service as a LoadBalancer (type is ClusterIP); removed ingress [192.0.2.1]"; p.event.message != want {
		t.Errorf("message %q, want %q", p.event.message, want)
	}
}

func TestContributes(t *testing.T) {
	cases := []struct {
		name     string
		old, new *corev1.Node
		changed  bool
	}{
		{"heartbeat only", node("a", true, "192.0.2.1"), node("a", true, "192.0.2.1"), false},
		{"ready flips", node("a", true, "192.0.2.1"), node("a", false, "192.0.2.1"), true},
		{"address changes", node("a", true, "192.0.2.1"), node("a", true, "192.0.2.5"), true},
		{"exclude label", node("a", true, "192.0.2.1"), excluded(node("a", true, "192.0.2.1")), true},
		{"not ready either way", node("a", false, "192.0.2.1"), node("a", false, "192.0.2.5"), false},
	}
	for _, c := range cases {
		if got := !sameIngress(contributes(c.old), contributes(c.new)); got != c.changed {
			t.Errorf("%s: changed = %v, want %v", c.name, got, c.changed)
		}
	}
}
