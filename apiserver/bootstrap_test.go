package apiserver

import (
	"bytes"
	"context"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiff-sh/skiff/storage"
	"github.com/skiff-sh/skiff/storage/etcd"
	"github.com/skiff-sh/skiff/storage/etcdtest"
)

func TestDNSServiceIP(t *testing.T) {
	cases := []struct {
		cidr string
		want string // "" when there is none
	}{
		{"10.43.0.0/16", "10.43.0.10"},
		{"10.96.0.0/12", "10.96.0.10"},
		{"10.201.7.9/16", "10.201.0.10"}, // host bits are ignored
		{"192.168.5.0/24", "192.168.5.10"},
		{"192.168.5.16/28", "192.168.5.26"},
		{"192.168.5.0/29", ""}, // eight addresses: the tenth is outside
		{"192.168.5.0/32", ""},
		{"fd00::/108", ""}, // Service CIDRs are IPv4 only
	}
	for _, c := range cases {
		got, ok := DNSServiceIP(netip.MustParsePrefix(c.cidr))
		if c.want == "" {
			if ok {
				t.Errorf("%s: got %s, want none", c.cidr, got)
			}
			continue
		}
		if !ok || got.String() != c.want {
			t.Errorf("%s: got %s %v, want %s", c.cidr, got, ok, c.want)
		}
	}
	if _, ok := DNSServiceIP(netip.Prefix{}); ok {
		t.Error("an invalid prefix has a DNS address")
	}
}

// syncBuffer is a log sink tests read while the server writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// bootstrapFixture builds API servers on one etcd, as restarts of one
// server would be.
type bootstrapFixture struct {
	t     *testing.T
	store storage.Interface
	cidr  netip.Prefix
	logs  *syncBuffer
}

func newBootstrapFixture(t *testing.T, cidr string) *bootstrapFixture {
	emb := etcdtest.StartEmbedded(t)
	st := etcd.New(emb.Client())
	return &bootstrapFixture{t: t, store: st, cidr: netip.MustParsePrefix(cidr), logs: &syncBuffer{}}
}

// server is a fresh API server on the fixture's store.
func (f *bootstrapFixture) server() *Server {
	f.t.Helper()
	s, err := New(Config{Store: f.store, ServiceCIDR: f.cidr, Log: slog.New(slog.NewTextHandler(f.logs, nil))})
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

// boot is a server start: a new server and its bootstrap.
func (f *bootstrapFixture) boot() *Server {
	f.t.Helper()
	s := f.server()
	if err := s.Bootstrap(context.Background()); err != nil {
		f.t.Fatalf("Bootstrap: %v", err)
	}
	return s
}

// getService reads a Service from the server's store.
func getService(s *Server, ns, name string) (*corev1.Service, error) {
	res, _ := s.catalog.Lookup(corev1.SchemeGroupVersion.WithResource("services"))
	obj, err := s.objects.get(context.Background(), res, ns, name)
	if err != nil {
		return nil, err
	}
	return obj.(*corev1.Service), nil
}

// allocationOwner is who holds a service IP, or "".
func (f *bootstrapFixture) allocationOwner(ip string) string {
	kv, err := f.store.Get(context.Background(), ipKeyPrefix+ip)
	if err != nil {
		return ""
	}
	return string(kv.Value)
}

func TestBootstrapDNSService(t *testing.T) {
	f := newBootstrapFixture(t, "10.96.0.0/12")
	ctx := context.Background()
	s := f.boot()

	svc, err := getService(s, "kube-system", "kube-dns")
	if err != nil {
		t.Fatalf("kube-dns after bootstrap: %v", err)
	}
	if svc.Spec.ClusterIP != "10.96.0.10" || len(svc.Spec.ClusterIPs) != 1 || svc.Spec.ClusterIPs[0] != "10.96.0.10" {
		t.Errorf("clusterIP %q %v, want 10.96.0.10", svc.Spec.ClusterIP, svc.Spec.ClusterIPs)
	}
	if svc.Spec.Type != corev1.ServiceTypeClusterIP || len(svc.Spec.Selector) != 0 {
		t.Errorf("type %q selector %v, want ClusterIP without selector", svc.Spec.Type, svc.Spec.Selector)
	}
	if p := svc.Spec.InternalTrafficPolicy; p == nil || *p != corev1.ServiceInternalTrafficPolicyLocal {
		t.Errorf("internalTrafficPolicy %v, want Local", p)
	}
	for k, v := range map[string]string{"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true", "kubernetes.io/name": "SkiffDNS"} {
		if svc.Labels[k] != v {
			t.Errorf("label %s=%q, want %q", k, svc.Labels[k], v)
		}
	}
	type port struct {
		name  string
		port  int32
		proto corev1.Protocol
	}
	var ports []port
	for _, p := range svc.Spec.Ports {
		ports = append(ports, port{p.Name, p.Port, p.Protocol})
		if p.TargetPort.IntValue() != 53 {
			t.Errorf("port %s targets %v, want 53", p.Name, p.TargetPort)
		}
	}
	if want := []port{{"dns", 53, corev1.ProtocolUDP}, {"dns-tcp", 53, corev1.ProtocolTCP}}; len(ports) != 2 || ports[0] != want[0] || ports[1] != want[1] {
		t.Errorf("ports %v, want %v", ports, want)
	}
	if owner := f.allocationOwner("10.96.0.10"); owner != "kube-system/kube-dns" {
		t.Errorf("10.96.0.10 allocated to %q", owner)
	}

	// A restart changes nothing and keeps the allocation.
	s = f.boot()
	again, err := getService(s, "kube-system", "kube-dns")
	if err != nil || again.UID != svc.UID || again.ResourceVersion != svc.ResourceVersion {
		t.Fatalf("kube-dns after restart: %v (uid %s rv %s, was %s %s)", err, again.UID, again.ResourceVersion, svc.UID, svc.ResourceVersion)
	}
	if owner := f.allocationOwner("10.96.0.10"); owner != "kube-system/kube-dns" {
		t.Errorf("after restart 10.96.0.10 allocated to %q", owner)
	}

	// A user's change survives restarts.
	res, _ := s.catalog.Lookup(corev1.SchemeGroupVersion.WithResource("services"))
	if _, _, err := s.updateObject(ctx, res, "kube-system", "kube-dns", updateOptions{}, func(cur runtime.Object) (runtime.Object, error) {
		cur.(*corev1.Service).Spec.Selector = map[string]string{"k8s-app": "kube-dns"}
		return cur, nil
	}); err != nil {
		t.Fatal(err)
	}
	s = f.boot()
	if got, err := getService(s, "kube-system", "kube-dns"); err != nil || got.Spec.Selector["k8s-app"] != "kube-dns" {
		t.Fatalf("the user's selector was not kept: %v %v", err, got)
	}

	// Deleted, it comes back at the next start on the same address.
	if _, _, err := s.deleteObject(ctx, res, "kube-system", "kube-dns", &metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if owner := f.allocationOwner("10.96.0.10"); owner != "" {
		t.Fatalf("10.96.0.10 still allocated to %q after the delete", owner)
	}
	s = f.boot()
	back, err := getService(s, "kube-system", "kube-dns")
	if err != nil || back.UID == svc.UID || back.Spec.ClusterIP != "10.96.0.10" || len(back.Spec.Selector) != 0 {
		t.Fatalf("kube-dns not recreated: %v %+v", err, back)
	}
}

func TestBootstrapDNSAddressTaken(t *testing.T) {
	f := newBootstrapFixture(t, "10.43.0.0/16")
	ctx := context.Background()
	s := f.server()
	// The namespaces first, then a user's Service on the DNS address, as
	// on a cluster that existed before kube-dns did.
	nsRes, _ := s.catalog.Lookup(corev1.SchemeGroupVersion.WithResource("namespaces"))
	if _, err := s.createObject(ctx, nsRes, "", &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, false); err != nil {
		t.Fatal(err)
	}
	svcRes, _ := s.catalog.Lookup(corev1.SchemeGroupVersion.WithResource("services"))
	squatter := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "squatter", Namespace: "default"},
		Spec: corev1.ServiceSpec{ClusterIP: "10.43.0.10", Ports: []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP}}}}
	if _, err := s.createObject(ctx, svcRes, "default", squatter, false); err != nil {
		t.Fatal(err)
	}

	s = f.boot() // must not fail
	if _, err := getService(s, "kube-system", "kube-dns"); !apierrors.IsNotFound(err) {
		t.Errorf("kube-dns made on a taken address: %v", err)
	}
	if got, err := getService(s, "default", "squatter"); err != nil || got.Spec.ClusterIP != "10.43.0.10" {
		t.Errorf("the user's Service changed: %v %v", err, got)
	}
	if owner := f.allocationOwner("10.43.0.10"); owner != "default/squatter" {
		t.Errorf("10.43.0.10 allocated to %q", owner)
	}
	if logs := f.logs.String(); !strings.Contains(logs, "taken by another Service") || !strings.Contains(logs, "default/squatter") {
		t.Errorf("no clear warning naming the holder; logs:\n%s", logs)
	}

	// Once the address is free, the next start makes kube-dns.
	if _, _, err := s.deleteObject(ctx, svcRes, "default", "squatter", &metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	s = f.boot()
	if got, err := getService(s, "kube-system", "kube-dns"); err != nil || got.Spec.ClusterIP != "10.43.0.10" {
		t.Fatalf("kube-dns after the address was freed: %v %v", err, got)
	}
}

func TestBootstrapDNSTinyCIDR(t *testing.T) {
	f := newBootstrapFixture(t, "10.43.0.0/29")
	s := f.boot()
	if _, err := getService(s, "kube-system", "kube-dns"); !apierrors.IsNotFound(err) {
		t.Errorf("kube-dns in a CIDR without a tenth address: %v", err)
	}
	if !strings.Contains(f.logs.String(), "too small") {
		t.Errorf("no warning; logs:\n%s", f.logs.String())
	}
}

// RepairAllocations frees leftovers but keeps kube-dns's explicit address.
func TestRepairKeepsDNSAddress(t *testing.T) {
	f := newBootstrapFixture(t, "10.43.0.0/16")
	s := f.boot()
	ctx := context.Background()
	if _, err := f.store.Create(ctx, ipKeyPrefix+"10.43.0.77", []byte("default/crashed")); err != nil {
		t.Fatal(err)
	}
	if err := s.RepairAllocations(ctx); err != nil {
		t.Fatal(err)
	}
	if owner := f.allocationOwner("10.43.0.77"); owner != "" {
		t.Errorf("leftover allocation kept: %q", owner)
	}
	if owner := f.allocationOwner("10.43.0.10"); owner != "kube-system/kube-dns" {
		t.Errorf("kube-dns's address allocated to %q after repair", owner)
	}
}
