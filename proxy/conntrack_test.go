package proxy

import (
	"fmt"
	"net"
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func TestUDPStale(t *testing.T) {
	node := nodeView{name: "node1"}
	dns := func(eps ...discoveryv1.Endpoint) ([]*corev1.Service, []*discoveryv1.EndpointSlice) {
		port := corev1.ServicePort{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromInt32(5353)}
		web := svc("default", "web", "10.43.0.20", webPorts())
		s := svc("default", "dns", "10.43.0.10", []corev1.ServicePort{port})
		udp := discoveryv1.EndpointPort{Name: ptr("dns"), Port: ptr(int32(5353)), Protocol: ptr(corev1.ProtocolUDP)}
		slices := []*discoveryv1.EndpointSlice{slice("default", "dns", "dns-1", []discoveryv1.EndpointPort{udp}, eps...)}
		// A TCP Service losing its endpoint never needs a flush.
		slices = append(slices, webSlice())
		return []*corev1.Service{web, s}, slices
	}
	build := func(eps ...discoveryv1.Endpoint) *ruleset {
		svcs, slices := dns(eps...)
		return buildRuleset(node, svcs, slices)
	}
	a, b := ep("10.42.1.2", "node1", ready), ep("10.42.1.3", "node2", ready)
	both, onlyB, none := build(a, b), build(b), build()
	withWeb := buildRuleset(node, []*corev1.Service{svc("default", "web", "10.43.0.20", webPorts())}, []*discoveryv1.EndpointSlice{bothReady})

	for _, tc := range []struct {
		name                string
		prev, want          *ruleset
		endpoints, services string
	}{
		{"first sync", nil, both, "[]", "[]"},
		{"no change", both, both, "[]", "[]"},
		{"an endpoint leaves", both, onlyB, "[10.42.1.2:5353]", "[]"},
		{"the last endpoint leaves", onlyB, none, "[10.42.1.3:5353]", "[]"},
		{"endpoints come back", none, both, "[]", "[10.43.0.10:53]"},
		{"an endpoint comes", onlyB, both, "[]", "[]"},
		{"TCP endpoints leave", withWeb, buildRuleset(node, nil, nil), "[]", "[]"},
	} {
		eps, svcs := udpStale(tc.prev, tc.want)
		if fmt.Sprint(eps) != tc.endpoints || fmt.Sprint(svcs) != tc.services {
			t.Errorf("%s: stale endpoints %v, revived services %v; want %s and %s", tc.name, eps, svcs, tc.endpoints, tc.services)
		}
	}
}

func TestConntrackFilter(t *testing.T) {
	f := conntrackFilter{
		endpoints: map[netip.AddrPort]bool{netip.MustParseAddrPort("10.42.1.2:5353"): true},
		services:  map[netip.AddrPort]bool{netip.MustParseAddrPort("10.43.0.11:53"): true},
	}
	flow := func(proto uint8, dst string, dport uint16, replySrc string, rport uint16) *netlink.ConntrackFlow {
		fl := &netlink.ConntrackFlow{}
		fl.Forward.Protocol, fl.Forward.SrcIP, fl.Forward.SrcPort = proto, net.ParseIP("10.42.0.9"), 40000
		fl.Forward.DstIP, fl.Forward.DstPort = net.ParseIP(dst), dport
		fl.Reverse.Protocol, fl.Reverse.SrcIP, fl.Reverse.SrcPort = proto, net.ParseIP(replySrc), rport
		return fl
	}
	for _, tc := range []struct {
		name string
		flow *netlink.ConntrackFlow
		want bool
	}{
		{"answered by the gone endpoint", flow(unix.IPPROTO_UDP, "10.43.0.10", 53, "10.42.1.2", 5353), true},
		{"answered by the one that stays", flow(unix.IPPROTO_UDP, "10.43.0.10", 53, "10.42.1.3", 5353), false},
		{"another port of the gone endpoint", flow(unix.IPPROTO_UDP, "10.43.0.10", 54, "10.42.1.2", 5354), false},
		{"TCP to the gone endpoint", flow(unix.IPPROTO_TCP, "10.43.0.10", 53, "10.42.1.2", 5353), false},
		{"to a revived service", flow(unix.IPPROTO_UDP, "10.43.0.11", 53, "10.43.0.11", 53), true},
		{"to another port of it", flow(unix.IPPROTO_UDP, "10.43.0.11", 54, "10.43.0.11", 54), false},
	} {
		if got := f.MatchConntrackFlow(tc.flow); got != tc.want {
			t.Errorf("%s: match = %v, want %v", tc.name, got, tc.want)
		}
	}
}
