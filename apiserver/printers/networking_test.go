package printers

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestIngressRows(t *testing.T) {
	nginx := "nginx"
	rules := func(hosts ...string) []networkingv1.IngressRule {
		out := make([]networkingv1.IngressRule, len(hosts))
		for i, h := range hosts {
			out[i].Host = h
		}
		return out
	}
	ing := func(mutate func(*networkingv1.Ingress)) *networkingv1.Ingress {
		in := &networkingv1.Ingress{ObjectMeta: objMeta("web", time.Minute)}
		mutate(in)
		return in
	}
	checkRows(t, schema.GroupKind{Group: "networking.k8s.io", Kind: "Ingress"}, []rowCase{
		{"bare", ing(func(*networkingv1.Ingress) {}), []interface{}{"web", "<none>", "*", "", "80", "60s"}},
		{"class, hosts, tls, address", ing(func(in *networkingv1.Ingress) {
			in.Spec.IngressClassName = &nginx
			in.Spec.Rules = rules("a.example.com", "b.example.com")
			in.Spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{"a.example.com"}}}
			in.Status.LoadBalancer.Ingress = []networkingv1.IngressLoadBalancerIngress{{IP: "192.0.2.7"}, {Hostname: "lb.example.com"}, {IP: "192.0.2.7"}}
		}), []interface{}{"web", "nginx", "a.example.com,b.example.com", "192.0.2.7,lb.example.com", "80, 443", "60s"}},
		{"many hosts", ing(func(in *networkingv1.Ingress) {
			in.Spec.Rules = rules("a", "b", "c", "d", "e")
		}), []interface{}{"web", "<none>", "a,b,c + 2 more...", "", "80", "60s"}},
		{"hostless rules among the first few", ing(func(in *networkingv1.Ingress) {
			in.Spec.Rules = rules("a", "", "b", "c")
		}), []interface{}{"web", "<none>", "a,b,c", "", "80", "60s"}},
		{"a hostless rule after three hosts", ing(func(in *networkingv1.Ingress) {
			in.Spec.Rules = rules("a", "b", "c", "")
		}), []interface{}{"web", "<none>", "a,b,c + 1 more...", "", "80", "60s"}},
	})

	group := "example.com"
	checkRows(t, schema.GroupKind{Group: "networking.k8s.io", Kind: "IngressClass"}, []rowCase{
		{"no parameters", &networkingv1.IngressClass{ObjectMeta: objMeta("nginx", time.Hour), Spec: networkingv1.IngressClassSpec{Controller: "k8s.io/ingress-nginx"}},
			[]interface{}{"nginx", "k8s.io/ingress-nginx", "<none>", "60m"}},
		{"parameters with group", &networkingv1.IngressClass{ObjectMeta: objMeta("ext", time.Hour), Spec: networkingv1.IngressClassSpec{
			Controller: "example.com/lb", Parameters: &networkingv1.IngressClassParametersReference{APIGroup: &group, Kind: "LBConfig", Name: "cfg"}}},
			[]interface{}{"ext", "example.com/lb", "LBConfig.example.com/cfg", "60m"}},
		{"parameters in the core group", &networkingv1.IngressClass{ObjectMeta: objMeta("cm", time.Hour), Spec: networkingv1.IngressClassSpec{
			Controller: "example.com/lb", Parameters: &networkingv1.IngressClassParametersReference{Kind: "ConfigMap", Name: "cfg"}}},
			[]interface{}{"cm", "example.com/lb", "ConfigMap/cfg", "60m"}},
	})

	checkRows(t, schema.GroupKind{Group: "networking.k8s.io", Kind: "NetworkPolicy"}, []rowCase{
		{"all pods", &networkingv1.NetworkPolicy{ObjectMeta: objMeta("deny", time.Minute)}, []interface{}{"deny", "<none>", "60s"}},
		{"selected pods", &networkingv1.NetworkPolicy{ObjectMeta: objMeta("web", time.Minute), Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}}, []interface{}{"web", "app=web", "60s"}},
	})
}

func TestEndpointSliceRows(t *testing.T) {
	i32 := func(n int32) *int32 { return &n }
	str := func(s string) *string { return &s }
	slice := &discoveryv1.EndpointSlice{ObjectMeta: objMeta("web-abc", time.Minute), AddressType: discoveryv1.AddressTypeIPv4}
	slice.Ports = []discoveryv1.EndpointPort{{Port: i32(80)}, {Name: str("metrics")}, {}, {Port: i32(443), Protocol: new(corev1.Protocol)}}
	slice.Endpoints = []discoveryv1.Endpoint{{Addresses: []string{"10.42.0.5"}}, {Addresses: []string{"10.42.0.6", "10.42.0.7"}}}
	checkRows(t, schema.GroupKind{Group: "discovery.k8s.io", Kind: "EndpointSlice"}, []rowCase{
		{"ports and endpoints", slice, []interface{}{"web-abc", "IPv4", "80,metrics,* + 1 more...", "10.42.0.5,10.42.0.6,10.42.0.7", "60s"}},
		{"empty", &discoveryv1.EndpointSlice{ObjectMeta: objMeta("none", time.Minute), AddressType: discoveryv1.AddressTypeIPv6},
			[]interface{}{"none", "IPv6", "<unset>", "<unset>", "60s"}},
	})
}
