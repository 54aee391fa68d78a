package endpoints

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// overCapacityValue is the value of the over-capacity annotation on a
// trimmed Endpoints object.
const overCapacityValue = "truncated"

// subsets computes the Endpoints subsets of a Service from its members.
// Ready pods go to addresses, others to notReadyAddresses (with
// publishNotReadyAddresses everything counts as ready); terminating pods
// are left out unless the Service publishes not-ready addresses. A pod is
// listed under each port it serves; ports served by exactly the same
// addresses share a subset. A headless Service without ports gets one
// subset of addresses without ports.
func subsets(svc *corev1.Service, ms []member) []corev1.EndpointSubset {
	publishAll := svc.Spec.PublishNotReadyAddresses
	family := families(svc)[0]
	type addrSets struct{ ready, notReady []corev1.EndpointAddress }
	noPorts := len(svc.Spec.Ports) == 0
	if noPorts && !headless(svc) {
		return nil
	}
	byPort := map[string]*addrSets{} // by portID
	ports := map[string]resolvedPort{}
	var portOrder []string
	for _, m := range ms {
		if m.Terminating && !publishAll {
			continue
		}
		ip, ok := m.IPs[family]
		if !ok {
			continue
		}
		addr := corev1.EndpointAddress{
			IP:       ip,
			Hostname: m.Hostname,
			TargetRef: &corev1.ObjectReference{
				Kind: "Pod", Namespace: m.Pod.Namespace, Name: m.Pod.Name, UID: m.Pod.UID,
			},
		}
		if m.NodeName != "" {
			n := m.NodeName
			addr.NodeName = &n
		}
		ready := publishAll || m.Serving
		served := m.Ports
		if noPorts {
			served = []resolvedPort{{}} // one subset without ports
		}
		for _, p := range served {
			id := portID(p)
			s := byPort[id]
			if s == nil {
				s = &addrSets{}
				byPort[id] = s
				ports[id] = p
				portOrder = append(portOrder, id)
			}
			if ready {
				s.ready = append(s.ready, addr)
			} else {
				s.notReady = append(s.notReady, addr)
			}
		}
	}
	// Ports whose address sets are the same share a subset.
	type group struct {
		sets  *addrSets
		ports []corev1.EndpointPort
	}
	var groups []*group
	bySig := map[string]*group{}
	for _, id := range portOrder {
		s := byPort[id]
		sortAddresses(s.ready)
		sortAddresses(s.notReady)
		sig := signature(s.ready) + "|" + signature(s.notReady)
		g := bySig[sig]
		if g == nil {
			g = &group{sets: s}
			bySig[sig] = g
			groups = append(groups, g)
		}
		if !noPorts {
			p := ports[id]
			g.ports = append(g.ports, corev1.EndpointPort{Name: p.Name, Port: p.Port, Protocol: p.Protocol, AppProtocol: p.AppProtocol})
		}
	}
	out := make([]corev1.EndpointSubset, 0, len(groups))
	for _, g := range groups {
		slices.SortFunc(g.ports, func(a, b corev1.EndpointPort) int {
			return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Port, b.Port), cmp.Compare(a.Protocol, b.Protocol))
		})
		out = append(out, corev1.EndpointSubset{Addresses: g.sets.ready, NotReadyAddresses: g.sets.notReady, Ports: g.ports})
	}
	slices.SortFunc(out, func(a, b corev1.EndpointSubset) int {
		return cmp.Compare(subsetKey(a), subsetKey(b))
	})
	return out
}

// portID names a resolved port uniquely, app protocol included.
func portID(p resolvedPort) string {
	ap := ""
	if p.AppProtocol != nil {
		ap = *p.AppProtocol
	}
	return fmt.Sprintf("%s/%d/%s/%s", p.Name, p.Port, p.Protocol, ap)
}

func sortAddresses(as []corev1.EndpointAddress) {
	slices.SortFunc(as, func(a, b corev1.EndpointAddress) int {
		return cmp.Or(cmp.Compare(a.IP, b.IP), cmp.Compare(a.TargetRef.Name, b.TargetRef.Name))
	})
}

func signature(as []corev1.EndpointAddress) string {
	var b strings.Builder
	for _, a := range as {
		b.WriteString(a.IP)
		b.WriteByte('/')
		b.WriteString(string(a.TargetRef.UID))
		b.WriteByte(',')
	}
	return b.String()
}

func subsetKey(s corev1.EndpointSubset) string {
	var b strings.Builder
	for _, p := range s.Ports {
		fmt.Fprintf(&b, "%s/%d/%s,", p.Name, p.Port, p.Protocol)
	}
	return b.String()
}

// truncate trims subsets to at most max addresses in all, ready ones
// first: when the ready addresses alone exceed max, each subset keeps a
// share of max proportional to its ready addresses and no not-ready ones;
// otherwise every ready address stays and the not-ready ones share what
// is left the same way. It reports whether anything was cut.
func truncate(ss []corev1.EndpointSubset, max int) bool {
	ready, notReady := 0, 0
	for _, s := range ss {
		ready += len(s.Addresses)
		notReady += len(s.NotReadyAddresses)
	}
	if ready+notReady <= max {
		return false
	}
	share := func(n, total, budget int) int {
		// Round up so that small subsets keep at least one address.
		return (n*budget + total - 1) / total
	}
	if ready >= max {
		left := max
		for i := range ss {
			k := min(share(len(ss[i].Addresses), ready, max), left)
			ss[i].Addresses = ss[i].Addresses[:k]
			ss[i].NotReadyAddresses = nil
			left -= k
		}
		return true
	}
	budget := max - ready
	left := budget
	for i := range ss {
		k := min(share(len(ss[i].NotReadyAddresses), notReady, budget), left)
		ss[i].NotReadyAddresses = ss[i].NotReadyAddresses[:k]
		left -= k
	}
	return true
}

// desiredEndpoints is the Endpoints object a Service should have, built
// on cur (nil when there is none): the computed subsets trimmed to max
// addresses, the Service's labels plus the headless marker, and the
// over-capacity annotation when trimmed. It returns nil when cur is
// already right.
func desiredEndpoints(svc *corev1.Service, cur *corev1.Endpoints, ss []corev1.EndpointSubset, max int) *corev1.Endpoints {
	over := truncate(ss, max)
	labels := maps.Clone(svc.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	if headless(svc) {
		labels[corev1.IsHeadlessService] = ""
	} else {
		delete(labels, corev1.IsHeadlessService)
	}
	var next *corev1.Endpoints
	if cur == nil {
		next = &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Namespace: svc.Namespace, Name: svc.Name}}
	} else {
		v, marked := cur.Annotations[corev1.EndpointsOverCapacity]
		annotationRight := marked == over && (!over || v == overCapacityValue)
		if annotationRight && equality.Semantic.DeepEqual(cur.Subsets, ss) && equality.Semantic.DeepEqual(cur.Labels, labels) {
			return nil
		}
		next = cur.DeepCopy()
	}
	next.Subsets = ss
	next.Labels = labels
	if over {
		if next.Annotations == nil {
			next.Annotations = map[string]string{}
		}
		next.Annotations[corev1.EndpointsOverCapacity] = overCapacityValue
	} else {
		delete(next.Annotations, corev1.EndpointsOverCapacity)
	}
	return next
}
