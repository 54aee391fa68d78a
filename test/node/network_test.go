package node

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// TestPodNetworking checks a pod's network identity (hostname, /etc/hosts,
// resolv.conf), host networking, hostPorts and pod-to-pod traffic.
func TestPodNetworking(t *testing.T) {
	c := startCluster(t)
	t.Run("group", func(t *testing.T) {
		t.Run("HostnameSubdomainAliases", func(t *testing.T) { t.Parallel(); testHostnames(t, c) })
		t.Run("DNSPolicies", func(t *testing.T) { t.Parallel(); testDNSPolicies(t, c) })
		t.Run("HostNetwork", func(t *testing.T) { t.Parallel(); testHostNetwork(t, c) })
		t.Run("HostPort", func(t *testing.T) { t.Parallel(); testHostPort(t, c) })
		t.Run("PodToPod", func(t *testing.T) { t.Parallel(); testPodToPod(t, c) })
	})
}

// webPod serves "hello from NAME" with busybox httpd on port 8080.
func webPod(ns, name string) *corev1.Pod {
	pod := busyboxPod(ns, name, "sh", "-c", "mkdir -p /www && echo hello from $(hostname) > /www/index.html && exec httpd -f -p 8080 -h /www")
	pod.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}
	return pod
}

func testHostnames(t *testing.T, c *cluster) {
	ns := c.namespace(t, "names")
	pod := busyboxPod(ns, "web-0", "sleep", "3600")
	pod.Spec.Hostname = "alpha"
	pod.Spec.Subdomain = "crew"
	pod.Spec.HostAliases = []corev1.HostAlias{
		{IP: "10.1.2.3", Hostnames: []string{"foo.local", "bar.local"}},
		{IP: "10.1.2.4", Hostnames: []string{"baz.local"}},
	}
	c.createPod(t, pod)
	plain := busyboxPod(ns, "plain", "sleep", "3600")
	c.createPod(t, plain)
	p := c.waitPod(t, ns, "web-0", 60*time.Second, "ready", ready)
	pp := c.waitPod(t, ns, "plain", 60*time.Second, "ready", ready)

	if out := c.exec(t, ns, "web-0", "hostname"); out != "alpha\n" {
		t.Errorf("hostname with spec.hostname: %q", out)
	}
	if out := c.exec(t, ns, "plain", "hostname"); out != "plain\n" {
		t.Errorf("hostname of a plain pod: %q", out)
	}
	hosts := c.exec(t, ns, "web-0", "cat", "/etc/hosts")
	for _, want := range [][]string{
		{"127.0.0.1", "localhost"},
		{p.Status.PodIP, "alpha.crew." + ns + ".svc.cluster.local", "alpha"},
		{"10.1.2.3", "foo.local", "bar.local"},
		{"10.1.2.4", "baz.local"},
	} {
		if !hasLine(hosts, want...) {
			t.Errorf("/etc/hosts has no line %q:\n%s", want, hosts)
		}
	}
	if hosts := c.exec(t, ns, "plain", "cat", "/etc/hosts"); !hasLine(hosts, pp.Status.PodIP, "plain") {
		t.Errorf("/etc/hosts of a plain pod:\n%s", hosts)
	}
	// The names resolve inside the pod.
	if out := c.exec(t, ns, "web-0", "ping", "-c", "1", "-W", "2", "alpha.crew."+ns+".svc.cluster.local"); !strings.Contains(out, p.Status.PodIP) {
		t.Errorf("ping of the pod's own FQDN: %q", out)
	}
}

// hasLine reports whether text has a line made of exactly these fields.
func hasLine(text string, fields ...string) bool {
	want := strings.Join(fields, " ")
	for _, line := range strings.Split(text, "\n") {
		if strings.Join(strings.Fields(line), " ") == want {
			return true
		}
	}
	return false
}

// resolvConf is a parsed resolv.conf.
type resolvConf struct {
	nameservers, search, options []string
}

func parseResolvConf(s string) resolvConf {
	var r resolvConf
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "nameserver":
			r.nameservers = append(r.nameservers, f[1])
		case "search":
			r.search = f[1:]
		case "options":
			r.options = append(r.options, f[1:]...)
		}
	}
	return r
}

func testDNSPolicies(t *testing.T, c *cluster) {
	ns := c.namespace(t, "dns")
	first := busyboxPod(ns, "cluster-first", "sleep", "3600")
	c.createPod(t, first)
	none := busyboxPod(ns, "none", "sleep", "3600")
	none.Spec.DNSPolicy = corev1.DNSNone
	none.Spec.DNSConfig = &corev1.PodDNSConfig{
		Nameservers: []string{"192.0.2.53", "192.0.2.54"},
		Searches:    []string{"corp.example", "example"},
		Options:     []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr.To("2")}, {Name: "edns0"}},
	}
	c.createPod(t, none)
	def := busyboxPod(ns, "default", "sleep", "3600")
	def.Spec.DNSPolicy = corev1.DNSDefault
	c.createPod(t, def)
	// ClusterFirst with extra dnsConfig merges it in.
	merged := busyboxPod(ns, "merged", "sleep", "3600")
	merged.Spec.DNSConfig = &corev1.PodDNSConfig{Searches: []string{"extra.example"}, Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr.To("1")}}}
	c.createPod(t, merged)
	for _, n := range []string{"cluster-first", "none", "default", "merged"} {
		c.waitPod(t, ns, n, 60*time.Second, "ready", ready)
	}
	hostConf := parseResolvConf(readFile(t, "/etc/resolv.conf"))

	r := parseResolvConf(c.exec(t, ns, "cluster-first", "cat", "/etc/resolv.conf"))
	wantSearch := append([]string{ns + ".svc.cluster.local", "svc.cluster.local", "cluster.local"}, hostConf.search...)
	if fmt.Sprint(r.nameservers) != "["+c.network.DNS+"]" || fmt.Sprint(r.search) != fmt.Sprint(wantSearch) || fmt.Sprint(r.options) != "[ndots:5]" {
		t.Errorf("ClusterFirst resolv.conf: %+v, want nameserver %s, search %v, options ndots:5", r, c.network.DNS, wantSearch)
	}

	r = parseResolvConf(c.exec(t, ns, "none", "cat", "/etc/resolv.conf"))
	if fmt.Sprint(r.nameservers) != "[192.0.2.53 192.0.2.54]" || fmt.Sprint(r.search) != "[corp.example example]" || fmt.Sprint(r.options) != "[ndots:2 edns0]" {
		t.Errorf("None resolv.conf: %+v", r)
	}

	// Default is the node's resolv.conf (loopback stub resolvers, which
	// would be useless inside the pod's network namespace, left out).
	var hostServers []string
	for _, s := range hostConf.nameservers {
		if !strings.HasPrefix(s, "127.") && s != "::1" {
			hostServers = append(hostServers, s)
		}
	}
	r = parseResolvConf(c.exec(t, ns, "default", "cat", "/etc/resolv.conf"))
	if fmt.Sprint(r.nameservers) != fmt.Sprint(hostServers) || fmt.Sprint(r.search) != fmt.Sprint(hostConf.search) {
		t.Errorf("Default resolv.conf: %+v, host has %+v", r, hostConf)
	}

	r = parseResolvConf(c.exec(t, ns, "merged", "cat", "/etc/resolv.conf"))
	wantSearch = append(wantSearch, "extra.example")
	if fmt.Sprint(r.nameservers) != "["+c.network.DNS+"]" || fmt.Sprint(r.search) != fmt.Sprint(wantSearch) || fmt.Sprint(r.options) != "[ndots:1]" {
		t.Errorf("ClusterFirst with dnsConfig: %+v, want search %v and ndots:1", r, wantSearch)
	}
}

func testHostNetwork(t *testing.T, c *cluster) {
	ns := c.namespace(t, "hostnet")
	// A pod on the pod network first, so the node's bridge exists.
	c.createPod(t, busyboxPod(ns, "on-bridge", "sleep", "3600"))
	c.waitPod(t, ns, "on-bridge", 60*time.Second, "ready", ready)

	pod := busyboxPod(ns, "host-net", "sleep", "3600")
	pod.Spec.HostNetwork = true
	c.createPod(t, pod)
	p := c.waitPod(t, ns, "host-net", 60*time.Second, "ready", ready)
	if p.Status.PodIP != "127.0.0.1" || p.Status.PodIP != p.Status.HostIP {
		t.Errorf("hostNetwork pod: podIP %q hostIP %q, want both the node's 127.0.0.1", p.Status.PodIP, p.Status.HostIP)
	}
	// It sees the host's interfaces, the node's pod bridge among them.
	devs := c.exec(t, ns, "host-net", "cat", "/proc/net/dev")
	if !strings.Contains(devs, c.node.Bridge+":") {
		t.Errorf("hostNetwork pod does not see the node bridge %s:\n%s", c.node.Bridge, devs)
	}
	if devs := c.exec(t, ns, "on-bridge", "cat", "/proc/net/dev"); strings.Contains(devs, c.node.Bridge+":") {
		t.Errorf("a pod-network pod sees the host's interfaces:\n%s", devs)
	}
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	if out := c.exec(t, ns, "host-net", "hostname"); out != host+"\n" {
		t.Errorf("hostNetwork pod hostname %q, want the node's %q", out, host)
	}
	// ClusterFirst falls back to the node's DNS for host-network pods.
	if r := parseResolvConf(c.exec(t, ns, "host-net", "cat", "/etc/resolv.conf")); len(r.nameservers) > 0 && r.nameservers[0] == c.network.DNS {
		t.Errorf("hostNetwork pod with dnsPolicy ClusterFirst got the cluster DNS: %+v", r)
	}
}

// freePort returns a TCP port free on this machine right now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// httpGet fetches a URL with a short timeout.
func httpGet(url string) (string, error) {
	client := &http.Client{Timeout: 3 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return string(body), fmt.Errorf("status %d", resp.StatusCode)
	}
	return string(body), nil
}

// pollGet retries httpGet until it works or timeout passes.
func pollGet(url string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		body, err := httpGet(url)
		if err == nil || time.Now().After(deadline) {
			return body, err
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func testHostPort(t *testing.T, c *cluster) {
	ns := c.namespace(t, "hostport")
	port := freePort(t)
	pod := webPod(ns, "exposed")
	pod.Spec.Containers[0].Ports[0].HostPort = int32(port)
	c.createPod(t, pod)
	p := c.waitPod(t, ns, "exposed", 60*time.Second, "ready", ready)
	want := "hello from exposed\n"

	// Through the node's pod-network gateway address (a local address of
	// the node, as a machine's own LAN address would be).
	node, err := c.client.CoreV1().Nodes().Get(context.Background(), c.node.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	prefix, err := netip.ParsePrefix(node.Spec.PodCIDR)
	if err != nil {
		t.Fatalf("node podCIDR %q: %v", node.Spec.PodCIDR, err)
	}
	gw := prefix.Addr().Next().String()
	if body, err := pollGet(fmt.Sprintf("http://%s:%d/", gw, port), 15*time.Second); err != nil || body != want {
		t.Errorf("hostPort %d through the node address %s: %q %v", port, gw, body, err)
	}
	// Through loopback: the portmap plugin's localhost SNAT.
	if body, err := pollGet(fmt.Sprintf("http://127.0.0.1:%d/", port), 10*time.Second); err != nil || body != want {
		t.Errorf("hostPort %d through 127.0.0.1: %q %v", port, body, err)
	}
	// And directly at the pod's address from the node.
	if body, err := pollGet(fmt.Sprintf("http://%s:8080/", p.Status.PodIP), 10*time.Second); err != nil || body != want {
		t.Errorf("pod IP %s from the node: %q %v", p.Status.PodIP, body, err)
	}
	// A deleted pod frees its hostPort.
	if err := c.client.CoreV1().Pods(ns).Delete(context.Background(), "exposed", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	c.waitGone(t, ns, "exposed", 30*time.Second)
	deadline := time.Now().Add(15 * time.Second)
	for {
		body, err := httpGet(fmt.Sprintf("http://%s:%d/", gw, port))
		if err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("hostPort %d still answers 15s after its pod is gone: %q", port, body)
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func testPodToPod(t *testing.T, c *cluster) {
	ns := c.namespace(t, "p2p")
	c.createPod(t, webPod(ns, "server"))
	c.createPod(t, busyboxPod(ns, "client", "sleep", "3600"))
	srv := c.waitPod(t, ns, "server", 60*time.Second, "ready", ready)
	cl := c.waitPod(t, ns, "client", 60*time.Second, "ready", ready)
	if srv.Status.PodIP == cl.Status.PodIP {
		t.Fatalf("two pods share IP %s", srv.Status.PodIP)
	}
	// (Debian's static busybox wget crashes with -T: timeout bounds it.)
	var out string
	deadline := time.Now().Add(15 * time.Second)
	for {
		o, err := c.kubectlErr(t, "", "exec", "-n", ns, "client", "--", "timeout", "5", "wget", "-q", "-O", "-", "http://"+srv.Status.PodIP+":8080/")
		out = o
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	if out != "hello from server\n" {
		t.Errorf("client -> server pod: %q", out)
	}
	if out := c.exec(t, ns, "client", "ping", "-c", "1", "-W", "2", srv.Status.PodIP); !strings.Contains(out, "1 packets received") {
		t.Errorf("ping between pods: %q", out)
	}
}
