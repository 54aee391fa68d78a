package endpoints

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ManagedBy is the endpointslice.kubernetes.io/managed-by value of the
// slices this controller writes: Kubernetes' own, so that tools that look
// for the slices of the built-in controller find these.
const ManagedBy = "endpointslice-controller.k8s.io"

// serviceKind is the owner kind of the slices.
var serviceKind = corev1.SchemeGroupVersion.WithKind("Service")

// sliceEndpoint is one desired endpoint of a Service for one address
// family, with the ports it serves.
type sliceEndpoint struct {
	Key      string // identity within the Service: the pod's UID
	Endpoint discoveryv1.Endpoint
	PortKey  string // canonical form of Ports
	Ports    []discoveryv1.EndpointPort
}

// sliceEndpoints computes a Service's desired slice endpoints per address
// type. Every member is included, terminating ones too, with conditions
// as Kubernetes sets them: serving is the pod's readiness, terminating its
// deletion, and ready is serving and not terminating, or always with
// publishNotReadyAddresses.
func sliceEndpoints(svc *corev1.Service, ms []member) map[discoveryv1.AddressType][]sliceEndpoint {
	out := map[discoveryv1.AddressType][]sliceEndpoint{}
	for _, fam := range families(svc) {
		at := addressType(fam)
		eps := []sliceEndpoint{}
		for _, m := range ms {
			ip, ok := m.IPs[fam]
			if !ok {
				continue
			}
			serving, terminating := m.Serving, m.Terminating
			ready := svc.Spec.PublishNotReadyAddresses || (serving && !terminating)
			ep := discoveryv1.Endpoint{
				Addresses:  []string{ip},
				Conditions: discoveryv1.EndpointConditions{Ready: &ready, Serving: &serving, Terminating: &terminating},
				TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: m.Pod.Namespace, Name: m.Pod.Name, UID: m.Pod.UID},
			}
			if m.Hostname != "" {
				h := m.Hostname
				ep.Hostname = &h
			}
			if m.NodeName != "" {
				n := m.NodeName
				ep.NodeName = &n
			}
			if m.Zone != "" {
				z := m.Zone
				ep.Zone = &z
			}
			ports := slicePorts(m.Ports)
			eps = append(eps, sliceEndpoint{Key: string(m.Pod.UID), Endpoint: ep, PortKey: portKey(ports), Ports: ports})
		}
		out[at] = eps
	}
	return out
}

func addressType(f corev1.IPFamily) discoveryv1.AddressType {
	if f == corev1.IPv6Protocol {
		return discoveryv1.AddressTypeIPv6
	}
	return discoveryv1.AddressTypeIPv4
}

// slicePorts turns resolved ports into slice ports, sorted by name.
func slicePorts(rs []resolvedPort) []discoveryv1.EndpointPort {
	out := make([]discoveryv1.EndpointPort, 0, len(rs))
	for _, r := range rs {
		name, port, proto := r.Name, r.Port, r.Protocol
		out = append(out, discoveryv1.EndpointPort{Name: &name, Port: &port, Protocol: &proto, AppProtocol: r.AppProtocol})
	}
	slices.SortFunc(out, func(a, b discoveryv1.EndpointPort) int {
		return cmp.Or(cmp.Compare(deref(a.Name), deref(b.Name)), cmp.Compare(derefInt(a.Port), derefInt(b.Port)))
	})
	return out
}

// portKey is a canonical string for a set of slice ports.
func portKey(ps []discoveryv1.EndpointPort) string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		proto := corev1.ProtocolTCP
		if p.Protocol != nil {
			proto = *p.Protocol
		}
		parts[i] = fmt.Sprintf("%s/%d/%s/%s", deref(p.Name), derefInt(p.Port), proto, deref(p.AppProtocol))
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func derefInt(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}

// endpointKey is the identity of an endpoint in an existing slice: the
// pod it points at, or its first address.
func endpointKey(ep *discoveryv1.Endpoint) string {
	if ep.TargetRef != nil && ep.TargetRef.UID != "" {
		return string(ep.TargetRef.UID)
	}
	if len(ep.Addresses) > 0 {
		return "addr:" + ep.Addresses[0]
	}
	return ""
}

// sliceLabels are the labels of a Service's slices: the Service's own
// (except the keys the controller sets), the service name, the manager,
// and the headless marker.
func sliceLabels(svc *corev1.Service) map[string]string {
	l := maps.Clone(svc.Labels)
	if l == nil {
		l = map[string]string{}
	}
	delete(l, discoveryv1.LabelServiceName)
	delete(l, discoveryv1.LabelManagedBy)
	delete(l, corev1.IsHeadlessService)
	l[discoveryv1.LabelServiceName] = svc.Name
	l[discoveryv1.LabelManagedBy] = ManagedBy
	if headless(svc) {
		l[corev1.IsHeadlessService] = ""
	}
	return l
}

// slicePrefix is the generateName of a Service's slices, short enough for
// the random suffix to fit in a name.
func slicePrefix(svc *corev1.Service) string {
	name := svc.Name
	if len(name) > 57 {
		name = name[:57]
	}
	return name + "-"
}

// ownedBy says whether the slice's controller is the Service.
func ownedBy(es *discoveryv1.EndpointSlice, svc *corev1.Service) bool {
	ref := metav1.GetControllerOfNoCopy(es)
	return ref != nil && ref.UID == svc.UID
}

// slicePlan is what to write to bring a Service's slices in line:
// creations and updates first, deletions last, so that an endpoint moving
// between slices is never missing from all of them.
type slicePlan struct {
	Create []*discoveryv1.EndpointSlice
	Update []*discoveryv1.EndpointSlice
	Delete []*discoveryv1.EndpointSlice
}

func (p slicePlan) empty() bool { return len(p.Create)+len(p.Update)+len(p.Delete) == 0 }

// planSlices compares a Service's existing slices (those this controller
// manages for it, including ones owned by an earlier Service of the same
// name) with the desired endpoints, changing as few slices as it can:
//
//  1. Each existing slice keeps the endpoints of it that are still
//     desired, refreshed; one whose endpoints all went, whose ports are no
//     longer wanted, or whose owner is not this Service is deleted.
//  2. New endpoints go first into slices already being rewritten (with
//     room under maxPer), then, when they all fit, into the fullest
//     untouched slice with room, and the rest into slices of at most
//     maxPer endpoints: slices step 1 let go of (of this Service and
//     address type) are reused before new ones are made.
//  3. A Service without endpoints keeps one empty placeholder slice.
//
// A readiness flip therefore rewrites just the slice holding the pod.
func planSlices(svc *corev1.Service, existing []*discoveryv1.EndpointSlice, want map[discoveryv1.AddressType][]sliceEndpoint, maxPer int) slicePlan {
	var p slicePlan
	labels := sliceLabels(svc)
	owner := *metav1.NewControllerRef(svc, serviceKind)
	fresh := func(at discoveryv1.AddressType, ports []discoveryv1.EndpointPort) *discoveryv1.EndpointSlice {
		return &discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{
				Namespace: svc.Namespace, GenerateName: slicePrefix(svc),
				Labels: maps.Clone(labels), OwnerReferences: []metav1.OwnerReference{owner},
			},
			AddressType: at,
			Ports:       ports,
			Endpoints:   []discoveryv1.Endpoint{},
		}
	}
	metaRight := func(es *discoveryv1.EndpointSlice) bool {
		return equality.Semantic.DeepEqual(es.Labels, labels) && len(es.OwnerReferences) == 1 &&
			equality.Semantic.DeepEqual(es.OwnerReferences[0], owner)
	}

	existing = slices.Clone(existing)
	slices.SortFunc(existing, func(a, b *discoveryv1.EndpointSlice) int { return cmp.Compare(a.Name, b.Name) })
	var leftovers []*discoveryv1.EndpointSlice // deleted unless one becomes the placeholder

	total := 0
	for _, at := range []discoveryv1.AddressType{discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6, discoveryv1.AddressTypeFQDN} {
		eps, wanted := want[at]
		total += len(eps)
		// The desired endpoints of this type, by ports, then by key.
		type group struct {
			ports   []discoveryv1.EndpointPort
			pending map[string]sliceEndpoint
		}
		groups := map[string]*group{}
		for _, e := range eps {
			g := groups[e.PortKey]
			if g == nil {
				g = &group{ports: e.Ports, pending: map[string]sliceEndpoint{}}
				groups[e.PortKey] = g
			}
			if _, dup := g.pending[e.Key]; !dup {
				g.pending[e.Key] = e
			}
		}
		// 1. Existing slices keep what is still wanted.
		type slot struct {
			slice   *discoveryv1.EndpointSlice
			eps     []discoveryv1.Endpoint
			changed bool
		}
		slots := map[string][]*slot{} // by port key
		for _, es := range existing {
			if es.AddressType != at {
				continue
			}
			pk := portKey(es.Ports)
			g := groups[pk]
			if !wanted || g == nil || !ownedBy(es, svc) {
				leftovers = append(leftovers, es)
				continue
			}
			s := &slot{slice: es, changed: !metaRight(es)}
			for i := range es.Endpoints {
				ep := &es.Endpoints[i]
				d, ok := g.pending[endpointKey(ep)]
				if !ok {
					s.changed = true // gone, or already kept by another slice
					continue
				}
				delete(g.pending, d.Key)
				if !equality.Semantic.DeepEqual(*ep, d.Endpoint) {
					s.changed = true
				}
				s.eps = append(s.eps, d.Endpoint)
			}
			if len(s.eps) == 0 {
				leftovers = append(leftovers, es)
				continue
			}
			slots[pk] = append(slots[pk], s)
		}
		// 2. Place the new endpoints.
		for _, pk := range sortedKeys(groups) {
			g := groups[pk]
			pending := make([]sliceEndpoint, 0, len(g.pending))
			for _, e := range g.pending {
				pending = append(pending, e)
			}
			slices.SortFunc(pending, func(a, b sliceEndpoint) int {
				return cmp.Or(cmp.Compare(a.Endpoint.Addresses[0], b.Endpoint.Addresses[0]), cmp.Compare(a.Key, b.Key))
			})
			for _, s := range slots[pk] {
				if !s.changed {
					continue
				}
				for len(pending) > 0 && len(s.eps) < maxPer {
					s.eps = append(s.eps, pending[0].Endpoint)
					pending = pending[1:]
				}
			}
			if len(pending) > 0 {
				var best *slot
				for _, s := range slots[pk] {
					if !s.changed && len(s.eps)+len(pending) <= maxPer && (best == nil || len(s.eps) > len(best.eps)) {
						best = s
					}
				}
				if best != nil {
					for _, e := range pending {
						best.eps = append(best.eps, e.Endpoint)
					}
					best.changed = true
					pending = nil
				}
			}
			for len(pending) > 0 {
				n := min(len(pending), maxPer)
				var es *discoveryv1.EndpointSlice
				// A slice on its way out (the placeholder, one whose ports
				// went) is rewritten rather than deleted beside a new one.
				if i := slices.IndexFunc(leftovers, func(es *discoveryv1.EndpointSlice) bool {
					return es.AddressType == at && ownedBy(es, svc)
				}); i >= 0 {
					es = leftovers[i].DeepCopy()
					leftovers = slices.Delete(leftovers, i, i+1)
					es.Labels = maps.Clone(labels)
					es.OwnerReferences = []metav1.OwnerReference{owner}
					es.Ports, es.Endpoints = g.ports, nil
					p.Update = append(p.Update, es)
				} else {
					es = fresh(at, g.ports)
					p.Create = append(p.Create, es)
				}
				for _, e := range pending[:n] {
					es.Endpoints = append(es.Endpoints, e.Endpoint)
				}
				pending = pending[n:]
			}
			for _, s := range slots[pk] {
				if !s.changed {
					continue
				}
				next := s.slice.DeepCopy()
				next.Labels = maps.Clone(labels)
				next.OwnerReferences = []metav1.OwnerReference{owner}
				next.Ports = g.ports
				next.Endpoints = s.eps
				p.Update = append(p.Update, next)
			}
		}
	}

	// 3. Keep one placeholder when there is nothing to publish.
	if total == 0 && len(p.Create)+len(p.Update) == 0 {
		at := addressType(families(svc)[0])
		idx := slices.IndexFunc(leftovers, func(es *discoveryv1.EndpointSlice) bool {
			return es.AddressType == at && ownedBy(es, svc)
		})
		switch {
		case idx < 0:
			p.Create = append(p.Create, fresh(at, nil))
		default:
			es := leftovers[idx]
			leftovers = slices.Delete(leftovers, idx, idx+1)
			if len(es.Endpoints) > 0 || len(es.Ports) > 0 || !metaRight(es) {
				next := es.DeepCopy()
				next.Labels = maps.Clone(labels)
				next.OwnerReferences = []metav1.OwnerReference{owner}
				next.Ports, next.Endpoints = nil, []discoveryv1.Endpoint{}
				p.Update = append(p.Update, next)
			}
		}
	}
	p.Delete = leftovers
	return p
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
