package stats

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/agent/labels"
)

// fakeRuntime answers the two calls the collector makes; every other
// method of the interface is nil and would panic.
type fakeRuntime struct {
	runtimeapi.RuntimeServiceClient
	containers []*runtimeapi.Container
	stats      []*runtimeapi.ContainerStats
	err        error

	listReq  *runtimeapi.ListContainersRequest
	statsReq *runtimeapi.ListContainerStatsRequest
}

func (f *fakeRuntime) ListContainers(_ context.Context, in *runtimeapi.ListContainersRequest, _ ...grpc.CallOption) (*runtimeapi.ListContainersResponse, error) {
	f.listReq = in
	if f.err != nil {
		return nil, f.err
	}
	return &runtimeapi.ListContainersResponse{Containers: f.containers}, nil
}

func (f *fakeRuntime) ListContainerStats(_ context.Context, in *runtimeapi.ListContainerStatsRequest, _ ...grpc.CallOption) (*runtimeapi.ListContainerStatsResponse, error) {
	f.statsReq = in
	return &runtimeapi.ListContainerStatsResponse{Stats: f.stats}, nil
}

func ctr(id, ns, pod, uid, name string) *runtimeapi.Container {
	l := map[string]string{labels.ManagedBy: "n1"}
	for k, v := range map[string]string{labels.PodNamespace: ns, labels.PodName: pod, labels.PodUID: uid, labels.ContainerName: name} {
		if v != "" {
			l[k] = v
		}
	}
	return &runtimeapi.Container{Id: id, Labels: l, State: runtimeapi.ContainerState_CONTAINER_RUNNING}
}

func stat(id string, ts int64, cpu, mem uint64) *runtimeapi.ContainerStats {
	return &runtimeapi.ContainerStats{
		Attributes: &runtimeapi.ContainerAttributes{Id: id},
		Cpu:        &runtimeapi.CpuUsage{Timestamp: ts, UsageCoreNanoSeconds: &runtimeapi.UInt64Value{Value: cpu}},
		Memory:     &runtimeapi.MemoryUsage{Timestamp: ts, WorkingSetBytes: &runtimeapi.UInt64Value{Value: mem}},
	}
}

func TestPodStats(t *testing.T) {
	fallback := time.Unix(500, 0).UTC()
	running := []*runtimeapi.Container{
		ctr("a1", "ns", "a", "uid-a", "web"),
		ctr("a2", "ns", "a", "uid-a", "sidecar"),
		ctr("b1", "default", "b", "uid-b", "main"),
		ctr("nolabels", "", "", "", ""),
		ctr("nocpu", "ns", "c", "uid-c", "main"),
	}
	all := []*runtimeapi.ContainerStats{
		stat("a1", 1_000_000_000, 10, 100),
		stat("a2", 2_000_000_000, 20, 200),
		stat("b1", 0, 30, 300),     // unstamped: the fallback time
		stat("exited", 1, 40, 400), // not running
		stat("nolabels", 1, 50, 500),
		{Attributes: &runtimeapi.ContainerAttributes{Id: "nocpu"}, Memory: &runtimeapi.MemoryUsage{WorkingSetBytes: &runtimeapi.UInt64Value{Value: 1}}},
	}
	got := podStats(running, all, fallback)
	want := []PodStats{
		{Namespace: "default", Name: "b", UID: "uid-b", Containers: []ContainerStats{
			{Name: "main", ID: "b1", Time: fallback, CPUUsageCoreNanoseconds: 30, MemoryWorkingSetBytes: 300},
		}},
		{Namespace: "ns", Name: "a", UID: "uid-a", Containers: []ContainerStats{
			{Name: "sidecar", ID: "a2", Time: time.Unix(2, 0).UTC(), CPUUsageCoreNanoseconds: 20, MemoryWorkingSetBytes: 200},
			{Name: "web", ID: "a1", Time: time.Unix(1, 0).UTC(), CPUUsageCoreNanoseconds: 10, MemoryWorkingSetBytes: 100},
		}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("podStats:\n got %+v\nwant %+v", got, want)
	}
}

func testHost(t *testing.T) Host {
	dir := t.TempDir()
	h := Host{Proc: filepath.Join(dir, "proc"), Cgroup: filepath.Join(dir, "cgroup")}
	writeFile(t, filepath.Join(h.Cgroup, "cpuacct", "cpuacct.usage"), "7000000000\n")
	writeFile(t, filepath.Join(h.Proc, "meminfo"), "MemTotal: 100 kB\nMemAvailable: 40 kB\n")
	return h
}

func TestCollectorAndHandlerRoundTrip(t *testing.T) {
	rt := &fakeRuntime{
		containers: []*runtimeapi.Container{ctr("a1", "ns", "a", "uid-a", "web")},
		stats:      []*runtimeapi.ContainerStats{stat("a1", 3_000_000_000, 5_000, 1<<20)},
	}
	now := time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)
	c := &Collector{Runtime: rt, NodeName: "n1", Host: testHost(t), Now: func() time.Time { return now }}
	srv := httptest.NewServer(CollectorHandler(c, nil))
	defer srv.Close()

	resp, err := http.Get(srv.URL + Path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	got, err := Decode(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	want := &Summary{
		Node: NodeStats{Name: "n1", Time: now, CPUUsageCoreNanoseconds: 7_000_000_000, MemoryWorkingSetBytes: 60 * 1024},
		Pods: []PodStats{{Namespace: "ns", Name: "a", UID: "uid-a", Containers: []ContainerStats{
			{Name: "web", ID: "a1", Time: time.Unix(3, 0).UTC(), CPUUsageCoreNanoseconds: 5_000, MemoryWorkingSetBytes: 1 << 20},
		}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
	}
	// Only this node's running containers are asked for.
	sel := map[string]string{labels.ManagedBy: "n1"}
	if !reflect.DeepEqual(rt.listReq.GetFilter().GetLabelSelector(), sel) || rt.listReq.GetFilter().GetState().GetState() != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("ListContainers filter = %+v", rt.listReq.GetFilter())
	}
	if !reflect.DeepEqual(rt.statsReq.GetFilter().GetLabelSelector(), sel) {
		t.Errorf("ListContainerStats filter = %+v", rt.statsReq.GetFilter())
	}

	for _, c := range []struct {
		method, path string
		code         int
	}{
		{http.MethodPost, Path, http.StatusMethodNotAllowed},
		{http.MethodGet, "/stats/other", http.StatusNotFound},
	} {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != c.code {
			t.Errorf("%s %s: status %d, want %d", c.method, c.path, resp.StatusCode, c.code)
		}
	}
}

func TestHandlerRuntimeError(t *testing.T) {
	rt := &fakeRuntime{err: errors.New("runtime down")}
	srv := httptest.NewServer(CollectorHandler(&Collector{Runtime: rt, Host: testHost(t)}, nil))
	defer srv.Close()
	resp, err := http.Get(srv.URL + Path)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("status %d, want 500", resp.StatusCode)
	}
	// Without a node name, nothing is filtered by node.
	if rt.listReq.GetFilter().GetLabelSelector() != nil {
		t.Errorf("label selector %v without a node name", rt.listReq.GetFilter().GetLabelSelector())
	}
}

func TestDecodeRejects(t *testing.T) {
	cases := map[string]string{
		"not json":          `{`,
		"no node name":      `{"node":{"time":"2030-01-01T00:00:00Z"}}`,
		"no time":           `{"node":{"name":"n"}}`,
		"pod without uid":   `{"node":{"name":"n","time":"2030-01-01T00:00:00Z"},"pods":[{"namespace":"a","name":"b"}]}`,
		"container without": `{"node":{"name":"n","time":"2030-01-01T00:00:00Z"},"pods":[{"namespace":"a","name":"b","uid":"u","containers":[{"name":"c"}]}]}`,
	}
	for name, in := range cases {
		if _, err := Decode(strings.NewReader(in)); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}
