package controlplane

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-sh/skiff/controlplane"
	"github.com/skiff-sh/skiff/test/framework"
)

// dnsAddress is where kube-dns belongs: the service CIDR's tenth address,
// nine past the kubernetes Service's first one (whatever CIDR the
// framework gave the server).
func dnsAddress(t *testing.T, ctx context.Context, client kubernetes.Interface) string {
	t.Helper()
	k, err := client.CoreV1().Services("default").Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ip := netip.MustParseAddr(k.Spec.ClusterIP)
	for range 9 {
		ip = ip.Next()
	}
	return ip.String()
}

// agentDNSSlice is the EndpointSlice a node agent keeps for its DNS
// server: kube-dns-<node>, managed by skiff-agent, owned by its Node.
func agentDNSSlice(node *corev1.Node) *discoveryv1.EndpointSlice {
	udp, tcp := corev1.ProtocolUDP, corev1.ProtocolTCP
	dns, dnsTCP, port := "dns", "dns-tcp", int32(53)
	ready := true
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name: "kube-dns-" + node.Name, Namespace: "kube-system",
			Labels:          map[string]string{discoveryv1.LabelServiceName: "kube-dns", discoveryv1.LabelManagedBy: "skiff-agent"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID}},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.42.0.1"}, NodeName: &node.Name,
			Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
		Ports: []discoveryv1.EndpointPort{{Name: &dns, Port: &port, Protocol: &udp}, {Name: &dnsTCP, Port: &port, Protocol: &tcp}},
	}
}

// The server makes kube-system/kube-dns on the tenth service address; it
// outlives restarts, comes back when deleted, and the controllers leave
// the agents' EndpointSlices for it alone.
func TestKubeDNSService(t *testing.T) {
	srv := framework.StartServer(t, framework.Options{ControlPlane: controlplane.AllWith(controlplane.Options{NodeGracePeriod: time.Hour})})
	client := srv.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	want := dnsAddress(t, ctx, client)
	svc, err := client.CoreV1().Services("kube-system").Get(ctx, "kube-dns", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("kube-dns: %v", err)
	}
	if svc.Spec.ClusterIP != want || len(svc.Spec.Selector) != 0 || svc.Labels["k8s-app"] != "kube-dns" ||
		svc.Spec.InternalTrafficPolicy == nil || *svc.Spec.InternalTrafficPolicy != corev1.ServiceInternalTrafficPolicyLocal {
		t.Fatalf("kube-dns is %+v, want clusterIP %s, no selector, k8s-app=kube-dns, internalTrafficPolicy Local", svc, want)
	}

	// An agent publishes its DNS endpoint.
	makeNode(t, ctx, client, "dns-node", "192.0.2.31", true)
	node, err := client.CoreV1().Nodes().Get(ctx, "dns-node", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	slice, err := client.DiscoveryV1().EndpointSlices("kube-system").Create(ctx, agentDNSSlice(node), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Touch kube-dns, then wait until the endpoints controller served a
	// Service queued after it.
	svc.Annotations = map[string]string{"touched": "yes"}
	if _, err := client.CoreV1().Services("kube-system").Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	sentinel := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "sentinel"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "none"}, Ports: []corev1.ServicePort{{Port: 80}}}}
	if _, err := client.CoreV1().Services("default").Create(ctx, sentinel, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the sentinel's Endpoints", func() (bool, string) {
		_, err := client.CoreV1().Endpoints("default").Get(ctx, "sentinel", metav1.GetOptions{})
		return err == nil, fmt.Sprint(err)
	})
	time.Sleep(time.Second) // let any other worker finish
	checkAgentSlice := func(when string) {
		t.Helper()
		got, err := client.DiscoveryV1().EndpointSlices("kube-system").Get(ctx, slice.Name, metav1.GetOptions{})
		if err != nil || got.ResourceVersion != slice.ResourceVersion {
			t.Fatalf("%s: the agent's slice was touched: %v %+v", when, err, got)
		}
		all, err := client.DiscoveryV1().EndpointSlices("kube-system").List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=kube-dns"})
		if err != nil || len(all.Items) != 1 {
			t.Fatalf("%s: kube-dns slices %v %v, want only the agent's", when, err, all)
		}
		if _, err := client.CoreV1().Endpoints("kube-system").Get(ctx, "kube-dns", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Fatalf("%s: Endpoints written for kube-dns: %v", when, err)
		}
	}
	checkAgentSlice("after a sync")

	// A restart keeps the Service (the same object) and the slice.
	srv.Restart()
	client = srv.Client()
	eventually(t, "the restarted server", func() (bool, string) {
		_, err := client.CoreV1().Services("kube-system").Get(ctx, "kube-dns", metav1.GetOptions{})
		return err == nil, fmt.Sprint(err)
	})
	again, err := client.CoreV1().Services("kube-system").Get(ctx, "kube-dns", metav1.GetOptions{})
	if err != nil || again.UID != svc.UID || again.Spec.ClusterIP != want || again.Annotations["touched"] != "yes" {
		t.Fatalf("kube-dns after restart: %v %+v", err, again)
	}
	eventually(t, "the controllers back after the restart", func() (bool, string) {
		s := sentinel.DeepCopy()
		s.Name = "sentinel-2"
		if _, err := client.CoreV1().Services("default").Create(ctx, s, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return false, err.Error()
		}
		_, err := client.CoreV1().Endpoints("default").Get(ctx, "sentinel-2", metav1.GetOptions{})
		return err == nil, fmt.Sprint(err)
	})
	time.Sleep(time.Second)
	checkAgentSlice("after a restart")

	// Deleted, it is back after the next restart, on the same address; the
	// agent's slice stays throughout.
	if err := client.CoreV1().Services("kube-system").Delete(ctx, "kube-dns", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if _, err := client.DiscoveryV1().EndpointSlices("kube-system").Get(ctx, slice.Name, metav1.GetOptions{}); err != nil {
		t.Fatalf("the agent's slice went with the Service: %v", err)
	}
	srv.Restart()
	client = srv.Client()
	eventually(t, "kube-dns recreated", func() (bool, string) {
		got, err := client.CoreV1().Services("kube-system").Get(ctx, "kube-dns", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return got.UID != svc.UID && got.Spec.ClusterIP == want, got.Spec.ClusterIP
	})
	checkAgentSlice("after the recreation")
}
