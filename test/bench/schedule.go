package main

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/skiff-sh/skiff/sim"
)

// scheduleCreators is how many concurrent clients create the pods.
const scheduleCreators = 32

// scheduleNS is where the schedule measurement's pods go.
const scheduleNS = "schedule"

// scheduleSize is one schedule configuration: this many pods onto this
// many simulated nodes.
type scheduleSize struct{ pods, nodes int }

// ScheduleResult is the scheduler's throughput for one size: bare pods
// created by scheduleCreators clients on a server without controllers,
// bound to simulated nodes, timed by a watch on the pods.
type ScheduleResult struct {
	Pods     int `json:"pods"`
	Nodes    int `json:"nodes"`
	Creators int `json:"creators"`
	// PodsPerSecond is Pods over the time from the first create sent to
	// the last pod seen bound.
	PodsPerSecond Stat `json:"pods_per_second"`
	// SteadyBindsPerSecond is the bind rate between the 10% and the 90%
	// bound marks, free of the ramp at either end.
	SteadyBindsPerSecond Stat `json:"steady_binds_per_second"`
	TotalSeconds         Stat `json:"first_create_to_last_bind_seconds"`
	// CreateSeconds is how long creating every pod took, the other side
	// that may have limited the figure above.
	CreateSeconds   Stat `json:"create_seconds"`
	CreatePerSecond Stat `json:"creates_per_second"`
	// BindTailSeconds is the time from the last create's reply to the
	// last bind: near zero when binding kept up with creating.
	BindTailSeconds Stat `json:"last_create_to_last_bind_seconds"`
	// NodesReadySeconds is how long the fleet took to register and be Ready.
	NodesReadySeconds Stat `json:"nodes_ready_seconds"`
	// RSSAfterMiB is the server's VmRSS once every pod is bound.
	RSSAfterMiB Stat     `json:"server_rss_after_mib"`
	SimErrors   []string `json:"sim_errors,omitempty"`
}

// scheduleRun is one run's raw outcome.
type scheduleRun struct {
	total, create, tail, ready time.Duration
	steadyRate                 float64
	rss                        float64
	simErrors                  string
}

func measureSchedule(ctx context.Context, e *env) error {
	for _, size := range e.opts.schedule {
		r := ScheduleResult{Pods: size.pods, Nodes: size.nodes, Creators: scheduleCreators}
		var rate, steady, total, create, createRate, tail, ready, rss []float64
		for i := range e.opts.cpRuns {
			run, err := scheduleOnce(ctx, e, size)
			if err != nil {
				return fmt.Errorf("%d pods on %d nodes: %w", size.pods, size.nodes, err)
			}
			rate = append(rate, float64(size.pods)/run.total.Seconds())
			steady = append(steady, run.steadyRate)
			total = append(total, run.total.Seconds())
			create = append(create, run.create.Seconds())
			createRate = append(createRate, float64(size.pods)/run.create.Seconds())
			tail = append(tail, run.tail.Seconds())
			ready = append(ready, run.ready.Seconds())
			rss = append(rss, run.rss)
			if run.simErrors != "" {
				r.SimErrors = append(r.SimErrors, run.simErrors)
			}
			e.progress("schedule %d pods / %d nodes run %d/%d: %.0f pods/s (%.2f s), steady %.0f binds/s; creating took %.2f s (%.0f/s), last bind %.2f s after last create",
				size.pods, size.nodes, i+1, e.opts.cpRuns, rate[i], total[i], steady[i], create[i], createRate[i], tail[i])
		}
		r.PodsPerSecond, r.SteadyBindsPerSecond, r.TotalSeconds = Summarize(rate), Summarize(steady), Summarize(total)
		r.CreateSeconds, r.CreatePerSecond, r.BindTailSeconds = Summarize(create), Summarize(createRate), Summarize(tail)
		r.NodesReadySeconds, r.RSSAfterMiB = Summarize(ready), Summarize(rss)
		e.rep.Schedule = append(e.rep.Schedule, r)
		label := fmt.Sprintf("schedule %s pods / %s nodes", countLabel(size.pods), countLabel(size.nodes))
		e.rep.add(label, "%s   (first create to last bind %.2f s)", fmtStat(r.PodsPerSecond, "pods/s", 0), r.TotalSeconds.Median)
		e.rep.add(label+" steady", "median %.0f binds/s between 10%% and 90%% bound   (min %.0f, max %.0f)",
			r.SteadyBindsPerSecond.Median, r.SteadyBindsPerSecond.Min, r.SteadyBindsPerSecond.Max)
		e.rep.add(label+" creating", "%.2f s (%.0f/s, c=%d); last bind %.2f s after the last create: %s",
			r.CreateSeconds.Median, r.CreatePerSecond.Median, scheduleCreators, r.BindTailSeconds.Median,
			limitedBy(r.TotalSeconds.Median, r.CreateSeconds.Median, r.BindTailSeconds.Median))
		if len(r.SimErrors) > 0 {
			e.rep.add(label+" sim", "%s", r.SimErrors[0])
		}
	}
	return nil
}

// scheduleOnce measures one size on a fresh server without controllers.
func scheduleOnce(ctx context.Context, e *env, size scheduleSize) (scheduleRun, error) {
	var run scheduleRun
	err := withServer(ctx, e, fmt.Sprintf("schedule-%d", size.nodes), []string{"--disable-controllers"}, func(s *Server) error {
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
		if err := waitLeader(ctx, admin, "kube-scheduler", leaderTimeout); err != nil {
			return err
		}
		nodes, err := watchReadyNodes(ctx, admin)
		if err != nil {
			return err
		}
		simClient, err := newClient(cfg)
		if err != nil {
			return err
		}
		t0 := time.Now()
		fl := startFleet(ctx, simClient, sim.Options{Nodes: size.nodes}, e.lab.logs)
		defer func() {
			if err := fl.Stop(); err != nil {
				e.progress("schedule: %v", err)
			}
		}()
		if err := nodes.waitReady(ctx, size.nodes, fl); err != nil {
			return err
		}
		run.ready = time.Since(t0)
		e.progress("schedule: %d nodes Ready in %.1f s", size.nodes, run.ready.Seconds())

		binds, err := watchBinds(ctx, admin, scheduleNS, size.pods)
		if err != nil {
			return err
		}
		created, err := runCreators(ctx, cfg, scheduleNS, smallPodKind, scheduleCreators, size.pods)
		if err != nil {
			return fmt.Errorf("create pods: %w", err)
		}
		createdAt := created.start.Add(created.wall)
		if err := waitProgress(ctx, fmt.Sprintf("%d bound pods", size.pods), func() (bool, int, string, error) {
			if err := fl.failed(); err != nil {
				return false, 0, "", err
			}
			n := binds.count()
			return n >= size.pods, n, fmt.Sprintf("%d bound", n), nil
		}); err != nil {
			return err
		}
		since := binds.since(created.start)
		last := since[len(since)-1]
		run.total = last
		run.create = created.wall
		run.tail = max(0, created.start.Add(last).Sub(createdAt))
		var ok bool
		run.steadyRate, _, ok = steadyRate(since, 0.10, 0.90)
		if !ok {
			run.steadyRate = float64(size.pods) / last.Seconds()
		}
		run.rss = serverRSS(s)
		run.simErrors = fl.log.summary()
		return nil
	})
	return run, err
}

// bindWatch records when each pod of a namespace is first seen bound.
type bindWatch struct {
	mu    sync.Mutex
	bound map[string]time.Time
}

// watchBinds starts a watch on the pods of ns (which may not exist yet)
// and returns once it has synced.
func watchBinds(ctx context.Context, c kubernetes.Interface, ns string, expect int) (*bindWatch, error) {
	b := &bindWatch{bound: make(map[string]time.Time, expect)}
	inf := coreinformers.NewPodInformer(c, ns, 0, cache.Indexers{})
	see := func(obj any) {
		now := time.Now()
		p, ok := obj.(*corev1.Pod)
		if !ok || p.Spec.NodeName == "" {
			return
		}
		b.mu.Lock()
		if _, seen := b.bound[p.Name]; !seen {
			b.bound[p.Name] = now
		}
		b.mu.Unlock()
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    see,
		UpdateFunc: func(_, obj any) { see(obj) },
	}); err != nil {
		return nil, fmt.Errorf("pod watch: %w", err)
	}
	go inf.RunWithContext(ctx)
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return nil, fmt.Errorf("pod watch did not sync: %w", ctx.Err())
	}
	return b, nil
}

func (b *bindWatch) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.bound)
}

// since is every bind time relative to t0, in ascending order.
func (b *bindWatch) since(t0 time.Time) []time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]time.Duration, 0, len(b.bound))
	for _, t := range b.bound {
		out = append(out, t.Sub(t0))
	}
	slices.Sort(out)
	return out
}

// steadyRate is the rate of events between the lo and hi fractions of
// sorted event times (the k-th event, for k = ceil(lo*n) and ceil(hi*n)):
// (events after the first mark up to the second) / (time between them).
// It is not defined (ok false) when the marks coincide in count or time.
func steadyRate(sorted []time.Duration, lo, hi float64) (rate float64, window time.Duration, ok bool) {
	n := len(sorted)
	if n == 0 || lo < 0 || hi > 1 || lo >= hi {
		return 0, 0, false
	}
	i := max(int(math.Ceil(lo*float64(n)))-1, 0)
	j := min(max(int(math.Ceil(hi*float64(n)))-1, 0), n-1)
	window = sorted[j] - sorted[i]
	if j <= i || window <= 0 {
		return 0, 0, false
	}
	return float64(j-i) / window.Seconds(), window, true
}

// limitedBy says which side probably limited a schedule run: when the
// last bind came within a tenth of the run (at least 0.5 s) after the last
// create, the scheduler was waiting for pods to be created.
func limitedBy(total, create, tail float64) string {
	if total <= 0 {
		return "no data"
	}
	if tail <= max(0.1*total, 0.5) {
		return "binding kept up with creating (creation-limited)"
	}
	return fmt.Sprintf("binding lagged creating (scheduler-limited; %.0f%% of the run after the last create)", 100*tail/total)
}

// scheduleSizes are the full-size configurations, or the -quick one.
func scheduleSizes(quick bool) []scheduleSize {
	if quick {
		return []scheduleSize{{pods: 1000, nodes: 100}}
	}
	return []scheduleSize{{pods: 10000, nodes: 1000}, {pods: 10000, nodes: 5000}}
}
