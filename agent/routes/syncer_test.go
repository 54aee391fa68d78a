package routes

import (
	"context"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
)

// Node status heartbeats must not cause syncs; address and podCIDR
// changes, additions and deletions must.
func TestNodeEventsTriggerSync(t *testing.T) {
	client := fake.NewClientset(testNode("a", "192.168.1.1", "10.42.1.0/24"), testNode("b", "192.168.1.2", "10.42.2.0/24"))
	f := informers.NewSharedInformerFactory(client, 0)
	s, err := New(f, Config{NodeName: "a", NodeIP: netip.MustParseAddr("192.168.1.1"), ClusterCIDR: netip.MustParsePrefix("10.42.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.Start(ctx.Done())
	f.WaitForCacheSync(ctx.Done())

	drain := func() {
		for {
			select {
			case <-s.trigger:
			case <-time.After(200 * time.Millisecond):
				return
			}
		}
	}
	kicked := func() bool {
		select {
		case <-s.trigger:
			return true
		case <-time.After(2 * time.Second):
			return false
		}
	}
	nodes := client.CoreV1().Nodes()
	update := func(mod func(*corev1.Node)) {
		t.Helper()
		n, err := nodes.Get(ctx, "b", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		mod(n)
		if _, err := nodes.Update(ctx, n, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	drain()

	update(func(n *corev1.Node) {
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: metav1.Now()}}
		n.Labels = map[string]string{"x": "y"}
	})
	select {
	case <-s.trigger:
		t.Error("a heartbeat triggered a sync")
	case <-time.After(500 * time.Millisecond):
	}

	update(func(n *corev1.Node) { n.Spec.PodCIDRs = []string{"10.42.9.0/24"}; n.Spec.PodCIDR = "10.42.9.0/24" })
	if !kicked() {
		t.Error("a podCIDR change did not trigger a sync")
	}
	update(func(n *corev1.Node) { n.Status.Addresses[1].Address = "192.168.1.22" })
	if !kicked() {
		t.Error("an address change did not trigger a sync")
	}
	if _, err := nodes.Create(ctx, testNode("c", "192.168.1.3"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if !kicked() {
		t.Error("a new node did not trigger a sync")
	}
	if err := nodes.Delete(ctx, "c", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if !kicked() {
		t.Error("a node deletion did not trigger a sync")
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	f := informers.NewSharedInformerFactory(fake.NewClientset(), 0)
	if _, err := New(f, Config{NodeName: "a", ClusterCIDR: netip.MustParsePrefix("10.42.0.0/16")}); err == nil {
		t.Error("New accepted a config without node IP")
	}
	if _, err := New(nil, Config{NodeName: "a", NodeIP: netip.MustParseAddr("192.168.1.1"), ClusterCIDR: netip.MustParsePrefix("10.42.0.0/16")}); err == nil {
		t.Error("New accepted a nil factory")
	}
	if err := Cleanup(context.Background(), Config{}); err == nil {
		t.Error("Cleanup accepted a config without cluster CIDR")
	}
}
