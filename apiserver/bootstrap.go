package apiserver

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Bootstrap makes the objects every cluster has: the four system
// namespaces, the kubernetes Service with its endpoints, and the system
// PriorityClasses. It is idempotent, and it frees allocations a crash left
// behind. Call it before marking the server ready.
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
	return s.ensureKubernetesService(ctx)
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
