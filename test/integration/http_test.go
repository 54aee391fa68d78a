package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-sh/skiff/test/framework"
)

const tableAccept = "application/json;as=Table;v=v1;g=meta.k8s.io"

// TestHTTPSurface checks what raw HTTP clients see: server-side tables,
// the public and private endpoints, metrics and the Status shape.
func TestHTTPSurface(t *testing.T) {
	t.Parallel()
	srv := framework.StartServer(t, framework.Options{})
	t.Run("table output", func(t *testing.T) { testTableOutput(t, srv) })
	t.Run("authentication", func(t *testing.T) { testAuthentication(t, srv) })
	t.Run("metrics", func(t *testing.T) { testMetrics(t, srv) })
	t.Run("status shape", func(t *testing.T) { testStatusShape(t, srv) })
}

func testTableOutput(t *testing.T, srv *framework.Server) {
	cs := newClient(t, srv)
	ctx := testCtx(t)
	ns := makeNamespace(t, cs, "tables")
	for _, n := range []string{"alpha", "beta"} {
		if _, err := cs.CoreV1().Pods(ns).Create(ctx, pod(n, map[string]string{"app": n}), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	hc, base := srv.HTTPClient()
	getTable := func(path, accept string) *metav1.Table {
		t.Helper()
		r := do(t, hc, http.MethodGet, base+path, "", nil, "Accept", accept)
		if r.code != http.StatusOK {
			t.Fatalf("GET %s as Table: %d %s", path, r.code, r.body)
		}
		if ct := r.header.Get("Content-Type"); !strings.Contains(ct, "as=Table") {
			t.Fatalf("GET %s as Table answered Content-Type %q", path, ct)
		}
		tbl := &metav1.Table{}
		if err := json.Unmarshal(r.body, tbl); err != nil {
			t.Fatalf("decode table: %v", err)
		}
		if tbl.Kind != "Table" || tbl.APIVersion != "meta.k8s.io/v1" {
			t.Fatalf("table is %s %s", tbl.APIVersion, tbl.Kind)
		}
		return tbl
	}
	tbl := getTable("/api/v1/namespaces/"+ns+"/pods", tableAccept)
	var cols []string
	for _, c := range tbl.ColumnDefinitions {
		cols = append(cols, c.Name)
	}
	if len(cols) < 5 || !slices.Equal(cols[:5], []string{"Name", "Ready", "Status", "Restarts", "Age"}) {
		t.Fatalf("pod table columns %v, want Name Ready Status Restarts Age first", cols)
	}
	if tbl.ResourceVersion == "" {
		t.Fatalf("pod table has no list resourceVersion")
	}
	if len(tbl.Rows) != 2 {
		t.Fatalf("pod table has %d rows, want 2", len(tbl.Rows))
	}
	for i, want := range []string{"alpha", "beta"} {
		row := tbl.Rows[i]
		if len(row.Cells) != len(cols) {
			t.Fatalf("row %d has %d cells for %d columns", i, len(row.Cells), len(cols))
		}
		if row.Cells[0] != want || row.Cells[1] != "0/1" || row.Cells[2] != "Pending" {
			t.Fatalf("row %d cells %v, want %s 0/1 Pending", i, row.Cells[:3], want)
		}
		var pom metav1.PartialObjectMetadata
		if err := json.Unmarshal(row.Object.Raw, &pom); err != nil {
			t.Fatalf("row %d object: %v: %s", i, err, row.Object.Raw)
		}
		if pom.Kind != "PartialObjectMetadata" || pom.APIVersion != "meta.k8s.io/v1" {
			t.Fatalf("row %d embeds %s %s, want meta.k8s.io/v1 PartialObjectMetadata", i, pom.APIVersion, pom.Kind)
		}
		if pom.Name != want || pom.Namespace != ns || pom.UID == "" || pom.ResourceVersion == "" || pom.Labels["app"] != want {
			t.Fatalf("row %d metadata %+v", i, pom.ObjectMeta)
		}
	}
	// kubectl's Accept header, a single object, and includeObject=Object.
	kubectlAccept := tableAccept + ",application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
	one := getTable("/api/v1/namespaces/"+ns+"/pods/beta", kubectlAccept)
	if len(one.Rows) != 1 || one.Rows[0].Cells[0] != "beta" {
		t.Fatalf("single pod table rows %+v", one.Rows)
	}
	full := getTable("/api/v1/namespaces/"+ns+"/pods?includeObject=Object", tableAccept)
	var p corev1.Pod
	if err := json.Unmarshal(full.Rows[0].Object.Raw, &p); err != nil || p.Kind != "Pod" || len(p.Spec.Containers) != 1 {
		t.Fatalf("includeObject=Object row: %v kind=%q", err, p.Kind)
	}
	// Paging applies to tables as to lists.
	paged := getTable("/api/v1/namespaces/"+ns+"/pods?limit=1", tableAccept)
	if len(paged.Rows) != 1 || paged.Continue == "" {
		t.Fatalf("table with limit=1: %d rows, continue %q", len(paged.Rows), paged.Continue)
	}
}

func testAuthentication(t *testing.T, srv *framework.Server) {
	anon := anonymousClient(t, srv)
	base := srv.RESTConfig().Host
	for _, p := range []string{"/healthz", "/livez", "/readyz", "/version", "/readyz?verbose"} {
		r := do(t, anon, http.MethodGet, base+p, "", nil)
		if r.code != http.StatusOK {
			t.Fatalf("anonymous GET %s: %d %s", p, r.code, r.body)
		}
		if p == "/version" {
			var v struct {
				GitVersion string `json:"gitVersion"`
				Major      string `json:"major"`
			}
			if err := json.Unmarshal(r.body, &v); err != nil || v.GitVersion == "" {
				t.Fatalf("/version: %v %s", err, r.body)
			}
		} else if !strings.Contains(string(r.body), "ok") {
			t.Fatalf("anonymous GET %s answered %q", p, r.body)
		}
	}
	for _, p := range []string{
		"/", "/api", "/apis", "/api/v1", "/api/v1/namespaces", "/api/v1/namespaces/default/secrets",
		"/apis/apps/v1/deployments", "/metrics", "/openapi/v2", "/openapi/v3", "/api/v1/namespaces/default/pods?watch=true",
	} {
		r := do(t, anon, http.MethodGet, base+p, "", nil)
		if r.code != http.StatusUnauthorized {
			t.Fatalf("anonymous GET %s: %d, want 401", p, r.code)
		}
		status(t, r)
	}
	r := do(t, anon, http.MethodPost, base+"/api/v1/namespaces/default/configmaps", "application/json",
		[]byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"anon"}}`))
	if r.code != http.StatusUnauthorized {
		t.Fatalf("anonymous create: %d, want 401", r.code)
	}
	hc, _ := srv.HTTPClient()
	if r := do(t, hc, http.MethodGet, base+"/api/v1/namespaces/default/configmaps/anon", "", nil); r.code != http.StatusNotFound {
		t.Fatalf("anonymous create stored something: GET answered %d", r.code)
	}
}

// metricValue finds a sample by name and exact label set in the text
// exposition format.
func metricValue(text, name string, labels map[string]string) (float64, bool) {
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, name+"{") {
			continue
		}
		end := strings.LastIndex(line, "}")
		got := map[string]string{}
		for _, m := range labelRE.FindAllStringSubmatch(line[len(name)+1:end], -1) {
			got[m[1]] = m[2]
		}
		match := true
		for k, v := range labels {
			if got[k] != v {
				match = false
			}
		}
		if match {
			v, err := strconv.ParseFloat(strings.TrimSpace(line[end+1:]), 64)
			return v, err == nil
		}
	}
	return 0, false
}

var labelRE = regexp.MustCompile(`([a-zA-Z_]+)="([^"]*)"`)

func testMetrics(t *testing.T, srv *framework.Server) {
	hc, base := srv.HTTPClient()
	for range 3 {
		do(t, hc, http.MethodGet, base+"/api/v1/namespaces/default/configmaps", "", nil)
	}
	do(t, hc, http.MethodGet, base+"/api/v1/namespaces/default/configmaps/metrics-missing", "", nil)
	do(t, hc, http.MethodPost, base+"/api/v1/namespaces/default/configmaps", "application/json",
		[]byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"metrics-cm"}}`))
	r := do(t, hc, http.MethodGet, base+"/metrics", "", nil)
	if r.code != http.StatusOK {
		t.Fatalf("/metrics: %d", r.code)
	}
	text := string(r.body)
	for _, tc := range []struct {
		labels map[string]string
		min    float64
	}{
		{map[string]string{"verb": "list", "resource": "configmaps", "code": "200", "group": ""}, 3},
		{map[string]string{"verb": "get", "resource": "configmaps", "code": "404"}, 1},
		{map[string]string{"verb": "create", "resource": "configmaps", "code": "201"}, 1},
	} {
		v, ok := metricValue(text, "apiserver_request_total", tc.labels)
		if !ok || v < tc.min {
			t.Errorf("apiserver_request_total%v = %v (found %v), want >= %v", tc.labels, v, ok, tc.min)
		}
	}
	buckets := 0
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "apiserver_request_duration_seconds_bucket{") &&
			strings.Contains(line, `resource="configmaps"`) && strings.Contains(line, `verb="list"`) && strings.Contains(line, "le=") {
			buckets++
		}
	}
	if buckets < 5 {
		t.Errorf("apiserver_request_duration_seconds has %d buckets for configmaps list", buckets)
	}
	if v, ok := metricValue(text, "apiserver_request_duration_seconds_count", map[string]string{"verb": "list", "resource": "configmaps"}); !ok || v < 3 {
		t.Errorf("apiserver_request_duration_seconds_count for configmaps list = %v (found %v)", v, ok)
	}
	if !strings.Contains(text, "# TYPE apiserver_request_total counter") || !strings.Contains(text, "# TYPE apiserver_request_duration_seconds histogram") {
		t.Errorf("metrics lack TYPE lines for the request metrics")
	}
}

// testStatusShape checks that errors are the Status kube-apiserver sends:
// kind Status, apiVersion v1, which every client library decodes.
func testStatusShape(t *testing.T, srv *framework.Server) {
	hc, base := srv.HTTPClient()
	r := do(t, hc, http.MethodGet, base+"/api/v1/namespaces/default/configmaps/status-missing", "", nil)
	st := status(t, r)
	if st.APIVersion != "v1" {
		t.Errorf("Status apiVersion is %q; kube-apiserver sends \"v1\"", st.APIVersion)
	}
	if st.Reason != metav1.StatusReasonNotFound || st.Details == nil || st.Details.Name != "status-missing" || st.Details.Kind != "configmaps" {
		t.Errorf("404 Status: %s", fmt.Sprint(st))
	}
}
