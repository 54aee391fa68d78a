package stats

import (
	"math/bits"
	"time"
)

// Usage is the node's use of CPU and memory over a window that ends at
// Time.
type Usage struct {
	Time   time.Time
	Window time.Duration
	// CPUNanoCores is the average CPU use over the window, in billionths
	// of a core.
	CPUNanoCores uint64
	// MemoryWorkingSetBytes is the working set at Time.
	MemoryWorkingSetBytes uint64
}

// ContainerUsage is one container's share of a PodUsage.
type ContainerUsage struct {
	Name                  string
	CPUNanoCores          uint64
	MemoryWorkingSetBytes uint64
}

// PodUsage is the use of a pod's running containers over a window that
// ends at Time.
type PodUsage struct {
	Namespace, Name, UID string
	Time                 time.Time
	Window               time.Duration
	Containers           []ContainerUsage
}

// NodeUsage is what two samples of a node say about its usage.
type NodeUsage struct {
	// Node is nil when the samples' node counters give no rate.
	Node *Usage
	// Pods holds the pods of the newer sample all of whose containers have
	// a rate, in the newer sample's order.
	Pods []PodUsage
	// Incomplete counts the pods of the newer sample left out because a
	// container of theirs has no rate yet: it started, or restarted,
	// after the older sample.
	Incomplete int
}

// Rates turns two samples of one node into usage. A rate needs both
// samples of a counter, taken between minWindow and maxWindow apart, with
// the counter not gone back; a container is the same only if its runtime
// ID is.
func Rates(older, newer *Summary, minWindow, maxWindow time.Duration) NodeUsage {
	var out NodeUsage
	if older == nil || newer == nil {
		return out
	}
	if cpu, ok := rate(older.Node.CPUUsageCoreNanoseconds, newer.Node.CPUUsageCoreNanoseconds, older.Node.Time, newer.Node.Time, minWindow, maxWindow); ok {
		out.Node = &Usage{
			Time: newer.Node.Time, Window: newer.Node.Time.Sub(older.Node.Time),
			CPUNanoCores: cpu, MemoryWorkingSetBytes: newer.Node.MemoryWorkingSetBytes,
		}
	}
	before := map[string]ContainerStats{}
	for _, p := range older.Pods {
		for _, c := range p.Containers {
			before[p.UID+"/"+c.Name] = c
		}
	}
	for _, p := range newer.Pods {
		if len(p.Containers) == 0 {
			continue
		}
		pu := PodUsage{Namespace: p.Namespace, Name: p.Name, UID: p.UID}
		var start time.Time
		complete := true
		for _, c := range p.Containers {
			prev, found := before[p.UID+"/"+c.Name]
			if !found || prev.ID != c.ID {
				complete = false
				break
			}
			cpu, ok := rate(prev.CPUUsageCoreNanoseconds, c.CPUUsageCoreNanoseconds, prev.Time, c.Time, minWindow, maxWindow)
			if !ok {
				complete = false
				break
			}
			pu.Containers = append(pu.Containers, ContainerUsage{Name: c.Name, CPUNanoCores: cpu, MemoryWorkingSetBytes: c.MemoryWorkingSetBytes})
			if c.Time.After(pu.Time) {
				pu.Time = c.Time
			}
			if prev.Time.After(start) {
				start = prev.Time
			}
		}
		if !complete {
			out.Incomplete++
			continue
		}
		pu.Window = pu.Time.Sub(start)
		out.Pods = append(out.Pods, pu)
	}
	return out
}

// rate is the average increase per second of a nanosecond counter, in
// nanoseconds per second (nanocores), between two readings.
func rate(from, to uint64, t0, t1 time.Time, minWindow, maxWindow time.Duration) (uint64, bool) {
	w := t1.Sub(t0)
	if w <= 0 || w < minWindow || w > maxWindow || to < from {
		return 0, false
	}
	hi, lo := bits.Mul64(to-from, uint64(time.Second))
	if hi >= uint64(w) { // more than 2^64 nanocores: not a real counter
		return 0, false
	}
	q, _ := bits.Div64(hi, lo, uint64(w))
	return q, true
}
