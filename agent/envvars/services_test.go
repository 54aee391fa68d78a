package envvars

import (
	"reflect"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func svc(ns, name, ip string, ports ...v1.ServicePort) *v1.Service {
	return &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       v1.ServiceSpec{ClusterIP: ip, Ports: ports},
	}
}

func TestServiceEnv(t *testing.T) {
	kube := svc("default", "kubernetes", "10.0.0.1", v1.ServicePort{Name: "https", Port: 443, Protocol: v1.ProtocolTCP})
	redis := svc("app", "redis-primary", "10.0.0.11",
		v1.ServicePort{Name: "redis", Port: 6379},
		v1.ServicePort{Name: "metrics-port", Port: 9121, Protocol: v1.ProtocolUDP})
	headless := svc("app", "headless", v1.ClusterIPNone, v1.ServicePort{Port: 80})
	external := svc("app", "ext", "", v1.ServicePort{Port: 80})
	other := svc("elsewhere", "db", "10.0.0.20", v1.ServicePort{Port: 5432})
	v6 := svc("app", "v6", "fd00::10", v1.ServicePort{Port: 80})
	ownKube := svc("app", "kubernetes", "10.0.0.99", v1.ServicePort{Port: 8443})

	kubeVars := []EnvVar{
		{"KUBERNETES_SERVICE_HOST", "10.0.0.1"},
		{"KUBERNETES_SERVICE_PORT", "443"},
		{"KUBERNETES_SERVICE_PORT_HTTPS", "443"},
		{"KUBERNETES_PORT", "tcp://10.0.0.1:443"},
		{"KUBERNETES_PORT_443_TCP", "tcp://10.0.0.1:443"},
		{"KUBERNETES_PORT_443_TCP_PROTO", "tcp"},
		{"KUBERNETES_PORT_443_TCP_PORT", "443"},
		{"KUBERNETES_PORT_443_TCP_ADDR", "10.0.0.1"},
	}
	redisVars := []EnvVar{
		{"REDIS_PRIMARY_SERVICE_HOST", "10.0.0.11"},
		{"REDIS_PRIMARY_SERVICE_PORT", "6379"},
		{"REDIS_PRIMARY_SERVICE_PORT_REDIS", "6379"},
		{"REDIS_PRIMARY_SERVICE_PORT_METRICS_PORT", "9121"},
		{"REDIS_PRIMARY_PORT", "tcp://10.0.0.11:6379"},
		{"REDIS_PRIMARY_PORT_6379_TCP", "tcp://10.0.0.11:6379"},
		{"REDIS_PRIMARY_PORT_6379_TCP_PROTO", "tcp"},
		{"REDIS_PRIMARY_PORT_6379_TCP_PORT", "6379"},
		{"REDIS_PRIMARY_PORT_6379_TCP_ADDR", "10.0.0.11"},
		{"REDIS_PRIMARY_PORT_9121_UDP", "udp://10.0.0.11:9121"},
		{"REDIS_PRIMARY_PORT_9121_UDP_PROTO", "udp"},
		{"REDIS_PRIMARY_PORT_9121_UDP_PORT", "9121"},
		{"REDIS_PRIMARY_PORT_9121_UDP_ADDR", "10.0.0.11"},
	}
	v6Vars := []EnvVar{
		{"V6_SERVICE_HOST", "fd00::10"},
		{"V6_SERVICE_PORT", "80"},
		{"V6_PORT", "tcp://[fd00::10]:80"},
		{"V6_PORT_80_TCP", "tcp://[fd00::10]:80"},
		{"V6_PORT_80_TCP_PROTO", "tcp"},
		{"V6_PORT_80_TCP_PORT", "80"},
		{"V6_PORT_80_TCP_ADDR", "fd00::10"},
	}
	ownKubeVars := []EnvVar{
		{"KUBERNETES_SERVICE_HOST", "10.0.0.99"},
		{"KUBERNETES_SERVICE_PORT", "8443"},
		{"KUBERNETES_PORT", "tcp://10.0.0.99:8443"},
		{"KUBERNETES_PORT_8443_TCP", "tcp://10.0.0.99:8443"},
		{"KUBERNETES_PORT_8443_TCP_PROTO", "tcp"},
		{"KUBERNETES_PORT_8443_TCP_PORT", "8443"},
		{"KUBERNETES_PORT_8443_TCP_ADDR", "10.0.0.99"},
	}
	cat := func(lists ...[]EnvVar) []EnvVar {
		var out []EnvVar
		for _, l := range lists {
			out = append(out, l...)
		}
		return out
	}
	cases := []struct {
		name     string
		ns       string
		links    bool
		services []*v1.Service
		want     []EnvVar
	}{
		{"links on: namespace services sorted by name plus kubernetes", "app", true,
			[]*v1.Service{redis, kube, headless, external, other, v6}, cat(kubeVars, redisVars, v6Vars)},
		{"links off: only kubernetes", "app", false,
			[]*v1.Service{redis, kube, v6}, kubeVars},
		{"no kubernetes service known", "app", true, []*v1.Service{redis}, redisVars},
		{"pod in default sees kubernetes once", "default", true, []*v1.Service{kube}, kubeVars},
		{"own kubernetes service wins with links on", "app", true, []*v1.Service{ownKube, kube}, ownKubeVars},
		{"own kubernetes service ignored with links off", "app", false, []*v1.Service{ownKube, kube}, kubeVars},
		{"headless only", "app", true, []*v1.Service{headless}, nil},
	}
	for _, c := range cases {
		got := ServiceEnv(c.ns, c.links, c.services)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s:\n got %v\nwant %v", c.name, got, c.want)
		}
	}
}
