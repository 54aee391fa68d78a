package main

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

func TestSteadyRate(t *testing.T) {
	ms := func(vs ...int) []time.Duration {
		out := make([]time.Duration, len(vs))
		for i, v := range vs {
			out[i] = time.Duration(v) * time.Millisecond
		}
		return out
	}
	// 100 events, one every 10 ms, after a slow start and a slow end.
	ramp := make([]time.Duration, 100)
	for i := range ramp {
		ramp[i] = time.Duration(i*10) * time.Millisecond
	}
	ramp[0], ramp[99] = -5*time.Second, 20*time.Second
	tests := []struct {
		name       string
		in         []time.Duration
		lo, hi     float64
		wantRate   float64
		wantWindow time.Duration
		wantOK     bool
	}{
		{name: "empty", in: nil, lo: 0.1, hi: 0.9},
		{name: "one event", in: ms(5), lo: 0.1, hi: 0.9},
		{name: "marks in the same instant", in: ms(1, 1, 1, 1), lo: 0.1, hi: 0.9},
		{name: "bad fractions", in: ms(1, 2, 3), lo: 0.9, hi: 0.1},
		// 10 events: marks are the 1st and the 9th (ceil 1.0 and 9.0).
		{name: "ten even", in: ms(0, 100, 200, 300, 400, 500, 600, 700, 800, 900), lo: 0.1, hi: 0.9,
			wantRate: 10, wantWindow: 800 * time.Millisecond, wantOK: true},
		// The ramps at both ends fall outside the 10th..90th events.
		{name: "ramps ignored", in: ramp, lo: 0.1, hi: 0.9,
			wantRate: 100, wantWindow: 800 * time.Millisecond, wantOK: true},
		{name: "whole range", in: ms(0, 500, 1000), lo: 0, hi: 1,
			wantRate: 2, wantWindow: time.Second, wantOK: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rate, window, ok := steadyRate(tt.in, tt.lo, tt.hi)
			if ok != tt.wantOK || window != tt.wantWindow || math.Abs(rate-tt.wantRate) > 1e-9 {
				t.Errorf("steadyRate = %v, %v, %v; want %v, %v, %v", rate, window, ok, tt.wantRate, tt.wantWindow, tt.wantOK)
			}
		})
	}
}

func TestLimitedBy(t *testing.T) {
	tests := []struct {
		total, create, tail float64
		want                string
	}{
		{total: 10, create: 9.8, tail: 0.2, want: "creation-limited"},
		{total: 10, create: 9, tail: 1, want: "creation-limited"},           // a tenth is still keeping up
		{total: 2, create: 1.6, tail: 0.4, want: "creation-limited"},        // under the 0.5 s floor
		{total: 10, create: 4, tail: 6, want: "scheduler-limited; 60%"},     // most of the run after creating
		{total: 10, create: 8.5, tail: 1.5, want: "scheduler-limited; 15%"}, // just over a tenth
		{total: 0, want: "no data"},
	}
	for _, tt := range tests {
		if got := limitedBy(tt.total, tt.create, tt.tail); !strings.Contains(got, tt.want) {
			t.Errorf("limitedBy(%v, %v, %v) = %q, want it to contain %q", tt.total, tt.create, tt.tail, got, tt.want)
		}
	}
}

func TestLargestUnder(t *testing.T) {
	sec := time.Second
	tests := []struct {
		name  string
		nodes []int
		p99   []time.Duration
		want  int
	}{
		{name: "none", want: 0},
		{name: "all under", nodes: []int{500, 1000, 2000}, p99: []time.Duration{sec / 10, sec / 5, sec / 2}, want: 2000},
		{name: "stops at the first over", nodes: []int{500, 1000, 2000, 5000}, p99: []time.Duration{sec / 10, sec / 2, 2 * sec, sec / 2}, want: 1000},
		{name: "exactly the limit is over", nodes: []int{100, 500}, p99: []time.Duration{sec / 10, sec}, want: 100},
		{name: "first already over", nodes: []int{100, 500}, p99: []time.Duration{3 * sec, sec / 10}, want: 0},
	}
	for _, tt := range tests {
		if got := largestUnder(tt.nodes, tt.p99, sec); got != tt.want {
			t.Errorf("%s: largestUnder = %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestIsLeaseRenewal(t *testing.T) {
	const p = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/"
	tests := []struct {
		method, path string
		want         bool
	}{
		{"PUT", p + "sim-7", true},
		{"GET", p + "sim-7", false},        // the read before a first renewal
		{"POST", p[:len(p)-1], false},      // creating the Lease
		{"PUT", p, false},                  // no name
		{"PUT", p + "sim-7/status", false}, // not the object itself
		{"PUT", "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kube-scheduler", false}, // leader election
		{"PUT", "/api/v1/nodes/sim-7/status", false},
	}
	for _, tt := range tests {
		if got := isLeaseRenewal(tt.method, tt.path); got != tt.want {
			t.Errorf("isLeaseRenewal(%s %s) = %v, want %v", tt.method, tt.path, got, tt.want)
		}
	}
}

func TestReach(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var at time.Time
	steps := []struct {
		count int
		now   time.Time
		want  time.Time
	}{
		{count: 5, now: t0, want: time.Time{}},                                   // below target
		{count: 10, now: t0.Add(time.Second), want: t0.Add(time.Second)},         // reached
		{count: 10, now: t0.Add(2 * time.Second), want: t0.Add(time.Second)},     // stays: first time kept
		{count: 9, now: t0.Add(3 * time.Second), want: time.Time{}},              // fell back
		{count: 11, now: t0.Add(4 * time.Second), want: t0.Add(4 * time.Second)}, // reached again
	}
	for i, st := range steps {
		reach(&at, st.count, 10, st.now)
		if !at.Equal(st.want) {
			t.Errorf("step %d: at = %v, want %v", i, at, st.want)
		}
	}
}

func TestSummarizeSteps(t *testing.T) {
	lat := func(p99 time.Duration) Latencies { return Latencies{P50: p99 / 2, P99: p99, Max: 2 * p99} }
	runs := [][]scaleStepRun{
		{{nodes: 100, lat: lat(10 * time.Millisecond), renewals: 150}, {nodes: 500, lat: lat(2 * time.Second), renewals: 700, failed: 3}},
		{{nodes: 100, lat: lat(30 * time.Millisecond), renewals: 151}}, // stopped early
		{{nodes: 100, lat: lat(20 * time.Millisecond), renewals: 149}, {nodes: 500, lat: lat(time.Second), renewals: 750}},
	}
	got := summarizeSteps(runs)
	if len(got) != 2 || got[0].Nodes != 100 || got[1].Nodes != 500 {
		t.Fatalf("steps = %+v, want rows for 100 and 500 nodes", got)
	}
	if got[0].P99Ms.Median != 20 || !slices.Equal(got[0].Renewals, []int{150, 151, 149}) {
		t.Errorf("100 nodes: p99 median %v, renewals %v; want 20 and [150 151 149]", got[0].P99Ms.Median, got[0].Renewals)
	}
	if got[1].P99Ms.Median != 1500 || !slices.Equal(got[1].Failed, []int{3, 0}) {
		t.Errorf("500 nodes: p99 median %v, failed %v; want 1500 (of the two runs that reached it) and [3 0]", got[1].P99Ms.Median, got[1].Failed)
	}
}

// The window takes the renewals sent inside it, counts errors and
// requests still unanswered as failed, and forgets what it has reported.
func TestLeaseRecorderWindow(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	r := newLeaseRecorder()
	r.done = []timedRequest{
		{at: at(0.5), d: 5 * time.Millisecond},              // before the window
		{at: at(1), d: 10 * time.Millisecond},               // first instant: in
		{at: at(2), d: 20 * time.Millisecond},               // in
		{at: at(3), d: 30 * time.Millisecond, failed: true}, // in, failed
		{at: at(11), d: 40 * time.Millisecond},              // the window's end: out
		{at: at(12), d: 50 * time.Millisecond},              // after
	}
	r.pending = map[uint64]time.Time{1: at(5), 2: at(20)} // one in the window, one after
	lats, failed := r.window(t.Context(), at(1), at(11), 0)
	if !slices.Equal(lats, []time.Duration{10 * time.Millisecond, 20 * time.Millisecond}) || failed != 2 {
		t.Errorf("window = %v, %d failed; want [10ms 20ms], 2 failed", lats, failed)
	}
	if len(r.done) != 2 || !r.done[0].at.Equal(at(11)) {
		t.Errorf("kept %+v, want only the records from the window's end on", r.done)
	}
}

func TestPerRun(t *testing.T) {
	for _, tt := range []struct {
		in   []int
		want string
	}{{nil, ""}, {[]int{150}, "150"}, {[]int{150, 149}, "150/149"}} {
		if got := perRun(tt.in); got != tt.want {
			t.Errorf("perRun(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// The deployment watch counts pods as they are created, bound, run and
// go, and the milestone times follow the counts.
func TestDeployWatchCounts(t *testing.T) {
	w := &deployWatch{target: 2, pods: map[string]podProgress{}}
	pod := func(name, node string, phase corev1.PodPhase) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.PodSpec{NodeName: node}, Status: corev1.PodStatus{Phase: phase}}
	}
	check := func(step string, pods, bound, running int, podsAt, boundAt, runningAt bool) {
		t.Helper()
		s := w.snapshot()
		if s.pods != pods || s.bound != bound || s.running != running {
			t.Errorf("%s: %s; want %d pods, %d bound, %d Running", step, s, pods, bound, running)
		}
		if !s.podsAt.IsZero() != podsAt || !s.boundAt.IsZero() != boundAt || !s.runningAt.IsZero() != runningAt {
			t.Errorf("%s: milestones created=%v bound=%v running=%v; want %v %v %v",
				step, !s.podsAt.IsZero(), !s.boundAt.IsZero(), !s.runningAt.IsZero(), podsAt, boundAt, runningAt)
		}
	}
	w.pod(pod("a", "", corev1.PodPending), false)
	check("one created", 1, 0, 0, false, false, false)
	w.pod(pod("b", "", corev1.PodPending), false)
	check("both created", 2, 0, 0, true, false, false)
	w.pod(pod("a", "n1", corev1.PodPending), false)
	w.pod(pod("b", "n2", corev1.PodPending), false)
	check("both bound", 2, 2, 0, true, true, false)
	w.pod(pod("a", "n1", corev1.PodRunning), false)
	w.pod(pod("a", "n1", corev1.PodRunning), false) // a repeated update counts once
	w.pod(pod("b", "n2", corev1.PodRunning), false)
	check("both running", 2, 2, 2, true, true, true)
	w.pod(cache.DeletedFinalStateUnknown{Key: "deploy/a", Obj: pod("a", "n1", corev1.PodRunning)}, true)
	check("one gone", 1, 1, 1, false, false, false)

	if w.snapshot().done(2) {
		t.Error("done before readyReplicas")
	}
	w.pod(pod("c", "n1", corev1.PodRunning), false)
	w.deployment(&appsv1.Deployment{Status: appsv1.DeploymentStatus{ReadyReplicas: 2}})
	if s := w.snapshot(); !s.done(2) || s.readyAt.IsZero() {
		t.Errorf("not done with 2 Running and readyReplicas 2: %s", s)
	}
}
