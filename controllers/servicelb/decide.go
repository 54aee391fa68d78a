package servicelb

import (
	"fmt"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"

	"github.com/skiff-sh/skiff/proxy"
)

// Event reasons, the ones Kubernetes' service controller records.
const (
	ReasonUpdated     = "UpdatedLoadBalancer"
	ReasonUnavailable = "UnAvailableLoadBalancer"
	ReasonDeleted     = "DeletedLoadBalancer"
)

// event is one Event to record about a Service.
type event struct {
	kind    string // corev1.EventTypeNormal or corev1.EventTypeWarning
	reason  string
	message string
}

// plan is what one reconcile of a Service decided: whether to write its
// status, the ingress list to write, and the Event that tells about it.
type plan struct {
	write   bool
	ingress []corev1.LoadBalancerIngress // nil clears the status
	event   event
}

// decide computes the status.loadBalancer.ingress a Service should have
// given all nodes. remembered holds the addresses this controller last
// wrote for the Service (nil if none or unknown), so that ingress it wrote
// is recognised as its own even after the node behind it is gone.
func decide(svc *corev1.Service, nodes []*corev1.Node, remembered []string) plan {
	if svc.DeletionTimestamp != nil {
		return plan{} // on its way out: nothing to serve or tidy
	}
	cur := svc.Status.LoadBalancer.Ingress
	if proxy.ServesLoadBalancer(svc) {
		want := withVIP(proxy.LoadBalancerIngress(nodes))
		if sameIngress(cur, want) {
			return plan{}
		}
		p := plan{write: true, ingress: want}
		if len(want) == 0 {
			p.ingress = nil
			p.event = event{corev1.EventTypeWarning, ReasonUnavailable,
				"No Ready node can serve this LoadBalancer; its ingress addresses were removed"}
		} else {
			p.event = event{corev1.EventTypeNormal, ReasonUpdated,
				fmt.Sprintf("LoadBalancer ingress changed from %s to %s", describe(cur), describe(want))}
		}
		return p
	}
	if len(cur) == 0 || !ownIngress(cur, nodeAddresses(nodes, remembered)) {
		return plan{}
	}
	why := fmt.Sprintf("type is %s", orDefault(string(svc.Spec.Type), string(corev1.ServiceTypeClusterIP)))
	if svc.Spec.Type == corev1.ServiceTypeLoadBalancer && svc.Spec.LoadBalancerClass != nil {
		why = fmt.Sprintf("loadBalancerClass is %q", *svc.Spec.LoadBalancerClass)
	}
	return plan{write: true, event: event{corev1.EventTypeNormal, ReasonDeleted,
		fmt.Sprintf("Skiff no longer serves this Service as a LoadBalancer (%s); removed ingress %s", why, describe(cur))}}
}

// withVIP sets ipMode VIP on IP entries, as the API server defaults it, so
// what is written compares equal to what is read back.
func withVIP(in []corev1.LoadBalancerIngress) []corev1.LoadBalancerIngress {
	vip := corev1.LoadBalancerIPModeVIP
	out := make([]corev1.LoadBalancerIngress, len(in))
	for i, ing := range in {
		out[i] = ing
		if ing.IP != "" && ing.IPMode == nil {
			out[i].IPMode = &vip
		}
	}
	return out
}

// sameIngress compares two ingress lists in order, an unset ipMode of an
// IP entry counting as VIP.
func sameIngress(a, b []corev1.LoadBalancerIngress) bool {
	if len(a) != len(b) {
		return false
	}
	return equality.Semantic.DeepEqual(withVIP(a), withVIP(b))
}

// ownIngress says whether every entry looks like one this controller
// writes: an IP and nothing else (ipMode VIP at most), the IP one of
// known.
func ownIngress(ing []corev1.LoadBalancerIngress, known map[netip.Addr]bool) bool {
	for _, e := range ing {
		if e.Hostname != "" || len(e.Ports) > 0 || (e.IPMode != nil && *e.IPMode != corev1.LoadBalancerIPModeVIP) {
			return false
		}
		a, err := netip.ParseAddr(e.IP)
		if err != nil || !known[a.Unmap()] {
			return false
		}
	}
	return true
}

// nodeAddresses is every address of every node, whatever its type or
// state, plus the remembered ones.
func nodeAddresses(nodes []*corev1.Node, remembered []string) map[netip.Addr]bool {
	out := map[netip.Addr]bool{}
	add := func(s string) {
		if a, err := netip.ParseAddr(s); err == nil {
			out[a.Unmap()] = true
		}
	}
	for _, n := range nodes {
		for _, a := range n.Status.Addresses {
			add(a.Address)
		}
	}
	for _, s := range remembered {
		add(s)
	}
	return out
}

// ingressIPs lists the IPs of an ingress list.
func ingressIPs(ing []corev1.LoadBalancerIngress) []string {
	out := make([]string, 0, len(ing))
	for _, e := range ing {
		if e.IP != "" {
			out = append(out, e.IP)
		}
	}
	return out
}

// describe renders an ingress list for an Event: "[10.0.0.1 10.0.0.2]",
// or "none".
func describe(ing []corev1.LoadBalancerIngress) string {
	if len(ing) == 0 {
		return "none"
	}
	parts := make([]string, 0, len(ing))
	for _, e := range ing {
		switch {
		case e.IP != "":
			parts = append(parts, e.IP)
		case e.Hostname != "":
			parts = append(parts, e.Hostname)
		}
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// contributes is what one node adds to a Skiff LoadBalancer's ingress;
// a node event matters only when it changes this.
func contributes(n *corev1.Node) []corev1.LoadBalancerIngress {
	if n == nil {
		return nil
	}
	return proxy.LoadBalancerIngress([]*corev1.Node{n})
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
