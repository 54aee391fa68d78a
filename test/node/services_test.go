package node

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/skiff-sh/skiff/test/framework"
)

// TestServices drives the node's service proxy: ClusterIPs from pods and
// from the node, by name and through the service environment variables,
// hairpin traffic, session affinity, a deleted pod leaving the rotation,
// and a rolling update that loses no request through the Service or the
// Ingress.
func TestServices(t *testing.T) {
	c := startClusterWith(t, framework.NodeOptions{Ingress: true})
	t.Run("ClusterIP", func(t *testing.T) { testClusterIP(t, c) })
	t.Run("Hairpin", func(t *testing.T) { testHairpin(t, c) })
	t.Run("SessionAffinity", func(t *testing.T) { testSessionAffinity(t, c) })
	t.Run("DeletedPodLeaves", func(t *testing.T) { testDeletedPodLeaves(t, c) })
	t.Run("ZeroDowntimeRollout", func(t *testing.T) { testZeroDowntimeRollout(t, c) })
	t.Run("NetworkPolicy", func(t *testing.T) { testNetworkPolicy(t, c) })
	t.Run("UDPEndpointLeaves", func(t *testing.T) { testUDPEndpointLeaves(t, c) })
	t.Run("Why", func(t *testing.T) { testWhyService(t, c) })
}

// testWhyService: `skiff why service/NAME` says a working Service has ready
// endpoints and points at the typo in a broken one's selector.
func testWhyService(t *testing.T, c *cluster) {
	ns := c.namespace(t, "whysvc")
	c.demoApp(t, ns, "web", 1)
	typo := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "typo"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "wbe"},
			Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromString("http")}}},
	}
	if _, err := c.client.CoreV1().Services(ns).Create(context.Background(), typo, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitEndpoints(t, c, ns, "web", 1)
	why := func(ref string) string {
		cmd := exec.Command(framework.Binary(t), "why", ref, "-n", ns, "--kubeconfig", c.srv.Kubeconfig)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("skiff why %s: %v\n%s", ref, err, out)
		}
		return string(out)
	}
	if out := why("svc/web"); !strings.Contains(out, "1 ready endpoint") {
		t.Errorf("skiff why svc/web:\n%s", out)
	}
	if out := why("service/typo"); !strings.Contains(out, "matches no pod") || !strings.Contains(out, "app=web") {
		t.Errorf("skiff why service/typo does not point at the selector:\n%s", out)
	}
}

// testUDPEndpointLeaves: a UDP client that keeps its socket (one conntrack
// entry) moves to another endpoint once its endpoint leaves the Service,
// even though the old pod is still alive and answering.
func testUDPEndpointLeaves(t *testing.T, c *cluster) {
	ns := c.namespace(t, "udp")
	ctx := context.Background()
	for _, name := range []string{"u1", "u2"} {
		p := demoPod(ns, name, map[string]string{"app": "udp"})
		p.Spec.TerminationGracePeriodSeconds = ptr.To(int64(30))
		p.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 10}}}
		c.createPod(t, p)
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "udp"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "udp"},
			Ports: []corev1.ServicePort{{Port: 9000, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromInt32(8080)}}},
	}
	if _, err := c.client.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ips := map[string]string{}
	for _, name := range []string{"u1", "u2"} {
		ips[name] = c.waitPod(t, ns, name, 60*time.Second, "ready", ready).Status.PodIP
	}
	vip := c.clusterIP(t, ns, "udp")
	conn, err := net.ListenUDP("udp4", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	dst := &net.UDPAddr{IP: net.ParseIP(vip), Port: 9000}
	ask := func() string {
		buf := make([]byte, 256)
		for i := 0; i < 20; i++ {
			if _, err := conn.WriteToUDP([]byte("who"), dst); err != nil {
				// EPERM: the proxy still rejects (no endpoint programmed).
				time.Sleep(300 * time.Millisecond)
				continue
			}
			_ = conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			if n, _, err := conn.ReadFromUDP(buf); err == nil {
				return strings.TrimPrefix(strings.TrimSpace(string(buf[:n])), "pod ")
			}
		}
		return ""
	}
	waitEndpoints(t, c, ns, "udp", 2)
	first := ask()
	if first != "u1" && first != "u2" {
		t.Fatalf("UDP through the ClusterIP: answer %q", first)
	}
	for i := 0; i < 5; i++ {
		if got := ask(); got != first {
			t.Fatalf("one UDP flow answered by %s then %s; want one conntrack entry", first, got)
		}
	}
	if err := c.client.CoreV1().Pods(ns).Delete(ctx, first, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	left := waitNotServing(t, c, ns, "udp", ips[first])
	var got string
	for time.Since(left) < 3*time.Second {
		if got = ask(); got != first && got != "" {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got == first || got == "" {
		t.Fatalf("the UDP flow still goes to %s (answer %q) 3s after it left the endpoints", first, got)
	}
	t.Logf("the UDP flow moved from %s to %s %v after the endpoint left", first, got, time.Since(left).Round(time.Millisecond))
}

// testNetworkPolicy: an ingress policy admits only labelled clients, an
// egress policy lets a pod reach only its allowed peers.
func testNetworkPolicy(t *testing.T, c *cluster) {
	ns := c.namespace(t, "netpol")
	ctx := context.Background()
	for _, name := range []string{"web", "other"} {
		c.createPod(t, demoPod(ns, name, map[string]string{"app": name}))
	}
	allowed := busyboxPod(ns, "allowed", "sleep", "3600")
	allowed.Labels = map[string]string{"access": "true"}
	c.createPod(t, allowed)
	c.createPod(t, busyboxPod(ns, "denied", "sleep", "3600"))
	ips := map[string]string{}
	for _, name := range []string{"web", "other", "allowed", "denied"} {
		ips[name] = c.waitPod(t, ns, name, 60*time.Second, "running", running).Status.PodIP
	}
	reach := func(from, to string) bool {
		_, err := c.kubectlErr(t, "", "exec", "-n", ns, from, "--", "timeout", "2", "wget", "-q", "-O", "-", "http://"+ips[to]+":8080/")
		return err == nil
	}
	// expect waits for the policy to take effect (it is programmed within
	// about 100 ms of the change).
	expect := func(from, to string, want bool) {
		t.Helper()
		got := reach(from, to)
		for deadline := time.Now().Add(5 * time.Second); got != want && time.Now().Before(deadline); got = reach(from, to) {
			time.Sleep(200 * time.Millisecond)
		}
		if got != want {
			t.Errorf("%s -> %s: reachable=%v, want %v", from, to, got, want)
		}
	}
	expect("denied", "web", true) // no policy: open

	tcp := corev1.ProtocolTCP
	port := intstr.FromString("http")
	ingress := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "web-clients"},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From:  []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"access": "true"}}}},
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &port}},
			}},
		},
	}
	if _, err := c.client.NetworkingV1().NetworkPolicies(ns).Create(ctx, ingress, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("denied", "web", false)
	expect("allowed", "web", true)
	expect("denied", "other", true) // other pods are not selected

	egress := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "allowed-out"},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"access": "true"}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
			Egress: []networkingv1.NetworkPolicyEgressRule{{
				To: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}},
			}},
		},
	}
	if _, err := c.client.NetworkingV1().NetworkPolicies(ns).Create(ctx, egress, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("allowed", "other", false)
	expect("allowed", "web", true)

	if err := c.client.NetworkingV1().NetworkPolicies(ns).Delete(ctx, "web-clients", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("denied", "web", true)
}

// Busybox's wget crashes when given -T (Debian's busybox-static 1.35):
// the tests bound it with busybox's timeout instead.

// fresh is an HTTP client that opens a new connection per request, so
// that every request is balanced anew.
var fresh = &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// getPod fetches url (with an optional Host header) and returns the demo
// pod that answered.
func getPod(url, host string) (string, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	if host != "" {
		req.Host = host
	}
	resp, err := fresh.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	buf := make([]byte, 512)
	n, _ := resp.Body.Read(buf)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d: %s", resp.StatusCode, buf[:n])
	}
	return podOf(string(buf[:n])), nil
}

func (c *cluster) clusterIP(t *testing.T, ns, name string) string {
	t.Helper()
	svc, err := c.client.CoreV1().Services(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return svc.Spec.ClusterIP
}

func testClusterIP(t *testing.T, c *cluster) {
	ns := c.namespace(t, "svc")
	c.demoApp(t, ns, "web", 3)
	vip := c.clusterIP(t, ns, "web")

	// From the node: new connections spread over the three replicas, once
	// the proxy has all three.
	waitEndpoints(t, c, ns, "web", 3)
	if _, err := pollGetPod("http://"+vip+"/", "", 10*time.Second); err != nil {
		t.Fatalf("GET http://%s/ from the node: %v", vip, err)
	}
	time.Sleep(300 * time.Millisecond) // the proxy batches changes for 100 ms
	seen := map[string]int{}
	for i := 0; i < 60; i++ {
		pod, err := getPod("http://"+vip+"/", "")
		if err != nil {
			t.Fatalf("GET http://%s/ from the node: %v", vip, err)
		}
		seen[pod]++
	}
	if len(seen) != 3 {
		t.Errorf("60 requests to the ClusterIP reached %d pods, want 3: %v", len(seen), seen)
	}

	// From a pod: by ClusterIP, by name, and through the service
	// environment variables of a pod started after the Service.
	c.createPod(t, busyboxPod(ns, "client", "sleep", "3600"))
	c.waitPod(t, ns, "client", 60*time.Second, "running", running)
	for _, url := range []string{"http://" + vip + "/", "http://web/", "http://web." + ns + ".svc.cluster.local/"} {
		if out := c.exec(t, ns, "client", "timeout", "5", "wget", "-q", "-O", "-", url); !strings.Contains(out, "pod web-") {
			t.Errorf("wget %s in a pod: %q", url, out)
		}
	}
	env := c.exec(t, ns, "client", "sh", "-c", `echo $WEB_SERVICE_HOST:$WEB_SERVICE_PORT; timeout 5 wget -q -O - http://$WEB_SERVICE_HOST:$WEB_SERVICE_PORT/`)
	if !strings.HasPrefix(env, vip+":80") || !strings.Contains(env, "pod web-") {
		t.Errorf("service environment variables: %q, want %s:80 and an answer", env, vip)
	}
}

// testHairpin: a pod reaches itself through its own Service.
func testHairpin(t *testing.T, c *cluster) {
	ns := c.namespace(t, "hairpin")
	pod := busyboxPod(ns, "self", "sh", "-c", "mkdir -p /www && echo hairpin-ok > /www/index.html && exec httpd -f -p 8080 -h /www")
	pod.Labels = map[string]string{"app": "self"}
	c.createPod(t, pod)
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "self"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "self"},
			Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	}
	if _, err := c.client.CoreV1().Services(ns).Create(context.Background(), svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	c.waitPod(t, ns, "self", 60*time.Second, "ready", ready)
	vip := c.clusterIP(t, ns, "self")
	var out string
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
		if out, err = c.kubectlErr(t, "", "exec", "-n", ns, "self", "--", "timeout", "3", "wget", "-q", "-O", "-", "http://"+vip+"/"); err == nil {
			break
		}
	}
	if !strings.Contains(out, "hairpin-ok") {
		t.Errorf("a pod through its own Service: %v %q", err, out)
	}
}

func testSessionAffinity(t *testing.T, c *cluster) {
	ns := c.namespace(t, "affinity")
	c.demoApp(t, ns, "web", 3)
	ctx := context.Background()
	svc, err := c.client.CoreV1().Services(ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
	svc.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr.To(int32(60))}}
	if _, err := c.client.CoreV1().Services(ns).Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitEndpoints(t, c, ns, "web", 3)
	if _, err := pollGetPod("http://"+svc.Spec.ClusterIP+"/", "", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // the proxy batches changes for 100 ms
	seen := map[string]int{}
	for i := 0; i < 30; i++ {
		pod, err := getPod("http://"+svc.Spec.ClusterIP+"/", "")
		if err != nil {
			t.Fatal(err)
		}
		seen[pod]++
	}
	if len(seen) != 1 {
		t.Errorf("sessionAffinity ClientIP: one client reached %d pods: %v", len(seen), seen)
	}
}

// testDeletedPodLeaves: once a deleted pod is out of the endpoints (it is
// still serving, in its preStop sleep), it gets no new connection after
// at most a second.
func testDeletedPodLeaves(t *testing.T, c *cluster) {
	ns := c.namespace(t, "leaving")
	ctx := context.Background()
	for _, name := range []string{"stay", "leave"} {
		p := demoPod(ns, name, map[string]string{"app": "rot"})
		p.Spec.TerminationGracePeriodSeconds = ptr.To(int64(30))
		p.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 5}}}
		c.createPod(t, p)
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "rot"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "rot"},
			Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	}
	if _, err := c.client.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	leaving := c.waitPod(t, ns, "leave", 60*time.Second, "ready", ready)
	c.waitPod(t, ns, "stay", 60*time.Second, "ready", ready)
	vip := c.clusterIP(t, ns, "rot")
	// Both pods are in rotation first.
	waitEndpoints(t, c, ns, "rot", 2)
	seen := map[string]bool{}
	for deadline := time.Now().Add(10 * time.Second); len(seen) < 2 && time.Now().Before(deadline); {
		if pod, err := getPod("http://"+vip+"/", ""); err == nil {
			seen[pod] = true
		}
	}
	if !seen["leave"] || !seen["stay"] {
		t.Fatalf("before the delete, requests reached %v; want both pods", seen)
	}

	if err := c.client.CoreV1().Pods(ns).Delete(ctx, "leave", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	left := waitNotServing(t, c, ns, "rot", leaving.Status.PodIP)
	var lastHit time.Time
	var failed int
	for time.Since(left) < 2*time.Second {
		pod, err := getPod("http://"+vip+"/", "")
		switch {
		case err != nil:
			failed++
		case pod == "leave":
			lastHit = time.Now()
		}
	}
	if failed > 0 {
		t.Errorf("%d requests failed while a pod left the rotation", failed)
	}
	if !lastHit.IsZero() && lastHit.Sub(left) > time.Second {
		t.Errorf("the deleted pod still got new connections %v after leaving the endpoints; want under 1s", lastHit.Sub(left).Round(time.Millisecond))
	}
	t.Logf("deleted pod's last new connection: %v after it left the endpoints", max(0, lastHit.Sub(left)).Round(time.Millisecond))
}

// waitNotServing waits until the Service's EndpointSlices no longer offer
// ip as ready, and returns when the test saw that.
func waitNotServing(t *testing.T, c *cluster, ns, svc, ip string) time.Time {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		list, err := c.client.DiscoveryV1().EndpointSlices(ns).List(context.Background(), metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + svc})
		if err == nil {
			offered := false
			for _, s := range list.Items {
				for _, e := range s.Endpoints {
					if len(e.Addresses) > 0 && e.Addresses[0] == ip && (e.Conditions.Ready == nil || *e.Conditions.Ready) {
						offered = true
					}
				}
			}
			if !offered {
				return time.Now()
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("pod %s is still a ready endpoint of %s 10s after its delete", ip, svc)
	return time.Time{}
}

// demoPod is a bare demo app pod with a readiness probe.
func demoPod(ns, name string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name: "web", Image: "skiff.local/demo:1",
				Env:   []corev1.EnvVar{{Name: "POD_NAME", Value: name}},
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
				ReadinessProbe: &corev1.Probe{PeriodSeconds: 1, ProbeHandler: corev1.ProbeHandler{
					HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http")}}},
			}},
		},
	}
}

// testZeroDowntimeRollout follows the seeds' advice (a readiness probe and
// a rolling update; here also the preStop sleep Kubernetes documents for
// graceful endpoint removal): requests through the Service and through the
// Ingress during a rolling update all succeed.
func testZeroDowntimeRollout(t *testing.T, c *cluster) {
	ns := c.namespace(t, "rollout")
	ctx := context.Background()
	c.demoApp(t, ns, "roll", 3)
	deps := c.client.AppsV1().Deployments(ns)
	prefix := networkingv1.PathTypePrefix
	ing := &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "roll"},
		Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{Host: "roll.local",
			IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
				Path: "/", PathType: &prefix,
				Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "roll", Port: networkingv1.ServiceBackendPort{Number: 80}}},
			}}}}}}},
	}
	if _, err := c.client.NetworkingV1().Ingresses(ns).Create(ctx, ing, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	vip := c.clusterIP(t, ns, "roll")
	ingressURL := "http://" + c.node.IngressHTTP + "/"
	if _, err := pollGetPod(ingressURL, "roll.local", 20*time.Second); err != nil {
		t.Fatalf("the ingress does not route roll.local: %v", err)
	}

	// Ready for zero downtime: one surge pod at a time, never fewer than
	// three ready, and each old pod serves on for a moment after its delete
	// so that proxies and the ingress stop sending it traffic first.
	prepare := `{"spec":{"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxSurge":1,"maxUnavailable":0}},
		"template":{"spec":{"terminationGracePeriodSeconds":30,"containers":[{"name":"web",
		"lifecycle":{"preStop":{"sleep":{"seconds":3}}}}]}}}}`
	if _, err := deps.Patch(ctx, "roll", types.StrategicMergePatchType, []byte(prepare), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRolledOut(t, c, ns, "roll", 3, 3*time.Minute)
	// The first version's pods had no preStop sleep: wait until they are
	// out of the endpoints and the proxies have caught up.
	waitEndpoints(t, c, ns, "roll", 3)
	time.Sleep(500 * time.Millisecond)
	// The rolling update under test: a new version.
	patch := `{"spec":{"template":{"spec":{"containers":[{"name":"web","env":[{"name":"VERSION","value":"2"}]}]}}}}`

	var stop atomic.Bool
	var wg sync.WaitGroup
	type tally struct {
		ok, failed atomic.Int64
		lastErr    atomic.Value
	}
	var viaService, viaIngress tally
	loop := func(tl *tally, url, host string) {
		defer wg.Done()
		for !stop.Load() {
			if _, err := getPod(url, host); err != nil {
				tl.failed.Add(1)
				tl.lastErr.Store(time.Now().Format("15:04:05.000") + " " + err.Error())
			} else {
				tl.ok.Add(1)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	wg.Add(2)
	go loop(&viaService, "http://"+vip+"/", "")
	go loop(&viaIngress, ingressURL, "roll.local")

	if _, err := deps.Patch(ctx, "roll", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		stop.Store(true)
		wg.Wait()
		t.Fatal(err)
	}
	waitRolledOut(t, c, ns, "roll", 3, 3*time.Minute)
	time.Sleep(4 * time.Second) // the last old pods finish leaving
	stop.Store(true)
	wg.Wait()
	for _, v := range []struct {
		name string
		tl   *tally
	}{{"Service", &viaService}, {"Ingress", &viaIngress}} {
		t.Logf("through the %s: %d requests ok, %d failed", v.name, v.tl.ok.Load(), v.tl.failed.Load())
		if v.tl.failed.Load() > 0 {
			t.Errorf("rolling update through the %s: %d of %d requests failed (last: %v)", v.name, v.tl.failed.Load(), v.tl.failed.Load()+v.tl.ok.Load(), v.tl.lastErr.Load())
		}
		if v.tl.ok.Load() < 50 {
			t.Errorf("rolling update through the %s: only %d requests made", v.name, v.tl.ok.Load())
		}
	}
}

func pollGetPod(url, host string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		pod, err := getPod(url, host)
		if err == nil || time.Now().After(deadline) {
			return pod, err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitEndpoints waits until a Service's EndpointSlices hold exactly n
// endpoints, all ready and none terminating.
func waitEndpoints(t *testing.T, c *cluster, ns, svc string, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		list, err := c.client.DiscoveryV1().EndpointSlices(ns).List(context.Background(), metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + svc})
		if err == nil {
			count, clean := 0, true
			for _, s := range list.Items {
				for _, e := range s.Endpoints {
					count++
					clean = clean && (e.Conditions.Ready == nil || *e.Conditions.Ready) && (e.Conditions.Terminating == nil || !*e.Conditions.Terminating)
				}
			}
			if count == n && clean {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("service %s: endpoints did not settle on %d ready ones: %v", svc, n, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitRolledOut waits until a Deployment's rollout is complete, as
// `kubectl rollout status` judges it.
func waitRolledOut(t *testing.T, c *cluster, ns, name string, replicas int32, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		d, err := c.client.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err == nil && d.Status.ObservedGeneration >= d.Generation && d.Status.UpdatedReplicas == replicas &&
			d.Status.Replicas == replicas && d.Status.AvailableReplicas == replicas {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("deployment %s did not roll out: %+v", name, d.Status)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
