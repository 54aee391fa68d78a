package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/skiff-sh/skiff/sim"
)

// leaseLimit is the p99 renewal latency a node count must stay under.
const leaseLimit = time.Second

// leaseInterval is how often each simulated node renews: a kubelet's
// default.
const leaseInterval = 10 * time.Second

// NodeScaleResult is how Lease renewal latency grows with the number of
// simulated nodes on one server: nodes are added step by step, and each
// step's renewals (PUTs of kube-node-lease Leases) are timed for a window.
type NodeScaleResult struct {
	LeaseIntervalSeconds float64         `json:"lease_interval_seconds"`
	WindowSeconds        float64         `json:"window_seconds"`
	LimitMs              float64         `json:"p99_limit_ms"`
	Steps                []NodeScaleStep `json:"steps"`
	// LargestUnderLimit is the largest step, before the first whose
	// median p99 reached the limit, whose p99 stayed under it; 0 if none.
	LargestUnderLimit int `json:"largest_nodes_under_limit"`
}

// NodeScaleStep is one node count, over the runs that reached it.
type NodeScaleStep struct {
	Nodes int  `json:"nodes"`
	P50Ms Stat `json:"renew_p50_ms"`
	P99Ms Stat `json:"renew_p99_ms"`
	MaxMs Stat `json:"renew_max_ms"`
	// LateP99Ms is the simulator's own figure: how long after its slot a
	// renewal completed (request latency plus waiting for a worker).
	LateP99Ms Stat `json:"renew_late_p99_ms"`
	// Renewals are the timed renewals per run; about Nodes * window /
	// interval when the fleet keeps up. Failed are those that errored.
	Renewals []int `json:"renewals"`
	Failed   []int `json:"failed"`
	// RSSMiB is the server's VmRSS at the end of the window.
	RSSMiB Stat `json:"server_rss_mib"`
	// AddSeconds is how long the step's new nodes took to be Ready and
	// renew once.
	AddSeconds Stat `json:"add_seconds"`
}

// scaleStepRun is one step of one run.
type scaleStepRun struct {
	nodes            int
	lat              Latencies
	lateP99          time.Duration
	renewals, failed int
	rss              float64
	add              time.Duration
}

func measureNodeScale(ctx context.Context, e *env) error {
	r := &NodeScaleResult{
		LeaseIntervalSeconds: leaseInterval.Seconds(),
		WindowSeconds:        e.opts.scaleWindow.Seconds(),
		LimitMs:              ms(leaseLimit),
	}
	e.rep.NodeScale = r
	var runs [][]scaleStepRun
	for i := range e.opts.cpRuns {
		steps, err := nodeScaleOnce(ctx, e, i)
		if err != nil {
			return err
		}
		runs = append(runs, steps)
	}
	r.Steps = summarizeSteps(runs)
	p99 := make([]time.Duration, len(r.Steps))
	for i, st := range r.Steps {
		p99[i] = time.Duration(st.P99Ms.Median * float64(time.Millisecond))
	}
	r.LargestUnderLimit = largestUnder(stepNodes(r.Steps), p99, leaseLimit)
	for _, st := range r.Steps {
		e.rep.add(fmt.Sprintf("lease renew @%s nodes", countLabel(st.Nodes)),
			"p50 %.1f ms  p99 %.1f ms  max %.1f ms   (late p99 %.1f ms; %s renewals, %s failed; server RSS %.0f MiB)",
			st.P50Ms.Median, st.P99Ms.Median, st.MaxMs.Max, st.LateP99Ms.Median, perRun(st.Renewals), perRun(st.Failed), st.RSSMiB.Median)
	}
	if r.LargestUnderLimit > 0 {
		e.rep.add("nodes with lease p99 < 1 s", "%d   (steps %v, largest measured %d; %s lease interval, %s windows)",
			r.LargestUnderLimit, e.opts.scaleSteps, r.Steps[len(r.Steps)-1].Nodes, leaseInterval, e.opts.scaleWindow)
	} else {
		e.rep.add("nodes with lease p99 < 1 s", "none of the steps %v", e.opts.scaleSteps)
	}
	return nil
}

// nodeScaleOnce runs the steps on one server, adding a fleet per step,
// and stops after the first step whose p99 reaches the limit.
func nodeScaleOnce(ctx context.Context, e *env, run int) ([]scaleStepRun, error) {
	var out []scaleStepRun
	err := withServer(ctx, e, "nodescale", nil, func(s *Server) error {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		cfg, err := s.RESTConfig()
		if err != nil {
			return err
		}
		admin, err := newClient(cfg)
		if err != nil {
			return err
		}
		ready, err := watchReadyNodes(ctx, admin)
		if err != nil {
			return err
		}
		rec := newLeaseRecorder()
		var fleets []*fleet
		defer func() {
			if err := stopFleets(fleets); err != nil {
				e.progress("nodescale: %v", err)
			}
		}()
		have := 0
		for k, want := range e.opts.scaleSteps {
			if want <= have {
				continue
			}
			t0 := time.Now()
			client, err := newTimedClient(cfg, rec)
			if err != nil {
				return err
			}
			added := want - have
			renewedBefore := rec.renewedNodes()
			fl := startFleet(ctx, client, sim.Options{
				Nodes:         added,
				NamePrefix:    fmt.Sprintf("scale%d-", k),
				LeaseInterval: leaseInterval,
				LeaseRenewed:  rec.renewed,
			}, e.lab.logs)
			fleets = append(fleets, fl)
			have = want
			if err := ready.waitReady(ctx, want, fleets...); err != nil {
				return fmt.Errorf("%d nodes: %w", want, err)
			}
			// Every new node has created its Lease and renewed it once:
			// the window then sees only steady renewals.
			if err := waitProgress(ctx, fmt.Sprintf("first renewals of %d nodes", added), func() (bool, int, string, error) {
				n := rec.renewedNodes() - renewedBefore
				return n >= added, n, fmt.Sprintf("%d renewed", n), nil
			}); err != nil {
				return fmt.Errorf("%d nodes: %w", want, err)
			}
			add := time.Since(t0)
			e.progress("nodescale run %d: %d nodes Ready and renewing (%.1f s to add %d); timing renewals for %s",
				run+1, want, add.Seconds(), added, e.opts.scaleWindow)
			from := time.Now()
			if err := sleep(ctx, e.opts.scaleWindow); err != nil {
				return err
			}
			to := time.Now()
			for _, f := range fleets {
				if err := f.failed(); err != nil {
					return err
				}
			}
			lats, failed := rec.window(ctx, from, to, 30*time.Second)
			step := scaleStepRun{
				nodes: want, lat: Distribution(lats), lateP99: Distribution(rec.lates(from, to)).P99,
				renewals: len(lats), failed: failed, rss: serverRSS(s), add: add,
			}
			out = append(out, step)
			e.progress("nodescale run %d: %d nodes: %d renewals (%d failed), p50 %.1f ms p99 %.1f ms max %.1f ms, late p99 %.1f ms, server RSS %.0f MiB",
				run+1, want, step.renewals, step.failed, ms(step.lat.P50), ms(step.lat.P99), ms(step.lat.Max), ms(step.lateP99), step.rss)
			if step.lat.P99 >= leaseLimit {
				e.progress("nodescale run %d: p99 reached %s at %d nodes; not stepping further", run+1, leaseLimit, want)
				break
			}
		}
		var simErrs []string
		for _, f := range fleets {
			if s := f.log.summary(); s != "" {
				simErrs = append(simErrs, s)
			}
		}
		if len(simErrs) > 0 {
			e.progress("nodescale run %d: simulator: %s", run+1, strings.Join(simErrs, "; "))
		}
		return nil
	})
	return out, err
}

// summarizeSteps folds the runs' steps into one row per node count, in
// ascending order, over the runs that reached it.
func summarizeSteps(runs [][]scaleStepRun) []NodeScaleStep {
	byNodes := map[int][]scaleStepRun{}
	var order []int
	for _, steps := range runs {
		for _, st := range steps {
			if _, ok := byNodes[st.nodes]; !ok {
				order = append(order, st.nodes)
			}
			byNodes[st.nodes] = append(byNodes[st.nodes], st)
		}
	}
	slices.Sort(order)
	out := make([]NodeScaleStep, 0, len(order))
	for _, n := range order {
		var p50, p99, mx, late, rss, add []float64
		row := NodeScaleStep{Nodes: n}
		for _, st := range byNodes[n] {
			p50, p99, mx = append(p50, ms(st.lat.P50)), append(p99, ms(st.lat.P99)), append(mx, ms(st.lat.Max))
			late, rss, add = append(late, ms(st.lateP99)), append(rss, st.rss), append(add, st.add.Seconds())
			row.Renewals = append(row.Renewals, st.renewals)
			row.Failed = append(row.Failed, st.failed)
		}
		row.P50Ms, row.P99Ms, row.MaxMs = Summarize(p50), Summarize(p99), Summarize(mx)
		row.LateP99Ms, row.RSSMiB, row.AddSeconds = Summarize(late), Summarize(rss), Summarize(add)
		out = append(out, row)
	}
	return out
}

func stepNodes(steps []NodeScaleStep) []int {
	out := make([]int, len(steps))
	for i, s := range steps {
		out[i] = s.Nodes
	}
	return out
}

// perRun writes per-run counts as "150" or "150/149/151".
func perRun(xs []int) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.Itoa(x)
	}
	return strings.Join(parts, "/")
}

// largestUnder is the node count of the last step, in ascending order of
// nodes, before the first step whose p99 is at or over limit; 0 if the
// first step already is.
func largestUnder(nodes []int, p99 []time.Duration, limit time.Duration) int {
	best := 0
	for i, n := range nodes {
		if p99[i] >= limit {
			break
		}
		best = n
	}
	return best
}

// newTimedClient is a clientset on its own connection whose Lease
// renewals rec times.
func newTimedClient(base *rest.Config, rec *leaseRecorder) (kubernetes.Interface, error) {
	cfg := rest.CopyConfig(base)
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { return &leaseTimer{next: rt, rec: rec} }
	return newClient(cfg)
}

// leaseTimer times the requests that renew node Leases.
type leaseTimer struct {
	next http.RoundTripper
	rec  *leaseRecorder
}

func (t *leaseTimer) RoundTrip(req *http.Request) (*http.Response, error) {
	if !isLeaseRenewal(req.Method, req.URL.Path) {
		return t.next.RoundTrip(req)
	}
	id := t.rec.begin()
	resp, err := t.next.RoundTrip(req)
	t.rec.end(id, err != nil || resp.StatusCode >= 300)
	return resp, err
}

// isLeaseRenewal says whether a request is the update of a node's Lease.
func isLeaseRenewal(method, path string) bool {
	const prefix = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/"
	if method != http.MethodPut || !strings.HasPrefix(path, prefix) {
		return false
	}
	name := strings.TrimPrefix(path, prefix)
	return name != "" && !strings.Contains(name, "/")
}

// leaseRecorder collects renewal request latencies (from the transport)
// and renewal lateness (from the simulator).
type leaseRecorder struct {
	mu      sync.Mutex
	seq     uint64
	pending map[uint64]time.Time
	done    []timedRequest
	late    []timedRequest // at: completion; d: how late
	nodes   map[string]bool
}

// timedRequest is one request: when it started and how long it took.
type timedRequest struct {
	at     time.Time
	d      time.Duration
	failed bool
}

func newLeaseRecorder() *leaseRecorder {
	return &leaseRecorder{pending: map[uint64]time.Time{}, nodes: map[string]bool{}}
}

func (r *leaseRecorder) begin() uint64 {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	r.pending[r.seq] = now
	return r.seq
}

func (r *leaseRecorder) end(id uint64, failed bool) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	start := r.pending[id]
	delete(r.pending, id)
	r.done = append(r.done, timedRequest{at: start, d: now.Sub(start), failed: failed})
}

// renewed is the simulator's LeaseRenewed hook.
func (r *leaseRecorder) renewed(node string, late time.Duration) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.nodes[node] = true
	r.late = append(r.late, timedRequest{at: now, d: late})
}

// renewedNodes is how many nodes have renewed at least once.
func (r *leaseRecorder) renewedNodes() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.nodes)
}

// window returns the latencies of the successful renewals sent in
// [from, to) and how many failed, after waiting up to wait for those
// still in flight; any still unanswered count as failed. Older records
// are dropped.
func (r *leaseRecorder) window(ctx context.Context, from, to time.Time, wait time.Duration) ([]time.Duration, int) {
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) && r.inFlightBefore(to) > 0 && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var lats []time.Duration
	failed := 0
	for _, q := range r.done {
		if q.at.Before(from) || !q.at.Before(to) {
			continue
		}
		if q.failed {
			failed++
		} else {
			lats = append(lats, q.d)
		}
	}
	for _, at := range r.pending {
		if !at.Before(from) && at.Before(to) {
			failed++
		}
	}
	r.done = slices.DeleteFunc(r.done, func(q timedRequest) bool { return q.at.Before(to) })
	return lats, failed
}

// lates are the simulator's lateness figures of renewals completed in
// [from, to).
func (r *leaseRecorder) lates(from, to time.Time) []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []time.Duration
	for _, q := range r.late {
		if !q.at.Before(from) && q.at.Before(to) {
			out = append(out, q.d)
		}
	}
	r.late = slices.DeleteFunc(r.late, func(q timedRequest) bool { return q.at.Before(to) })
	return out
}

func (r *leaseRecorder) inFlightBefore(t time.Time) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, at := range r.pending {
		if at.Before(t) {
			n++
		}
	}
	return n
}

// scaleSteps are the full-size node counts, or the -quick ones.
func scaleSteps(quick bool) []int {
	if quick {
		return []int{100, 500}
	}
	return []int{500, 1000, 2000, 5000, 10000}
}
