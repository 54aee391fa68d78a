package integration

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-sh/skiff/test/framework"
)

func nodePortService(name string) *corev1.Service {
	s := clusterIPService(name)
	s.Spec.Type = corev1.ServiceTypeNodePort
	return s
}

// TestServiceAllocation checks ClusterIP and NodePort allocation: unique
// under concurrency, in range, refused when taken, freed on delete.
func TestServiceAllocation(t *testing.T) {
	t.Parallel()
	srv := framework.StartServer(t, framework.Options{})
	cs := newClient(t, srv)
	ctx := testCtx(t)
	ns := makeNamespace(t, cs, "services")
	svcs := cs.CoreV1().Services(ns)
	cidr := netip.MustParsePrefix("10.43.0.0/16")

	kube, err := cs.CoreV1().Services("default").Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if kube.Spec.ClusterIP != "10.43.0.1" {
		t.Fatalf("kubernetes service has ClusterIP %s, want 10.43.0.1", kube.Spec.ClusterIP)
	}

	const n = 50
	var wg sync.WaitGroup
	created := make([]*corev1.Service, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			created[i], errs[i] = svcs.Create(ctx, nodePortService(fmt.Sprintf("np-%02d", i)), metav1.CreateOptions{})
		}()
	}
	wg.Wait()
	ips := map[string]string{kube.Spec.ClusterIP: "default/kubernetes"}
	ports := map[int32]string{}
	for i, s := range created {
		if errs[i] != nil {
			t.Fatalf("create np-%02d: %v", i, errs[i])
		}
		ip, err := netip.ParseAddr(s.Spec.ClusterIP)
		if err != nil || !cidr.Contains(ip) || ip == cidr.Addr() {
			t.Fatalf("%s got ClusterIP %q, not a host in %s", s.Name, s.Spec.ClusterIP, cidr)
		}
		if len(s.Spec.ClusterIPs) != 1 || s.Spec.ClusterIPs[0] != s.Spec.ClusterIP {
			t.Fatalf("%s: clusterIPs %v do not match clusterIP %s", s.Name, s.Spec.ClusterIPs, s.Spec.ClusterIP)
		}
		if other, dup := ips[s.Spec.ClusterIP]; dup {
			t.Fatalf("ClusterIP %s given to both %s and %s", s.Spec.ClusterIP, other, s.Name)
		}
		ips[s.Spec.ClusterIP] = s.Name
		np := s.Spec.Ports[0].NodePort
		if np < 30000 || np > 32767 {
			t.Fatalf("%s got NodePort %d, outside 30000-32767", s.Name, np)
		}
		if other, dup := ports[np]; dup {
			t.Fatalf("NodePort %d given to both %s and %s", np, other, s.Name)
		}
		ports[np] = s.Name
	}
	// What the creates answered is what is stored.
	list, err := svcs.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range list.Items {
		if ips[s.Spec.ClusterIP] != s.Name || ports[s.Spec.Ports[0].NodePort] != s.Name {
			t.Fatalf("stored %s has %s:%d, not what its create answered", s.Name, s.Spec.ClusterIP, s.Spec.Ports[0].NodePort)
		}
	}

	victim := created[7]
	takenIP, takenPort := victim.Spec.ClusterIP, victim.Spec.Ports[0].NodePort

	// Requesting what another Service holds is 422 and stores nothing.
	dupIP := clusterIPService("dup-ip")
	dupIP.Spec.ClusterIP = takenIP
	if _, err := svcs.Create(ctx, dupIP, metav1.CreateOptions{}); !apierrors.IsInvalid(err) {
		t.Fatalf("duplicate ClusterIP %s: want 422, got %v", takenIP, err)
	}
	dupPort := nodePortService("dup-port")
	dupPort.Spec.ClusterIP = "10.43.99.99"
	dupPort.Spec.Ports[0].NodePort = takenPort
	if _, err := svcs.Create(ctx, dupPort, metav1.CreateOptions{}); !apierrors.IsInvalid(err) {
		t.Fatalf("duplicate NodePort %d: want 422, got %v", takenPort, err)
	}
	for _, name := range []string{"dup-ip", "dup-port"} {
		if _, err := svcs.Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Fatalf("refused %s was stored: %v", name, err)
		}
	}
	// The IP the refused create claimed first was given back.
	back := clusterIPService("gets-it-back")
	back.Spec.ClusterIP = "10.43.99.99"
	if _, err := svcs.Create(ctx, back, metav1.CreateOptions{}); err != nil {
		t.Fatalf("10.43.99.99 is still held by a refused create: %v", err)
	}
	// Out of range requests are 422.
	outside := clusterIPService("outside")
	outside.Spec.ClusterIP = "10.99.0.5"
	if _, err := svcs.Create(ctx, outside, metav1.CreateOptions{}); !apierrors.IsInvalid(err) {
		t.Fatalf("ClusterIP outside the range: want 422, got %v", err)
	}
	lowPort := nodePortService("low-port")
	lowPort.Spec.Ports[0].NodePort = 8080
	if _, err := svcs.Create(ctx, lowPort, metav1.CreateOptions{}); !apierrors.IsInvalid(err) {
		t.Fatalf("NodePort 8080: want 422, got %v", err)
	}

	// Updating a Service without its allocations keeps them.
	cur, err := svcs.Get(ctx, created[3].Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cur.Spec.ClusterIP, cur.Spec.ClusterIPs, cur.Spec.Ports[0].NodePort = "", nil, 0
	cur.Labels = map[string]string{"touched": "yes"}
	upd, err := svcs.Update(ctx, cur, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if upd.Spec.ClusterIP != created[3].Spec.ClusterIP || upd.Spec.Ports[0].NodePort != created[3].Spec.Ports[0].NodePort {
		t.Fatalf("update without allocations changed them: %s:%d -> %s:%d", created[3].Spec.ClusterIP,
			created[3].Spec.Ports[0].NodePort, upd.Spec.ClusterIP, upd.Spec.Ports[0].NodePort)
	}

	// Deleting frees both: a new Service may ask for them.
	if err := svcs.Delete(ctx, victim.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	again := nodePortService("reuse")
	again.Spec.ClusterIP = takenIP
	again.Spec.Ports[0].NodePort = takenPort
	reused, err := svcs.Create(ctx, again, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("re-request %s:%d after delete: %v", takenIP, takenPort, err)
	}
	if reused.Spec.ClusterIP != takenIP || reused.Spec.Ports[0].NodePort != takenPort {
		t.Fatalf("re-request got %s:%d", reused.Spec.ClusterIP, reused.Spec.Ports[0].NodePort)
	}
	// Turning a NodePort Service into a ClusterIP one, as
	// `kubectl patch -p '{"spec":{"type":"ClusterIP"}}'` does, drops the
	// fields only NodePort Services have (nodePort, externalTrafficPolicy)
	// and frees the port.
	turned, err := svcs.Patch(ctx, "reuse", types.MergePatchType, []byte(`{"spec":{"type":"ClusterIP"}}`), metav1.PatchOptions{})
	if err != nil {
		t.Errorf("change type NodePort -> ClusterIP: %v", err)
		// Go on with the fields cleared by hand, to check the release.
		patch := `{"spec":{"type":"ClusterIP","externalTrafficPolicy":null,"ports":[{"name":"http","port":80,"protocol":"TCP","nodePort":null}]}}`
		if turned, err = svcs.Patch(ctx, "reuse", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatalf("change type NodePort -> ClusterIP, clearing the fields: %v", err)
		}
	}
	if turned.Spec.Ports[0].NodePort != 0 || turned.Spec.ExternalTrafficPolicy != "" || turned.Spec.ClusterIP != takenIP {
		t.Fatalf("after type change: nodePort=%d externalTrafficPolicy=%q clusterIP=%s, want 0, empty, %s",
			turned.Spec.Ports[0].NodePort, turned.Spec.ExternalTrafficPolicy, turned.Spec.ClusterIP, takenIP)
	}
	np := nodePortService("port-again")
	np.Spec.Ports[0].NodePort = takenPort
	if _, err := svcs.Create(ctx, np, metav1.CreateOptions{}); err != nil {
		t.Fatalf("NodePort %d still held after its Service became ClusterIP: %v", takenPort, err)
	}
	// Headless and ExternalName Services get no address.
	headless := clusterIPService("headless")
	headless.Spec.ClusterIP = corev1.ClusterIPNone
	h, err := svcs.Create(ctx, headless, metav1.CreateOptions{})
	if err != nil || h.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Fatalf("headless service: %v, clusterIP %q", err, h.Spec.ClusterIP)
	}
}
