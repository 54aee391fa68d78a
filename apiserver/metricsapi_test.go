package apiserver

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"

	"github.com/skiff-sh/skiff/agent/stats"
	"github.com/skiff-sh/skiff/storage"
)

// metricsStore is the part of a store the metrics API reads, in memory:
// Get, List, Create and Revision.
type metricsStore struct {
	storage.Interface
	mu  sync.Mutex
	rev int64
	kvs map[string]storage.KV
}

func (m *metricsStore) Get(_ context.Context, key string) (storage.KV, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	kv, ok := m.kvs[key]
	if !ok {
		return storage.KV{}, storage.ErrNotFound
	}
	return kv, nil
}

func (m *metricsStore) List(_ context.Context, prefix string, opts storage.ListOptions) (storage.ListResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var keys []string
	for k := range m.kvs {
		if strings.HasPrefix(k, prefix) && k >= opts.StartKey {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	res := storage.ListResult{Revision: m.rev}
	for i, k := range keys {
		if opts.Limit > 0 && int64(i) == opts.Limit {
			res.More, res.Remaining = true, int64(len(keys)-i)
			break
		}
		res.KVs = append(res.KVs, m.kvs[k])
	}
	return res, nil
}

func (m *metricsStore) Create(_ context.Context, key string, value []byte) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.kvs[key]; ok {
		return 0, storage.ErrExists
	}
	m.rev++
	m.kvs[key] = storage.KV{Key: key, Value: value, Revision: m.rev, CreateRevision: m.rev}
	return m.rev, nil
}

func (m *metricsStore) Revision(context.Context) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rev, nil
}

func TestSampleUsage(t *testing.T) {
	t0 := time.Unix(10_000, 0).UTC()
	sample := func(node string, at time.Duration, cpu uint64, pods ...stats.PodStats) *stats.Summary {
		return &stats.Summary{Node: stats.NodeStats{Name: node, Time: t0.Add(at), CPUUsageCoreNanoseconds: cpu}, Pods: pods}
	}
	pod := func(id string, at time.Duration, cpu uint64) stats.PodStats {
		return stats.PodStats{Namespace: "ns", Name: "p", UID: "u", Containers: []stats.ContainerStats{{Name: "c", ID: id, Time: t0.Add(at), CPUUsageCoreNanoseconds: cpu}}}
	}
	fail := errors.New("agent down")
	cases := []struct {
		name    string
		last    *stats.Summary
		fetches []*stats.Summary // nil: the fetch fails
		// wantWaits is how many times sampleUsage waited; wantNodeCPU the
		// node's rate (0: none); wantPods the pods with a rate.
		wantWaits   int
		wantNodeCPU uint64
		wantPods    int
		wantLast    time.Duration
		wantErr     bool
	}{
		{"no previous sample: two, a second apart", nil,
			[]*stats.Summary{sample("n", 0, 0, pod("a", 0, 0)), sample("n", time.Second, 1e9, pod("a", time.Second, 5e8))},
			1, 1e9, 1, time.Second, false},
		{"previous sample usable: one", sample("n", 0, 0, pod("a", 0, 0)),
			[]*stats.Summary{sample("n", 10*time.Second, 5e9, pod("a", 10*time.Second, 1e9))},
			0, 5e8, 1, 10 * time.Second, false},
		{"a container restarted since: two more", sample("n", 0, 0, pod("a", 0, 0)),
			[]*stats.Summary{sample("n", 10*time.Second, 5e9, pod("b", 10*time.Second, 1e9)), sample("n", 12*time.Second, 7e9, pod("b", 12*time.Second, 2e9))},
			1, 1e9, 1, 12 * time.Second, false},
		{"previous sample too old", sample("n", 0, 0),
			[]*stats.Summary{sample("n", 10*time.Minute, 1e12), sample("n", 10*time.Minute+2*time.Second, 1e12+4e9)},
			1, 2e9, 0, 10*time.Minute + 2*time.Second, false},
		{"previous sample of another node", sample("m", 0, 0),
			[]*stats.Summary{sample("n", 10*time.Second, 1e9), sample("n", 11*time.Second, 2e9)},
			1, 1e9, 0, 11 * time.Second, false},
		{"agent down", sample("n", 0, 0), []*stats.Summary{nil}, 0, 0, 0, 0, true},
		{"second sample fails after a usable first", sample("n", 0, 0, pod("a", 0, 0)),
			[]*stats.Summary{sample("n", 10*time.Second, 5e9, pod("b", 10*time.Second, 1e9)), nil},
			1, 5e8, 0, 10 * time.Second, false},
		{"second sample fails with nothing usable", nil,
			[]*stats.Summary{sample("n", 0, 0), nil}, 1, 0, 0, 0, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			calls, waits := 0, 0
			fetch := func(context.Context) (*stats.Summary, error) {
				if calls >= len(c.fetches) {
					t.Fatalf("fetch %d: only %d expected", calls+1, len(c.fetches))
				}
				s := c.fetches[calls]
				calls++
				if s == nil {
					return nil, fail
				}
				return s, nil
			}
			wait := func(_ context.Context, d time.Duration) error {
				if d != metricsMinWindow {
					t.Errorf("waited %v", d)
				}
				waits++
				return nil
			}
			u, last, err := sampleUsage(context.Background(), c.last, fetch, wait)
			if (err != nil) != c.wantErr {
				t.Fatalf("err = %v, want error %v", err, c.wantErr)
			}
			if waits != c.wantWaits || calls != len(c.fetches) {
				t.Errorf("waits = %d, fetches = %d; want %d, %d", waits, calls, c.wantWaits, len(c.fetches))
			}
			if err != nil {
				return
			}
			var cpu uint64
			if u.Node != nil {
				cpu = u.Node.CPUNanoCores
			}
			if cpu != c.wantNodeCPU || len(u.Pods) != c.wantPods {
				t.Errorf("node cpu = %d, pods = %d; want %d, %d", cpu, len(u.Pods), c.wantNodeCPU, c.wantPods)
			}
			if !last.Node.Time.Equal(t0.Add(c.wantLast)) {
				t.Errorf("kept sample of %v, want %v", last.Node.Time.Sub(t0), c.wantLast)
			}
		})
	}
}

// statsAgent serves samples whose counters grow linearly: each one is
// 10 s after the previous, the node uses 1.5 cores and each container
// a tenth of a core times its index plus one.
type statsAgent struct {
	node  string
	pods  []stats.PodStats // counters and times are filled in
	mu    sync.Mutex
	calls int
}

func (a *statsAgent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != stats.Path {
		http.NotFound(w, r)
		return
	}
	a.mu.Lock()
	a.calls++
	k := uint64(a.calls)
	a.mu.Unlock()
	at := time.Unix(1_000_000, 0).UTC().Add(time.Duration(k) * 10 * time.Second)
	s := stats.Summary{Node: stats.NodeStats{Name: a.node, Time: at, CPUUsageCoreNanoseconds: k * 15e9, MemoryWorkingSetBytes: 3 << 30}}
	for _, p := range a.pods {
		p.Containers = append([]stats.ContainerStats(nil), p.Containers...)
		for i := range p.Containers {
			p.Containers[i].Time = at
			p.Containers[i].CPUUsageCoreNanoseconds = k * uint64(i+1) * 1e9
			p.Containers[i].MemoryWorkingSetBytes = uint64(i+1) << 20
		}
		s.Pods = append(s.Pods, p)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(&s)
}

type metricsFixture struct {
	t    *testing.T
	srv  *Server
	n1   *statsAgent
	http *httptest.Server
}

func newMetricsFixture(t *testing.T) *metricsFixture {
	t.Helper()
	n1 := &statsAgent{node: "n1", pods: []stats.PodStats{
		{Namespace: "default", Name: "web", UID: "uid-web", Containers: []stats.ContainerStats{{Name: "nginx", ID: "c1"}, {Name: "sidecar", ID: "c2"}}},
		{Namespace: "other", Name: "db", UID: "uid-db", Containers: []stats.ContainerStats{{Name: "db", ID: "c3"}}},
		{Namespace: "default", Name: "reborn", UID: "uid-old", Containers: []stats.ContainerStats{{Name: "main", ID: "c4"}}},
	}}
	agent := httptest.NewTLSServer(n1)
	t.Cleanup(agent.Close)
	// n2's agent does not answer: its port is closed.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadPort := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()

	roots := x509.NewCertPool()
	roots.AddCert(agent.Certificate())
	srv, err := New(Config{Store: &metricsStore{kvs: map[string]storage.KV{}}, KubeletClient: &tls.Config{RootCAs: roots}})
	if err != nil {
		t.Fatal(err)
	}
	agentURL, _ := url.Parse(agent.URL)
	agentPort, _ := strconv.Atoi(agentURL.Port())
	node := func(name string, port int, labels map[string]string) *corev1.Node {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
		n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}}
		n.Status.DaemonEndpoints.KubeletEndpoint.Port = int32(port)
		return n
	}
	pod := func(ns, name, uid, nodeName string, labels map[string]string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(uid), Labels: labels}, Spec: corev1.PodSpec{NodeName: nodeName}}
	}
	objs := []runtime.Object{
		node("n1", agentPort, map[string]string{"zone": "a"}),
		node("n2", deadPort, map[string]string{"zone": "b"}),
		pod("default", "web", "uid-web", "n1", map[string]string{"app": "web"}),
		pod("other", "db", "uid-db", "n1", map[string]string{"app": "db"}),
		pod("default", "reborn", "uid-new", "n1", nil), // the agent knows an older pod of that name
		pod("default", "pending", "uid-pending", "", nil),
		pod("default", "lost", "uid-lost", "n2", nil),
	}
	for _, o := range objs {
		resName := "pods"
		if _, ok := o.(*corev1.Node); ok {
			resName = "nodes"
		}
		res, err := srv.coreResource(resName)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := srv.objects.create(context.Background(), res, o); err != nil {
			t.Fatal(err)
		}
	}
	return &metricsFixture{t: t, srv: srv, n1: n1, http: httptest.NewServer(srv.Handler())}
}

func (f *metricsFixture) get(path, accept string) (int, []byte, string) {
	f.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, f.http.URL+path, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body, resp.Header.Get("Content-Type")
}

func (f *metricsFixture) decode(path string, into any) {
	f.t.Helper()
	code, body, _ := f.get(path, "")
	if code != http.StatusOK {
		f.t.Fatalf("GET %s: %d %s", path, code, body)
	}
	if err := json.Unmarshal(body, into); err != nil {
		f.t.Fatalf("GET %s: %v", path, err)
	}
}

func podNames(l *metricsv1beta1.PodMetricsList) []string {
	out := []string{}
	for _, p := range l.Items {
		out = append(out, p.Namespace+"/"+p.Name)
	}
	return out
}

func TestMetricsAPI(t *testing.T) {
	f := newMetricsFixture(t)
	defer f.http.Close()
	const v = "/apis/metrics.k8s.io/v1beta1"

	var nodes metricsv1beta1.NodeMetricsList
	f.decode(v+"/nodes", &nodes)
	if nodes.Kind != "NodeMetricsList" || nodes.APIVersion != "metrics.k8s.io/v1beta1" {
		t.Errorf("list kind %s %s", nodes.APIVersion, nodes.Kind)
	}
	if len(nodes.Items) != 1 {
		t.Fatalf("nodes: %+v, want n1 only (n2's agent is down)", nodes.Items)
	}
	n := nodes.Items[0]
	cpu, mem := n.Usage[corev1.ResourceCPU], n.Usage[corev1.ResourceMemory]
	if n.Name != "n1" || n.Labels["zone"] != "a" || cpu.MilliValue() != 1500 || mem.Value() != 3<<30 || n.Window.Duration != 10*time.Second || n.Timestamp.IsZero() {
		t.Errorf("n1 metrics: %+v", n)
	}
	// Two samples were needed for the first rates; after that they are kept.
	if f.n1.calls != 2 {
		t.Errorf("agent sampled %d times, want 2", f.n1.calls)
	}

	f.decode(v+"/nodes?labelSelector=zone%3Db", &nodes)
	if len(nodes.Items) != 0 {
		t.Errorf("zone=b: %+v", nodes.Items)
	}
	var one metricsv1beta1.NodeMetrics
	f.decode(v+"/nodes/n1", &one)
	if one.Name != "n1" || one.Kind != "NodeMetrics" {
		t.Errorf("get n1: %+v", one)
	}
	for _, p := range []string{v + "/nodes/n2", v + "/nodes/none", v + "/namespaces/default/pods/pending", v + "/namespaces/default/pods/reborn", v + "/namespaces/default/pods/none", v + "/namespaces/default/nodes"} {
		if code, body, _ := f.get(p, ""); code != http.StatusNotFound {
			t.Errorf("GET %s: %d %s, want 404", p, code, body)
		}
	}

	var pods metricsv1beta1.PodMetricsList
	f.decode(v+"/pods", &pods)
	if got, want := podNames(&pods), []string{"default/web", "other/db"}; !reflect.DeepEqual(got, want) {
		t.Errorf("all pods: %v, want %v", got, want)
	}
	var web *metricsv1beta1.PodMetrics
	for i := range pods.Items {
		if pods.Items[i].Name == "web" {
			web = &pods.Items[i]
		}
	}
	if web == nil || len(web.Containers) != 2 || web.Labels["app"] != "web" || web.Window.Duration != 10*time.Second {
		t.Fatalf("web: %+v", web)
	}
	for i, c := range web.Containers {
		cpu, mem := c.Usage[corev1.ResourceCPU], c.Usage[corev1.ResourceMemory]
		if cpu.MilliValue() != int64(i+1)*100 || mem.Value() != int64(i+1)<<20 {
			t.Errorf("web container %s: cpu %s, memory %s", c.Name, cpu.String(), mem.String())
		}
	}
	for q, want := range map[string][]string{
		v + "/namespaces/default/pods":                          {"default/web"},
		v + "/pods?labelSelector=app%3Ddb":                      {"other/db"},
		v + "/pods?fieldSelector=metadata.name%3Dweb":           {"default/web"},
		v + "/pods?fieldSelector=metadata.namespace%21%3Dother": {"default/web"},
		v + "/namespaces/nobody/pods":                           {},
	} {
		f.decode(q, &pods)
		if got := podNames(&pods); !reflect.DeepEqual(got, want) {
			t.Errorf("GET %s: %v, want %v", q, got, want)
		}
	}
	var pm metricsv1beta1.PodMetrics
	f.decode(v+"/namespaces/other/pods/db", &pm)
	if pm.Name != "db" || pm.Namespace != "other" || len(pm.Containers) != 1 || pm.Kind != "PodMetrics" {
		t.Errorf("get db: %+v", pm)
	}
	if code, _, _ := f.get(v+"/pods?labelSelector=%3D%3D", ""); code != http.StatusBadRequest {
		t.Errorf("bad label selector: %d", code)
	}
	if code, _, _ := f.get(v+"/pods?fieldSelector=spec.bogus%3D1", ""); code != http.StatusBadRequest {
		t.Errorf("unsupported field: %d", code)
	}
	if f.n1.calls != 2 {
		t.Errorf("agent sampled %d times within %v, want 2", f.n1.calls, metricsFresh)
	}
}

func TestMetricsAPIForms(t *testing.T) {
	f := newMetricsFixture(t)
	defer f.http.Close()
	const v = "/apis/metrics.k8s.io/v1beta1"

	// kubectl top asks for protobuf.
	code, body, ct := f.get(v+"/pods", "application/vnd.kubernetes.protobuf, application/json")
	if code != http.StatusOK || ct != mediaProtobuf {
		t.Fatalf("protobuf: %d %s", code, ct)
	}
	var pl metricsv1beta1.PodMetricsList
	if _, _, err := metricsProto.Decode(body, nil, &pl); err != nil || len(pl.Items) != 2 {
		t.Errorf("protobuf pods: %v, %+v", err, pl.Items)
	}

	code, body, _ = f.get(v+"/pods", "application/json;as=Table;v=v1;g=meta.k8s.io, application/json")
	var table metav1.Table
	if err := json.Unmarshal(body, &table); code != http.StatusOK || err != nil {
		t.Fatalf("table: %d %v %s", code, err, body)
	}
	if len(table.ColumnDefinitions) != 4 || len(table.Rows) != 2 {
		t.Fatalf("table: %+v", table)
	}
	if got := table.Rows[0].Cells; !reflect.DeepEqual(got, []any{"web", "300m", "3Mi", "10s"}) {
		t.Errorf("web row: %v", got)
	}
	if !bytes.Contains(table.Rows[0].Object.Raw, []byte(`"namespace":"default"`)) {
		t.Errorf("row object: %s", table.Rows[0].Object.Raw)
	}
	code, body, _ = f.get(v+"/nodes/n1", "application/json;as=Table;v=v1;g=meta.k8s.io")
	if err := json.Unmarshal(body, &table); code != http.StatusOK || err != nil || len(table.Rows) != 1 || table.Rows[0].Cells[1] != "1500m" {
		t.Errorf("node table: %d %v %s", code, err, body)
	}

	code, body, _ = f.get(v+"/pods", "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io")
	var pml metav1.PartialObjectMetadataList
	if err := json.Unmarshal(body, &pml); code != http.StatusOK || err != nil || len(pml.Items) != 2 || pml.Items[1].Name != "db" || pml.Kind != "PartialObjectMetadataList" {
		t.Errorf("metadata list: %d %v %s", code, err, body)
	}

	for _, c := range []struct {
		method, path string
		code         int
	}{
		{http.MethodGet, v + "/pods?watch=true", http.StatusMethodNotAllowed},
		{http.MethodPost, v + "/nodes", http.StatusMethodNotAllowed},
		{http.MethodDelete, v + "/nodes/n1", http.StatusMethodNotAllowed},
		{http.MethodGet, v + "/nodes/n1/status", http.StatusNotFound},
		{http.MethodGet, "/apis/metrics.k8s.io/v1/nodes", http.StatusNotFound},
	} {
		req, _ := http.NewRequest(c.method, f.http.URL+c.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != c.code {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, resp.StatusCode, c.code)
		}
	}
}

func TestMetricsDiscovery(t *testing.T) {
	f := newMetricsFixture(t)
	defer f.http.Close()

	var groups metav1.APIGroupList
	f.decode("/apis", &groups)
	found := false
	for _, g := range groups.Groups {
		if g.Name == "metrics.k8s.io" && g.PreferredVersion.GroupVersion == "metrics.k8s.io/v1beta1" {
			found = true
		}
	}
	if !found {
		t.Errorf("/apis lacks metrics.k8s.io: %+v", groups.Groups)
	}
	var group metav1.APIGroup
	f.decode("/apis/metrics.k8s.io", &group)
	if group.Name != "metrics.k8s.io" || len(group.Versions) != 1 {
		t.Errorf("/apis/metrics.k8s.io: %+v", group)
	}
	var rl metav1.APIResourceList
	f.decode("/apis/metrics.k8s.io/v1beta1/", &rl)
	if len(rl.APIResources) != 2 || rl.APIResources[0].Kind != "NodeMetrics" || rl.APIResources[1].Namespaced != true {
		t.Errorf("resource list: %+v", rl)
	}

	code, body, _ := f.get("/apis", "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList")
	var agg apidiscoveryv2.APIGroupDiscoveryList
	if err := json.Unmarshal(body, &agg); code != http.StatusOK || err != nil {
		t.Fatalf("aggregated: %d %v", code, err)
	}
	found = false
	for _, g := range agg.Items {
		if g.Name == "metrics.k8s.io" {
			found = len(g.Versions) == 1 && len(g.Versions[0].Resources) == 2 && g.Versions[0].Resources[1].ResponseKind.Kind == "PodMetrics"
		}
	}
	if !found {
		t.Errorf("aggregated discovery lacks metrics.k8s.io: %s", body)
	}
}
