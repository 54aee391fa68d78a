package proxy

import (
	"fmt"
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

const (
	podSrc  = "10.42.2.5"    // a pod on another node
	hostSrc = "192.0.2.10"   // this node
	extSrc  = "198.51.100.7" // outside the cluster
	nodeIP  = "192.0.2.10"
	webIP   = "10.43.0.100"
)

func pkt(src, dst string, port int) packet {
	p := packet{src: netip.MustParseAddr(src), dst: netip.MustParseAddr(dst), proto: "tcp", dport: port}
	p.srcLocal = src == hostSrc
	p.dstLocal = dst == nodeIP
	return p
}

func webPorts() []corev1.ServicePort {
	return []corev1.ServicePort{sport("http", 80, intstr.FromString("http"))}
}

func webSlice(eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	return slice("default", "web", "web-1", []discoveryv1.EndpointPort{eport("http", 8080)}, eps...)
}

var (
	bothReady = webSlice(ep("10.42.1.2", "node1", ready), ep("10.42.1.3", "node2", ready))
	both      = "dnat 10.42.1.2:8080 | dnat 10.42.1.3:8080"
	bothMasq  = "dnat 10.42.1.2:8080 masq | dnat 10.42.1.3:8080 masq"
)

func TestRouting(t *testing.T) {
	udp := corev1.ProtocolUDP
	tcp := corev1.ProtocolTCP
	dnsSvc := svc("kube-system", "dns", "10.43.0.10", []corev1.ServicePort{
		{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromInt32(5353)},
		{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(5353)},
	})
	dnsSlice := slice("kube-system", "dns", "dns-1", []discoveryv1.EndpointPort{
		{Name: ptr("dns"), Port: ptr(int32(5353)), Protocol: &udp},
		{Name: ptr("dns-tcp"), Port: ptr(int32(5354)), Protocol: &tcp},
	}, ep("10.42.1.9", "node1", ready))
	udpPkt := pkt(podSrc, "10.43.0.10", 53)
	udpPkt.proto = "udp"
	sticky := pkt(podSrc, webIP, 80)
	sticky.sticky = map[string]bool{}
	{
		sp := servicePorts(svc("default", "web", webIP, webPorts(), affinity(30)), []*discoveryv1.EndpointSlice{bothReady}, testNode)[0]
		sticky.sticky[affinitySetName(sp, sp.endpoints[1])] = true
	}
	noNodeIPs := testNode
	noNodeIPs.nodeIPs = nil

	cases := []struct {
		name     string
		services []*corev1.Service
		slices   []*discoveryv1.EndpointSlice
		node     *nodeView
		pkt      packet
		want     string
	}{
		{"clusterIP spreads over ready endpoints", []*corev1.Service{svc("default", "web", webIP, webPorts())}, []*discoveryv1.EndpointSlice{bothReady}, nil, pkt(podSrc, webIP, 80), both},
		{"host to clusterIP is masqueraded", []*corev1.Service{svc("default", "web", webIP, webPorts())}, []*discoveryv1.EndpointSlice{bothReady}, nil, pkt(hostSrc, webIP, 80), bothMasq},
		{"no cluster CIDR: only hairpin masquerades", []*corev1.Service{svc("default", "web", webIP, webPorts())}, []*discoveryv1.EndpointSlice{bothReady}, &nodeView{name: "node1"}, pkt(hostSrc, webIP, 80), both},
		{"unknown port on a clusterIP is rejected", []*corev1.Service{svc("default", "web", webIP, webPorts())}, []*discoveryv1.EndpointSlice{bothReady}, nil, pkt(podSrc, webIP, 81), "reject"},
		{"address that is no service is untouched", []*corev1.Service{svc("default", "web", webIP, webPorts())}, []*discoveryv1.EndpointSlice{bothReady}, nil, pkt(podSrc, "10.43.0.200", 80), "none"},
		{"no endpoints: reject", []*corev1.Service{svc("default", "web", webIP, webPorts())}, nil, nil, pkt(podSrc, webIP, 80), "reject"},
		{"only unready endpoints: reject", []*corev1.Service{svc("default", "web", webIP, webPorts())}, []*discoveryv1.EndpointSlice{webSlice(ep("10.42.1.2", "node1", notReady))}, nil, pkt(podSrc, webIP, 80), "reject"},
		{"no ready: serving terminating ones are used", []*corev1.Service{svc("default", "web", webIP, webPorts())}, []*discoveryv1.EndpointSlice{webSlice(ep("10.42.1.2", "node1", notReady), ep("10.42.1.3", "node1", terminatingServing))}, nil, pkt(podSrc, webIP, 80), "dnat 10.42.1.3:8080"},
		{"ready ones win over terminating", []*corev1.Service{svc("default", "web", webIP, webPorts())}, []*discoveryv1.EndpointSlice{webSlice(ep("10.42.1.2", "node1", ready), ep("10.42.1.3", "node1", terminatingServing))}, nil, pkt(podSrc, webIP, 80), "dnat 10.42.1.2:8080"},
		{"terminating and not serving: reject", []*corev1.Service{svc("default", "web", webIP, webPorts())}, []*discoveryv1.EndpointSlice{webSlice(ep("10.42.1.2", "node1", terminatingGone))}, nil, pkt(podSrc, webIP, 80), "reject"},
		{"publishNotReadyAddresses uses unready endpoints", []*corev1.Service{svc("default", "web", webIP, webPorts(), func(s *corev1.Service) { s.Spec.PublishNotReadyAddresses = true })}, []*discoveryv1.EndpointSlice{webSlice(ep("10.42.1.2", "node1", notReady))}, nil, pkt(podSrc, webIP, 80), "dnat 10.42.1.2:8080"},
		{"conditions unset mean ready", []*corev1.Service{svc("default", "web", webIP, webPorts())}, []*discoveryv1.EndpointSlice{webSlice(discoveryv1.Endpoint{Addresses: []string{"10.42.1.4"}})}, nil, pkt(podSrc, webIP, 80), "dnat 10.42.1.4:8080"},
		{"named target ports of a multi-port service", []*corev1.Service{svc("default", "web", webIP, []corev1.ServicePort{sport("http", 80, intstr.FromString("http")), sport("metrics", 9090, intstr.FromString("metrics"))})}, []*discoveryv1.EndpointSlice{slice("default", "web", "web-1", []discoveryv1.EndpointPort{eport("http", 8080), eport("metrics", 9100)}, ep("10.42.1.2", "node1", ready))}, nil, pkt(podSrc, webIP, 9090), "dnat 10.42.1.2:9100"},
		{"same port, protocol picks the slice port (udp)", []*corev1.Service{dnsSvc}, []*discoveryv1.EndpointSlice{dnsSlice}, nil, udpPkt, "dnat 10.42.1.9:5353"},
		{"same port, protocol picks the slice port (tcp)", []*corev1.Service{dnsSvc}, []*discoveryv1.EndpointSlice{dnsSlice}, nil, pkt(podSrc, "10.43.0.10", 53), "dnat 10.42.1.9:5354"},
		{"endpoint listed twice keeps its ready copy", []*corev1.Service{svc("default", "web", webIP, webPorts())}, []*discoveryv1.EndpointSlice{webSlice(ep("10.42.1.2", "node1", notReady)), slice("default", "web", "web-2", []discoveryv1.EndpointPort{eport("http", 8080)}, ep("10.42.1.2", "node1", ready))}, nil, pkt(podSrc, webIP, 80), "dnat 10.42.1.2:8080"},
		{"slices of another service do not leak", []*corev1.Service{svc("default", "web", webIP, webPorts())}, []*discoveryv1.EndpointSlice{slice("default", "other", "other-1", []discoveryv1.EndpointPort{eport("http", 8080)}, ep("10.42.1.2", "node1", ready))}, nil, pkt(podSrc, webIP, 80), "reject"},
		{"IPv6 slices are ignored", []*corev1.Service{svc("default", "web", webIP, webPorts())}, []*discoveryv1.EndpointSlice{func() *discoveryv1.EndpointSlice {
			s := webSlice(ep("fd00::2", "node1", ready))
			s.AddressType = discoveryv1.AddressTypeIPv6
			return s
		}()}, nil, pkt(podSrc, webIP, 80), "reject"},
		{"hairpin: a pod reaching itself is masqueraded", []*corev1.Service{svc("default", "web", webIP, webPorts())}, []*discoveryv1.EndpointSlice{webSlice(ep("10.42.1.2", "node1", ready))}, nil, pkt("10.42.1.2", webIP, 80), "dnat 10.42.1.2:8080 masq"},

		{"NodePort from outside: all endpoints, masqueraded", []*corev1.Service{svc("default", "web", webIP, webPorts(), nodePort(30080))}, []*discoveryv1.EndpointSlice{bothReady}, nil, pkt(extSrc, nodeIP, 30080), bothMasq},
		{"NodePort not on other node ports", []*corev1.Service{svc("default", "web", webIP, webPorts(), nodePort(30080))}, []*discoveryv1.EndpointSlice{bothReady}, nil, pkt(extSrc, nodeIP, 30081), "none"},
		{"NodePort without node IPs: any local address", []*corev1.Service{svc("default", "web", webIP, webPorts(), nodePort(30080))}, []*discoveryv1.EndpointSlice{bothReady}, &noNodeIPs, pkt(extSrc, nodeIP, 30080), bothMasq},
		{"NodePort without endpoints: reject", []*corev1.Service{svc("default", "web", webIP, webPorts(), nodePort(30080))}, nil, nil, pkt(extSrc, nodeIP, 30080), "reject"},
		{"ETP Local from outside: local endpoints, source kept", []*corev1.Service{svc("default", "web", webIP, webPorts(), nodePort(30080), etpLocal)}, []*discoveryv1.EndpointSlice{bothReady}, nil, pkt(extSrc, nodeIP, 30080), "dnat 10.42.1.2:8080"},
		{"ETP Local from a pod: cluster-wide", []*corev1.Service{svc("default", "web", webIP, webPorts(), nodePort(30080), etpLocal)}, []*discoveryv1.EndpointSlice{bothReady}, nil, pkt(podSrc, nodeIP, 30080), both},
		{"ETP Local from the node: cluster-wide, masqueraded", []*corev1.Service{svc("default", "web", webIP, webPorts(), nodePort(30080), etpLocal)}, []*discoveryv1.EndpointSlice{bothReady}, nil, pkt(hostSrc, nodeIP, 30080), bothMasq},
		{"ETP Local without local endpoints drops outside traffic", []*corev1.Service{svc("default", "web", webIP, webPorts(), nodePort(30080), etpLocal)}, []*discoveryv1.EndpointSlice{webSlice(ep("10.42.1.3", "node2", ready))}, nil, pkt(extSrc, nodeIP, 30080), "drop"},
		{"ETP Local falls back to local terminating endpoints", []*corev1.Service{svc("default", "web", webIP, webPorts(), nodePort(30080), etpLocal)}, []*discoveryv1.EndpointSlice{webSlice(ep("10.42.1.2", "node1", terminatingServing), ep("10.42.1.3", "node2", ready))}, nil, pkt(extSrc, nodeIP, 30080), "dnat 10.42.1.2:8080"},
		{"ITP Local: only local endpoints", []*corev1.Service{svc("default", "web", webIP, webPorts(), itpLocal)}, []*discoveryv1.EndpointSlice{bothReady}, nil, pkt(podSrc, webIP, 80), "dnat 10.42.1.2:8080"},
		{"ITP Local without local endpoints: drop", []*corev1.Service{svc("default", "web", webIP, webPorts(), itpLocal)}, []*discoveryv1.EndpointSlice{webSlice(ep("10.42.1.3", "node2", ready))}, nil, pkt(podSrc, webIP, 80), "drop"},
		{"ITP Local does not restrict NodePort traffic", []*corev1.Service{svc("default", "web", webIP, webPorts(), itpLocal, nodePort(30080))}, []*discoveryv1.EndpointSlice{bothReady}, nil, pkt(extSrc, nodeIP, 30080), bothMasq},

		{"LoadBalancer port served on the node IP", []*corev1.Service{svc("default", "web", webIP, webPorts(), loadBalancer(30080))}, []*discoveryv1.EndpointSlice{bothReady}, nil, pkt(extSrc, nodeIP, 80), bothMasq},
		{"LoadBalancer ingress IP served", []*corev1.Service{svc("default", "web", webIP, webPorts(), loadBalancer(30080), lbIngress("203.0.113.5", nil))}, []*discoveryv1.EndpointSlice{bothReady}, nil, pkt(extSrc, "203.0.113.5", 80), bothMasq},
		{"LoadBalancer ingress in Proxy mode not served", []*corev1.Service{svc("default", "web", webIP, webPorts(), loadBalancer(30080), lbIngress("203.0.113.5", ptr(corev1.LoadBalancerIPModeProxy)))}, []*discoveryv1.EndpointSlice{bothReady}, nil, pkt(extSrc, "203.0.113.5", 80), "none"},
		{"LoadBalancer of another class: not on node IPs", []*corev1.Service{svc("default", "web", webIP, webPorts(), loadBalancer(30080), lbClass("example.com/lb"))}, []*discoveryv1.EndpointSlice{bothReady}, nil, pkt(extSrc, nodeIP, 80), "none"},
		{"LoadBalancer of another class: NodePort still works", []*corev1.Service{svc("default", "web", webIP, webPorts(), loadBalancer(30080), lbClass("example.com/lb"))}, []*discoveryv1.EndpointSlice{bothReady}, nil, pkt(extSrc, nodeIP, 30080), bothMasq},
		{"LoadBalancer without endpoints: reject on node IP", []*corev1.Service{svc("default", "web", webIP, webPorts(), loadBalancer(30080))}, nil, nil, pkt(extSrc, nodeIP, 80), "reject"},
		{"two LoadBalancers on one port: first by name wins", []*corev1.Service{
			svc("default", "web", webIP, webPorts(), loadBalancer(30080)),
			svc("default", "aaa", "10.43.0.50", webPorts(), loadBalancer(30090)),
		}, []*discoveryv1.EndpointSlice{bothReady, slice("default", "aaa", "aaa-1", []discoveryv1.EndpointPort{eport("http", 8080)}, ep("10.42.1.7", "node1", ready))}, nil, pkt(extSrc, nodeIP, 80), "dnat 10.42.1.7:8080 masq"},
		{"externalIPs served", []*corev1.Service{svc("default", "web", webIP, webPorts(), func(s *corev1.Service) { s.Spec.ExternalIPs = []string{"203.0.113.9"} })}, []*discoveryv1.EndpointSlice{bothReady}, nil, pkt(extSrc, "203.0.113.9", 80), bothMasq},

		{"affinity: a remembered client goes back", []*corev1.Service{svc("default", "web", webIP, webPorts(), affinity(30))}, []*discoveryv1.EndpointSlice{bothReady}, nil, sticky, "dnat 10.42.1.3:8080"},
		{"affinity: a new client is spread", []*corev1.Service{svc("default", "web", webIP, webPorts(), affinity(30))}, []*discoveryv1.EndpointSlice{bothReady}, nil, pkt(podSrc, webIP, 80), both},
		{"headless service: nothing", []*corev1.Service{svc("default", "web", corev1.ClusterIPNone, webPorts())}, []*discoveryv1.EndpointSlice{bothReady}, nil, pkt(podSrc, webIP, 80), "none"},
		{"ExternalName service: nothing", []*corev1.Service{svc("default", "web", "", webPorts(), func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeExternalName
			s.Spec.ExternalName = "example.com"
		})}, nil, nil, pkt(podSrc, webIP, 80), "none"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			node := testNode
			if c.node != nil {
				node = *c.node
			}
			fake := programFake(t, buildRuleset(node, c.services, c.slices))
			ev := &evaluator{t: t, st: stateOf(fake)}
			if got := summary(ev.route(c.pkt)); got != c.want {
				t.Errorf("route(%s -> %s:%d) = %q, want %q", c.pkt.src, c.pkt.dst, c.pkt.dport, got, c.want)
			}
		})
	}
}

func lbIngress(ip string, mode *corev1.LoadBalancerIPMode) func(*corev1.Service) {
	return func(s *corev1.Service) {
		s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: ip, IPMode: mode})
	}
}

func lbClass(c string) func(*corev1.Service) {
	return func(s *corev1.Service) { s.Spec.LoadBalancerClass = ptr(c) }
}

// TestGeneratedObjects checks the shape of the table itself: verdict maps
// keyed by address, protocol and port; numgen spreading; affinity sets.
func TestGeneratedObjects(t *testing.T) {
	services := []*corev1.Service{
		svc("default", "web", webIP, webPorts(), nodePort(30080), affinity(0)),
		svc("default", "empty", "10.43.0.101", webPorts()),
		svc("default", "headless", corev1.ClusterIPNone, webPorts()),
	}
	st := stateOf(programFake(t, buildRuleset(testNode, services, []*discoveryv1.EndpointSlice{bothReady})))

	sp := servicePorts(services[0], []*discoveryv1.EndpointSlice{bothReady}, testNode)[0]
	cluster, ext := clusterChainName(sp), externalChainName(sp)
	eq := func(what string, got, want []string) {
		t.Helper()
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s:\n got %q\nwant %q", what, got, want)
		}
	}
	eq("service-ips", st.maps[mapServiceIPs], []string{"10.43.0.100 . tcp . 80 : goto " + cluster})
	eq("service-nodeports", st.maps[mapServiceNodePorts], []string{"tcp . 30080 : goto " + ext})
	eq("no-endpoint-services", st.maps[mapNoEndpointServices], []string{"10.43.0.101 . tcp . 80 : goto reject-chain"})
	eq("cluster-ips", st.sets[setClusterIPs], []string{"10.43.0.100", "10.43.0.101"})
	eq("nodeport-ips", st.sets[setNodePortIPs], []string{"192.0.2.10"})

	ep0, ep1 := endpointChainName(sp, sp.endpoints[0]), endpointChainName(sp, sp.endpoints[1])
	aff0, aff1 := affinitySetName(sp, sp.endpoints[0]), affinitySetName(sp, sp.endpoints[1])
	eq("cluster chain", st.chains[cluster], []string{
		"ip saddr != 10.42.0.0/16 jump mark-for-masquerade",
		"ip saddr @" + aff0 + " goto " + ep0,
		"ip saddr @" + aff1 + " goto " + ep1,
		"numgen random mod 2 == 0 goto " + ep0,
		"goto " + ep1,
	})
	eq("endpoint chain", st.chains[ep1], []string{
		"ip saddr 10.42.1.3 jump mark-for-masquerade",
		"update @" + aff1 + " { ip saddr }",
		"meta l4proto tcp dnat to 10.42.1.3:8080",
	})
	if got, want := st.defs[aff0], "ipv4_addr dynamic timeout timeout "+(3*time.Hour).String(); got != want {
		t.Errorf("affinity set definition %q, want %q", got, want)
	}
	for name := range st.chains {
		if strings.Contains(name, "headless") || strings.Contains(name, "empty") {
			t.Errorf("chain %q for a service that needs none", name)
		}
	}
	if !strings.HasPrefix(cluster, "svc-") || !strings.HasSuffix(cluster, "-default/web/tcp/http") {
		t.Errorf("cluster chain name %q is not svc-<hash>-<ns/name/proto/port>", cluster)
	}
}

// TestSpreadIsUniform: the numgen cascade gives every endpoint the same
// share of new connections.
func TestSpreadIsUniform(t *testing.T) {
	for n := 1; n <= 6; n++ {
		var es []discoveryv1.Endpoint
		for i := range n {
			es = append(es, ep(fmt.Sprintf("10.42.1.%d", 10+i), "node1", ready))
		}
		fake := programFake(t, buildRuleset(testNode, []*corev1.Service{svc("default", "web", webIP, webPorts())}, []*discoveryv1.EndpointSlice{webSlice(es...)}))
		ev := &evaluator{t: t, st: stateOf(fake)}
		outs := ev.route(pkt(podSrc, webIP, 80))
		if len(outs) != n {
			t.Fatalf("%d endpoints: %d paths: %s", n, len(outs), summary(outs))
		}
		seen := map[string]bool{}
		for _, o := range outs {
			if o.verdict != "dnat" || seen[o.target] || math.Abs(o.prob-1/float64(n)) > 1e-9 {
				t.Errorf("%d endpoints: path %+v, want each endpoint once with probability 1/%d", n, o, n)
			}
			seen[o.target] = true
		}
	}
}

func TestNodeView(t *testing.T) {
	cfg := Config{
		NodeName:    "n",
		NodeIPs:     []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::ffff:192.0.2.10"), netip.MustParseAddr("fd00::1"), netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("0.0.0.0")},
		ClusterCIDR: netip.MustParsePrefix("10.42.7.1/16"),
	}
	v := cfg.nodeView()
	if fmt.Sprint(v.nodeIPs) != "[192.0.2.10]" || v.clusterCIDR.String() != "10.42.0.0/16" {
		t.Errorf("nodeView = %+v; want only 192.0.2.10 and the masked 10.42.0.0/16", v)
	}
	if v.noNodePorts {
		t.Errorf("nodeView with a usable address serves no node ports")
	}
	if v := (&Config{NodeIPs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}}).nodeView(); !v.noNodePorts {
		t.Errorf("nodeView with only loopback addresses would serve node ports on every address")
	}
	if v := (&Config{}).nodeView(); v.noNodePorts {
		t.Errorf("nodeView without addresses serves no node ports; want every local address")
	}
	if v := (&Config{ClusterCIDR: netip.MustParsePrefix("fd00::/48")}).nodeView(); v.clusterCIDR.IsValid() {
		t.Errorf("IPv6 cluster CIDR kept: %v", v.clusterCIDR)
	}
}
