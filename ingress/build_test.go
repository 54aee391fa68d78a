package ingress

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// problemList renders problems as "ingress reason" lines, sorted.
func problemList(ps []Problem) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Ingress.Name+" "+p.Reason)
	}
	slices.Sort(out)
	return out
}

// routeOf names the backend (and canary) a lookup finds: "svc" or
// "svc+canary", "" for none.
func routeOf(tab *Table, host, path string) string {
	r := tab.Lookup(host, path)
	if r == nil {
		return ""
	}
	s := strings.TrimSuffix(strings.TrimPrefix(r.Backend.Name, "ns/"), ":80")
	if r.Canary != nil {
		s += "+" + strings.TrimSuffix(strings.TrimPrefix(r.Canary.Backend.Name, "ns/"), ":80")
	}
	return s
}

func TestBuildConflictsAndProblems(t *testing.T) {
	type check struct{ host, path, want string }
	tests := []struct {
		name     string
		ings     []*networkingv1.Ingress
		problems []string
		checks   []check
	}{{
		name: "oldest Ingress keeps a contested path, the rest of the newer one works",
		ings: []*networkingv1.Ingress{
			mkIngress("ns", "new", 5, withRule("a.test", prefix("/", "b"), prefix("/extra", "b"))),
			mkIngress("ns", "old", 1, withRule("a.test", prefix("/", "a"))),
		},
		problems: []string{"new RouteConflict"},
		checks:   []check{{"a.test", "/", "a"}, {"a.test", "/extra/1", "b"}},
	}, {
		name: "same age: namespace then name decides",
		ings: []*networkingv1.Ingress{
			mkIngress("ns", "z", 1, withRule("a.test", prefix("/", "b"))),
			mkIngress("ns", "y", 1, withRule("a.test", prefix("/", "a"))),
		},
		problems: []string{"z RouteConflict"},
		checks:   []check{{"a.test", "/", "a"}},
	}, {
		name: "Exact and Prefix of the same path do not conflict; a trailing slash does",
		ings: []*networkingv1.Ingress{
			mkIngress("ns", "one", 1, withRule("a.test", exact("/p", "a"), prefix("/p", "b"))),
			mkIngress("ns", "two", 2, withRule("a.test", prefix("/p/", "c"))),
		},
		problems: []string{"two RouteConflict"},
		checks:   []check{{"a.test", "/p", "a"}, {"a.test", "/p/q", "b"}},
	}, {
		name: "ImplementationSpecific is Prefix for conflicts too",
		ings: []*networkingv1.Ingress{
			mkIngress("ns", "one", 1, withRule("a.test", prefix("/p", "a"))),
			mkIngress("ns", "two", 2, withRule("a.test", implSpecific("/p", "b"))),
		},
		problems: []string{"two RouteConflict"},
		checks:   []check{{"a.test", "/p", "a"}},
	}, {
		name: "hosts are case-insensitive",
		ings: []*networkingv1.Ingress{
			mkIngress("ns", "one", 1, withRule("A.Test", prefix("/", "a"))),
			mkIngress("ns", "two", 2, withRule("a.test", prefix("/", "b"))),
		},
		problems: []string{"two RouteConflict"},
		checks:   []check{{"a.test", "/", "a"}},
	}, {
		name: "the same path twice in one Ingress",
		ings: []*networkingv1.Ingress{
			mkIngress("ns", "one", 1, withRule("a.test", prefix("/", "a")), withRule("a.test", prefix("/", "b"))),
		},
		problems: []string{"one RouteConflict"},
		checks:   []check{{"a.test", "/", "a"}},
	}, {
		name: "a missing Service still claims its path (503) and reports",
		ings: []*networkingv1.Ingress{
			mkIngress("ns", "one", 1, withRule("a.test", prefix("/", "missing"), prefix("/ok", "a"))),
			mkIngress("ns", "two", 2, withRule("a.test", prefix("/", "b"))),
		},
		problems: []string{"one ServiceNotFound", "two RouteConflict"},
		checks:   []check{{"a.test", "/", "missing"}, {"a.test", "/ok", "a"}},
	}, {
		name: "a missing Service is reported for every Ingress using it",
		ings: []*networkingv1.Ingress{
			mkIngress("ns", "one", 1, withRule("a.test", prefix("/", "missing"))),
			mkIngress("ns", "two", 2, withRule("b.test", prefix("/", "missing"))),
		},
		problems: []string{"one ServiceNotFound", "two ServiceNotFound"},
	}, {
		name: "a port the Service lacks",
		ings: []*networkingv1.Ingress{
			mkIngress("ns", "one", 1, withRule("a.test", mkPath(networkingv1.PathTypePrefix, "/", "a", 81))),
		},
		problems: []string{"one ServicePortNotFound"},
	}, {
		name: "a resource backend is skipped",
		ings: []*networkingv1.Ingress{
			mkIngress("ns", "one", 1, withRule("a.test", networkingv1.HTTPIngressPath{
				Path: "/", PathType: ptr(networkingv1.PathTypePrefix),
				Backend: networkingv1.IngressBackend{Resource: &corev1.TypedLocalObjectReference{Kind: "Bucket", Name: "b"}},
			}, prefix("/a", "a"))),
		},
		problems: []string{"one UnsupportedBackend"},
		checks:   []check{{"a.test", "/", ""}, {"a.test", "/a", "a"}},
	}, {
		name: "a relative path is refused",
		ings: []*networkingv1.Ingress{
			mkIngress("ns", "one", 1, withRule("a.test", prefix("rel", "a"), prefix("/b", "b"))),
		},
		problems: []string{"one BadPath"},
		checks:   []check{{"a.test", "/b", "b"}},
	}, {
		name: "only the oldest defaultBackend is the cluster's; others still serve their hosts",
		ings: []*networkingv1.Ingress{
			mkIngress("ns", "d1", 1, withDefault("a", 80)),
			mkIngress("ns", "d2", 2, withDefault("b", 80)),
			mkIngress("ns", "d3", 3, withDefault("c", 80), withRule("c.test", exact("/x", "a"))),
		},
		problems: []string{"d2 DefaultBackendConflict"},
		checks:   []check{{"other.test", "/", "a"}, {"c.test", "/", "c"}, {"c.test", "/x", "a"}},
	}, {
		name: "canary attaches to the main route",
		ings: []*networkingv1.Ingress{
			mkIngress("ns", "main", 1, withRule("a.test", prefix("/", "a"), prefix("/other", "a"))),
			mkIngress("ns", "canary", 2, withCanary("30"), withRule("a.test", prefix("/", "b"))),
		},
		checks: []check{{"a.test", "/", "a+b"}, {"a.test", "/other", "a"}},
	}, {
		name: "an older canary does not become the main route",
		ings: []*networkingv1.Ingress{
			mkIngress("ns", "canary", 1, withCanary("30"), withRule("a.test", prefix("/", "b"))),
			mkIngress("ns", "main", 2, withRule("a.test", prefix("/", "a"))),
		},
		checks: []check{{"a.test", "/", "a+b"}},
	}, {
		name: "canary without a main Ingress, a second canary, bad weight",
		ings: []*networkingv1.Ingress{
			mkIngress("ns", "main", 1, withRule("a.test", prefix("/", "a"))),
			mkIngress("ns", "c1", 2, withCanary("10"), withRule("a.test", prefix("/", "b"))),
			mkIngress("ns", "c2", 3, withCanary("20"), withRule("a.test", prefix("/", "c"))),
			mkIngress("ns", "c3", 4, withCanary("10"), withRule("a.test", prefix("/nomain", "c"))),
			mkIngress("ns", "c4", 5, withCanary("abc"), withRule("b.test", prefix("/", "c"))),
		},
		problems: []string{"c2 CanaryConflict", "c3 CanaryWithoutMain", "c4 BadAnnotation", "c4 CanaryWithoutMain"},
		checks:   []check{{"a.test", "/", "a+b"}, {"a.test", "/nomain", "a+b"}, {"b.test", "/", ""}},
	}, {
		name: "a bad ssl-redirect annotation is reported",
		ings: []*networkingv1.Ingress{
			mkIngress("ns", "one", 1, withAnnotation("nginx.ingress.kubernetes.io/ssl-redirect", "nope"), withRule("a.test", prefix("/", "a"))),
		},
		problems: []string{"one BadAnnotation"},
		checks:   []check{{"a.test", "/", "a"}},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld()
			for _, s := range []string{"a", "b", "c"} {
				w.addService("ns", s)
			}
			tab, problems := Build(w.snapshot(tc.ings...))
			if got := problemList(problems); !slices.Equal(got, tc.problems) {
				t.Errorf("problems = %q, want %q", got, tc.problems)
			}
			for _, c := range tc.checks {
				if got := routeOf(tab, c.host, c.path); got != c.want {
					t.Errorf("route(%s%s) = %q, want %q", c.host, c.path, got, c.want)
				}
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestBuildCanarySettings(t *testing.T) {
	w := newWorld()
	w.addService("ns", "a")
	w.addService("ns", "b")
	tab, problems := Build(w.snapshot(
		mkIngress("ns", "main", 1, withRule("a.test", prefix("/", "a"))),
		mkIngress("ns", "canary", 2,
			withAnnotation("skiff.sh/canary", "true"),
			withAnnotation("skiff.sh/canary-weight", "7"),
			withAnnotation("nginx.ingress.kubernetes.io/canary-weight", "50"), // skiff.sh/ wins
			withAnnotation("nginx.ingress.kubernetes.io/canary-weight-total", "1000"),
			withAnnotation("nginx.ingress.kubernetes.io/canary-by-header", "X-Canary"),
			withAnnotation("nginx.ingress.kubernetes.io/canary-by-header-value", "yes"),
			withAnnotation("nginx.ingress.kubernetes.io/canary-by-cookie", "c"),
			withRule("a.test", prefix("/", "b"))),
	))
	if len(problems) != 0 {
		t.Fatalf("problems: %+v", problems)
	}
	c := tab.Lookup("a.test", "/").Canary
	if c == nil {
		t.Fatal("no canary")
	}
	want := Canary{Ingress: c.Ingress, Backend: c.Backend, Weight: 7, Total: 1000, Header: "X-Canary", HeaderValue: "yes", Cookie: "c"}
	if *c != want || c.Ingress.Name != "canary" || c.Backend.Name != "ns/b:80" {
		t.Errorf("canary = %+v, want %+v", *c, want)
	}
}

func TestBuildRedirectFlags(t *testing.T) {
	w := newWorld()
	w.addService("ns", "a")
	tab, _ := Build(w.snapshot(
		mkIngress("ns", "default", 1, withRule("a.test", prefix("/", "a"))),
		mkIngress("ns", "off", 2, withAnnotation("nginx.ingress.kubernetes.io/ssl-redirect", "false"), withRule("b.test", prefix("/", "a"))),
		mkIngress("ns", "force", 3, withAnnotation("skiff.sh/force-ssl-redirect", "true"), withRule("c.test", prefix("/", "a"))),
	))
	for host, want := range map[string][2]bool{
		"a.test": {true, false},
		"b.test": {false, false},
		"c.test": {true, true},
	} {
		r := tab.Lookup(host, "/")
		if got := [2]bool{r.SSLRedirect, r.ForceSSLRedirect}; got != want {
			t.Errorf("%s: redirect, force = %v, want %v", host, got, want)
		}
	}
}

func TestBuildTLS(t *testing.T) {
	w := newWorld()
	w.addService("ns", "a")
	exactCert := makeCert(t, "exact", "a.test")
	wildCert := makeCert(t, "wild", "*.wild.test")
	defCert := makeCert(t, "default")
	w.secrets["ns/exact"] = exactCert.secret("ns", "exact")
	w.secrets["ns/wild"] = wildCert.secret("ns", "wild")
	w.secrets["ns/default"] = defCert.secret("ns", "default")
	bad := exactCert.secret("ns", "bad")
	bad.Data[corev1.TLSPrivateKeyKey] = []byte("garbage")
	w.secrets["ns/bad"] = bad
	opaque := exactCert.secret("ns", "opaque")
	opaque.Type = corev1.SecretTypeOpaque
	w.secrets["ns/opaque"] = opaque
	w.secrets["other/elsewhere"] = exactCert.secret("other", "elsewhere")

	tab, problems := Build(w.snapshot(
		mkIngress("ns", "exact", 1, withTLS("exact", "A.test"), withRule("a.test", prefix("/", "a"))),
		mkIngress("ns", "wild", 2, withTLS("wild", "*.wild.test"), withRule("*.wild.test", prefix("/", "a"))),
		mkIngress("ns", "implicit", 3, withTLS("exact"), withRule("implicit.test", prefix("/", "a"))),
		mkIngress("ns", "default", 4, withTLS("default")),
		mkIngress("ns", "bad", 5, withTLS("bad", "bad.test"), withRule("bad.test", prefix("/", "a"))),
		mkIngress("ns", "missing", 6, withTLS("nope", "missing.test"), withTLS("elsewhere", "elsewhere.test"), withTLS("opaque", "opaque.test")),
		mkIngress("ns", "later", 7, withTLS("wild", "a.test")),
	))
	if got, want := problemList(problems), []string{"bad BadTLSSecret", "missing BadTLSSecret", "missing SecretNotFound", "missing SecretNotFound"}; !slices.Equal(got, want) {
		// "missing" has two distinct SecretNotFound messages.
		t.Errorf("problems = %q, want %q", got, want)
	}
	for _, tc := range []struct {
		name   string
		cn     string // "" for no certificate (self-signed)
		hasTLS bool
	}{
		{"a.test", "exact", true}, // the older Ingress keeps the host
		{"x.wild.test", "wild", true},
		{"x.y.wild.test", "default", false},
		{"implicit.test", "exact", true}, // tls without hosts covers the rules' hosts
		{"bad.test", "default", true},    // TLS host with a broken secret: redirect still, default cert
		{"missing.test", "default", true},
		{"elsewhere.test", "default", true}, // secrets come from the Ingress's namespace only
		{"unknown.test", "default", false},
	} {
		cert := tab.Certificate(tc.name)
		cn := ""
		if cert != nil {
			cn = cert.Leaf.Subject.CommonName
		}
		if cn != tc.cn {
			t.Errorf("Certificate(%s) = %q, want %q", tc.name, cn, tc.cn)
		}
		if got := tab.HasTLS(tc.name); got != tc.hasTLS {
			t.Errorf("HasTLS(%s) = %v, want %v", tc.name, got, tc.hasTLS)
		}
	}
}

func TestClasses(t *testing.T) {
	defaultSkiff := &networkingv1.IngressClass{
		ObjectMeta: metav1.ObjectMeta{Name: "skiff", Annotations: map[string]string{defaultClassAnnotation: "true"}},
		Spec:       networkingv1.IngressClassSpec{Controller: ControllerName},
	}
	plainSkiff := &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "skiff"}, Spec: networkingv1.IngressClassSpec{Controller: ControllerName}}
	internal := &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "internal"}, Spec: networkingv1.IngressClassSpec{Controller: ControllerName}}
	nginxDefault := &networkingv1.IngressClass{
		ObjectMeta: metav1.ObjectMeta{Name: "nginx", Annotations: map[string]string{defaultClassAnnotation: "true"}},
		Spec:       networkingv1.IngressClassSpec{Controller: "k8s.io/ingress-nginx"},
	}
	tests := []struct {
		name    string
		classes []*networkingv1.IngressClass
		ing     *networkingv1.Ingress
		want    bool
	}{
		{"named skiff", nil, mkIngress("ns", "i", 0), true},
		{"named other", []*networkingv1.IngressClass{defaultSkiff}, mkIngress("ns", "i", 0, withClass("nginx")), false},
		{"unset, skiff is default", []*networkingv1.IngressClass{defaultSkiff}, mkIngress("ns", "i", 0, withClass("")), true},
		{"unset, skiff not default", []*networkingv1.IngressClass{plainSkiff}, mkIngress("ns", "i", 0, withClass("")), false},
		{"unset, no classes", nil, mkIngress("ns", "i", 0, withClass("")), false},
		{"unset, another default", []*networkingv1.IngressClass{plainSkiff, nginxDefault}, mkIngress("ns", "i", 0, withClass("")), false},
		{"legacy annotation skiff", nil, mkIngress("ns", "i", 0, withClass(""), withAnnotation(legacyClassAnnotation, "skiff")), true},
		{"legacy annotation other beats default", []*networkingv1.IngressClass{defaultSkiff}, mkIngress("ns", "i", 0, withClass(""), withAnnotation(legacyClassAnnotation, "nginx")), false},
		{"class of our controller", []*networkingv1.IngressClass{internal}, mkIngress("ns", "i", 0, withClass("internal")), true},
		{"class of our controller unknown", nil, mkIngress("ns", "i", 0, withClass("internal")), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := classesFor("skiff", tc.classes).serves(tc.ing); got != tc.want {
				t.Errorf("serves = %v, want %v", got, tc.want)
			}
		})
	}
	// Build only serves the chosen Ingresses.
	w := newWorld()
	w.addService("ns", "a")
	w.classes = []*networkingv1.IngressClass{plainSkiff}
	tab, _ := Build(w.snapshot(
		mkIngress("ns", "theirs", 0, withClass("nginx"), withRule("a.test", prefix("/", "a"))),
		mkIngress("ns", "unset", 1, withClass(""), withRule("b.test", prefix("/", "a"))),
	))
	if tab.Lookup("a.test", "/") != nil || tab.Lookup("b.test", "/") != nil || len(tab.served) != 0 {
		t.Errorf("served Ingresses of another class: %+v", tab.served)
	}
}

func TestReadyTargets(t *testing.T) {
	udp := corev1.ProtocolUDP
	named := mkSlice("ns", "s", "s-named", "web", 8080, nil, "10.0.0.9")
	udpSlice := mkSlice("ns", "s", "s-udp", "", 53, nil, "10.0.0.8")
	udpSlice.Ports[0].Protocol = &udp
	fqdn := mkSlice("ns", "s", "s-fqdn", "", 80, nil, "example.com")
	fqdn.AddressType = discoveryv1.AddressTypeFQDN
	v6 := mkSlice("ns", "s", "s-v6", "", 80, nil, "fd00::1")
	v6.AddressType = discoveryv1.AddressTypeIPv6
	in := []*discoveryv1.EndpointSlice{
		mkSlice("ns", "s", "s-1", "", 80, nil, "10.0.0.2", "10.0.0.1"),
		mkSlice("ns", "s", "s-2", "", 80, boolPtr(true), "10.0.0.3", "10.0.0.1"), // 10.0.0.1 again
		mkSlice("ns", "s", "s-3", "", 80, boolPtr(false), "10.0.0.4"),
		named, udpSlice, fqdn, v6,
	}
	got := readyTargets(in, "")
	want := []string{"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", "[fd00::1]:80"}
	if !slices.Equal(got, want) {
		t.Errorf("readyTargets(\"\") = %v, want %v", got, want)
	}
	if got, want := readyTargets(in, "web"), []string{"10.0.0.9:8080"}; !slices.Equal(got, want) {
		t.Errorf("readyTargets(web) = %v, want %v", got, want)
	}
}

func TestResolveServicePorts(t *testing.T) {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "s"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{
			{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)},
			{Name: "admin", Port: 9000},
		}},
	}
	ext := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "ext"},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com", Ports: []corev1.ServicePort{{Name: "http", Port: 8443}}},
	}
	s := Snapshot{
		Service: func(ns, name string) *corev1.Service {
			return map[string]*corev1.Service{"s": svc, "ext": ext}[name]
		},
		EndpointSlices: func(ns, name string) []*discoveryv1.EndpointSlice {
			return []*discoveryv1.EndpointSlice{
				mkSlice("ns", "s", "s-http", "http", 8080, nil, "10.0.0.1"),
				mkSlice("ns", "s", "s-admin", "admin", 9001, nil, "10.0.0.1"),
			}
		},
	}
	for _, tc := range []struct {
		svc    string
		port   networkingv1.ServiceBackendPort
		want   string
		reason string
	}{
		{"s", networkingv1.ServiceBackendPort{Number: 80}, "10.0.0.1:8080", ""},
		{"s", networkingv1.ServiceBackendPort{Name: "admin"}, "10.0.0.1:9001", ""},
		{"s", networkingv1.ServiceBackendPort{Number: 8080}, "", ReasonServicePortNotFound}, // target ports do not count
		{"s", networkingv1.ServiceBackendPort{Name: "nope"}, "", ReasonServicePortNotFound},
		{"nope", networkingv1.ServiceBackendPort{Number: 80}, "", ReasonServiceNotFound},
		{"ext", networkingv1.ServiceBackendPort{Name: "http"}, "db.example.com:8443", ""},
		{"ext", networkingv1.ServiceBackendPort{Number: 443}, "db.example.com:443", ""},
	} {
		r := s.resolve("ns", &networkingv1.IngressServiceBackend{Name: tc.svc, Port: tc.port}, "http")
		got := strings.Join(r.backend.Targets, ",")
		if got != tc.want || r.reason != tc.reason {
			t.Errorf("resolve(%s %+v) = %q %q, want %q %q", tc.svc, tc.port, got, r.reason, tc.want, tc.reason)
		}
	}
}

func TestReferencesAndStatus(t *testing.T) {
	ings := []*networkingv1.Ingress{
		mkIngress("a", "one", 0, withDefault("d", 80), withRule("x", prefix("/", "s1")), withTLS("t1")),
		mkIngress("b", "two", 0, withClass("other"), withRule("", prefix("/", "s2"))),
	}
	r := referencesOf(ings)
	var svcs, secs []string
	for k := range r.services {
		svcs = append(svcs, k)
	}
	for k := range r.secrets {
		secs = append(secs, k)
	}
	slices.Sort(svcs)
	if fmt.Sprint(svcs, secs) != "[a/d a/s1 b/s2] [a/t1]" {
		t.Errorf("references = %v %v", svcs, secs)
	}

	got := loadBalancerStatus([]string{"node1.example", "192.0.2.10", " ", "192.0.2.10", "fd00::1"})
	want := []networkingv1.IngressLoadBalancerIngress{{IP: "192.0.2.10"}, {IP: "fd00::1"}, {Hostname: "node1.example"}}
	if !sameAddresses(got, want) {
		t.Errorf("loadBalancerStatus = %+v, want %+v", got, want)
	}
	if sameAddresses(got, want[:2]) {
		t.Error("sameAddresses ignores length")
	}
}
