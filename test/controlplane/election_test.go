package controlplane

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-sh/skiff/cluster"
	"github.com/skiff-sh/skiff/controlplane"
	"github.com/skiff-sh/skiff/sim"
	"github.com/skiff-sh/skiff/storage/etcdtest"
	"github.com/skiff-sh/skiff/test/framework"
)

// Two servers share one etcd; only the Lease holder schedules. When it
// stops, the other takes over and pods keep being placed.
func TestSchedulerFailsOverBetweenServers(t *testing.T) {
	eps := etcdtest.StartExternal(t)
	timing := cluster.ControlPlaneTiming{LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 500 * time.Millisecond}
	opts := framework.Options{EtcdEndpoints: eps, ControlPlane: controlplane.All(), Election: timing}
	a := framework.StartServer(t, opts)
	b := framework.StartServer(t, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	holder := func(client kubernetes.Interface) (*framework.Server, string) {
		l, err := client.CoordinationV1().Leases("kube-system").Get(ctx, "kube-scheduler", metav1.GetOptions{})
		if err != nil || l.Spec.HolderIdentity == nil {
			return nil, fmt.Sprint(err)
		}
		id := *l.Spec.HolderIdentity
		for _, srv := range []*framework.Server{a, b} {
			if strings.Contains(id, fmt.Sprintf(":%d_", srv.Port)) {
				return srv, id
			}
		}
		return nil, id
	}
	var leader *framework.Server
	eventually(t, "a scheduler leader", func() (bool, string) {
		var id string
		leader, id = holder(a.Client())
		return leader != nil, id
	})
	survivor := a
	if leader == a {
		survivor = b
	}
	// Clients and simulated nodes talk to the survivor, so they outlive
	// the leader's stop.
	client := survivor.Client()
	simCtx, stopSim := context.WithCancel(ctx)
	simDone := make(chan error, 1)
	go func() { simDone <- sim.Run(simCtx, client, sim.Options{Nodes: 2, LeaseInterval: time.Second}) }()
	defer func() { stopSim(); <-simDone }()

	if _, err := client.CoreV1().Pods("default").Create(ctx, podOf("before", "10m"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitBound(t, ctx, client, "before")

	leader.Stop()
	eventually(t, "the other server to lead", func() (bool, string) {
		srv, id := holder(client)
		return srv == survivor, id
	})
	if _, err := client.CoreV1().Pods("default").Create(ctx, podOf("after", "10m"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitBound(t, ctx, client, "after")
}

func waitBound(t *testing.T, ctx context.Context, client kubernetes.Interface, name string) {
	t.Helper()
	eventually(t, name+" bound", func() (bool, string) {
		p, err := client.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return p.Spec.NodeName != "", "unbound"
	})
}

// The controller manager fails over too, and the handover creates nothing
// twice: a Deployment scaled across the handover ends with exactly one
// ReplicaSet and exactly its replicas.
func TestControllerManagerFailsOverWithoutDuplicates(t *testing.T) {
	eps := etcdtest.StartExternal(t)
	timing := cluster.ControlPlaneTiming{LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 500 * time.Millisecond}
	opts := framework.Options{EtcdEndpoints: eps, ControlPlane: controlplane.All(), Election: timing}
	a := framework.StartServer(t, opts)
	b := framework.StartServer(t, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	leaderOf := func(client kubernetes.Interface) *framework.Server {
		l, err := client.CoordinationV1().Leases("kube-system").Get(ctx, "kube-controller-manager", metav1.GetOptions{})
		if err != nil || l.Spec.HolderIdentity == nil {
			return nil
		}
		for _, srv := range []*framework.Server{a, b} {
			if strings.Contains(*l.Spec.HolderIdentity, fmt.Sprintf(":%d_", srv.Port)) {
				return srv
			}
		}
		return nil
	}
	var leader *framework.Server
	eventually(t, "a controller-manager leader", func() (bool, string) {
		leader = leaderOf(a.Client())
		return leader != nil, "none"
	})
	survivor := a
	if leader == a {
		survivor = b
	}
	client := survivor.Client()
	fleet(t, ctx, client, "n-", 3)

	if _, err := client.AppsV1().Deployments("default").Create(ctx, webDeployment("web", 6, 300*time.Second), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Hand over while the ReplicaSet is still creating pods.
	eventually(t, "a ReplicaSet", func() (bool, string) {
		rs, err := client.AppsV1().ReplicaSets("default").List(ctx, metav1.ListOptions{})
		return err == nil && len(rs.Items) > 0, fmt.Sprint(err)
	})
	leader.Stop()
	eventually(t, "the survivor to lead", func() (bool, string) {
		return leaderOf(client) == survivor, "not yet"
	})
	scale, err := client.AppsV1().Deployments("default").GetScale(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	scale.Spec.Replicas = 9
	if _, err := client.AppsV1().Deployments("default").UpdateScale(ctx, "web", scale, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "9 running pods", func() (bool, string) {
		_, total, err := runningPods(ctx, client, "web")
		return err == nil && total == 9, fmt.Sprint(total, err)
	})
	// Give a stray duplicate time to show up, then count everything.
	time.Sleep(2 * time.Second)
	rs, err := client.AppsV1().ReplicaSets("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pods, err := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs.Items) != 1 || len(pods.Items) != 9 {
		t.Fatalf("after the handover: %d ReplicaSets and %d pods, want 1 and 9", len(rs.Items), len(pods.Items))
	}
}
