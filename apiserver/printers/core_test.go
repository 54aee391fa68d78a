package printers

import (
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// rowCase is one object and the row it must print as.
type rowCase struct {
	name string
	obj  runtime.Object
	want []interface{}
}

func checkRows(t *testing.T, gk schema.GroupKind, cases []rowCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := row(t, gk, tc.obj); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("row\n got %#v\nwant %#v", got, tc.want)
			}
		})
	}
}

func objMeta(name string, age time.Duration) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: "default", CreationTimestamp: ago(age)}
}

func TestServiceRows(t *testing.T) {
	svc := func(typ corev1.ServiceType, mutate func(*corev1.Service)) *corev1.Service {
		s := &corev1.Service{ObjectMeta: objMeta("web", 5*time.Hour)}
		s.Spec.Type = typ
		s.Spec.ClusterIP = "10.43.0.10"
		s.Spec.ClusterIPs = []string{"10.43.0.10"}
		s.Spec.Ports = []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP}}
		s.Spec.Selector = map[string]string{"app": "web"}
		mutate(s)
		return s
	}
	checkRows(t, schema.GroupKind{Kind: "Service"}, []rowCase{
		{"cluster IP", svc(corev1.ServiceTypeClusterIP, func(*corev1.Service) {}),
			[]interface{}{"web", "ClusterIP", "10.43.0.10", "<none>", "80/TCP", "5h", "app=web"}},
		{"cluster IP with external IPs and two ports", svc(corev1.ServiceTypeClusterIP, func(s *corev1.Service) {
			s.Spec.ExternalIPs = []string{"192.0.2.1", "192.0.2.2"}
			s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Port: 53, Protocol: corev1.ProtocolUDP})
		}), []interface{}{"web", "ClusterIP", "10.43.0.10", "192.0.2.1,192.0.2.2", "80/TCP,53/UDP", "5h", "app=web"}},
		{"node port", svc(corev1.ServiceTypeNodePort, func(s *corev1.Service) {
			s.Spec.Ports[0].NodePort = 30080
		}), []interface{}{"web", "NodePort", "10.43.0.10", "<none>", "80:30080/TCP", "5h", "app=web"}},
		{"load balancer pending", svc(corev1.ServiceTypeLoadBalancer, func(s *corev1.Service) {
			s.Spec.Ports[0].NodePort = 31000
		}), []interface{}{"web", "LoadBalancer", "10.43.0.10", "<pending>", "80:31000/TCP", "5h", "app=web"}},
		{"load balancer with ingress", svc(corev1.ServiceTypeLoadBalancer, func(s *corev1.Service) {
			s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{
				{IP: "203.0.113.9"}, {Hostname: "lb.example.com"}, {IP: "203.0.113.9"}, {IP: "198.51.100.1"},
			}
			s.Spec.ExternalIPs = []string{"192.0.2.1"}
		}), []interface{}{"web", "LoadBalancer", "10.43.0.10", "198.51.100.1,203.0.113.9,lb.example.com,192.0.2.1", "80/TCP", "5h", "app=web"}},
		{"external name", svc(corev1.ServiceTypeExternalName, func(s *corev1.Service) {
			s.Spec.ClusterIP, s.Spec.ClusterIPs, s.Spec.Ports, s.Spec.Selector = "", nil, nil, nil
			s.Spec.ExternalName = "db.example.com"
		}), []interface{}{"web", "ExternalName", "<none>", "db.example.com", "<none>", "5h", "<none>"}},
		{"headless", svc(corev1.ServiceTypeClusterIP, func(s *corev1.Service) {
			s.Spec.ClusterIP, s.Spec.ClusterIPs = "None", []string{"None"}
		}), []interface{}{"web", "ClusterIP", "None", "<none>", "80/TCP", "5h", "app=web"}},
		{"dual stack shows the first cluster IP", svc(corev1.ServiceTypeClusterIP, func(s *corev1.Service) {
			s.Spec.ClusterIPs = []string{"10.43.0.10", "fd00::10"}
		}), []interface{}{"web", "ClusterIP", "10.43.0.10", "<none>", "80/TCP", "5h", "app=web"}},
	})
}

func TestNodeRows(t *testing.T) {
	node := func(mutate func(*corev1.Node)) *corev1.Node {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", CreationTimestamp: ago(50 * 24 * time.Hour)}}
		n.Status.NodeInfo = corev1.NodeSystemInfo{KubeletVersion: "v1.33.1", OSImage: "Debian 12", KernelVersion: "6.1.0", ContainerRuntimeVersion: "containerd://2.0.0"}
		n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: "n1"}, {Type: corev1.NodeInternalIP, Address: "192.168.1.10"}}
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse}, {Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
		mutate(n)
		return n
	}
	checkRows(t, schema.GroupKind{Kind: "Node"}, []rowCase{
		{"ready control plane", node(func(n *corev1.Node) {
			n.Labels = map[string]string{"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/master": "", "kubernetes.io/hostname": "n1"}
		}), []interface{}{"n1", "Ready", "control-plane,master", "50d", "v1.33.1", "192.168.1.10", "<none>", "Debian 12", "6.1.0", "containerd://2.0.0"}},
		{"not ready, cordoned, legacy role label", node(func(n *corev1.Node) {
			n.Status.Conditions[1].Status = corev1.ConditionFalse
			n.Spec.Unschedulable = true
			n.Labels = map[string]string{"kubernetes.io/role": "worker"}
			n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: "203.0.113.4"})
		}), []interface{}{"n1", "NotReady,SchedulingDisabled", "worker", "50d", "v1.33.1", "192.168.1.10", "203.0.113.4", "Debian 12", "6.1.0", "containerd://2.0.0"}},
		{"no ready condition, nothing reported", node(func(n *corev1.Node) {
			n.Status = corev1.NodeStatus{}
		}), []interface{}{"n1", "Unknown", "<none>", "50d", "", "<none>", "<none>", "<unknown>", "<unknown>", "<unknown>"}},
		{"ready unknown", node(func(n *corev1.Node) {
			n.Status.Conditions[1].Status = corev1.ConditionUnknown
		}), []interface{}{"n1", "NotReady", "<none>", "50d", "v1.33.1", "192.168.1.10", "<none>", "Debian 12", "6.1.0", "containerd://2.0.0"}},
	})
}

func TestEndpointsRows(t *testing.T) {
	addrs := func(ips ...string) []corev1.EndpointAddress {
		out := make([]corev1.EndpointAddress, len(ips))
		for i, ip := range ips {
			out[i] = corev1.EndpointAddress{IP: ip}
		}
		return out
	}
	ep := func(subsets ...corev1.EndpointSubset) *corev1.Endpoints {
		return &corev1.Endpoints{ObjectMeta: objMeta("web", time.Minute), Subsets: subsets}
	}
	checkRows(t, schema.GroupKind{Kind: "Endpoints"}, []rowCase{
		{"none", ep(), []interface{}{"web", "<none>", "60s"}},
		{"two", ep(corev1.EndpointSubset{Addresses: addrs("10.42.0.5", "10.42.0.6"), Ports: []corev1.EndpointPort{{Port: 80}}}),
			[]interface{}{"web", "10.42.0.5:80,10.42.0.6:80", "60s"}},
		{"more than three", ep(corev1.EndpointSubset{Addresses: addrs("10.42.0.5", "10.42.0.6"), Ports: []corev1.EndpointPort{{Port: 80}, {Port: 443}}}),
			[]interface{}{"web", "10.42.0.5:80,10.42.0.6:80,10.42.0.5:443 + 1 more...", "60s"}},
		{"headless without ports, IPv6", ep(corev1.EndpointSubset{Addresses: addrs("10.42.0.5")}, corev1.EndpointSubset{Addresses: addrs("fd00::1"), Ports: []corev1.EndpointPort{{Port: 53}}}),
			[]interface{}{"web", "10.42.0.5,[fd00::1]:53", "60s"}},
	})
}

func TestSmallCoreRows(t *testing.T) {
	one := int32(1)
	checkRows(t, schema.GroupKind{Kind: "Namespace"}, []rowCase{
		{"active", &corev1.Namespace{ObjectMeta: objMeta("kube-system", 45*24*time.Hour), Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}},
			[]interface{}{"kube-system", "Active", "45d"}},
	})
	checkRows(t, schema.GroupKind{Kind: "ConfigMap"}, []rowCase{
		{"text and binary keys", &corev1.ConfigMap{ObjectMeta: objMeta("cfg", 5*time.Second), Data: map[string]string{"a": "1", "b": "2"}, BinaryData: map[string][]byte{"c": nil}},
			[]interface{}{"cfg", int64(3), "5s"}},
	})
	checkRows(t, schema.GroupKind{Kind: "Secret"}, []rowCase{
		{"tls", &corev1.Secret{ObjectMeta: objMeta("tls", time.Hour), Type: corev1.SecretTypeTLS, Data: map[string][]byte{"tls.crt": nil, "tls.key": nil}},
			[]interface{}{"tls", "kubernetes.io/tls", int64(2), "60m"}},
	})
	checkRows(t, schema.GroupKind{Kind: "ServiceAccount"}, []rowCase{
		{"default", &corev1.ServiceAccount{ObjectMeta: objMeta("default", time.Hour)}, []interface{}{"default", int64(0), "60m"}},
	})
	rc := &corev1.ReplicationController{ObjectMeta: objMeta("rc", time.Minute)}
	rc.Spec.Replicas = &one
	rc.Spec.Selector = map[string]string{"app": "web"}
	rc.Spec.Template = &corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx:1.27"}, {Name: "log", Image: "busybox"}}}}
	rc.Status.Replicas, rc.Status.ReadyReplicas = 1, 0
	checkRows(t, schema.GroupKind{Kind: "ReplicationController"}, []rowCase{
		{"one replica", rc, []interface{}{"rc", int64(1), int64(1), int64(0), "60s", "web,log", "nginx:1.27,busybox", "app=web"}},
		{"no template", &corev1.ReplicationController{ObjectMeta: objMeta("bare", time.Minute)},
			[]interface{}{"bare", int64(1), int64(0), int64(0), "60s", "", "", "<none>"}},
	})
	lr := &corev1.LimitRange{ObjectMeta: metav1.ObjectMeta{Name: "limits", CreationTimestamp: metav1.NewTime(time.Date(2025, 5, 1, 8, 30, 0, 0, time.FixedZone("CEST", 2*3600)))}}
	checkRows(t, schema.GroupKind{Kind: "LimitRange"}, []rowCase{
		{"created at in UTC", lr, []interface{}{"limits", "2025-05-01T06:30:00Z"}},
	})
	pt := &corev1.PodTemplate{ObjectMeta: objMeta("tmpl", time.Minute)}
	pt.Template.Labels = map[string]string{"app": "web", "tier": "front"}
	pt.Template.Spec.Containers = []corev1.Container{{Name: "web", Image: "nginx"}}
	checkRows(t, schema.GroupKind{Kind: "PodTemplate"}, []rowCase{
		{"labels", pt, []interface{}{"tmpl", "web", "nginx", "app=web,tier=front"}},
	})
}

func TestResourceQuotaRow(t *testing.T) {
	q := &corev1.ResourceQuota{ObjectMeta: objMeta("compute", 3*time.Minute)}
	q.Status.Hard = corev1.ResourceList{
		"pods":            resource.MustParse("10"),
		"requests.cpu":    resource.MustParse("1"),
		"requests.memory": resource.MustParse("1Gi"),
		"limits.cpu":      resource.MustParse("2"),
		"limits.memory":   resource.MustParse("2Gi"),
	}
	q.Status.Used = corev1.ResourceList{
		"pods":         resource.MustParse("2"),
		"requests.cpu": resource.MustParse("500m"),
		"limits.cpu":   resource.MustParse("1"),
	}
	checkRows(t, schema.GroupKind{Kind: "ResourceQuota"}, []rowCase{
		{"requests and limits", q, []interface{}{"compute",
			"pods: 2/10, requests.cpu: 500m/1, requests.memory: 0/1Gi",
			"limits.cpu: 1/2, limits.memory: 0/2Gi", "3m"}},
		{"empty", &corev1.ResourceQuota{ObjectMeta: objMeta("none", 3*time.Minute)}, []interface{}{"none", "", "", "3m"}},
	})
}
