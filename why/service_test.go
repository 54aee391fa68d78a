package why

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func service(mut func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.ServiceSpec{
			Type:      corev1.ServiceTypeClusterIP,
			ClusterIP: "10.43.0.20",
			Selector:  map[string]string{"app": "web"},
			Ports:     []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(8080)}},
		},
	}
	if mut != nil {
		mut(s)
	}
	return s
}

// readyPod is a running, ready pod on node n1 declaring port 8080/TCP "http".
func readyPod(name string, lbls map[string]string, mut func(*corev1.Pod)) corev1.Pod {
	p := corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: lbls},
		Spec: corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "app",
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
	}
	if mut != nil {
		mut(&p)
	}
	return p
}

var webLabels = map[string]string{"app": "web"}

// ep is an endpoint for pod name at addr on node; state is one of ready,
// notready, draining (terminating, serving) or gone (terminating, not serving).
func ep(name, addr, node, state string) discoveryv1.Endpoint {
	b := func(v bool) *bool { return &v }
	e := discoveryv1.Endpoint{
		Addresses: []string{addr},
		TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: name},
	}
	if node != "" {
		e.NodeName = &node
	}
	switch state {
	case "ready":
		e.Conditions = discoveryv1.EndpointConditions{Ready: b(true), Serving: b(true), Terminating: b(false)}
	case "notready":
		e.Conditions = discoveryv1.EndpointConditions{Ready: b(false), Serving: b(false), Terminating: b(false)}
	case "draining":
		e.Conditions = discoveryv1.EndpointConditions{Ready: b(false), Serving: b(true), Terminating: b(true)}
	case "gone":
		e.Conditions = discoveryv1.EndpointConditions{Ready: b(false), Serving: b(false), Terminating: b(true)}
	}
	return e
}

func slice(eps ...discoveryv1.Endpoint) []discoveryv1.EndpointSlice {
	return []discoveryv1.EndpointSlice{{
		ObjectMeta:  metav1.ObjectMeta{Name: "web-abc", Namespace: "default", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   eps,
	}}
}

func netpol(name string, podSel map[string]string, types []networkingv1.PolicyType, rules ...networkingv1.NetworkPolicyIngressRule) networkingv1.NetworkPolicy {
	return networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: podSel},
			PolicyTypes: types,
			Ingress:     rules,
		},
	}
}

func TestExplainService(t *testing.T) {
	onePod := []corev1.Pod{readyPod("web-a", webLabels, nil)}
	oneReady := slice(ep("web-a", "10.42.0.5", "n1", "ready"))
	tcp := corev1.ProtocolTCP
	cls := "example.com/lb"
	local := corev1.ServiceInternalTrafficPolicyLocal

	cases := []struct {
		name     string
		svc      *corev1.Service
		pods     []corev1.Pod
		slices   []discoveryv1.EndpointSlice
		policies []networkingv1.NetworkPolicy
		ok       bool
		want     []string // substrings that must appear, in order
		absent   []string
	}{
		{
			name: "ExternalName is DNS only",
			svc: service(func(s *corev1.Service) {
				s.Spec = corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com"}
			}),
			ok:     true,
			want:   []string{"service default/web:", "ExternalName: answered by cluster DNS alone, web.default.svc is a CNAME to db.example.com", "no endpoints"},
			absent: []string{"ready endpoint"},
		},
		{
			name: "ExternalName holding an IP address",
			svc: service(func(s *corev1.Service) {
				s.Spec = corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "192.0.2.7"}
			}),
			want: []string{"externalName 192.0.2.7 is an IP address", "Service without selector and an EndpointSlice"},
		},
		{
			name:   "headless with ready pods",
			svc:    service(func(s *corev1.Service) { s.Spec.ClusterIP = corev1.ClusterIPNone }),
			pods:   []corev1.Pod{readyPod("web-a", webLabels, nil), readyPod("web-b", webLabels, nil)},
			slices: slice(ep("web-a", "10.42.0.5", "n1", "ready"), ep("web-b", "10.42.0.6", "n1", "ready")),
			ok:     true,
			want:   []string{"headless (clusterIP None): no virtual IP; DNS answers web.default.svc with the ready pods' own addresses", "2 ready endpoints: 10.42.0.5, 10.42.0.6"},
			absent: []string{"clusterIP None,", "rejected"},
		},
		{
			name:   "headless without endpoints",
			svc:    service(func(s *corev1.Service) { s.Spec.ClusterIP = corev1.ClusterIPNone }),
			pods:   []corev1.Pod{readyPod("web-a", map[string]string{"app": "api"}, nil)},
			slices: slice(),
			want:   []string{"headless", "no ready endpoint: DNS has no address to return for it", "matches no pod"},
		},
		{
			name: "selector-less without slices",
			svc:  service(func(s *corev1.Service) { s.Spec.Selector = nil }),
			pods: onePod,
			want: []string{"no ready endpoint: new connections to the Service are rejected", "endpoints: none",
				"has no selector, so nothing creates endpoints for it", "kubernetes.io/service-name=web"},
			absent: []string{"endpoints controller has not written", "matches no pod"},
		},
		{
			name:   "selector-less with a hand-made slice",
			svc:    service(func(s *corev1.Service) { s.Spec.Selector = nil }),
			slices: slice(discoveryv1.Endpoint{Addresses: []string{"192.0.2.50"}}),
			ok:     true,
			want:   []string{"1 ready endpoint: 192.0.2.50", "no selector: its endpoints come from the 1 EndpointSlice labelled kubernetes.io/service-name=web, which Skiff does not maintain"},
		},
		{
			name: "selector matches nothing, with likely typos",
			svc:  service(nil),
			pods: func() []corev1.Pod {
				ps := []corev1.Pod{readyPod("db-0", map[string]string{"role": "db"}, nil)}
				for i := 0; i < 7; i++ {
					ps = append(ps, readyPod(fmt.Sprintf("web-v2-%d", i), map[string]string{"app": "web-v2"}, nil))
				}
				return ps
			}(),
			slices: slice(),
			want: []string{"no ready endpoint: new connections to the Service are rejected",
				"the selector matches no pod in namespace default", "selector: app=web",
				"likely a typo", "web-v2-0 (app=web-v2), web-v2-1 (app=web-v2)", "web-v2-4 (app=web-v2) and 2 more"},
			absent: []string{"db-0", "web-v2-5"},
		},
		{
			name:   "selector matches nothing, no pod shares a key",
			svc:    service(nil),
			pods:   []corev1.Pod{readyPod("db-0", map[string]string{"role": "db"}, nil)},
			slices: slice(),
			want:   []string{"matches no pod", "no pod in default has any of the labels app: are the pods in another namespace"},
		},
		{
			name: "matching pods not ready, not running and terminating",
			svc:  service(func(s *corev1.Service) { s.Namespace = "shop" }),
			pods: []corev1.Pod{
				readyPod("web-a", webLabels, func(p *corev1.Pod) { p.Namespace = "shop" }),
				readyPod("web-b", webLabels, func(p *corev1.Pod) {
					p.Namespace = "shop"
					p.Status.Phase = corev1.PodPending
					p.Status.Conditions = nil
					p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff"}}}}
				}),
				readyPod("web-c", webLabels, func(p *corev1.Pod) {
					p.Namespace = "shop"
					p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse, LastTransitionTime: metav1.NewTime(now.Add(-2 * time.Minute))}}
				}),
				readyPod("web-d", webLabels, func(p *corev1.Pod) {
					p.Namespace = "shop"
					ts := metav1.NewTime(now)
					p.DeletionTimestamp = &ts
				}),
				readyPod("web-e", webLabels, func(p *corev1.Pod) { p.Namespace = "shop"; p.Spec.NodeName = "" }),
			},
			slices: slice(ep("web-a", "10.42.0.5", "n1", "ready"), ep("web-c", "10.42.0.7", "n1", "notready"), ep("web-d", "10.42.0.8", "n1", "gone")),
			want: []string{"service shop/web:", "1 ready endpoint: 10.42.0.5", "endpoints: 1 ready, 1 terminating, 1 not ready",
				"3 of the 5 pods the selector matches are not ready, so they get no traffic",
				"web-b: not running (pending, container app is ImagePullBackOff)", "web-c: running, not ready for 2m", "web-e: not scheduled",
				"skiff why pod/web-b -n shop tells why",
				"1 matching pod is terminating: out of rotation for new connections", "web-d"},
		},
		{
			name: "more than five pods not ready are capped",
			svc:  service(nil),
			pods: func() []corev1.Pod {
				var ps []corev1.Pod
				for i := 0; i < 7; i++ {
					ps = append(ps, readyPod(fmt.Sprintf("web-%d", i), webLabels, func(p *corev1.Pod) { p.Status.Conditions = nil }))
				}
				return ps
			}(),
			slices: slice(),
			want:   []string{"no ready endpoint", "7 of the 7 pods", "web-4: running, not ready", "... and 2 more", "skiff why pod/web-0 tells why"},
			absent: []string{"web-5", " -n default"},
		},
		{
			name: "named targetPort no pod declares",
			svc: service(func(s *corev1.Service) {
				s.Spec.Ports[0].Name = "web"
				s.Spec.Ports[0].TargetPort = intstr.FromString("https")
			}),
			pods: []corev1.Pod{readyPod("web-a", webLabels, func(p *corev1.Pod) {
				p.Spec.Containers[0].Ports = append(p.Spec.Containers[0].Ports, corev1.ContainerPort{Name: "https", ContainerPort: 8443, Protocol: corev1.ProtocolUDP})
			})},
			slices: oneReady,
			want: []string{`clusterIP 10.43.0.20, ports 80/TCP -> "https"`,
				`port web (80/TCP) targets the port named "https", which no matching pod declares (for TCP): traffic to that port is rejected`,
				"the pods declare: http/TCP, https/UDP"},
		},
		{
			name: "named targetPort some pods lack",
			svc:  service(func(s *corev1.Service) { s.Spec.Ports[0].TargetPort = intstr.FromString("http") }),
			pods: []corev1.Pod{readyPod("web-a", webLabels, nil), readyPod("web-b", webLabels, func(p *corev1.Pod) {
				p.Spec.Containers[0].Ports = nil
			})},
			slices: oneReady,
			want:   []string{`port 80/TCP targets the port named "http", which 1 of the 2 matching pods do not declare: they get no traffic on it`, "without it: web-b"},
		},
		{
			name: "named targetPort declared by a sidecar",
			svc:  service(func(s *corev1.Service) { s.Spec.Ports[0].TargetPort = intstr.FromString("proxy") }),
			pods: []corev1.Pod{readyPod("web-a", webLabels, func(p *corev1.Pod) {
				always := corev1.ContainerRestartPolicyAlways
				p.Spec.InitContainers = []corev1.Container{
					{Name: "setup", Ports: []corev1.ContainerPort{{Name: "other", ContainerPort: 1}}},
					{Name: "envoy", RestartPolicy: &always, Ports: []corev1.ContainerPort{{Name: "proxy", ContainerPort: 15001}}},
				}
			})},
			slices: oneReady,
			ok:     true,
			want:   []string{"1 ready endpoint"},
			absent: []string{"targets the port named"},
		},
		{
			name:   "numeric targetPort nobody declares is a soft note",
			svc:    service(func(s *corev1.Service) { s.Spec.Ports[0].TargetPort = intstr.FromInt32(9090) }),
			pods:   onePod,
			slices: oneReady,
			ok:     true,
			want:   []string{"1 ready endpoint", "port 80/TCP sends to port 9090, which no matching pod's containers declare", "that is allowed", "8080/TCP"},
		},
		{
			name: "numeric targetPort defaults to the port; undeclared ports say nothing",
			svc:  service(func(s *corev1.Service) { s.Spec.Ports[0].TargetPort = intstr.IntOrString{} }),
			pods: []corev1.Pod{readyPod("web-a", webLabels, func(p *corev1.Pod) {
				p.Spec.Containers[0].Ports = nil
			})},
			slices: oneReady,
			ok:     true,
			want:   []string{"ports 80/TCP -> 80"},
			absent: []string{"sends to port"},
		},
		{
			name: "only terminating endpoints still serving",
			svc:  service(nil),
			pods: []corev1.Pod{readyPod("web-a", webLabels, func(p *corev1.Pod) {
				ts := metav1.NewTime(now)
				p.DeletionTimestamp = &ts
			})},
			slices: slice(ep("web-a", "10.42.0.5", "n1", "draining")),
			want:   []string{"no ready endpoint: new connections go to the 1 terminating endpoint that still serves, until they stop", "endpoints: 1 terminating but still serving", "1 matching pod is terminating"},
		},
		{
			name: "dual-stack slices count each endpoint once",
			svc:  service(nil),
			pods: []corev1.Pod{readyPod("web-a", webLabels, nil), readyPod("web-b", webLabels, nil)},
			slices: append(slice(ep("web-a", "10.42.0.5", "n1", "ready"), ep("web-b", "10.42.0.6", "n2", "draining")),
				slice(ep("web-a", "fd00::5", "n1", "ready"), ep("web-b", "fd00::6", "n2", "draining"))...),
			ok:   true,
			want: []string{"1 ready endpoint: 10.42.0.5", "endpoints: 1 ready, 1 terminating but still serving"},
		},
		{
			name: "no EndpointSlice written yet",
			svc:  service(nil),
			pods: onePod,
			want: []string{"no ready endpoint", "no EndpointSlice exists for it yet"},
		},
		{
			name:   "ready pods that slices do not show yet",
			svc:    service(nil),
			pods:   onePod,
			slices: slice(),
			want:   []string{"no ready endpoint", "1 matching pod is ready but no EndpointSlice lists it as ready yet"},
		},
		{
			name:   "publishNotReadyAddresses",
			svc:    service(func(s *corev1.Service) { s.Spec.PublishNotReadyAddresses = true }),
			pods:   onePod,
			slices: oneReady,
			ok:     true,
			want:   []string{"1 ready endpoint", "publishNotReadyAddresses is set"},
		},
		{
			name: "LoadBalancer of another class without an address",
			svc: service(func(s *corev1.Service) {
				s.Spec.Type = corev1.ServiceTypeLoadBalancer
				s.Spec.LoadBalancerClass = &cls
				s.Spec.Ports[0].NodePort = 30080
			}),
			pods:   onePod,
			slices: oneReady,
			want:   []string{`LoadBalancer of class "example.com/lb" has no external address yet`, "built-in load balancer ignores it", "nodePort 30080/TCP (for port 80)"},
			absent: []string{"pending"},
		},
		{
			name: "LoadBalancer of another class with an address",
			svc: service(func(s *corev1.Service) {
				s.Spec.Type = corev1.ServiceTypeLoadBalancer
				s.Spec.LoadBalancerClass = &cls
				s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{Hostname: "lb.example.com"}}
			}),
			pods:   onePod,
			slices: oneReady,
			ok:     true,
			want:   []string{`LoadBalancer of class "example.com/lb" at lb.example.com`, "built-in load balancer ignores it"},
		},
		{
			name: "LoadBalancer pending",
			svc: service(func(s *corev1.Service) {
				s.Spec.Type = corev1.ServiceTypeLoadBalancer
				s.Spec.Ports[0].NodePort = 30080
			}),
			pods:   onePod,
			slices: oneReady,
			want:   []string{"1 ready endpoint", "LoadBalancer pending: it has no external address because no Ready node can serve it", "every Ready node", "nodePort 30080/TCP"},
		},
		{
			name: "LoadBalancer served by the nodes",
			svc: service(func(s *corev1.Service) {
				s.Spec.Type = corev1.ServiceTypeLoadBalancer
				s.Spec.Ports[0].NodePort = 30080
				s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "192.0.2.10"}, {IP: "192.0.2.11"}}
			}),
			pods:   onePod,
			slices: oneReady,
			ok:     true,
			want:   []string{"1 ready endpoint", "LoadBalancer at 192.0.2.10, 192.0.2.11 (the Ready nodes' addresses), ports 80/TCP -> 8080", "every node answers on nodePort 30080/TCP (for port 80)"},
		},
		{
			name: "externalTrafficPolicy Local lists the nodes with endpoints",
			svc: service(func(s *corev1.Service) {
				s.Spec.Type = corev1.ServiceTypeNodePort
				s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
				s.Spec.Ports[0].NodePort = 31000
			}),
			pods: []corev1.Pod{readyPod("web-a", webLabels, nil), readyPod("web-b", webLabels, nil), readyPod("web-c", webLabels, nil)},
			slices: slice(ep("web-a", "10.42.1.5", "n2", "ready"), ep("web-b", "10.42.0.5", "n1", "ready"),
				ep("web-c", "10.42.1.6", "n2", "ready"), ep("web-x", "10.42.3.6", "n3", "notready")),
			ok: true,
			want: []string{"3 ready endpoints", "externalTrafficPolicy Local: only nodes with a ready endpoint answer", "nodes with a ready endpoint: n1, n2",
				"every node answers on nodePort 31000/TCP"},
			absent: []string{"n3"},
		},
		{
			name: "externalTrafficPolicy Local with endpoints that name no node",
			svc: service(func(s *corev1.Service) {
				s.Spec.Type = corev1.ServiceTypeNodePort
				s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
			}),
			pods:   onePod,
			slices: slice(ep("web-a", "10.42.1.5", "", "ready")),
			want:   []string{"no ready endpoint names its node: NodePort/LoadBalancer traffic is dropped on every node", "nodes with a ready endpoint: none"},
		},
		{
			name:   "internalTrafficPolicy Local",
			svc:    service(func(s *corev1.Service) { s.Spec.InternalTrafficPolicy = &local }),
			pods:   onePod,
			slices: oneReady,
			ok:     true,
			want:   []string{"1 ready endpoint", "internalTrafficPolicy Local: pods only reach endpoints on their own node", "nodes with a ready endpoint: n1"},
			absent: []string{"externalTrafficPolicy"},
		},
		{
			name:   "NetworkPolicy that lets nothing in",
			svc:    service(nil),
			pods:   onePod,
			slices: oneReady,
			policies: []networkingv1.NetworkPolicy{
				netpol("deny-all", nil, nil),
				netpol("egress-only", nil, []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}),
				netpol("for-db", map[string]string{"app": "db"}, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}),
			},
			want:   []string{"1 ready endpoint", "NetworkPolicy deny-all selects these pods for ingress and allows nothing in", "deny-all (selects 1 of 1 pods): allows nothing", "own node"},
			absent: []string{"egress-only", "for-db"},
		},
		{
			name:   "NetworkPolicies that allow some sources",
			svc:    service(nil),
			pods:   []corev1.Pod{readyPod("web-a", webLabels, nil), readyPod("web-b", map[string]string{"app": "web", "tier": "edge"}, nil)},
			slices: slice(ep("web-a", "10.42.0.5", "n1", "ready"), ep("web-b", "10.42.0.6", "n1", "ready")),
			policies: []networkingv1.NetworkPolicy{
				netpol("from-frontend", map[string]string{"app": "web"}, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
					networkingv1.NetworkPolicyIngressRule{
						From: []networkingv1.NetworkPolicyPeer{
							{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"role": "frontend"}}},
							{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "ops"}}, PodSelector: &metav1.LabelSelector{}},
						},
						Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: ptr(intstr.FromInt32(8080))}},
					}),
				netpol("edge", map[string]string{"tier": "edge"}, nil,
					networkingv1.NetworkPolicyIngressRule{From: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0", Except: []string{"10.0.0.0/8"}}}}},
					networkingv1.NetworkPolicyIngressRule{Ports: []networkingv1.NetworkPolicyPort{{Port: ptr(intstr.FromString("http"))}}}),
			},
			ok: true,
			want: []string{"2 ready endpoints",
				"NetworkPolicies edge, from-frontend select these pods for ingress: only the sources they allow can connect",
				"edge (selects 1 of 2 pods): allows from 0.0.0.0/0 except 10.0.0.0/8 on any port; from anywhere on http/TCP",
				"from-frontend (selects 2 of 2 pods): allows from pods role=frontend in default or any pod in namespaces team=ops on 8080/TCP"},
		},
		{
			name: "all well, addresses capped",
			svc:  service(nil),
			pods: onePod,
			slices: func() []discoveryv1.EndpointSlice {
				var eps []discoveryv1.Endpoint
				for i := 12; i >= 6; i-- {
					eps = append(eps, ep(fmt.Sprintf("web-%d", i), fmt.Sprintf("10.42.0.%d", i), "n1", "ready"))
				}
				return slice(eps...)
			}(),
			ok:     true,
			want:   []string{"service default/web:\n  - 7 ready endpoints: 10.42.0.6, 10.42.0.7, 10.42.0.8, 10.42.0.9, 10.42.0.10 and 2 more", "clusterIP 10.43.0.20, ports 80/TCP -> 8080", "endpoints: 7 ready"},
			absent: []string{"10.42.0.11"},
		},
		{
			name: "Service being deleted",
			svc: service(func(s *corev1.Service) {
				ts := metav1.NewTime(now.Add(-10 * time.Second))
				s.DeletionTimestamp = &ts
				s.Finalizers = []string{"service.kubernetes.io/load-balancer-cleanup"}
			}),
			pods:   onePod,
			slices: oneReady,
			want:   []string{"the Service is being deleted", "deletion requested 10s ago", "load-balancer-cleanup", "1 ready endpoint"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := ExplainService(c.svc, c.pods, c.slices, c.policies, now)
			text := Format(r)
			if r.OK != c.ok {
				t.Errorf("OK = %v, want %v, in:\n%s", r.OK, c.ok, text)
			}
			pos := 0
			for _, w := range c.want {
				i := strings.Index(text[pos:], w)
				if i < 0 {
					t.Fatalf("%q not found (in order) in:\n%s", w, text)
				}
				pos += i + len(w)
			}
			for _, a := range c.absent {
				if strings.Contains(text, a) {
					t.Errorf("%q should not appear in:\n%s", a, text)
				}
			}
		})
	}
}

// TestServiceFindingOrder checks that problems come before notes whatever
// order they are found in: the LoadBalancer note is found before the
// NetworkPolicy problem but printed after it.
func TestServiceFindingOrder(t *testing.T) {
	svc := service(func(s *corev1.Service) {
		s.Spec.Type = corev1.ServiceTypeLoadBalancer
		s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "192.0.2.10"}}
	})
	r := ExplainService(svc, []corev1.Pod{readyPod("web-a", webLabels, nil)}, slice(ep("web-a", "10.42.0.5", "n1", "ready")),
		[]networkingv1.NetworkPolicy{netpol("deny-all", nil, nil)}, now)
	var got []string
	for _, f := range r.Findings {
		got = append(got, strings.SplitN(f.Summary, " ", 3)[0]+" "+strings.SplitN(f.Summary, " ", 3)[1])
	}
	want := []string{"1 ready", "NetworkPolicy deny-all", "LoadBalancer at"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("order %q, want %q", got, want)
	}
}

func TestFormatHeader(t *testing.T) {
	cases := []struct {
		r    Report
		want string
	}{
		{Report{Pod: "default/web", Findings: []Finding{{Summary: "s", Details: []string{"d"}}}}, "pod default/web:\n  - s\n      d\n"},
		{Report{Subject: "service shop/web", Findings: []Finding{{Summary: "s"}}}, "service shop/web:\n  - s\n"},
	}
	for _, c := range cases {
		if got := Format(c.r); got != c.want {
			t.Errorf("Format = %q, want %q", got, c.want)
		}
	}
}

func ptr[T any](v T) *T { return &v }
