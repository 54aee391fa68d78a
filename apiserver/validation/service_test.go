package validation

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func service(mut func(s *corev1.Service)) *corev1.Service {
	s := &corev1.Service{ObjectMeta: nsMeta("web"), Spec: corev1.ServiceSpec{
		Selector: appLabels, Ports: []corev1.ServicePort{{Port: 80}}}}
	if mut != nil {
		mut(s)
	}
	return s
}

func TestServiceCreate(t *testing.T) {
	runCreate(t, []createCase{
		{name: "valid", obj: service(nil)},
		{name: "valid node port", obj: service(func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeNodePort
			s.Spec.Ports = []corev1.ServicePort{{Name: "http", Port: 80, NodePort: 30080}, {Name: "https", Port: 443}}
		})},
		{name: "valid load balancer", obj: service(func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeLoadBalancer
			s.Spec.LoadBalancerSourceRanges = []string{"10.0.0.0/8"}
		})},
		{name: "valid headless without ports", obj: service(func(s *corev1.Service) { s.Spec.ClusterIP = "None"; s.Spec.Ports = nil })},
		{name: "valid external name", obj: service(func(s *corev1.Service) {
			s.Spec = corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com."}
		})},
		{name: "name must be a DNS-1035 label", obj: service(func(s *corev1.Service) { s.Name = "1web" }), want: []string{e(invalid, "metadata.name")}},
		{name: "ports required", obj: service(func(s *corev1.Service) { s.Spec.Ports = nil }), want: []string{e(required, "spec.ports")}},
		{name: "port names", obj: service(func(s *corev1.Service) {
			s.Spec.Ports = []corev1.ServicePort{{Port: 80}, {Name: "web", Port: 81}, {Name: "web", Port: 82}, {Name: "Bad", Port: 83}}
		}), want: []string{e(required, "spec.ports[0].name"), e(duplicate, "spec.ports[2].name"), e(invalid, "spec.ports[3].name")}},
		{name: "port numbers and protocols", obj: service(func(s *corev1.Service) {
			s.Spec.Ports = []corev1.ServicePort{{Name: "a", Port: 0}, {Name: "b", Port: 80, Protocol: "ICMP"},
				{Name: "c", Port: 81, TargetPort: intstr.FromString("not_valid")}, {Name: "d", Port: 82}, {Name: "e", Port: 82}}
		}), want: []string{e(invalid, "spec.ports[0].port"), e(invalid, "spec.ports[0].targetPort"), e(notSupported, "spec.ports[1].protocol"),
			e(invalid, "spec.ports[2].targetPort"), e(duplicate, "spec.ports[4]")}},
		{name: "node port on cluster ip", obj: service(func(s *corev1.Service) { s.Spec.Ports[0].NodePort = 30001 }),
			want: []string{e(forbidden, "spec.ports[0].nodePort")}},
		{name: "node port out of range", obj: service(func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeNodePort
			s.Spec.Ports[0].NodePort = 8080
		}), want: []string{e(invalid, "spec.ports[0].nodePort")}},
		{name: "type", obj: service(func(s *corev1.Service) { s.Spec.Type = "Internal" }), want: []string{e(notSupported, "spec.type")}},
		{name: "external name required", obj: service(func(s *corev1.Service) {
			s.Spec = corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName}
		}), want: []string{e(required, "spec.externalName")}},
		{name: "external name with cluster ip", obj: service(func(s *corev1.Service) {
			s.Spec = corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com", ClusterIP: "10.0.0.5"}
		}), want: []string{e(forbidden, "spec.clusterIP")}},
		{name: "bad cluster ip", obj: service(func(s *corev1.Service) { s.Spec.ClusterIP = "10.0.0.300" }),
			want: []string{e(invalid, "spec.clusterIPs[0]")}},
		{name: "headless node port", obj: service(func(s *corev1.Service) { s.Spec.ClusterIP = "None"; s.Spec.Type = corev1.ServiceTypeNodePort }),
			want: []string{e(invalid, "spec.clusterIP")}},
		{name: "session affinity timeout", obj: service(func(s *corev1.Service) {
			s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
			s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr(int32(86401))}}
		}), want: []string{e(invalid, "spec.sessionAffinityConfig.clientIP.timeoutSeconds")}},
		{name: "external traffic policy on an internal service", obj: service(func(s *corev1.Service) {
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		}), want: []string{e(invalid, "spec.externalTrafficPolicy")}},
		{name: "load balancer fields on cluster ip", obj: service(func(s *corev1.Service) {
			s.Spec.LoadBalancerSourceRanges = []string{"10.0.0.0/8"}
			s.Spec.AllocateLoadBalancerNodePorts = ptr(true)
		}), want: []string{e(forbidden, "spec.loadBalancerSourceRanges"), e(forbidden, "spec.allocateLoadBalancerNodePorts")}},
		{name: "selector values", obj: service(func(s *corev1.Service) { s.Spec.Selector = map[string]string{"app": "a b"} }),
			want: []string{e(invalid, "spec.selector")}},
		{name: "single stack with two families", obj: service(func(s *corev1.Service) {
			s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv4Protocol}
		}), want: []string{e(invalid, "spec.ipFamilyPolicy"), e(duplicate, "spec.ipFamilies[1]")}},
	})
}

func TestServiceUpdate(t *testing.T) {
	allocated := func() *corev1.Service {
		return service(func(s *corev1.Service) { s.Spec.ClusterIP = "10.96.0.10" })
	}
	change := func(f func(s *corev1.Service)) func(runtime.Object) {
		return func(o runtime.Object) { f(o.(*corev1.Service)) }
	}
	runUpdate(t, []updateCase{
		{name: "ports may change", old: allocated(), change: change(func(s *corev1.Service) { s.Spec.Ports[0].Port = 8080; s.Spec.Ports[0].TargetPort = intstr.FromInt32(0) })},
		{name: "cluster ip may not", old: allocated(), change: change(func(s *corev1.Service) { s.Spec.ClusterIP = "10.96.0.11"; s.Spec.ClusterIPs = nil }),
			want: []string{e(invalid, "spec.clusterIPs[0]")}},
		{name: "to external name dropping the cluster ip", old: allocated(), change: change(func(s *corev1.Service) {
			s.Spec = corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com"}
		})},
		{name: "load balancer class set on becoming a load balancer", old: allocated(), change: change(func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeLoadBalancer
			s.Spec.LoadBalancerClass = ptr("example.com/lb")
		})},
		{name: "load balancer class may not change", old: lbWith(allocated(), "example.com/lb"), change: change(func(s *corev1.Service) {
			s.Spec.LoadBalancerClass = ptr("example.com/other")
		}), want: []string{e(invalid, "spec.loadBalancerClass")}},
		{name: "load balancer class may not be added", old: lbWith(allocated(), ""), change: change(func(s *corev1.Service) {
			s.Spec.LoadBalancerClass = ptr("example.com/lb")
		}), want: []string{e(invalid, "spec.loadBalancerClass")}},
	})
}

func TestEndpointsAndSlices(t *testing.T) {
	ep := func(mut func(e *corev1.Endpoints)) *corev1.Endpoints {
		e := &corev1.Endpoints{ObjectMeta: nsMeta("web"), Subsets: []corev1.EndpointSubset{{
			Addresses: []corev1.EndpointAddress{{IP: "10.1.0.5"}}, Ports: []corev1.EndpointPort{{Port: 80}}}}}
		if mut != nil {
			mut(e)
		}
		return e
	}
	slice := func(mut func(s *discoveryv1.EndpointSlice)) *discoveryv1.EndpointSlice {
		s := &discoveryv1.EndpointSlice{ObjectMeta: nsMeta("web-abc"), AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.1.0.5"}}}, Ports: []discoveryv1.EndpointPort{{Name: ptr("http"), Port: ptr(int32(80))}}}
		if mut != nil {
			mut(s)
		}
		return s
	}
	runCreate(t, []createCase{
		{name: "endpoints valid", obj: ep(nil)},
		{name: "endpoints loopback", obj: ep(func(e *corev1.Endpoints) { e.Subsets[0].Addresses[0].IP = "127.0.0.1" }),
			want: []string{e(invalid, "subsets[0].addresses[0].ip")}},
		{name: "endpoints without addresses", obj: ep(func(e *corev1.Endpoints) { e.Subsets[0].Addresses = nil }),
			want: []string{e(required, "subsets[0]")}},
		{name: "endpoints port names", obj: ep(func(e *corev1.Endpoints) {
			e.Subsets[0].Ports = []corev1.EndpointPort{{Port: 80}, {Name: "b", Port: 0}}
		}), want: []string{e(required, "subsets[0].ports[0].name"), e(invalid, "subsets[0].ports[1].port")}},
		{name: "slice valid", obj: slice(nil)},
		{name: "slice address type", obj: slice(func(s *discoveryv1.EndpointSlice) { s.AddressType = "IPv5" }),
			want: []string{e(notSupported, "addressType")}},
		{name: "slice addresses", obj: slice(func(s *discoveryv1.EndpointSlice) {
			s.Endpoints = []discoveryv1.Endpoint{{Addresses: []string{"fd00::1"}}, {}}
		}), want: []string{e(invalid, "endpoints[0].addresses[0]"), e(required, "endpoints[1].addresses")}},
		{name: "slice ports", obj: slice(func(s *discoveryv1.EndpointSlice) {
			s.Ports = append(s.Ports, discoveryv1.EndpointPort{Name: ptr("http"), Protocol: ptr(corev1.Protocol("X"))})
		}), want: []string{e(duplicate, "ports[1].name"), e(notSupported, "ports[1].protocol")}},
	})
	runUpdate(t, []updateCase{
		{name: "slice address type is immutable", old: slice(nil), change: func(o runtime.Object) {
			s := o.(*discoveryv1.EndpointSlice)
			s.AddressType = discoveryv1.AddressTypeFQDN
			s.Endpoints[0].Addresses = []string{"web.example.com"}
		}, want: []string{e(invalid, "addressType")}},
	})
}

func ingress(mut func(i *networkingv1.Ingress)) *networkingv1.Ingress {
	prefix := networkingv1.PathTypePrefix
	i := &networkingv1.Ingress{ObjectMeta: nsMeta("web"), Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{
		Host: "web.example.com",
		IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
			Path: "/", PathType: &prefix, Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
				Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}}}}}}},
	}}}}
	if mut != nil {
		mut(i)
	}
	return i
}

func TestNetworking(t *testing.T) {
	p0 := "spec.rules[0].http.paths[0]"
	runCreate(t, []createCase{
		{name: "ingress valid", obj: ingress(nil)},
		{name: "ingress wildcard host and tls", obj: ingress(func(i *networkingv1.Ingress) {
			i.Spec.Rules[0].Host = "*.example.com"
			i.Spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{"*.example.com"}, SecretName: "tls"}}
		})},
		{name: "ingress needs rules or a default backend", obj: ingress(func(i *networkingv1.Ingress) { i.Spec.Rules = nil }),
			want: []string{e(invalid, "spec")}},
		{name: "ingress paths", obj: ingress(func(i *networkingv1.Ingress) {
			p := &i.Spec.Rules[0].HTTP.Paths[0]
			p.Path = "api//v1"
			p.Backend.Service.Port = networkingv1.ServiceBackendPort{}
		}), want: []string{e(invalid, p0+".path"), e(invalid, p0+".path"), e(required, p0+".backend.service.port")}},
		{name: "ingress path type required", obj: ingress(func(i *networkingv1.Ingress) { i.Spec.Rules[0].HTTP.Paths[0].PathType = nil }),
			want: []string{e(required, p0+".pathType")}},
		{name: "ingress host ip", obj: ingress(func(i *networkingv1.Ingress) { i.Spec.Rules[0].Host = "10.0.0.1" }),
			want: []string{e(invalid, "spec.rules[0].host")}},
		{name: "ingress backend", obj: ingress(func(i *networkingv1.Ingress) {
			i.Spec.Rules[0].HTTP.Paths[0].Backend = networkingv1.IngressBackend{}
		}), want: []string{e(invalid, p0+".backend")}},
		{name: "ingress class twice", obj: ingress(func(i *networkingv1.Ingress) {
			i.Spec.IngressClassName = ptr("nginx")
			i.Annotations = map[string]string{"kubernetes.io/ingress.class": "nginx"}
		}), want: []string{e(invalid, "metadata.annotations[kubernetes.io/ingress.class]")}},
		{name: "ingress class valid", obj: &networkingv1.IngressClass{ObjectMeta: clusterMeta("nginx"), Spec: networkingv1.IngressClassSpec{
			Controller: "k8s.io/ingress-nginx", Parameters: &networkingv1.IngressClassParametersReference{Kind: "Params", Name: "p"}}}},
		{name: "ingress class", obj: &networkingv1.IngressClass{ObjectMeta: clusterMeta("nginx"), Spec: networkingv1.IngressClassSpec{
			Parameters: &networkingv1.IngressClassParametersReference{Kind: "Params", Name: "p", Scope: ptr("Namespace")}}},
			want: []string{e(required, "spec.controller"), e(required, "spec.parameters.namespace")}},
		{name: "network policy valid", obj: &networkingv1.NetworkPolicy{ObjectMeta: nsMeta("deny"), Spec: networkingv1.NetworkPolicySpec{
			Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{
				{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/8", Except: []string{"10.1.0.0/16"}}}, {PodSelector: &metav1.LabelSelector{}}},
				Ports: []networkingv1.NetworkPolicyPort{{Port: ptr(intstr.FromInt32(8000)), EndPort: ptr(int32(9000))}}}}}}},
		{name: "network policy", obj: &networkingv1.NetworkPolicy{ObjectMeta: nsMeta("deny"), Spec: networkingv1.NetworkPolicySpec{
			Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{
				{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/16", Except: []string{"10.1.0.0/24"}}}, {}},
				Ports: []networkingv1.NetworkPolicyPort{{Port: ptr(intstr.FromInt32(9000)), EndPort: ptr(int32(8000))}, {Port: ptr(intstr.FromString("Web!"))}}}},
			PolicyTypes: []networkingv1.PolicyType{"Sideways"}}},
			want: []string{e(invalid, "spec.ingress[0].from[0].ipBlock.except[0]"), e(required, "spec.ingress[0].from[1]"),
				e(invalid, "spec.ingress[0].ports[0].endPort"), e(invalid, "spec.ingress[0].ports[1].port"), e(notSupported, "spec.policyTypes[0]")}},
	})
	runUpdate(t, []updateCase{
		{name: "ingress class controller is immutable", old: &networkingv1.IngressClass{ObjectMeta: clusterMeta("nginx"),
			Spec: networkingv1.IngressClassSpec{Controller: "k8s.io/ingress-nginx"}},
			change: func(o runtime.Object) { o.(*networkingv1.IngressClass).Spec.Controller = "example.com/other" },
			want:   []string{e(invalid, "spec.controller")}},
	})
}

// lbWith makes s a LoadBalancer Service with the given class ("" for none).
func lbWith(s *corev1.Service, class string) *corev1.Service {
	s.Spec.Type = corev1.ServiceTypeLoadBalancer
	for i := range s.Spec.Ports {
		s.Spec.Ports[i].NodePort = int32(30080 + i)
	}
	if class != "" {
		s.Spec.LoadBalancerClass = &class
	}
	return s
}
