package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/skiff-sh/skiff/storage"
)

// Bootstrap makes the objects every cluster has: the four system
// namespaces, the kubernetes Service with its endpoints, the kube-dns
// Service of the cluster DNS, and the system PriorityClasses. It is
// idempotent, and it frees allocations a crash left behind. Call it before
// marking the server ready.
func (s *Server) Bootstrap(ctx context.Context) error {
	for _, ns := range []string{metav1.NamespaceDefault, metav1.NamespaceSystem, metav1.NamespacePublic, corev1.NamespaceNodeLease} {
		if err := s.ensure(ctx, corev1.SchemeGroupVersion.WithResource("namespaces"), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, nil); err != nil {
			return err
		}
	}
	for name, value := range map[string]int32{"system-node-critical": 2000001000, "system-cluster-critical": 2000000000} {
		pc := &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Value: value,
			Description: "Used for system critical pods that must not be moved from their current node."}
		if err := s.ensure(ctx, schedulingv1.SchemeGroupVersion.WithResource("priorityclasses"), pc, nil); err != nil {
			return err
		}
	}
	if err := s.RepairAllocations(ctx); err != nil {
		return fmt.Errorf("apiserver: repairing allocations: %w", err)
	}
	if err := s.ensureKubernetesService(ctx); err != nil {
		return err
	}
	return s.ensureDNSService(ctx)
}

// ensure creates obj if it is missing; with mutate, it also brings an
// existing object in line (mutate returns false when it already is).
func (s *Server) ensure(ctx context.Context, gvr schema.GroupVersionResource, obj runtime.Object, mutate func(cur runtime.Object) bool) error {
	res, ok := s.catalog.Lookup(gvr)
	if !ok {
		return fmt.Errorf("apiserver: bootstrap: no resource %s", gvr)
	}
	m := mustAccessor(obj)
	ns := m.GetNamespace()
	_, err := s.objects.get(ctx, res, ns, m.GetName())
	if apierrors.IsNotFound(err) {
		_, err = s.createObject(ctx, res, ns, obj, false)
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		return err
	}
	if err != nil || mutate == nil {
		return err
	}
	_, _, err = s.updateObject(ctx, res, ns, m.GetName(), updateOptions{}, func(cur runtime.Object) (runtime.Object, error) {
		mutate(cur)
		return cur, nil
	})
	return err
}

// ensureKubernetesService keeps default/kubernetes pointing at this
// server: the Service on the first service IP, port 443, and its Endpoints
// and EndpointSlice with the advertised address.
func (s *Server) ensureKubernetesService(ctx context.Context) error {
	addr := s.cfg.AdvertiseAddress
	if !addr.IsValid() {
		return nil
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: metav1.NamespaceDefault,
			Labels: map[string]string{"component": "apiserver", "provider": "kubernetes"}},
		Spec: corev1.ServiceSpec{
			ClusterIP: s.alloc.FirstIP().String(),
			Ports: []corev1.ServicePort{{Name: "https", Port: 443, Protocol: corev1.ProtocolTCP,
				TargetPort: intstr.FromInt32(int32(addr.Port()))}},
		},
	}
	if err := s.ensure(ctx, corev1.SchemeGroupVersion.WithResource("services"), svc, nil); err != nil {
		return err
	}
	if addr.Addr().IsLoopback() {
		// Nothing outside this host could use a loopback endpoint, and
		// Endpoints may not hold one: leave the service without endpoints.
		s.log.Warn("advertise address is loopback: the kubernetes service gets no endpoints", "address", addr)
		return nil
	}
	subsets := []corev1.EndpointSubset{{
		Addresses: []corev1.EndpointAddress{{IP: addr.Addr().String()}},
		Ports:     []corev1.EndpointPort{{Name: "https", Port: int32(addr.Port()), Protocol: corev1.ProtocolTCP}},
	}}
	ep := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: metav1.NamespaceDefault}, Subsets: subsets}
	if err := s.ensure(ctx, corev1.SchemeGroupVersion.WithResource("endpoints"), ep, func(cur runtime.Object) bool {
		e := cur.(*corev1.Endpoints)
		if equality.Semantic.DeepEqual(e.Subsets, subsets) {
			return false
		}
		e.Subsets = subsets
		return true
	}); err != nil {
		return err
	}
	ready := true
	portName, port, proto := "https", int32(addr.Port()), corev1.ProtocolTCP
	endpoints := []discoveryv1.Endpoint{{Addresses: []string{addr.Addr().String()}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}}
	ports := []discoveryv1.EndpointPort{{Name: &portName, Port: &port, Protocol: &proto}}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: metav1.NamespaceDefault,
			Labels: map[string]string{discoveryv1.LabelServiceName: "kubernetes", discoveryv1.LabelManagedBy: "skiff-apiserver"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   endpoints,
		Ports:       ports,
	}
	return s.ensure(ctx, discoveryv1.SchemeGroupVersion.WithResource("endpointslices"), slice, func(cur runtime.Object) bool {
		es := cur.(*discoveryv1.EndpointSlice)
		if equality.Semantic.DeepEqual(es.Endpoints, endpoints) && equality.Semantic.DeepEqual(es.Ports, ports) {
			return false
		}
		es.Endpoints, es.Ports = endpoints, ports
		return true
	})
}

// The cluster DNS Service, as kubeadm and k3s name it, so that tools
// looking for kube-system/kube-dns find it.
const (
	dnsServiceName = "kube-dns"
	// dnsServiceOffset is the kube-dns address's place in the service
	// CIDR: ten past the network address (10.43.0.10 in 10.43.0.0/16),
	// the tenth host address, as kubeadm and k3s place it.
	dnsServiceOffset = 10
)

// DNSServiceIP is the kube-dns Service's ClusterIP in the service CIDR:
// its tenth host address (10.43.0.10 in 10.43.0.0/16). It reports false when
// the CIDR is too small to have one that is neither the network's last
// address nor outside it.
func DNSServiceIP(cidr netip.Prefix) (netip.Addr, bool) {
	if !cidr.IsValid() || !cidr.Addr().Is4() {
		return netip.Addr{}, false
	}
	cidr = cidr.Masked()
	ip := cidr.Addr()
	for range dnsServiceOffset {
		ip = ip.Next()
	}
	// The CIDR's last address is never handed out (allocateIP refuses it).
	if !ip.IsValid() || !cidr.Contains(ip) || !cidr.Contains(ip.Next()) {
		return netip.Addr{}, false
	}
	return ip, true
}

// dnsService is the kube-dns Service Skiff makes: no selector (each node
// agent publishes its own DNS endpoint in an EndpointSlice), traffic kept
// on the node it starts from, DNS over UDP and TCP.
func dnsService(ip netip.Addr) *corev1.Service {
	local := corev1.ServiceInternalTrafficPolicyLocal
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: dnsServiceName, Namespace: metav1.NamespaceSystem,
			Labels: map[string]string{
				"k8s-app":                       "kube-dns",
				"kubernetes.io/cluster-service": "true",
				"kubernetes.io/name":            "SkiffDNS",
			}},
		Spec: corev1.ServiceSpec{
			ClusterIP:             ip.String(),
			ClusterIPs:            []string{ip.String()},
			InternalTrafficPolicy: &local,
			Ports: []corev1.ServicePort{
				{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromInt32(53)},
				{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(53)},
			},
		},
	}
}

// ensureDNSService creates kube-system/kube-dns when it is missing. An
// existing one is left as it is: users may change it (a selector to serve
// DNS from their own pods, annotations), and the agents read its ClusterIP
// whatever it is. Nothing here fails the start: when the address is
// unusable or another Service holds it, the server logs why and runs
// without the Service. Only store errors are returned, for the caller to
// retry.
func (s *Server) ensureDNSService(ctx context.Context) error {
	ip, ok := DNSServiceIP(s.alloc.cidr)
	if !ok {
		s.log.Warn("service CIDR too small for the cluster DNS address: not creating kube-system/kube-dns", "serviceCIDR", s.alloc.cidr)
		return nil
	}
	res, ok := s.catalog.Lookup(corev1.SchemeGroupVersion.WithResource("services"))
	if !ok {
		return fmt.Errorf("apiserver: bootstrap: no resource services")
	}
	cur, err := s.objects.get(ctx, res, metav1.NamespaceSystem, dnsServiceName)
	if err == nil {
		if svc, ok := cur.(*corev1.Service); ok && svc.Spec.ClusterIP != ip.String() {
			s.log.Info("kube-system/kube-dns exists with another address than the default; keeping it", "clusterIP", svc.Spec.ClusterIP, "default", ip)
		}
		return nil
	}
	if !apierrors.IsNotFound(err) {
		return fmt.Errorf("apiserver: bootstrap: reading kube-system/kube-dns: %w", err)
	}
	// RepairAllocations ran before: an allocation of the address now is
	// another Service's.
	owner := metav1.NamespaceSystem + "/" + dnsServiceName
	if kv, err := s.cfg.Store.Get(ctx, ipKeyPrefix+ip.String()); err == nil {
		if string(kv.Value) == owner {
			return nil // another server is creating it right now
		}
		s.log.Warn("the cluster DNS address is taken by another Service: not creating kube-system/kube-dns; pods' DNS will not work until it is freed and the server restarted",
			"address", ip, "heldBy", string(kv.Value))
		return nil
	} else if !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("apiserver: bootstrap: checking the cluster DNS address: %w", err)
	}
	_, err = s.createObject(ctx, res, metav1.NamespaceSystem, dnsService(ip), false)
	switch {
	case err == nil:
		s.log.Info("created kube-system/kube-dns", "clusterIP", ip)
		return nil
	case apierrors.IsAlreadyExists(err):
		return nil // another server made it first
	case apierrors.IsInvalid(err), apierrors.IsForbidden(err), apierrors.IsConflict(err):
		// Refused: the address was claimed between the check and the
		// create (by another server making kube-dns, or by a user's
		// Service), or the namespace is closing. Not worth failing start.
		if _, gerr := s.objects.get(ctx, res, metav1.NamespaceSystem, dnsServiceName); gerr == nil {
			return nil
		}
		s.log.Warn("could not create kube-system/kube-dns", "err", err)
		return nil
	}
	return fmt.Errorf("apiserver: bootstrap: creating kube-system/kube-dns: %w", err)
}
