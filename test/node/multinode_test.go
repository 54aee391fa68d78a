package node

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/skiff-sh/skiff/controlplane"
	"github.com/skiff-sh/skiff/test/framework"
)

// TestTwoAgentsJoin runs two `skiff agent` processes, each in its own
// network namespace standing for a machine, that join one server with the
// server's join token; a Deployment's pods spread over both and run, and
// reach each other across the machines over VXLAN.
func TestTwoAgentsJoin(t *testing.T) {
	framework.NeedRoot(t)
	network := framework.ClaimNetwork(t)
	h1 := framework.NewHost(t, network, 1)
	h2 := framework.NewHost(t, network, 2)
	srv := framework.StartServer(t, framework.Options{
		ControlPlane:     controlplane.AllWith(controlplane.Options{ClusterCIDR: network.PodCIDR}),
		Network:          &network,
		BindAddress:      "0.0.0.0",
		AdvertiseAddress: h1.GatewayIP,
		Log:              logSink(t, "server"),
	})
	token, err := os.ReadFile(filepath.Join(srv.DataDir, "node-token"))
	if err != nil {
		t.Fatalf("the server wrote no join token: %v", err)
	}
	url := fmt.Sprintf("https://%s:%d", h1.GatewayIP, srv.Port)
	nodes := []*framework.RemoteNode{
		framework.StartRemoteNode(t, h1, "edge-1", url, strings.TrimSpace(string(token)), "--cluster-cidr", network.PodCIDR),
		framework.StartRemoteNode(t, h2, "edge-2", url, strings.TrimSpace(string(token)), "--cluster-cidr", network.PodCIDR),
	}
	client := srv.Client()
	ctx := context.Background()
	deadline := time.Now().Add(90 * time.Second)
	for _, n := range nodes {
		for {
			node, err := client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
			if err == nil && nodeReady(node) {
				if node.Status.Addresses[0].Address != n.Host.HostIP || node.Spec.PodCIDR == "" {
					t.Errorf("node %s: addresses %v podCIDR %q", n.Name, node.Status.Addresses, node.Spec.PodCIDR)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %s not Ready: %v\nagent log:\n%s", n.Name, err, n.LogTail())
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	// The join used the token once: the agents now hold node certificates.
	for _, n := range nodes {
		if _, err := os.Stat(filepath.Join(n.DataDir, "agent", "pki", "node.kubeconfig")); err != nil {
			t.Errorf("node %s has no node kubeconfig after joining: %v", n.Name, err)
		}
	}

	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "spread"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(int32(4)),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "spread"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "spread"}},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: ptr.To(int64(0)),
					Containers:                    []corev1.Container{{Name: "web", Image: "skiff.local/demo:1"}},
				},
			},
		},
	}
	if _, err := client.AppsV1().Deployments("default").Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var perNode map[string]int
	deadline = time.Now().Add(90 * time.Second)
	for {
		pods, err := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=spread"})
		perNode = map[string]int{}
		readyCount := 0
		if err == nil {
			for i := range pods.Items {
				if ready(&pods.Items[i]) {
					readyCount++
					perNode[pods.Items[i].Spec.NodeName]++
				}
			}
		}
		if readyCount == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deployment pods not all ready: per node %v\nagent logs:\n%s\n%s", perNode, nodes[0].LogTail(), nodes[1].LogTail())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if perNode["edge-1"] == 0 || perNode["edge-2"] == 0 {
		t.Errorf("pods did not spread over both nodes: %v", perNode)
	}
	// Logs come from a pod on each node, through the API server.
	c := &cluster{srv: srv, client: client, network: network}
	pods, _ := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=spread"})
	for _, p := range pods.Items {
		out := c.kubectl(t, "logs", p.Name)
		if !strings.Contains(out, "listening on :8080") {
			t.Errorf("logs of %s on %s: %q", p.Name, p.Spec.NodeName, out)
		}
	}
	// The machines share no subnet (each has its own link to this
	// namespace), so pods reach the other node's pods over VXLAN, with
	// their own addresses.
	probe := busyboxPod("default", "probe", "sleep", "3600")
	probe.Spec.NodeName = "edge-1"
	c.createPod(t, probe)
	probeIP := c.waitPod(t, "default", "probe", 90*time.Second, "running", running).Status.PodIP
	for _, p := range pods.Items {
		url := "http://" + p.Status.PodIP + ":8080/"
		var out string
		var err error
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
			if out, err = c.kubectlErr(t, "", "exec", "probe", "--", "timeout", "3", "wget", "-q", "-O", "-", url); err == nil {
				break
			}
		}
		if err != nil || !strings.Contains(out, "pod "+p.Name) {
			t.Errorf("pod on edge-1 to %s on %s: %v %q", url, p.Spec.NodeName, err, out)
		}
	}
	// The pod's own address arrives, not its node's.
	for _, p := range pods.Items {
		if p.Spec.NodeName != "edge-2" {
			continue
		}
		logs := c.kubectl(t, "logs", p.Name)
		if !strings.Contains(logs, probeIP+":") {
			t.Errorf("pod %s on edge-2 logged no request from the probe's address %s:\n%s", p.Name, probeIP, logs)
		}
		break
	}
	if err := client.AppsV1().Deployments("default").Delete(ctx, "spread", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
