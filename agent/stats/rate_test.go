package stats

import (
	"reflect"
	"testing"
	"time"
)

func TestRate(t *testing.T) {
	t0 := time.Unix(1000, 0)
	cases := []struct {
		name     string
		from, to uint64
		window   time.Duration
		want     uint64
		ok       bool
	}{
		{"one core for 10 s", 0, 10e9, 10 * time.Second, 1e9, true},
		{"half a core", 5e9, 10e9, 10 * time.Second, 5e8, true},
		{"idle", 7, 7, 2 * time.Second, 0, true},
		{"large counters do not overflow", 1 << 62, 1<<62 + 64e9, 32 * time.Second, 2e9, true},
		{"fraction rounds down", 0, 1, 3 * time.Second, 0, true},
		{"counter went back", 10, 5, 10 * time.Second, 0, false},
		{"window too short", 0, 1e9, 500 * time.Millisecond, 0, false},
		{"window too long", 0, 1e9, 6 * time.Minute, 0, false},
		{"no window", 0, 1e9, 0, 0, false},
		{"time went back", 0, 1e9, -2 * time.Second, 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := rate(c.from, c.to, t0, t0.Add(c.window), time.Second, 5*time.Minute)
			if got != c.want || ok != c.ok {
				t.Errorf("rate = %d, %v; want %d, %v", got, ok, c.want, c.ok)
			}
		})
	}
}

func TestRates(t *testing.T) {
	t0 := time.Unix(1000, 0).UTC()
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	older := &Summary{
		Node: NodeStats{Name: "n", Time: at(0), CPUUsageCoreNanoseconds: 100e9, MemoryWorkingSetBytes: 1},
		Pods: []PodStats{
			{Namespace: "ns", Name: "a", UID: "ua", Containers: []ContainerStats{
				{Name: "web", ID: "w1", Time: at(0), CPUUsageCoreNanoseconds: 1e9},
				{Name: "side", ID: "s1", Time: at(0.5), CPUUsageCoreNanoseconds: 0},
			}},
			{Namespace: "ns", Name: "restarted", UID: "ur", Containers: []ContainerStats{
				{Name: "main", ID: "old", Time: at(0), CPUUsageCoreNanoseconds: 50e9},
			}},
			{Namespace: "ns", Name: "gone", UID: "ug", Containers: []ContainerStats{
				{Name: "main", ID: "g", Time: at(0), CPUUsageCoreNanoseconds: 5},
			}},
		},
	}
	newer := &Summary{
		Node: NodeStats{Name: "n", Time: at(10), CPUUsageCoreNanoseconds: 115e9, MemoryWorkingSetBytes: 4096},
		Pods: []PodStats{
			{Namespace: "ns", Name: "a", UID: "ua", Containers: []ContainerStats{
				{Name: "web", ID: "w1", Time: at(10), CPUUsageCoreNanoseconds: 6e9, MemoryWorkingSetBytes: 300},
				{Name: "side", ID: "s1", Time: at(10.5), CPUUsageCoreNanoseconds: 1e9, MemoryWorkingSetBytes: 20},
			}},
			{Namespace: "ns", Name: "restarted", UID: "ur", Containers: []ContainerStats{
				{Name: "main", ID: "new", Time: at(10), CPUUsageCoreNanoseconds: 1e9},
			}},
			{Namespace: "ns", Name: "fresh", UID: "uf", Containers: []ContainerStats{
				{Name: "main", ID: "f", Time: at(10), CPUUsageCoreNanoseconds: 1e9},
			}},
			{Namespace: "ns", Name: "empty", UID: "ue"},
		},
	}
	got := Rates(older, newer, time.Second, 5*time.Minute)
	want := NodeUsage{
		Node: &Usage{Time: at(10), Window: 10 * time.Second, CPUNanoCores: 1.5e9, MemoryWorkingSetBytes: 4096},
		Pods: []PodUsage{{
			Namespace: "ns", Name: "a", UID: "ua", Time: at(10.5), Window: 10 * time.Second,
			Containers: []ContainerUsage{
				{Name: "web", CPUNanoCores: 5e8, MemoryWorkingSetBytes: 300},
				{Name: "side", CPUNanoCores: 1e8, MemoryWorkingSetBytes: 20},
			},
		}},
		Incomplete: 2, // restarted and fresh
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Rates:\n got %+v\nwant %+v", got, want)
	}

	// Samples too close together give nothing, but say what is missing.
	near := *newer
	near.Node.Time = at(0.2)
	near.Pods = []PodStats{{Namespace: "ns", Name: "a", UID: "ua", Containers: []ContainerStats{
		{Name: "web", ID: "w1", Time: at(0.2), CPUUsageCoreNanoseconds: 2e9},
		{Name: "side", ID: "s1", Time: at(0.7), CPUUsageCoreNanoseconds: 1e9},
	}}}
	if got := Rates(older, &near, time.Second, 5*time.Minute); got.Node != nil || len(got.Pods) != 0 || got.Incomplete != 1 {
		t.Errorf("Rates of close samples = %+v", got)
	}
	if got := Rates(nil, newer, time.Second, time.Minute); !reflect.DeepEqual(got, NodeUsage{}) {
		t.Errorf("Rates without an older sample = %+v", got)
	}
}
