package scheduler

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// BenchmarkSchedule5000Nodes measures the pure core the way the loop
// drives it: for each pod, bring the snapshot up to date from the cache,
// decide, assume the pod on the chosen node. 5,000 nodes in 3 zones start
// with 2 pods each; pods request 100m cpu and 128Mi and belong to one of
// 20 ReplicaSets (so system-default spreading over nodes and zones runs).
// ns/op is the cost of one pod; pods/s is reported too.
func BenchmarkSchedule5000Nodes(b *testing.B) {
	for _, tc := range []struct {
		name  string
		owned bool
	}{{"controller-pods", true}, {"bare-pods", false}} {
		b.Run(tc.name, func(b *testing.B) {
			cache := NewCache()
			for i := 0; i < 5000; i++ {
				n := mkNode(fmt.Sprintf("node-%d", i), nodeLabels(labelZone, fmt.Sprintf("zone-%d", i%3)),
					nodeAlloc("cpu", "32", "memory", "128Gi"))
				cache.AddNode(n)
				for j := 0; j < 2; j++ {
					cache.AddPod(mkPod(fmt.Sprintf("existing-%d-%d", i, j), on(n.Name), req("cpu", "100m", "memory", "128Mi"),
						podLabels("app", fmt.Sprintf("rs-%d", (i+j)%20)), ownedBy(fmt.Sprintf("rs-%d", (i+j)%20))))
				}
			}
			pods := make([]*corev1.Pod, b.N)
			for i := range pods {
				opts := []podOpt{req("cpu", "100m", "memory", "128Mi"), podLabels("app", fmt.Sprintf("rs-%d", i%20))}
				if tc.owned {
					opts = append(opts, ownedBy(fmt.Sprintf("rs-%d", i%20)))
				}
				pods[i] = mkPod(fmt.Sprintf("p-%d", i), opts...)
			}
			snap := &Snapshot{}
			cache.UpdateSnapshot(snap)
			p := DefaultProfile()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				cache.UpdateSnapshot(snap)
				d, err := p.Schedule(snap, pods[i])
				if err != nil || d.Node == "" {
					b.Fatalf("pod %d: %v %+v", i, err, d.Unschedulable)
				}
				snap.Advance(d.Visited)
				if err := cache.Assume(pods[i], d.Node); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pods/s")
		})
	}
}
