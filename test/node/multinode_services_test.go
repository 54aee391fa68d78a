package node

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/skiff-sh/skiff/controlplane"
	"github.com/skiff-sh/skiff/test/framework"
)

// TestServicesAcrossNodes runs two `skiff agent` machines, each in its own
// network namespace on one test LAN: pods on both reach each other through
// a ClusterIP (host-gw routes between the nodes' podCIDRs), by name through
// the cluster DNS, and the host reaches them through NodePorts and the
// built-in LoadBalancer on every node's address. When the agents are
// cleaned up, their namespaces hold no nftables rule and no pod route.
func TestServicesAcrossNodes(t *testing.T) {
	framework.NeedRoot(t)
	network := framework.ClaimNetwork(t)
	lan := framework.NewLAN(t, network)
	hosts := []*framework.Host{lan.Host(1), lan.Host(2)}
	srv := framework.StartServer(t, framework.Options{
		ControlPlane:     controlplane.AllWith(controlplane.Options{ClusterCIDR: network.PodCIDR}),
		Network:          &network,
		BindAddress:      "0.0.0.0",
		AdvertiseAddress: lan.GatewayIP,
		Log:              logSink(t, "server"),
	})
	token, err := os.ReadFile(filepath.Join(srv.DataDir, "node-token"))
	if err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("https://%s:%d", lan.GatewayIP, srv.Port)
	var nodes []*framework.RemoteNode
	for i, h := range hosts {
		nodes = append(nodes, framework.StartRemoteNode(t, h, fmt.Sprintf("lan-%d", i+1), url, strings.TrimSpace(string(token)),
			"--cluster-cidr", network.PodCIDR, "--disable-ingress"))
	}
	c := &cluster{srv: srv, client: srv.Client(), network: network}
	ctx := context.Background()
	deadline := time.Now().Add(90 * time.Second)
	for _, n := range nodes {
		for {
			node, err := c.client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
			if err == nil && nodeReady(node) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %s not Ready: %v\nagent log:\n%s", n.Name, err, n.LogTail())
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	// Three replicas, spread over both nodes.
	ns := c.namespace(t, "spread")
	labels := map[string]string{"app": "web"}
	c.demoApp(t, ns, "web", 3, func(d *appsv1.Deployment) {
		d.Spec.Template.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{
			MaxSkew: 1, TopologyKey: "kubernetes.io/hostname", WhenUnsatisfiable: corev1.DoNotSchedule,
			LabelSelector: &metav1.LabelSelector{MatchLabels: labels},
		}}
	})
	services := map[string]corev1.ServiceType{"web-np": corev1.ServiceTypeNodePort, "web-lb": corev1.ServiceTypeLoadBalancer}
	for name, typ := range services {
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.ServiceSpec{Type: typ, Selector: labels,
				Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}},
		}
		if name == "web-lb" {
			svc.Spec.Ports[0].Port = 8081
		}
		if _, err := c.client.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	client := busyboxPod(ns, "client", "sleep", "3600")
	client.Spec.NodeName = "lan-1"
	c.createPod(t, client)
	c.waitPod(t, ns, "client", 90*time.Second, "running", running)
	pods := map[string]string{} // pod name -> node
	for deadline := time.Now().Add(2 * time.Minute); len(pods) < 3; time.Sleep(300 * time.Millisecond) {
		list, err := c.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			t.Fatal(err)
		}
		clear(pods)
		for _, p := range list.Items {
			if ready(&p) {
				pods[p.Name] = p.Spec.NodeName
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("web pods not ready: %v\n%s\n%s", pods, nodes[0].LogTail(), nodes[1].LogTail())
		}
	}
	onNodes := map[string]bool{}
	for _, n := range pods {
		onNodes[n] = true
	}
	if len(onNodes) != 2 {
		t.Fatalf("three replicas with a topology spread landed on %v; want both nodes", pods)
	}

	// From a pod on lan-1: the ClusterIP reaches all three replicas, on
	// both nodes; so does the Service's name.
	vip := c.clusterIP(t, ns, "web")
	script := fmt.Sprintf(`for i in $(seq 60); do timeout 3 wget -q -O - http://%s/; echo; done`, vip)
	var out string
	seen := map[string]int{}
	for deadline := time.Now().Add(20 * time.Second); len(seen) < 3 && time.Now().Before(deadline); time.Sleep(time.Second) {
		out, _ = c.kubectlErr(t, "", "exec", "-n", ns, "client", "--", "sh", "-c", script)
		clear(seen)
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, "pod web-") {
				seen[podOf(line)]++
			}
		}
	}
	if len(seen) != 3 {
		t.Errorf("60 requests from a pod to the ClusterIP reached %v; want all of %v\n%.2000s", seen, pods, out)
	}
	if out := c.exec(t, ns, "client", "timeout", "5", "wget", "-q", "-O", "-", "http://web/"); !strings.Contains(out, "pod web-") {
		t.Errorf("wget http://web/ from a pod: %q", out)
	}

	// From the host: the NodePort on every node's address.
	np, err := c.client.CoreV1().Services(ns).Get(ctx, "web-np", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hosts {
		u := fmt.Sprintf("http://%s:%d/", h.HostIP, np.Spec.Ports[0].NodePort)
		seen := map[string]bool{}
		for i := 0; i < 40 && len(seen) < 3; i++ {
			pod, err := pollGetPod(u, "", 10*time.Second)
			if err != nil {
				t.Fatalf("NodePort %s from the host: %v", u, err)
			}
			seen[pod] = true
		}
		if len(seen) != 3 {
			t.Errorf("NodePort %s reached %v; want all three replicas", u, seen)
		}
	}

	// The built-in LoadBalancer: status lists both nodes, and the port
	// answers on each.
	var ingress []string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		lb, err := c.client.CoreV1().Services(ns).Get(ctx, "web-lb", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ingress = ingress[:0]
		for _, i := range lb.Status.LoadBalancer.Ingress {
			ingress = append(ingress, i.IP)
		}
		sort.Strings(ingress)
		if len(ingress) == 2 || time.Now().After(deadline) {
			break
		}
	}
	want := []string{hosts[0].HostIP, hosts[1].HostIP}
	sort.Strings(want)
	if fmt.Sprint(ingress) != fmt.Sprint(want) {
		t.Fatalf("LoadBalancer status ingress %v, want the node addresses %v", ingress, want)
	}
	for _, ip := range ingress {
		if _, err := pollGetPod(fmt.Sprintf("http://%s:8081/", ip), "", 10*time.Second); err != nil {
			t.Errorf("LoadBalancer %s:8081 from the host: %v", ip, err)
		}
	}
}
