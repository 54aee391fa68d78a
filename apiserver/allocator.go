package apiserver

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"net/netip"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-sh/skiff/apiserver/registry"
	"github.com/skiff-sh/skiff/storage"
)

// allocators hand out Service ClusterIPs and NodePorts. Each allocation is
// one key in the store, created only if absent, so two servers sharing one
// etcd can never hand out the same address:
//
//	/registry/ranges/serviceips/10.43.0.17      -> "NAMESPACE/NAME"
//	/registry/ranges/servicenodeports/30080     -> "NAMESPACE/NAME"
//
// Allocation happens before the Service is written and is undone if the
// write fails; the release after a delete happens after it. A crash between
// the two leaves an allocation without a Service, which Repair frees at the
// next start.
type allocators struct {
	kv               storage.Interface
	cidr             netip.Prefix
	size             *big.Int // addresses in the CIDR
	staticBand       int64    // low offsets kept for requested addresses first
	portMin, portMax int
}

const (
	ipKeyPrefix   = "/registry/ranges/serviceips/"
	portKeyPrefix = "/registry/ranges/servicenodeports/"
)

func newAllocators(kv storage.Interface, cidr netip.Prefix, portMin, portMax int) (*allocators, error) {
	if !cidr.Addr().Is4() {
		return nil, fmt.Errorf("apiserver: service CIDR %s: only IPv4 is supported", cidr)
	}
	bits := 32 - cidr.Bits()
	if bits < 3 {
		return nil, fmt.Errorf("apiserver: service CIDR %s is too small", cidr)
	}
	size := new(big.Int).Lsh(big.NewInt(1), uint(bits))
	band := size.Int64() / 16
	band = max(16, min(band, 256))
	if portMin <= 0 || portMax < portMin || portMax > 65535 {
		return nil, fmt.Errorf("apiserver: bad node port range %d-%d", portMin, portMax)
	}
	return &allocators{kv: kv, cidr: cidr.Masked(), size: size, staticBand: band, portMin: portMin, portMax: portMax}, nil
}

// FirstIP is the kubernetes service's address: the CIDR's first host.
func (a *allocators) FirstIP() netip.Addr { return a.cidr.Addr().Next() }

func (a *allocators) ipAt(offset int64) netip.Addr {
	ip := a.cidr.Addr()
	b := ip.As4()
	n := new(big.Int).SetBytes(b[:])
	n.Add(n, big.NewInt(offset))
	var out [4]byte
	n.FillBytes(out[:])
	return netip.AddrFrom4(out)
}

// claim creates an allocation key; false when it is taken.
func (a *allocators) claim(ctx context.Context, key, owner string) (bool, error) {
	_, err := a.kv.Create(ctx, key, []byte(owner))
	if errors.Is(err, storage.ErrExists) {
		return false, nil
	}
	return err == nil, err
}

func (a *allocators) free(ctx context.Context, key string) {
	_, _, _ = a.kv.Delete(context.WithoutCancel(ctx), key, 0)
}

// allocateIP claims ip, or a free address when ip is not valid.
func (a *allocators) allocateIP(ctx context.Context, ip netip.Addr, owner string) (netip.Addr, error) {
	if ip.IsValid() {
		if !a.cidr.Contains(ip) || ip == a.cidr.Addr() || ip == a.ipAt(a.size.Int64()-1) {
			return ip, errOutOfRange
		}
		ok, err := a.claim(ctx, ipKeyPrefix+ip.String(), owner)
		if err != nil {
			return ip, err
		}
		if !ok {
			return ip, errAllocated
		}
		return ip, nil
	}
	total := a.size.Int64()
	// Dynamic addresses come from above the static band first, at random,
	// then from anywhere by a scan. A range no bigger than the band is
	// scanned only.
	for i := 0; i < 32 && total-1-a.staticBand > 0; i++ {
		off := a.staticBand + rand.Int64N(total-1-a.staticBand)
		if off < 2 {
			continue
		}
		cand := a.ipAt(off)
		ok, err := a.claim(ctx, ipKeyPrefix+cand.String(), owner)
		if err != nil {
			return cand, err
		}
		if ok {
			return cand, nil
		}
	}
	for off := int64(2); off < total-1; off++ {
		cand := a.ipAt(off)
		ok, err := a.claim(ctx, ipKeyPrefix+cand.String(), owner)
		if err != nil {
			return cand, err
		}
		if ok {
			return cand, nil
		}
	}
	return netip.Addr{}, errFull
}

// allocatePort claims port, or a free one when port is 0.
func (a *allocators) allocatePort(ctx context.Context, port int, owner string) (int, error) {
	if port != 0 {
		if port < a.portMin || port > a.portMax {
			return port, errOutOfRange
		}
		ok, err := a.claim(ctx, portKeyPrefix+strconv.Itoa(port), owner)
		if err != nil {
			return port, err
		}
		if !ok {
			return port, errAllocated
		}
		return port, nil
	}
	span := a.portMax - a.portMin + 1
	start := rand.IntN(span)
	for i := range span {
		p := a.portMin + (start+i)%span
		ok, err := a.claim(ctx, portKeyPrefix+strconv.Itoa(p), owner)
		if err != nil {
			return p, err
		}
		if ok {
			return p, nil
		}
	}
	return 0, errFull
}

var (
	errOutOfRange = errors.New("out of range")
	errAllocated  = errors.New("already allocated")
	errFull       = errors.New("range is full")
)

// needsClusterIP says whether a Service gets a virtual IP.
func needsClusterIP(svc *corev1.Service) bool {
	return svc.Spec.Type != corev1.ServiceTypeExternalName && svc.Spec.ClusterIP != corev1.ClusterIPNone
}

// needsNodePorts says whether a Service's ports get node ports.
func needsNodePorts(svc *corev1.Service) bool {
	switch svc.Spec.Type {
	case corev1.ServiceTypeNodePort:
		return true
	case corev1.ServiceTypeLoadBalancer:
		return svc.Spec.AllocateLoadBalancerNodePorts == nil || *svc.Spec.AllocateLoadBalancerNodePorts
	}
	return false
}

// allocateFor claims what a created or updated Service needs and returns
// the function that gives it back if the write fails.
func (s *Server) allocateFor(ctx context.Context, res *registry.Resource, obj, old runtime.Object) (release func(), err error) {
	svc, ok := obj.(*corev1.Service)
	if !ok {
		return func() {}, nil
	}
	var oldSvc *corev1.Service
	if old != nil {
		oldSvc = old.(*corev1.Service)
	}
	owner := svc.Namespace + "/" + svc.Name
	var claimed []string
	release = func() {
		for _, k := range claimed {
			s.alloc.free(ctx, k)
		}
	}
	fail := func(path *field.Path, value any, msg string) (func(), error) {
		release()
		return func() {}, apierrors.NewInvalid(res.GroupVersionKind().GroupKind(), svc.Name, field.ErrorList{field.Invalid(path, value, msg)})
	}
	if needsClusterIP(svc) && (oldSvc == nil || !needsClusterIP(oldSvc) || oldSvc.Spec.ClusterIP != svc.Spec.ClusterIP) {
		var want netip.Addr
		if svc.Spec.ClusterIP != "" {
			want, err = netip.ParseAddr(svc.Spec.ClusterIP)
			if err != nil {
				return fail(field.NewPath("spec", "clusterIPs").Index(0), svc.Spec.ClusterIP, "must be a valid IP address")
			}
		}
		ip, err := s.alloc.allocateIP(ctx, want, owner)
		switch {
		case errors.Is(err, errOutOfRange):
			return fail(field.NewPath("spec", "clusterIPs").Index(0), svc.Spec.ClusterIP, fmt.Sprintf("the provided IP (%s) is not in the valid range. The range of valid IPs is %s", want, s.alloc.cidr))
		case errors.Is(err, errAllocated):
			return fail(field.NewPath("spec", "clusterIPs").Index(0), svc.Spec.ClusterIP, fmt.Sprintf("failed to allocate IP %s: provided IP is already allocated", want))
		case errors.Is(err, errFull):
			return fail(field.NewPath("spec", "clusterIPs"), nil, "failed to allocate a serviceIP: range is full")
		case err != nil:
			release()
			return func() {}, apierrors.NewInternalError(err)
		}
		claimed = append(claimed, ipKeyPrefix+ip.String())
		svc.Spec.ClusterIP = ip.String()
		svc.Spec.ClusterIPs = []string{ip.String()}
	}
	if needsNodePorts(svc) {
		held := map[int32]bool{}
		if oldSvc != nil && needsNodePorts(oldSvc) {
			for _, p := range oldSvc.Spec.Ports {
				held[p.NodePort] = true
			}
		}
		for i := range svc.Spec.Ports {
			p := &svc.Spec.Ports[i]
			if p.NodePort != 0 && held[p.NodePort] {
				continue
			}
			port, err := s.alloc.allocatePort(ctx, int(p.NodePort), owner)
			path := field.NewPath("spec", "ports").Index(i).Child("nodePort")
			switch {
			case errors.Is(err, errOutOfRange):
				return fail(path, p.NodePort, fmt.Sprintf("provided port is not in the valid range. The range of valid ports is %d-%d", s.alloc.portMin, s.alloc.portMax))
			case errors.Is(err, errAllocated):
				return fail(path, p.NodePort, "provided port is already allocated")
			case errors.Is(err, errFull):
				return fail(path, p.NodePort, "failed to allocate a nodePort: range is full")
			case err != nil:
				release()
				return func() {}, apierrors.NewInternalError(err)
			}
			claimed = append(claimed, portKeyPrefix+strconv.Itoa(port))
			held[int32(port)] = true
			p.NodePort = int32(port)
		}
	}
	return release, nil
}

// keepAllocations copies into an updated Service the address and node
// ports the client left out, as kube does, so a PUT of a Service read
// without them keeps them.
func keepAllocations(svc, old *corev1.Service) {
	if needsClusterIP(svc) && needsClusterIP(old) && svc.Spec.ClusterIP == "" {
		svc.Spec.ClusterIP = old.Spec.ClusterIP
		svc.Spec.ClusterIPs = old.Spec.ClusterIPs
	}
	if needsNodePorts(svc) && needsNodePorts(old) {
		for i := range svc.Spec.Ports {
			p := &svc.Spec.Ports[i]
			if p.NodePort != 0 {
				continue
			}
			for _, op := range old.Spec.Ports {
				if op.Port == p.Port && op.Protocol == p.Protocol {
					p.NodePort = op.NodePort
				}
			}
		}
	}
}

// allocationKeys lists the allocation keys a Service holds.
func allocationKeys(svc *corev1.Service) map[string]bool {
	keys := map[string]bool{}
	if needsClusterIP(svc) {
		for _, ip := range svc.Spec.ClusterIPs {
			keys[ipKeyPrefix+ip] = true
		}
		if svc.Spec.ClusterIP != "" {
			keys[ipKeyPrefix+svc.Spec.ClusterIP] = true
		}
	}
	if needsNodePorts(svc) {
		for _, p := range svc.Spec.Ports {
			if p.NodePort != 0 {
				keys[portKeyPrefix+strconv.Itoa(int(p.NodePort))] = true
			}
		}
	}
	return keys
}

// releaseAfterUpdate frees what the old Service held and the new does not.
func (s *Server) releaseAfterUpdate(ctx context.Context, res *registry.Resource, obj, old runtime.Object) {
	svc, ok := obj.(*corev1.Service)
	if !ok {
		return
	}
	now := allocationKeys(svc)
	for k := range allocationKeys(old.(*corev1.Service)) {
		if !now[k] {
			s.alloc.free(ctx, k)
		}
	}
}

// afterDelete frees what a deleted object held.
func (s *Server) afterDelete(ctx context.Context, res *registry.Resource, obj runtime.Object) {
	if svc, ok := obj.(*corev1.Service); ok {
		for k := range allocationKeys(svc) {
			s.alloc.free(ctx, k)
		}
	}
}

// RepairAllocations frees allocations that no Service holds, left by a
// crash between an allocation and the write it was for.
func (s *Server) RepairAllocations(ctx context.Context) error {
	svcRes, _ := s.catalog.Lookup(corev1.SchemeGroupVersion.WithResource("services"))
	svcs, err := s.listAll(ctx, svcRes, "")
	if err != nil {
		return err
	}
	held := map[string]bool{}
	for _, o := range svcs {
		for k := range allocationKeys(o.(*corev1.Service)) {
			held[k] = true
		}
	}
	for _, p := range []string{ipKeyPrefix, portKeyPrefix} {
		page, err := s.cfg.Store.List(ctx, p, storage.ListOptions{})
		if err != nil {
			return err
		}
		for _, kv := range page.KVs {
			if !held[kv.Key] {
				// Guarded by revision: an allocation made since the list stays.
				_, _, _ = s.cfg.Store.Delete(ctx, kv.Key, kv.Revision)
			}
		}
	}
	return nil
}

// keepServiceAllocations applies keepAllocations when obj is a Service.
func keepServiceAllocations(obj, old runtime.Object) {
	svc, ok1 := obj.(*corev1.Service)
	oldSvc, ok2 := old.(*corev1.Service)
	if ok1 && ok2 {
		keepAllocations(svc, oldSvc)
	}
}

// dropStaleServiceFields clears, when a Service changes type, the fields
// only the old type had and the client left as they were (kube does the
// same): node ports and the external traffic fields when it stops being
// NodePort or LoadBalancer, addresses and IP families when it becomes
// ExternalName, load-balancer fields when it stops being a LoadBalancer.
func dropStaleServiceFields(obj, old runtime.Object) {
	svc, ok1 := obj.(*corev1.Service)
	oldSvc, ok2 := old.(*corev1.Service)
	if !ok1 || !ok2 || svc.Spec.Type == oldSvc.Spec.Type {
		return
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		if svc.Spec.ClusterIP == oldSvc.Spec.ClusterIP {
			svc.Spec.ClusterIP = ""
			svc.Spec.ClusterIPs = nil
		}
		svc.Spec.IPFamilies = nil
		svc.Spec.IPFamilyPolicy = nil
	}
	external := func(t corev1.ServiceType) bool {
		return t == corev1.ServiceTypeNodePort || t == corev1.ServiceTypeLoadBalancer
	}
	if external(oldSvc.Spec.Type) && !external(svc.Spec.Type) {
		for i := range svc.Spec.Ports {
			for _, op := range oldSvc.Spec.Ports {
				if op.Port == svc.Spec.Ports[i].Port && op.NodePort == svc.Spec.Ports[i].NodePort {
					svc.Spec.Ports[i].NodePort = 0
				}
			}
		}
		if svc.Spec.ExternalTrafficPolicy == oldSvc.Spec.ExternalTrafficPolicy {
			svc.Spec.ExternalTrafficPolicy = ""
		}
	}
	if oldSvc.Spec.Type == corev1.ServiceTypeLoadBalancer && svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		if svc.Spec.HealthCheckNodePort == oldSvc.Spec.HealthCheckNodePort {
			svc.Spec.HealthCheckNodePort = 0
		}
		if equalPtr(svc.Spec.AllocateLoadBalancerNodePorts, oldSvc.Spec.AllocateLoadBalancerNodePorts) {
			svc.Spec.AllocateLoadBalancerNodePorts = nil
		}
		if equalPtr(svc.Spec.LoadBalancerClass, oldSvc.Spec.LoadBalancerClass) {
			svc.Spec.LoadBalancerClass = nil
		}
	}
}

func equalPtr[T comparable](a, b *T) bool {
	return (a == nil && b == nil) || (a != nil && b != nil && *a == *b)
}
