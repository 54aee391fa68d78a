package clusterdns

import (
	"net/netip"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// Test object builders shared by the package's tests.

func clusterIPService(ns, name string, ips []string, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeClusterIP, ClusterIP: ips[0], ClusterIPs: ips, Ports: ports,
		},
	}
}

func headlessService(ns, name string, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeClusterIP, ClusterIP: corev1.ClusterIPNone,
			ClusterIPs: []string{corev1.ClusterIPNone}, Ports: ports,
		},
	}
}

func externalService(ns, name, target string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: target},
	}
}

func svcPort(name string, proto corev1.Protocol, port int32) corev1.ServicePort {
	return corev1.ServicePort{Name: name, Protocol: proto, Port: port}
}

type testEndpoint struct {
	ip       string
	hostname string
	ready    *bool
}

func slice(ns, svc, name string, family discoveryv1.AddressType, ports []discoveryv1.EndpointPort, eps ...testEndpoint) *discoveryv1.EndpointSlice {
	sl := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: name,
			Labels: map[string]string{discoveryv1.LabelServiceName: svc},
		},
		AddressType: family,
		Ports:       ports,
	}
	for _, ep := range eps {
		e := discoveryv1.Endpoint{Addresses: []string{ep.ip}, Conditions: discoveryv1.EndpointConditions{Ready: ep.ready}}
		if ep.hostname != "" {
			e.Hostname = ptr.To(ep.hostname)
		}
		sl.Endpoints = append(sl.Endpoints, e)
	}
	return sl
}

func epPort(name string, proto corev1.Protocol, port int32) discoveryv1.EndpointPort {
	return discoveryv1.EndpointPort{Name: ptr.To(name), Protocol: ptr.To(proto), Port: ptr.To(port)}
}

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func TestBuildServiceEntry(t *testing.T) {
	web := []discoveryv1.EndpointPort{epPort("http", corev1.ProtocolTCP, 8080)}
	notReady := ptr.To(false)
	publish := headlessService("db", "pg", svcPort("sql", "", 5432))
	publish.Spec.PublishNotReadyAddresses = true
	legacy := headlessService("db", "pg", svcPort("sql", "", 5432))
	legacy.Annotations = map[string]string{tolerateUnreadyAnnotation: "true"}
	noIP := clusterIPService("a", "b", []string{""})

	tests := []struct {
		name   string
		svc    *corev1.Service
		slices []*discoveryv1.EndpointSlice
		want   *serviceEntry
	}{{
		name: "clusterIP keeps named ports only, protocol defaults to tcp",
		svc: clusterIPService("Default", "Web", []string{"10.43.0.5"},
			svcPort("http", "", 80), svcPort("", corev1.ProtocolTCP, 81), svcPort("dns", corev1.ProtocolUDP, 53)),
		want: &serviceEntry{namespace: "default", name: "web", kind: kindClusterIP, clusterIPs: addrs("10.43.0.5"),
			ports: []portInfo{{"http", "tcp", 80}, {"dns", "udp", 53}}},
	}, {
		name: "dual-stack clusterIPs",
		svc:  clusterIPService("default", "web", []string{"10.43.0.5", "fd00:43::5"}),
		want: &serviceEntry{namespace: "default", name: "web", kind: kindClusterIP, clusterIPs: addrs("10.43.0.5", "fd00:43::5")},
	}, {
		name: "service without clusterIP has no records",
		svc:  noIP,
	}, {
		name: "externalName is lower-cased and made absolute",
		svc:  externalService("default", "ext", "WWW.Example.com"),
		want: &serviceEntry{namespace: "default", name: "ext", kind: kindExternalName, externalName: "www.example.com."},
	}, {
		name: "externalName with trailing dot",
		svc:  externalService("default", "ext", "www.example.com."),
		want: &serviceEntry{namespace: "default", name: "ext", kind: kindExternalName, externalName: "www.example.com."},
	}, {
		name: "empty externalName has no records",
		svc:  externalService("default", "ext", ""),
	}, {
		name: "headless publishes ready endpoints, hostname or dashed address, sorted",
		svc:  headlessService("default", "web", svcPort("http", corev1.ProtocolTCP, 80)),
		slices: []*discoveryv1.EndpointSlice{
			slice("default", "web", "web-1", discoveryv1.AddressTypeIPv4, web,
				testEndpoint{ip: "10.42.0.9"},
				testEndpoint{ip: "10.42.0.7", hostname: "Web-0"},
				testEndpoint{ip: "10.42.0.8", ready: notReady},
				testEndpoint{ip: "10.42.0.6", ready: ptr.To(true)}),
			slice("default", "web", "web-2", discoveryv1.AddressTypeIPv6, web,
				testEndpoint{ip: "fd00::7", hostname: "web-0"}),
			slice("default", "web", "web-3", discoveryv1.AddressTypeFQDN, web,
				testEndpoint{ip: "example.com"}),
		},
		want: &serviceEntry{namespace: "default", name: "web", kind: kindHeadless,
			ports: []portInfo{{"http", "tcp", 80}},
			endpoints: []endpointInfo{
				{host: "10-42-0-6", ip: netip.MustParseAddr("10.42.0.6"), ports: []portInfo{{"http", "tcp", 8080}}},
				{host: "10-42-0-9", ip: netip.MustParseAddr("10.42.0.9"), ports: []portInfo{{"http", "tcp", 8080}}},
				{host: "web-0", ip: netip.MustParseAddr("10.42.0.7"), ports: []portInfo{{"http", "tcp", 8080}}},
				{host: "web-0", ip: netip.MustParseAddr("fd00::7"), ports: []portInfo{{"http", "tcp", 8080}}},
			}},
	}, {
		name: "an address in two slices is published once with both slices' ports",
		svc:  headlessService("default", "web"),
		slices: []*discoveryv1.EndpointSlice{
			slice("default", "web", "a", discoveryv1.AddressTypeIPv4, web, testEndpoint{ip: "10.42.0.7"}),
			slice("default", "web", "b", discoveryv1.AddressTypeIPv4,
				[]discoveryv1.EndpointPort{epPort("metrics", corev1.ProtocolTCP, 9090), {Port: ptr.To[int32](1)}},
				testEndpoint{ip: "10.42.0.7"}),
		},
		want: &serviceEntry{namespace: "default", name: "web", kind: kindHeadless,
			endpoints: []endpointInfo{{host: "10-42-0-7", ip: netip.MustParseAddr("10.42.0.7"),
				ports: []portInfo{{"http", "tcp", 8080}, {"metrics", "tcp", 9090}}}}},
	}, {
		name: "invalid hostname falls back to the dashed address",
		svc:  headlessService("default", "web"),
		slices: []*discoveryv1.EndpointSlice{
			slice("default", "web", "a", discoveryv1.AddressTypeIPv4, nil, testEndpoint{ip: "10.42.0.7", hostname: "not_a_label"}),
		},
		want: &serviceEntry{namespace: "default", name: "web", kind: kindHeadless,
			endpoints: []endpointInfo{{host: "10-42-0-7", ip: netip.MustParseAddr("10.42.0.7")}}},
	}, {
		name: "publishNotReadyAddresses includes not-ready endpoints",
		svc:  publish,
		slices: []*discoveryv1.EndpointSlice{
			slice("db", "pg", "a", discoveryv1.AddressTypeIPv4, nil, testEndpoint{ip: "10.42.0.8", hostname: "pg-0", ready: notReady}),
		},
		want: &serviceEntry{namespace: "db", name: "pg", kind: kindHeadless, ports: []portInfo{{"sql", "tcp", 5432}},
			endpoints: []endpointInfo{{host: "pg-0", ip: netip.MustParseAddr("10.42.0.8")}}},
	}, {
		name: "tolerate-unready annotation includes not-ready endpoints",
		svc:  legacy,
		slices: []*discoveryv1.EndpointSlice{
			slice("db", "pg", "a", discoveryv1.AddressTypeIPv4, nil, testEndpoint{ip: "10.42.0.8", ready: notReady}),
		},
		want: &serviceEntry{namespace: "db", name: "pg", kind: kindHeadless, ports: []portInfo{{"sql", "tcp", 5432}},
			endpoints: []endpointInfo{{host: "10-42-0-8", ip: netip.MustParseAddr("10.42.0.8")}}},
	}, {
		name: "headless without ready endpoints",
		svc:  headlessService("db", "pg"),
		slices: []*discoveryv1.EndpointSlice{
			slice("db", "pg", "a", discoveryv1.AddressTypeIPv4, nil, testEndpoint{ip: "10.42.0.8", ready: notReady}),
		},
		want: &serviceEntry{namespace: "db", name: "pg", kind: kindHeadless},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := buildServiceEntry(tt.svc, tt.slices)
			if tt.want == nil {
				if ok {
					t.Fatalf("got entry %+v, want none", got)
				}
				return
			}
			if !ok {
				t.Fatal("got no entry")
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("entry:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestDashedAddr(t *testing.T) {
	tests := []struct {
		label string
		ip    string // "" = invalid
	}{
		{"10-42-0-7", "10.42.0.7"},
		{"fd00--7", "fd00::7"},
		{"2001-db8-0-0-0-0-0-1", "2001:db8::1"},
		{"10-42-0", ""},
		{"10-42-0-256", ""},
		{"web-0", ""},
		{"", ""},
	}
	for _, tt := range tests {
		ip, ok := parseDashedAddr(tt.label)
		if tt.ip == "" {
			if ok {
				t.Errorf("parseDashedAddr(%q) = %v, want invalid", tt.label, ip)
			}
			continue
		}
		want := netip.MustParseAddr(tt.ip)
		if !ok || ip != want {
			t.Errorf("parseDashedAddr(%q) = %v %v, want %v", tt.label, ip, ok, want)
		}
		if back, _ := parseDashedAddr(dashedAddr(want)); back != want {
			t.Errorf("dashedAddr(%v) = %q does not parse back", want, dashedAddr(want))
		}
	}
}

func TestParseReverseName(t *testing.T) {
	tests := []struct {
		name string
		ip   string // "" = not an address
	}{
		{"10.0.43.10.in-addr.arpa.", "10.43.0.10"},
		{"1.0.0.127.in-addr.arpa.", "127.0.0.1"},
		{"0.43.10.in-addr.arpa.", ""},
		{"256.0.43.10.in-addr.arpa.", ""},
		{"01.0.43.10.in-addr.arpa.", ""},
		{"x.0.43.10.in-addr.arpa.", ""},
		{"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.", "2001:db8::1"},
		{"0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.", "2001:db8::"},
		{"0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.ip6.arpa.", ""},
		{"g.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.", ""},
		{"example.com.", ""},
	}
	for _, tt := range tests {
		ip, ok := parseReverseName(tt.name)
		if tt.ip == "" {
			if ok {
				t.Errorf("parseReverseName(%q) = %v, want none", tt.name, ip)
			}
			continue
		}
		if want := netip.MustParseAddr(tt.ip); !ok || ip != want {
			t.Errorf("parseReverseName(%q) = %v %v, want %v", tt.name, ip, ok, want)
		}
	}
}
