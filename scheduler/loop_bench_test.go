package scheduler

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// BenchmarkLoopFakeAPI measures the whole loop (informers, queue, cache,
// decisions, binding workers) placing 10,000 pods on 5,000 nodes against
// an in-memory fake API. The fake's own cost is included, so this is a
// floor for what the loop sustains, not the API server's throughput.
func BenchmarkLoopFakeAPI(b *testing.B) {
	const numNodes, numPods = 5000, 10000
	b.StopTimer()
	for i := 0; i < b.N; i++ {
		var objs []runtime.Object
		for j := 0; j < numNodes; j++ {
			objs = append(objs, mkNode(fmt.Sprintf("node-%d", j), nodeLabels(labelZone, fmt.Sprintf("z%d", j%3)),
				nodeAlloc("cpu", "32", "memory", "128Gi")))
		}
		client := fake.NewSimpleClientset(objs...)
		var bound sync.WaitGroup
		bound.Add(numPods)
		client.PrependReactor("create", "pods", func(action k8stesting.Action) (bool, runtime.Object, error) {
			if action.GetSubresource() != "binding" {
				return false, nil, nil
			}
			bound.Done()
			return true, nil, nil
		})
		client.PrependReactor("create", "events", func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, nil
		})
		factory := informers.NewSharedInformerFactory(client, 0)
		s := New(client, factory, Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = s.Start(ctx)
		}()
		<-s.Ready()
		// Feed pods straight into the informer's store and handlers, as a
		// watch would, so the fake's create path is not what is measured.
		inf := factory.Core().V1().Pods().Informer()
		pods := make([]*corev1.Pod, numPods)
		for j := range pods {
			pods[j] = mkPod(fmt.Sprintf("p-%d", j), req("cpu", "100m", "memory", "128Mi"), ownedBy(fmt.Sprintf("rs-%d", j%20)))
			pods[j].CreationTimestamp = metav1.NewTime(epoch.Add(time.Duration(j)))
		}
		b.StartTimer()
		start := time.Now()
		for _, p := range pods {
			if err := inf.GetStore().Add(p); err != nil {
				b.Fatal(err)
			}
			s.onPodAdd(p)
		}
		bound.Wait()
		elapsed := time.Since(start)
		b.StopTimer()
		b.ReportMetric(numPods/elapsed.Seconds(), "pods/s")
		cancel()
		<-done
	}
}
