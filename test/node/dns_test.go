package node

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/skiff-sh/skiff/test/framework"
)

// TestClusterDNS asks the node's cluster DNS, from inside a busybox pod
// through the kube-dns Service, for every kind of name the DNS schema has:
// Services short and fully qualified, headless Services and StatefulSet
// pods, SRV for named ports, ExternalName, PTR, and names outside the
// cluster, which go to an upstream resolver the test runs.
func TestClusterDNS(t *testing.T) {
	upstream := startUpstreamDNS(t, map[string]string{"external.example.": "192.0.2.44", "www.example.org.": "192.0.2.80"})
	c := startClusterWith(t, framework.NodeOptions{DNSUpstreams: []string{upstream}})
	ctx := context.Background()
	ns := c.namespace(t, "dnstest")

	// The kube-dns Service is on the cluster's DNS address and the node
	// serves it.
	kd, err := c.client.CoreV1().Services("kube-system").Get(ctx, "kube-dns", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("kube-system/kube-dns: %v", err)
	}
	if kd.Spec.ClusterIP != c.network.DNS {
		t.Errorf("kube-dns ClusterIP %s, want %s", kd.Spec.ClusterIP, c.network.DNS)
	}

	c.demoApp(t, ns, "web", 1)
	web, err := c.client.CoreV1().Services(ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	headless := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Selector: map[string]string{"app": "db"},
			Ports: []corev1.ServicePort{{Name: "pg", Port: 5432}}},
	}
	if _, err := c.client.CoreV1().Services(ns).Create(ctx, headless, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ext := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "ext"},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "external.example"},
	}
	if _, err := c.client.CoreV1().Services(ns).Create(ctx, ext, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	sts := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Spec: appsv1.StatefulSetSpec{
			ServiceName: "db", Replicas: ptr.To(int32(2)),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "db"}},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: ptr.To(int64(0)),
					Containers: []corev1.Container{{Name: "db", Image: "busybox", Command: []string{"sleep", "3600"},
						Ports: []corev1.ContainerPort{{Name: "pg", ContainerPort: 5432}}}},
				},
			},
		},
	}
	if _, err := c.client.AppsV1().StatefulSets(ns).Create(ctx, sts, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	client := busyboxPod(ns, "client", "sleep", "3600")
	c.createPod(t, client)
	c.waitPod(t, ns, "client", 60*time.Second, "running", running)
	db0 := c.waitPod(t, ns, "db-0", 90*time.Second, "ready", ready)
	db1 := c.waitPod(t, ns, "db-1", 90*time.Second, "ready", ready)

	lookup := func(typ, name string) (string, error) {
		args := []string{"exec", "-n", ns, "client", "--", "nslookup"}
		if typ != "" {
			args = append(args, "-type="+typ)
		}
		return c.kubectlErr(t, "", append(args, name)...)
	}
	// expect retries a lookup until its output has every want (DNS follows
	// the API a moment later), and fails the test otherwise.
	expect := func(typ, name string, wants ...string) {
		t.Helper()
		var out string
		deadline := time.Now().Add(15 * time.Second)
		for {
			out, _ = lookup(typ, name)
			ok := true
			for _, w := range wants {
				ok = ok && strings.Contains(out, w)
			}
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("nslookup -type=%s %s: want %q in:\n%s", typ, name, wants, out)
				return
			}
			time.Sleep(300 * time.Millisecond)
		}
	}
	svcDomain := ns + ".svc.cluster.local"

	// Services: short (through the search path), namespaced, fully qualified.
	expect("a", "web", web.Spec.ClusterIP)
	expect("a", "web."+svcDomain, web.Spec.ClusterIP)
	if k, err := c.client.CoreV1().Services("default").Get(ctx, "kubernetes", metav1.GetOptions{}); err == nil {
		expect("a", "kubernetes.default", k.Spec.ClusterIP)
	}
	// Headless: the ready pods' addresses; StatefulSet pods by name.
	expect("a", "db."+svcDomain, db0.Status.PodIP, db1.Status.PodIP)
	expect("a", "db-0.db."+svcDomain, db0.Status.PodIP)
	expect("a", "db-1.db."+svcDomain, db1.Status.PodIP)
	// The pods' own resolver walks the search path for dotted names too
	// (busybox's nslookup does not: it asks only for the name as given).
	for _, name := range []string{"web." + ns, "web." + ns + ".svc"} {
		if out := c.exec(t, ns, "client", "timeout", "5", "wget", "-q", "-O", "-", "http://"+name+"/"); !strings.Contains(out, "pod web-") {
			t.Errorf("wget http://%s/ in a pod: %q", name, out)
		}
	}
	// SRV for named ports.
	expect("srv", "_http._tcp.web."+svcDomain, "service = 0 100 80 web."+svcDomain)
	expect("srv", "_pg._tcp.db."+svcDomain, " 5432 db-0.db."+svcDomain, " 5432 db-1.db."+svcDomain)
	// ExternalName: a CNAME, followed through the upstream.
	expect("cname", "ext."+svcDomain, "external.example")
	expect("a", "ext."+svcDomain, "external.example", "192.0.2.44")
	// Other names are forwarded.
	expect("a", "www.example.org", "192.0.2.80")
	// PTR for a ClusterIP.
	expect("ptr", reverseName(web.Spec.ClusterIP), "web."+svcDomain)

	// Negative answers: NXDOMAIN for a name that does not exist, NODATA
	// (no error, no answer) for a type a name lacks. Asked directly, with
	// the test's own client, so the response codes can be checked.
	m := new(dns.Msg)
	m.SetQuestion("nothere."+svcDomain+".", dns.TypeA)
	r := exchange(t, c, m)
	if r.Rcode != dns.RcodeNameError {
		t.Errorf("nothere.%s: rcode %s, want NXDOMAIN", svcDomain, dns.RcodeToString[r.Rcode])
	}
	m.SetQuestion("web."+svcDomain+".", dns.TypeMX)
	r = exchange(t, c, m)
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 || len(r.Ns) == 0 {
		t.Errorf("web MX: rcode %s, %d answers, %d authority records; want NODATA with the SOA", dns.RcodeToString[r.Rcode], len(r.Answer), len(r.Ns))
	}
}

// exchange sends m to the cluster DNS through its Service address, from
// the test itself (the node shares this network namespace).
func exchange(t *testing.T, c *cluster, m *dns.Msg) *dns.Msg {
	t.Helper()
	var r *dns.Msg
	var err error
	for i := 0; i < 20; i++ {
		r, _, err = new(dns.Client).Exchange(m, net.JoinHostPort(c.network.DNS, "53"))
		if err == nil {
			return r
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("asking %s for %s: %v", c.network.DNS, m.Question[0].Name, err)
	return nil
}

// reverseName is the in-addr.arpa name of an IPv4 address.
func reverseName(ip string) string {
	p := strings.Split(ip, ".")
	return p[3] + "." + p[2] + "." + p[1] + "." + p[0] + ".in-addr.arpa"
}

// startUpstreamDNS runs a resolver on loopback that answers the given A
// records and NXDOMAIN for anything else, standing for the node's upstream
// resolvers; it returns its address.
func startUpstreamDNS(t *testing.T, records map[string]string) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		name := strings.ToLower(q.Question[0].Name)
		ip, ok := records[name]
		switch {
		case !ok:
			m.Rcode = dns.RcodeNameError
		case q.Question[0].Qtype == dns.TypeA:
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.ParseIP(ip)})
		}
		_ = w.WriteMsg(m)
	})
	srv := &dns.Server{PacketConn: pc, Handler: handler}
	go func() { _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return pc.LocalAddr().String()
}
