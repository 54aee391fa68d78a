package proxy

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func lbNode(name string, ready bool, addrs ...corev1.NodeAddress) *corev1.Node {
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Status: corev1.NodeStatus{
			Addresses:  addrs,
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: st}},
		},
	}
}

func internal(ip string) corev1.NodeAddress {
	return corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: ip}
}

func external(ip string) corev1.NodeAddress {
	return corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: ip}
}

func TestLoadBalancerIngress(t *testing.T) {
	excluded := lbNode("c", true, internal("10.0.0.3"))
	excluded.Labels = map[string]string{LabelExcludeFromLB: ""}
	deleting := lbNode("d", true, internal("10.0.0.4"))
	deleting.DeletionTimestamp = &metav1.Time{}
	noCondition := lbNode("e", true, internal("10.0.0.5"))
	noCondition.Status.Conditions = nil

	cases := []struct {
		name  string
		nodes []*corev1.Node
		want  []string
	}{
		{"no nodes", nil, []string{}},
		{"internal addresses, sorted", []*corev1.Node{lbNode("b", true, internal("10.0.0.2")), lbNode("a", true, internal("10.0.0.10"))}, []string{"10.0.0.2", "10.0.0.10"}},
		{"external preferred per node", []*corev1.Node{lbNode("a", true, internal("10.0.0.1"), external("203.0.113.1")), lbNode("b", true, internal("10.0.0.2"))}, []string{"10.0.0.2", "203.0.113.1"}},
		{"not ready, excluded, deleting and unknown nodes left out", []*corev1.Node{lbNode("a", true, internal("10.0.0.1")), lbNode("b", false, internal("10.0.0.2")), excluded, deleting, noCondition}, []string{"10.0.0.1"}},
		{"duplicates removed, IPv4 before IPv6", []*corev1.Node{lbNode("a", true, internal("fd00::1"), internal("10.0.0.1")), lbNode("b", true, internal("10.0.0.1"))}, []string{"10.0.0.1", "fd00::1"}},
		{"unparsable address ignored", []*corev1.Node{lbNode("a", true, internal("not-an-ip"), internal("10.0.0.1"))}, []string{"10.0.0.1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := []string{}
			for _, ing := range LoadBalancerIngress(c.nodes) {
				got = append(got, ing.IP)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
}

func TestServesLoadBalancer(t *testing.T) {
	cases := []struct {
		name string
		svc  *corev1.Service
		want bool
	}{
		{"LoadBalancer without class", svc("d", "a", webIP, webPorts(), loadBalancer(30080)), true},
		{"LoadBalancer with empty class", svc("d", "a", webIP, webPorts(), loadBalancer(30080), lbClass("")), true},
		{"LoadBalancer of another class", svc("d", "a", webIP, webPorts(), loadBalancer(30080), lbClass("example.com/lb")), false},
		{"NodePort", svc("d", "a", webIP, webPorts(), nodePort(30080)), false},
	}
	for _, c := range cases {
		if got := ServesLoadBalancer(c.svc); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
