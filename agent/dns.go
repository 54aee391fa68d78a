package agent

import (
	"context"
	"log/slog"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// Cluster DNS runs on every node: the kube-dns Service (made by the API
// server, internalTrafficPolicy Local, no selector) gets one EndpointSlice
// per node, kube-dns-<node>, pointing at the DNS server this agent runs on
// its bridge gateway. The proxy then sends each node's queries to its own
// server, and a node that is gone takes its slice with it (the slice is
// owned by its Node).

const (
	dnsService     = "kube-dns"
	dnsSliceOwner  = "skiff-agent"
	defaultDNSAddr = "10.43.0.10"
)

// clusterDNSAddress is the address pods are told to use: the configured
// one, else the kube-dns Service's ClusterIP, else Skiff's default.
func clusterDNSAddress(ctx context.Context, client kubernetes.Interface, configured string, log *slog.Logger) string {
	if configured != "" {
		return configured
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		svc, err := client.CoreV1().Services(metav1.NamespaceSystem).Get(ctx, dnsService, metav1.GetOptions{})
		if err == nil && svc.Spec.ClusterIP != "" && svc.Spec.ClusterIP != corev1.ClusterIPNone {
			return svc.Spec.ClusterIP
		}
		if (err != nil && !apierrors.IsNotFound(err)) && time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(200 * time.Millisecond)
			continue
		}
		log.Warn("no kube-system/kube-dns Service; pods get the default cluster DNS address", "address", defaultDNSAddr, "err", err)
		return defaultDNSAddr
	}
}

// dnsSlice is the node's EndpointSlice for kube-dns.
func dnsSlice(node *corev1.Node, addr netip.Addr) *discoveryv1.EndpointSlice {
	udp, tcp := corev1.ProtocolUDP, corev1.ProtocolTCP
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name: dnsService + "-" + node.Name, Namespace: metav1.NamespaceSystem,
			Labels: map[string]string{discoveryv1.LabelServiceName: dnsService, discoveryv1.LabelManagedBy: dnsSliceOwner},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID,
			}},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{addr.String()},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)},
			NodeName:   ptr.To(node.Name),
		}},
		Ports: []discoveryv1.EndpointPort{
			{Name: ptr.To("dns"), Port: ptr.To(int32(53)), Protocol: &udp},
			{Name: ptr.To("dns-tcp"), Port: ptr.To(int32(53)), Protocol: &tcp},
		},
	}
}

// keepDNSEndpoint writes the node's kube-dns EndpointSlice and puts it back
// whenever it is changed or removed, checking every interval.
func keepDNSEndpoint(ctx context.Context, client kubernetes.Interface, nodeName string, nodeUID types.UID, addr netip.Addr, interval time.Duration, log *slog.Logger) error {
	want := dnsSlice(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: nodeName, UID: nodeUID}}, addr)
	slices := client.DiscoveryV1().EndpointSlices(metav1.NamespaceSystem)
	var lastErr string
	for {
		err := func() error {
			cur, err := slices.Get(ctx, want.Name, metav1.GetOptions{})
			switch {
			case apierrors.IsNotFound(err):
				_, err = slices.Create(ctx, want, metav1.CreateOptions{})
				return err
			case err != nil:
				return err
			}
			if equality.Semantic.DeepEqual(cur.Endpoints, want.Endpoints) && equality.Semantic.DeepEqual(cur.Ports, want.Ports) &&
				equality.Semantic.DeepEqual(cur.Labels, want.Labels) && equality.Semantic.DeepEqual(cur.OwnerReferences, want.OwnerReferences) {
				return nil
			}
			upd := want.DeepCopy()
			upd.ResourceVersion = cur.ResourceVersion
			_, err = slices.Update(ctx, upd, metav1.UpdateOptions{})
			return err
		}()
		if err != nil && ctx.Err() == nil && err.Error() != lastErr {
			log.Warn("cluster DNS endpoint", "slice", want.Name, "err", err)
		}
		if err != nil {
			lastErr = err.Error()
		} else {
			lastErr = ""
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(interval):
		}
	}
}
