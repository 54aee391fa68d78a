package controlplane

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-sh/skiff/controllers/servicelb"
	"github.com/skiff-sh/skiff/controlplane"
	"github.com/skiff-sh/skiff/proxy"
	"github.com/skiff-sh/skiff/test/framework"
)

// makeNode registers a node with an internal address, Ready or not, as an
// agent would.
func makeNode(t *testing.T, ctx context.Context, client kubernetes.Interface, name, addr string, ready bool) {
	t.Helper()
	n, err := client.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: addr}, {Type: corev1.NodeHostName, Address: name}}
	setNodeReady(n, ready)
	if _, err := client.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func setNodeReady(n *corev1.Node, ready bool) {
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	now := metav1.Now()
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: st, LastHeartbeatTime: now, LastTransitionTime: now}}
}

// changeNode applies mut to a node (spec and metadata, then status).
func changeNode(t *testing.T, ctx context.Context, client kubernetes.Interface, name string, mut func(*corev1.Node)) {
	t.Helper()
	n, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mut(n)
	if n, err = client.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	mut(n)
	if _, err := client.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// ingressIPs is a Service's status.loadBalancer.ingress IPs.
func ingressIPs(ctx context.Context, client kubernetes.Interface, name string) ([]string, error) {
	svc, err := client.CoreV1().Services("default").Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, ing := range svc.Status.LoadBalancer.Ingress {
		out = append(out, ing.IP)
	}
	return out, nil
}

// waitIngress waits until a Service's ingress IPs are want.
func waitIngress(t *testing.T, ctx context.Context, client kubernetes.Interface, name string, want ...string) {
	t.Helper()
	eventually(t, fmt.Sprintf("%s ingress %v", name, want), func() (bool, string) {
		got, err := ingressIPs(ctx, client, name)
		if err != nil {
			return false, err.Error()
		}
		return slices.Equal(got, want), fmt.Sprint(got)
	})
}

// hasEvent says whether the Service has an Event with the reason.
func hasEvent(ctx context.Context, client kubernetes.Interface, svc, reason string) (bool, string) {
	sel := fields.Set{"involvedObject.kind": "Service", "involvedObject.name": svc, "reason": reason}.AsSelector().String()
	l, err := client.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: sel})
	if err != nil {
		return false, err.Error()
	}
	return len(l.Items) > 0, fmt.Sprintf("%d events", len(l.Items))
}

func lbService(name string, class *string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ServiceSpec{
			Type:              corev1.ServiceTypeLoadBalancer,
			LoadBalancerClass: class,
			Selector:          map[string]string{"app": name},
			Ports:             []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}},
		},
	}
}

// A LoadBalancer Service is published on the Ready nodes' addresses and
// follows them; a Service with a loadBalancerClass is someone else's; a
// Service that stops being a LoadBalancer loses the status.
func TestServiceLBFollowsNodes(t *testing.T) {
	// Nodes here send no heartbeats: keep the node lifecycle controller
	// from marking them Unknown during the test.
	srv := framework.StartServer(t, framework.Options{ControlPlane: controlplane.AllWith(controlplane.Options{NodeGracePeriod: time.Hour})})
	client := srv.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	makeNode(t, ctx, client, "lb-a", "192.0.2.11", true)
	makeNode(t, ctx, client, "lb-b", "192.0.2.12", true)
	makeNode(t, ctx, client, "lb-c", "192.0.2.13", false)

	if _, err := client.CoreV1().Services("default").Create(ctx, lbService("web", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	class := "example.com/other-lb"
	if _, err := client.CoreV1().Services("default").Create(ctx, lbService("classy", &class), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitIngress(t, ctx, client, "web", "192.0.2.11", "192.0.2.12")
	svc, err := client.CoreV1().Services("default").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ing := range svc.Status.LoadBalancer.Ingress {
		if ing.IPMode == nil || *ing.IPMode != corev1.LoadBalancerIPModeVIP || ing.Hostname != "" {
			t.Errorf("ingress entry %+v, want a VIP address", ing)
		}
	}
	eventually(t, "an UpdatedLoadBalancer event", func() (bool, string) {
		return hasEvent(ctx, client, "web", servicelb.ReasonUpdated)
	})

	// The other implementation's status stays as it wrote it.
	classy, err := client.CoreV1().Services("default").Get(ctx, "classy", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(classy.Status.LoadBalancer.Ingress) != 0 {
		t.Fatalf("a Service with a loadBalancerClass got ingress %v", classy.Status.LoadBalancer.Ingress)
	}
	classy.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "203.0.113.5"}}
	if _, err := client.CoreV1().Services("default").UpdateStatus(ctx, classy, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	// lb-b goes NotReady: its address goes.
	changeNode(t, ctx, client, "lb-b", func(n *corev1.Node) { setNodeReady(n, false) })
	waitIngress(t, ctx, client, "web", "192.0.2.11")

	// lb-b is back, lb-a is excluded from load balancers, lb-c turns Ready.
	changeNode(t, ctx, client, "lb-b", func(n *corev1.Node) { setNodeReady(n, true) })
	changeNode(t, ctx, client, "lb-a", func(n *corev1.Node) {
		if n.Labels == nil {
			n.Labels = map[string]string{}
		}
		n.Labels[proxy.LabelExcludeFromLB] = "true"
	})
	changeNode(t, ctx, client, "lb-c", func(n *corev1.Node) { setNodeReady(n, true) })
	waitIngress(t, ctx, client, "web", "192.0.2.12", "192.0.2.13")

	// A node's address changes.
	changeNode(t, ctx, client, "lb-c", func(n *corev1.Node) {
		n.Status.Addresses[0].Address = "192.0.2.23"
	})
	waitIngress(t, ctx, client, "web", "192.0.2.12", "192.0.2.23")

	// All those node changes left the classed Service as its owner set it.
	if got, err := ingressIPs(ctx, client, "classy"); err != nil || !slices.Equal(got, []string{"203.0.113.5"}) {
		t.Errorf("classed Service ingress %v (%v), want [203.0.113.5]", got, err)
	}

	// No longer a LoadBalancer: the status goes.
	svc, err = client.CoreV1().Services("default").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc.Spec.Type = corev1.ServiceTypeClusterIP
	if _, err := client.CoreV1().Services("default").Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitIngress(t, ctx, client, "web")
	eventually(t, "a DeletedLoadBalancer event", func() (bool, string) {
		return hasEvent(ctx, client, "web", servicelb.ReasonDeleted)
	})

	// Back to LoadBalancer: published again.
	svc, err = client.CoreV1().Services("default").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc.Spec.Type = corev1.ServiceTypeLoadBalancer
	if _, err := client.CoreV1().Services("default").Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitIngress(t, ctx, client, "web", "192.0.2.12", "192.0.2.23")
}
