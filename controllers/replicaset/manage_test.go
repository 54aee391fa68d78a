package replicaset

import (
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

func TestDecide(t *testing.T) {
	three := []*corev1.Pod{mkPod("ready", readyAt(t0)), mkPod("notready"), mkPod("pending", phase(corev1.PodPending))}
	tests := []struct {
		name       string
		replicas   int32
		owned      []*corev1.Pod
		burst      int
		wantCreate int
		wantDelete []string
	}{
		{name: "converged", replicas: 3, owned: three},
		{name: "scale up from zero", replicas: 5, wantCreate: 5},
		{name: "scale up some", replicas: 5, owned: three, wantCreate: 2},
		{name: "creations capped by burst", replicas: 10, burst: 4, wantCreate: 4},
		{name: "default burst is 500", replicas: 800, wantCreate: 500},
		{name: "scale down picks the least valuable", replicas: 1, owned: three, wantDelete: []string{"pending", "notready"}},
		{name: "deletions capped by burst", replicas: 0, owned: three, burst: 1, wantDelete: []string{"pending"}},
		{name: "scale to zero", replicas: 0, owned: three[:1], wantDelete: []string{"ready"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Decide(Input{Replicas: tt.replicas, Owned: tt.owned, Related: tt.owned, Now: t0, Burst: tt.burst})
			if d.Create != tt.wantCreate {
				t.Errorf("Create = %d, want %d", d.Create, tt.wantCreate)
			}
			if got := names(d.Delete); !slices.Equal(got, tt.wantDelete) && (len(got) != 0 || len(tt.wantDelete) != 0) {
				t.Errorf("Delete = %v, want %v", got, tt.wantDelete)
			}
		})
	}
}

func TestSlowStartBatch(t *testing.T) {
	boom := errors.New("quota exceeded")
	tests := []struct {
		name      string
		count     int
		failFrom  int // the call number (1-based) from which calls fail; 0: never
		wantDone  int
		wantCalls int
		wantErr   bool
	}{
		{name: "all succeed", count: 10, wantDone: 10, wantCalls: 10},
		{name: "zero", count: 0},
		{name: "first call fails: nothing more is tried", count: 10, failFrom: 1, wantCalls: 1, wantErr: true},
		// batches 1, 2, 4: calls 1..3 succeed, the batch of 4 (calls 4..7) fails
		{name: "failure in the third batch stops after it", count: 20, failFrom: 4, wantDone: 3, wantCalls: 7, wantErr: true},
		// batches 1, 2, 4, 8 then the last 5
		{name: "the last batch is what remains", count: 20, wantDone: 20, wantCalls: 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int32
			var mu sync.Mutex
			var order []int32
			done, err := SlowStartBatch(tt.count, SlowStart, func() error {
				n := calls.Add(1)
				mu.Lock()
				order = append(order, n)
				mu.Unlock()
				if tt.failFrom > 0 && int(n) >= tt.failFrom {
					return boom
				}
				return nil
			})
			if done != tt.wantDone || int(calls.Load()) != tt.wantCalls || (err != nil) != tt.wantErr {
				t.Errorf("done %d, calls %d, err %v; want done %d, calls %d, err %v",
					done, calls.Load(), err, tt.wantDone, tt.wantCalls, tt.wantErr)
			}
			if err != nil && !errors.Is(err, boom) {
				t.Errorf("error %v does not wrap the call's error", err)
			}
		})
	}
}

func TestSlowStartBatchSizesDouble(t *testing.T) {
	// Every call blocks until as many calls as the expected batch size are
	// in flight together, so the test only finishes if the batches are
	// 1, 2, 4, 8 and then the remaining 5, each run in parallel.
	want := []int{1, 2, 4, 8, 5}
	var (
		mu       sync.Mutex
		batches  []int
		inFlight int
		next     = 0
		gate     = make(chan struct{})
	)
	call := func() error {
		mu.Lock()
		inFlight++
		g := gate
		if next < len(want) && inFlight == want[next] {
			batches = append(batches, inFlight)
			inFlight, next = 0, next+1
			gate = make(chan struct{})
			close(g)
		}
		mu.Unlock()
		<-g
		return nil
	}
	type result struct {
		done int
		err  error
	}
	out := make(chan result, 1)
	go func() {
		done, err := SlowStartBatch(20, SlowStart, call)
		out <- result{done, err}
	}()
	select {
	case r := <-out:
		if r.err != nil || r.done != 20 {
			t.Fatalf("done %d, err %v", r.done, r.err)
		}
	case <-time.After(10 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("batches did not run as expected; completed %v, %d calls waiting", batches, inFlight)
	}
	if !slices.Equal(batches, want) {
		t.Errorf("batches = %v, want %v", batches, want)
	}
}
