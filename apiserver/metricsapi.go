package apiserver

// The resource metrics API, metrics.k8s.io/v1beta1, which `kubectl top`
// reads and which metrics-server serves in a kube cluster, is served here
// directly:
//
//	/apis/metrics.k8s.io/v1beta1/nodes[/NAME]                  NodeMetrics
//	/apis/metrics.k8s.io/v1beta1/[namespaces/NS/]pods[/NAME]   PodMetrics
//
// Only get and list. Objects are not stored: each request asks the agents
// of the nodes concerned for a sample of their counters (agent/stats, on
// the agent's API next to the proxied subresources) and turns two samples
// of a node into rates. The newest sample and the rates it gave are kept
// per node; they answer requests for metricsFresh, and the next sample is
// compared with the kept one when it is between metricsMinWindow and
// metricsMaxWindow older. When there is no such sample, or a container
// has started since, the agent is sampled twice, metricsMinWindow apart.
// As metrics-server does, nodes whose agent does not answer and pods
// without metrics are left out.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"

	"github.com/skiff-sh/skiff/agent/stats"
	"github.com/skiff-sh/skiff/apiserver/registry"
)

const (
	// metricsFresh is how long a node's rates answer requests before its
	// agent is sampled again.
	metricsFresh = 10 * time.Second
	// metricsMinWindow and metricsMaxWindow bound the time between the two
	// samples a rate comes from.
	metricsMinWindow = time.Second
	metricsMaxWindow = 5 * time.Minute
	// metricsRetry is how long an agent that did not answer is not asked
	// again.
	metricsRetry = 3 * time.Second
	// metricsForget drops what is kept of nodes nobody asked about for
	// that long.
	metricsForget = 10 * time.Minute
	// metricsFetchTimeout bounds one sample from an agent.
	metricsFetchTimeout = 5 * time.Second
	// metricsParallel bounds how many agents are sampled at once.
	metricsParallel = 16
)

var metricsGV = metricsv1beta1.SchemeGroupVersion

// metricsScheme knows the metrics types; the main scheme does not.
var metricsScheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := metricsv1beta1.AddToScheme(s); err != nil {
		panic(err) // static type registration cannot fail
	}
	return s
}()

var (
	metricsJSON  = json.NewSerializerWithOptions(json.DefaultMetaFactory, metricsScheme, metricsScheme, json.SerializerOptions{})
	metricsYAML  = json.NewSerializerWithOptions(json.DefaultMetaFactory, metricsScheme, metricsScheme, json.SerializerOptions{Yaml: true})
	metricsProto = protobuf.NewSerializer(metricsScheme, metricsScheme)
)

// metricsResources are the resources of the group, for discovery.
var metricsResources = []struct {
	name, singular, kind string
	namespaced           bool
}{
	{"nodes", "nodemetrics", "NodeMetrics", false},
	{"pods", "podmetrics", "PodMetrics", true},
}

var metricsVerbs = metav1.Verbs{"get", "list"}

// isMetricsPath says whether a path belongs to the metrics group.
func isMetricsPath(p string) bool {
	root := "/apis/" + metricsGV.Group
	return p == root || strings.HasPrefix(p, root+"/")
}

// metricsAPIGroup is the group as /apis lists it.
func metricsAPIGroup() metav1.APIGroup {
	v := metav1.GroupVersionForDiscovery{GroupVersion: metricsGV.String(), Version: metricsGV.Version}
	return metav1.APIGroup{Name: metricsGV.Group, Versions: []metav1.GroupVersionForDiscovery{v}, PreferredVersion: v}
}

func metricsResourceList() *metav1.APIResourceList {
	l := &metav1.APIResourceList{GroupVersion: metricsGV.String()}
	l.Kind, l.APIVersion = "APIResourceList", "v1"
	for _, r := range metricsResources {
		l.APIResources = append(l.APIResources, metav1.APIResource{
			Name: r.name, SingularName: r.singular, Namespaced: r.namespaced, Kind: r.kind, Verbs: metricsVerbs,
		})
	}
	return l
}

// metricsDiscovery is the group in aggregated discovery.
func metricsDiscovery() apidiscoveryv2.APIGroupDiscovery {
	vd := apidiscoveryv2.APIVersionDiscovery{Version: metricsGV.Version, Freshness: apidiscoveryv2.DiscoveryFreshnessCurrent}
	for _, r := range metricsResources {
		scope := apidiscoveryv2.ScopeCluster
		if r.namespaced {
			scope = apidiscoveryv2.ScopeNamespace
		}
		vd.Resources = append(vd.Resources, apidiscoveryv2.APIResourceDiscovery{
			Resource: r.name, SingularResource: r.singular, Scope: scope, Verbs: metricsVerbs,
			ResponseKind: &metav1.GroupVersionKind{Group: metricsGV.Group, Version: metricsGV.Version, Kind: r.kind},
		})
	}
	return apidiscoveryv2.APIGroupDiscovery{ObjectMeta: metav1.ObjectMeta{Name: metricsGV.Group}, Versions: []apidiscoveryv2.APIVersionDiscovery{vd}}
}

// serveMetrics answers every request under /apis/metrics.k8s.io.
func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	p := strings.TrimSuffix(r.URL.Path, "/")
	isRead := r.Method == http.MethodGet || r.Method == http.MethodHead
	switch {
	case p == "/apis/"+metricsGV.Group && isRead:
		g := metricsAPIGroup()
		g.Kind, g.APIVersion = "APIGroup", "v1"
		writeJSON(w, http.StatusOK, &g)
		return
	case p == "/apis/"+metricsGV.String() && isRead:
		writeJSON(w, http.StatusOK, metricsResourceList())
		return
	}
	info, ok := parseRequest(r)
	out, err := negotiate(r)
	if err != nil {
		writeError(w, output{media: mediaJSON}, err)
		return
	}
	if !ok || info.GV != metricsGV || (info.Resource != "nodes" && info.Resource != "pods") || info.Subresource != "" ||
		(info.Resource == "nodes" && info.Namespace != "") {
		writeError(w, out, apierrors.NewNotFound(schema.GroupResource{Group: metricsGV.Group, Resource: info.Resource}, info.Name))
		return
	}
	gr := metricsv1beta1.Resource(info.Resource)
	if info.Verb != "get" && info.Verb != "list" {
		writeError(w, out, apierrors.NewMethodNotSupported(gr, info.Verb))
		return
	}
	if info.Resource == "nodes" {
		err = s.serveNodeMetrics(w, r, info, out)
	} else {
		err = s.servePodMetrics(w, r, info, out)
	}
	if err != nil {
		writeError(w, out, err)
	}
}

// serveNodeMetrics answers get and list of NodeMetrics.
func (s *Server) serveNodeMetrics(w http.ResponseWriter, r *http.Request, info requestInfo, out output) error {
	nodesRes, err := s.coreResource("nodes")
	if err != nil {
		return err
	}
	var nodes []*corev1.Node
	if info.Verb == "get" {
		obj, err := s.objects.get(r.Context(), nodesRes, "", info.Name)
		if err != nil {
			if apierrors.IsNotFound(err) {
				return apierrors.NewNotFound(metricsv1beta1.Resource("nodemetrics"), info.Name)
			}
			return err
		}
		nodes = append(nodes, obj.(*corev1.Node))
	} else if nodes, err = listTyped[*corev1.Node](s, r, nodesRes, ""); err != nil {
		return err
	}
	usage := s.nodeUsages(r.Context(), nodes)
	now := metav1.NewTime(s.now())
	list := &metricsv1beta1.NodeMetricsList{Items: []metricsv1beta1.NodeMetrics{}}
	for _, n := range nodes {
		u := usage[n.Name]
		if u == nil || u.Node == nil {
			continue
		}
		list.Items = append(list.Items, metricsv1beta1.NodeMetrics{
			ObjectMeta: metav1.ObjectMeta{Name: n.Name, Labels: n.Labels, CreationTimestamp: now},
			Timestamp:  metav1.NewTime(u.Node.Time),
			Window:     metav1.Duration{Duration: u.Node.Window},
			Usage:      usageList(u.Node.CPUNanoCores, u.Node.MemoryWorkingSetBytes),
		})
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
	if info.Verb == "get" {
		if len(list.Items) == 0 {
			return apierrors.NewNotFound(metricsv1beta1.Resource("nodemetrics"), info.Name)
		}
		return s.writeMetrics(w, out, &list.Items[0], nil)
	}
	items := make([]runtime.Object, len(list.Items))
	for i := range list.Items {
		items[i] = &list.Items[i]
	}
	return s.writeMetrics(w, out, list, items)
}

// servePodMetrics answers get and list of PodMetrics.
func (s *Server) servePodMetrics(w http.ResponseWriter, r *http.Request, info requestInfo, out output) error {
	podsRes, err := s.coreResource("pods")
	if err != nil {
		return err
	}
	nodesRes, err := s.coreResource("nodes")
	if err != nil {
		return err
	}
	if info.Verb == "get" && info.Namespace == "" {
		return apierrors.NewBadRequest("the request must name a namespace: /apis/metrics.k8s.io/v1beta1/namespaces/NAMESPACE/pods/NAME")
	}
	notFound := apierrors.NewNotFound(metricsv1beta1.Resource("podmetrics"), info.Namespace+"/"+info.Name)
	var pods []*corev1.Pod
	if info.Verb == "get" {
		obj, err := s.objects.get(r.Context(), podsRes, info.Namespace, info.Name)
		if err != nil {
			if apierrors.IsNotFound(err) {
				return notFound
			}
			return err
		}
		pods = append(pods, obj.(*corev1.Pod))
	} else if pods, err = listTyped[*corev1.Pod](s, r, podsRes, info.Namespace); err != nil {
		return err
	}
	// The nodes of the selected pods, each read once.
	var nodes []*corev1.Node
	seen := map[string]bool{}
	for _, p := range pods {
		if p.Spec.NodeName == "" || seen[p.Spec.NodeName] {
			continue
		}
		seen[p.Spec.NodeName] = true
		obj, err := s.objects.get(r.Context(), nodesRes, "", p.Spec.NodeName)
		if err != nil {
			continue // a pod of a deleted node has no metrics
		}
		nodes = append(nodes, obj.(*corev1.Node))
	}
	usage := s.nodeUsages(r.Context(), nodes)
	now := metav1.NewTime(s.now())
	list := &metricsv1beta1.PodMetricsList{Items: []metricsv1beta1.PodMetrics{}}
	for _, p := range pods {
		u := usage[p.Spec.NodeName]
		if u == nil {
			continue
		}
		pu := findPodUsage(u.Pods, p)
		if pu == nil {
			continue
		}
		pm := metricsv1beta1.PodMetrics{
			ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, Labels: p.Labels, CreationTimestamp: now},
			Timestamp:  metav1.NewTime(pu.Time),
			Window:     metav1.Duration{Duration: pu.Window},
			Containers: []metricsv1beta1.ContainerMetrics{},
		}
		for _, c := range pu.Containers {
			pm.Containers = append(pm.Containers, metricsv1beta1.ContainerMetrics{Name: c.Name, Usage: usageList(c.CPUNanoCores, c.MemoryWorkingSetBytes)})
		}
		list.Items = append(list.Items, pm)
	}
	sort.Slice(list.Items, func(i, j int) bool {
		a, b := list.Items[i], list.Items[j]
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
	if info.Verb == "get" {
		if len(list.Items) == 0 {
			return notFound
		}
		return s.writeMetrics(w, out, &list.Items[0], nil)
	}
	items := make([]runtime.Object, len(list.Items))
	for i := range list.Items {
		items[i] = &list.Items[i]
	}
	return s.writeMetrics(w, out, list, items)
}

// findPodUsage finds the usage of pod, by UID, so a pod recreated under
// the same name is not given its predecessor's.
func findPodUsage(all []stats.PodUsage, pod *corev1.Pod) *stats.PodUsage {
	for i := range all {
		if all[i].UID == string(pod.UID) && all[i].Namespace == pod.Namespace && all[i].Name == pod.Name {
			return &all[i]
		}
	}
	return nil
}

// coreResource is a core resource of the catalog.
func (s *Server) coreResource(name string) (*registry.Resource, error) {
	res, ok := s.catalog.Lookup(corev1.SchemeGroupVersion.WithResource(name))
	if !ok {
		return nil, apierrors.NewInternalError(fmt.Errorf("%s are not served", name))
	}
	return res, nil
}

// listTyped lists the objects of res in ns (all when empty) that the
// request's label and field selectors select.
func listTyped[T runtime.Object](s *Server, r *http.Request, res *registry.Resource, ns string) ([]T, error) {
	sel, err := parseSelection(res, r.URL.Query())
	if err != nil {
		return nil, err
	}
	var out []T
	_, err = s.walkList(r.Context(), res, listRequest{ns: ns, sel: sel}, func(o runtime.Object) error {
		t, ok := o.(T)
		if !ok {
			return apierrors.NewInternalError(fmt.Errorf("stored %s is a %T", res.Resource, o))
		}
		out = append(out, t)
		return nil
	})
	return out, err
}

// usageList is a usage as the metrics API writes it: CPU in nanocores,
// memory in bytes.
func usageList(nanoCores, bytes uint64) corev1.ResourceList {
	return corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewScaledQuantity(clampInt64(nanoCores), resource.Nano),
		corev1.ResourceMemory: *resource.NewQuantity(clampInt64(bytes), resource.BinarySI),
	}
}

func clampInt64(v uint64) int64 {
	if v > 1<<63-1 {
		return 1<<63 - 1
	}
	return int64(v)
}

// writeMetrics answers with a metrics object or list in the negotiated
// form; items are a list's objects, for tables and metadata.
func (s *Server) writeMetrics(w http.ResponseWriter, out output, obj runtime.Object, items []runtime.Object) error {
	isList := isMetricsList(obj)
	switch out.as {
	case "Table":
		if !isList {
			items = []runtime.Object{obj}
		}
		writeObject(w, out, http.StatusOK, s.metricsTable(items))
		return nil
	case "PartialObjectMetadata", "PartialObjectMetadataList":
		if !isList {
			out.as = "PartialObjectMetadata"
			writeObject(w, out, http.StatusOK, partialMetadata(obj))
			return nil
		}
		pl := &metav1.PartialObjectMetadataList{}
		for _, o := range items {
			pl.Items = append(pl.Items, *partialMetadata(o))
		}
		pl.SetGroupVersionKind(metav1.SchemeGroupVersion.WithKind("PartialObjectMetadataList"))
		out.as = "PartialObjectMetadataList"
		writeObject(w, out, http.StatusOK, pl)
		return nil
	}
	gvks, _, err := metricsScheme.ObjectKinds(obj)
	if err != nil {
		return apierrors.NewInternalError(fmt.Errorf("no kind for %T: %w", obj, err))
	}
	obj.GetObjectKind().SetGroupVersionKind(gvks[0])
	var buf bytes.Buffer
	switch out.media {
	case mediaYAML:
		err = metricsYAML.Encode(obj, &buf)
	case mediaProtobuf:
		err = metricsProto.Encode(obj, &buf)
	default:
		err = metricsJSON.Encode(obj, &buf)
		if err == nil && out.pretty {
			var ind bytes.Buffer
			if err = jsonIndent(&ind, buf.Bytes()); err == nil {
				buf = ind
			}
		}
	}
	if err != nil {
		return apierrors.NewInternalError(fmt.Errorf("encoding %s: %w", gvks[0].Kind, err))
	}
	w.Header().Set("Content-Type", out.media)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
	return nil
}

// isMetricsList says whether obj is one of the metrics list types.
func isMetricsList(obj runtime.Object) bool {
	switch obj.(type) {
	case *metricsv1beta1.NodeMetricsList, *metricsv1beta1.PodMetricsList:
		return true
	}
	return false
}

// metricsTable is the table `kubectl get nodemetrics|podmetrics` prints:
// a pod's usage is the sum of its containers'.
func (s *Server) metricsTable(items []runtime.Object) *metav1.Table {
	t := &metav1.Table{ColumnDefinitions: []metav1.TableColumnDefinition{
		{Name: "Name", Type: "string", Format: "name", Description: "Name of the node or pod."},
		{Name: "CPU", Type: "string", Description: "CPU use, in millicores, averaged over the window."},
		{Name: "Memory", Type: "string", Description: "Memory working set."},
		{Name: "Window", Type: "string", Description: "Time the CPU use is averaged over."},
	}}
	t.SetGroupVersionKind(metav1.SchemeGroupVersion.WithKind("Table"))
	for _, o := range items {
		var name string
		var window time.Duration
		var usage corev1.ResourceList
		switch m := o.(type) {
		case *metricsv1beta1.NodeMetrics:
			name, window, usage = m.Name, m.Window.Duration, m.Usage
		case *metricsv1beta1.PodMetrics:
			name, window = m.Name, m.Window.Duration
			cpu, mem := resource.Quantity{}, resource.Quantity{}
			for _, c := range m.Containers {
				cpu.Add(c.Usage[corev1.ResourceCPU])
				mem.Add(c.Usage[corev1.ResourceMemory])
			}
			usage = corev1.ResourceList{corev1.ResourceCPU: cpu, corev1.ResourceMemory: mem}
		default:
			continue
		}
		cpu, mem := usage[corev1.ResourceCPU], usage[corev1.ResourceMemory]
		row := metav1.TableRow{Cells: []interface{}{
			name, fmt.Sprintf("%dm", cpu.MilliValue()), fmt.Sprintf("%dMi", mem.Value()/(1<<20)), window.Round(time.Millisecond).String(),
		}}
		var buf bytes.Buffer
		if err := jsonCodec.Encode(partialMetadata(o), &buf); err == nil {
			row.Object = runtime.RawExtension{Raw: bytes.TrimSpace(buf.Bytes())}
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}

// nodeMetricsCache keeps, per node, the newest sample of its agent and
// the usage it gave. The zero value is ready to use.
type nodeMetricsCache struct {
	once   sync.Once
	client *http.Client

	mu    sync.Mutex
	nodes map[string]*nodeSamples
}

// nodeSamples is what is kept of one node; mu is held while its agent is
// sampled, so concurrent requests share one sample.
type nodeSamples struct {
	mu      sync.Mutex
	last    *stats.Summary
	usage   *stats.NodeUsage
	err     error
	takenAt time.Time // when usage (or err) was obtained
	usedAt  time.Time // when it was last asked for, under the cache's mu
}

// entry returns the node's entry, forgetting nodes not asked about for
// metricsForget.
func (c *nodeMetricsCache) entry(name string, now time.Time) *nodeSamples {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nodes == nil {
		c.nodes = map[string]*nodeSamples{}
	}
	for n, e := range c.nodes {
		if now.Sub(e.usedAt) > metricsForget {
			delete(c.nodes, n)
		}
	}
	e, ok := c.nodes[name]
	if !ok {
		e = &nodeSamples{}
		c.nodes[name] = e
	}
	e.usedAt = now
	return e
}

// nodeUsages samples the nodes' agents in parallel; nodes whose agent
// did not answer are missing from the result.
func (s *Server) nodeUsages(ctx context.Context, nodes []*corev1.Node) map[string]*stats.NodeUsage {
	out := make(map[string]*stats.NodeUsage, len(nodes))
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, metricsParallel)
	for _, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			u, err := s.nodeUsage(ctx, n)
			if err != nil {
				s.log.Debug("metrics: no usage for node", "node", n.Name, "err", err)
				return
			}
			mu.Lock()
			out[n.Name] = u
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// nodeUsage is the node's current usage: the kept one while fresh, or a
// new one from sampling the agent.
func (s *Server) nodeUsage(ctx context.Context, node *corev1.Node) (*stats.NodeUsage, error) {
	e := s.nodeMetrics.entry(node.Name, s.now())
	e.mu.Lock()
	defer e.mu.Unlock()
	if age := s.now().Sub(e.takenAt); !e.takenAt.IsZero() && (age < metricsRetry || (e.err == nil && age < metricsFresh)) {
		return e.usage, e.err
	}
	fetch := func(ctx context.Context) (*stats.Summary, error) { return s.fetchSummary(ctx, node) }
	u, last, err := sampleUsage(ctx, e.last, fetch, sleepCtx)
	if ctx.Err() != nil {
		// The caller went away: keep nothing that its end may have caused.
		return nil, fmt.Errorf("sample node %s: %w", node.Name, ctx.Err())
	}
	e.takenAt = s.now()
	if err != nil {
		e.usage, e.err = nil, err
		return nil, err
	}
	e.last, e.usage, e.err = last, u, nil
	return u, nil
}

// sampleUsage takes a sample with fetch and turns it into usage against
// last, the node's previous sample. When last gives no rate for the node
// or leaves a pod out (a container started since), it waits
// metricsMinWindow and compares a second sample with the first. It
// returns the usage and the newest sample.
func sampleUsage(ctx context.Context, last *stats.Summary, fetch func(context.Context) (*stats.Summary, error),
	wait func(context.Context, time.Duration) error) (*stats.NodeUsage, *stats.Summary, error) {
	first, err := fetch(ctx)
	if err != nil {
		return nil, nil, err
	}
	var u stats.NodeUsage
	if last != nil && last.Node.Name == first.Node.Name {
		u = stats.Rates(last, first, metricsMinWindow, metricsMaxWindow)
		if u.Node != nil && u.Incomplete == 0 {
			return &u, first, nil
		}
	}
	if err := wait(ctx, metricsMinWindow); err != nil {
		return nil, nil, err
	}
	second, err := fetch(ctx)
	if err != nil {
		if u.Node != nil { // what the first sample gave is still right
			return &u, first, nil
		}
		return nil, nil, err
	}
	u = stats.Rates(first, second, metricsMinWindow, metricsMaxWindow)
	return &u, second, nil
}

// sleepCtx waits for d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// fetchSummary asks the node's agent for a sample.
func (s *Server) fetchSummary(ctx context.Context, node *corev1.Node) (*stats.Summary, error) {
	if s.cfg.KubeletClient == nil {
		return nil, errors.New("the API server has no client credentials for node agents")
	}
	host, err := agentHost(node, "")
	if err != nil {
		return nil, err
	}
	s.nodeMetrics.once.Do(func() {
		s.nodeMetrics.client = &http.Client{Transport: &http.Transport{
			TLSClientConfig:     s.cfg.KubeletClient.Clone(),
			DialContext:         (&net.Dialer{Timeout: metricsFetchTimeout, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout: metricsFetchTimeout,
			MaxIdleConnsPerHost: 1,
			IdleConnTimeout:     2 * metricsFresh,
		}}
	})
	ctx, cancel := context.WithTimeout(ctx, metricsFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+host+stats.Path, nil)
	if err != nil {
		return nil, fmt.Errorf("stats request for node %s: %w", node.Name, err)
	}
	resp, err := s.nodeMetrics.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reach the agent of node %s: %w", node.Name, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("the agent of node %s answered %s", node.Name, resp.Status)
	}
	sum, err := stats.Decode(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", node.Name, err)
	}
	if sum.Node.Name != node.Name {
		return nil, fmt.Errorf("the agent at %s is node %q's, not %q's", host, sum.Node.Name, node.Name)
	}
	return sum, nil
}
