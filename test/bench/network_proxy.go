package main

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/knftables"

	"github.com/skiff-sh/skiff/internal/netnstest"
	"github.com/skiff-sh/skiff/proxy"
)

// The proxy measurement: rule programming latency of the service proxy
// (package proxy), run in this process against a real server with N
// selector-less Services, each with one EndpointSlice of two endpoints
// written by the benchmark. The proxy programs a real nftables table in a
// network namespace of the benchmark's own (network_netns.go). M slices
// are then changed one at a time (one endpoint address replaced by a new
// one) and each change is timed from just before the API Update call to
// the moment the nft transaction that carries the new endpoint's DNAT rule
// has been committed to the kernel: the rule is live, not merely seen.
const (
	proxyTable     = "skiff_bench_svc"
	proxyNamespace = "proxy-bench"
	proxyPort      = 8080
	// proxyChangeGap is the pause after a change went live before the
	// next one is written: longer than the proxy's MinSyncInterval
	// (100 ms), so a change never waits out a batching window left by
	// the previous one.
	proxyChangeGap   = 250 * time.Millisecond
	proxyLiveTimeout = 30 * time.Second
	proxyCreators    = 32
	// The initial endpoints are addresses 1..2N of the pod network, the
	// changed ones from proxyChangeBase on.
	proxyChangeBase = 30000
)

// proxySizes are the Service counts and the number of changes per run.
func proxySizes(quick bool) (sizes []int, changes int) {
	if quick {
		return []int{1000}, 50
	}
	return []int{1000, 10000}, 200
}

// proxyRun is what one run at one size measured.
type proxyRun struct {
	created     time.Duration // creating the Services and slices
	initial     syncRecord    // the first (full) sync: the whole table
	latencies   []time.Duration
	syncs       []syncRecord // every later sync seen
	missedSyncs uint64       // syncs the poller did not see one by one
	nftRuns     []nftRun     // transactions committed after the first sync
	stats       proxy.Stats
	dnatRules   int // in the final table
}

func measureProxy(ctx context.Context, e *env) error {
	sizes, changes := proxySizes(e.rep.Meta.Quick)
	for _, n := range sizes {
		var p50, p99, mx, own50, own99, full, incr, incrOps, initial, nftSmall, nftBig []float64
		var last proxyRun
		for run := range e.opts.cpRuns {
			var r proxyRun
			err := withServer(ctx, e, fmt.Sprintf("proxy-%d", n), []string{"--service-cidr", benchServiceCIDR, "--disable-scheduler"},
				func(s *Server) (err error) {
					r, err = proxyOnce(ctx, e, s, n, changes)
					return err
				})
			if err != nil {
				return fmt.Errorf("%d services: %w", n, err)
			}
			d := Distribution(r.latencies)
			own := Distribution(r.ownLatencies())
			fullDur, incrDur, ops := r.syncFigures()
			p50, p99, mx = append(p50, ms(d.P50)), append(p99, ms(d.P99)), append(mx, ms(d.Max))
			own50, own99 = append(own50, ms(own.P50)), append(own99, ms(own.P99))
			full, incr, incrOps = append(full, fullDur...), append(incr, incrDur...), append(incrOps, ops...)
			initial = append(initial, ms(r.initial.duration))
			small, big := r.nftFigures()
			nftSmall, nftBig = append(nftSmall, small...), append(nftBig, big...)
			last = r
			e.progress("proxy %d svc run %d/%d: update to live p50 %s ms p99 %s ms max %s ms; proxy's own p50 %s ms max %s ms; full resyncs %v ms; initial sync %s ms (%d ops); %d dnat rules; %d syncs unseen by the poller",
				n, run+1, e.opts.cpRuns, fmtMs(ms(d.P50)), fmtMs(ms(d.P99)), fmtMs(ms(d.Max)), fmtMs(ms(own.P50)), fmtMs(ms(own.Max)),
				roundAll(fullDur), fmtMs(ms(r.initial.duration)), r.initial.ops, r.dnatRules, r.missedSyncs)
		}
		label := "proxy " + kLabel(n) + " svc"
		e.rep.add(label+": slice update to rule live", "%s   (%d changes x %d runs, one at a time)",
			latencyLine(Summarize(p50), Summarize(p99), Summarize(mx)), changes, e.opts.cpRuns)
		e.rep.add(label+": proxy's own latency", "p50 %s ms  p99 %s ms   (informer event to commit, Stats.LastProgrammingLatency)",
			fmtMs(Summarize(own50).Median), fmtMs(Summarize(own99).Median))
		e.rep.add(label+": full resync", "median %s ms over %d, of which nft %s ms   (first sync of the whole table %s ms, %d nft operations)",
			fmtMs(Summarize(full).Median), len(full), fmtMs(Summarize(nftBig).Median), fmtMs(Summarize(initial).Median), last.initial.ops)
		e.rep.add(label+": incremental sync", "median %s ms, of which nft %s ms; %.0f nft operations   (proxy Stats: %d syncs, %d full, %d failures)",
			fmtMs(Summarize(incr).Median), fmtMs(Summarize(nftSmall).Median), Summarize(incrOps).Median,
			last.stats.Syncs, last.stats.FullSyncs, last.stats.Failures)
	}
	return nil
}

func roundAll(xs []float64) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = fmtMs(x)
	}
	return out
}

// ownLatencies are the proxy's own programming latencies, one per sync
// that carried a slice change.
func (r *proxyRun) ownLatencies() []time.Duration {
	var out []time.Duration
	for _, s := range r.syncs {
		if s.programming > 0 {
			out = append(out, s.programming)
		}
	}
	return out
}

// nftFigures are the nft run times (ms) of the small transactions (the
// incremental syncs) and of the big ones (full resyncs), split at a tenth
// of the initial sync's size.
func (r *proxyRun) nftFigures() (small, big []float64) {
	limit := max(r.initial.ops/10, 100)
	for _, run := range r.nftRuns {
		if run.ops < limit {
			small = append(small, ms(run.took))
		} else {
			big = append(big, ms(run.took))
		}
	}
	return small, big
}

// syncFigures are the durations (ms) of the periodic full resyncs and of
// the incremental syncs that changed something, and the latter's
// operation counts.
func (r *proxyRun) syncFigures() (full, incremental, ops []float64) {
	for _, s := range r.syncs {
		switch {
		case s.mode != "incremental":
			full = append(full, ms(s.duration))
		case s.ops > 0:
			incremental = append(incremental, ms(s.duration))
			ops = append(ops, float64(s.ops))
		}
	}
	return full, incremental, ops
}

func proxyOnce(ctx context.Context, e *env, s *Server, n, changes int) (proxyRun, error) {
	var r proxyRun
	cfg, err := s.RESTConfig()
	if err != nil {
		return r, err
	}
	writer, err := newClient(cfg)
	if err != nil {
		return r, err
	}
	if err := createNamespace(ctx, writer, proxyNamespace); err != nil {
		return r, err
	}
	podNet := netip.MustParsePrefix(benchPodNetwork)
	slices := make([]*discoveryv1.EndpointSlice, n)
	t0 := time.Now()
	err = workersFor(ctx, n, proxyCreators, func(ctx context.Context, i int) error {
		svc, slice, err := proxyObjects(podNet, i)
		if err != nil {
			return err
		}
		if _, err := writer.CoreV1().Services(proxyNamespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create service %s: %w", svc.Name, err)
		}
		made, err := writer.DiscoveryV1().EndpointSlices(proxyNamespace).Create(ctx, slice, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("create endpointslice %s: %w", slice.Name, err)
		}
		slices[i] = made
		return nil
	}, 2000, func(done int) { e.progress("proxy: %d/%d services with their slices", done, n) })
	if err != nil {
		return r, err
	}
	r.created = time.Since(t0)
	e.progress("proxy: %d services and slices created in %.1f s", n, r.created.Seconds())

	if on, err := netnstest.HostHasTableContext(ctx, proxyTable); err != nil {
		return r, err
	} else if on {
		return r, fmt.Errorf("the host already has nftables table ip %s; refusing to measure next to it", proxyTable)
	}
	th, err := newNetnsThread()
	if err != nil {
		return r, fmt.Errorf("proxy: %w", err)
	}
	defer th.Close()
	live := newLiveTracker()
	defer live.stop()
	nft, err := newNSNFT(th, proxyTable, live.committed)
	if err != nil {
		return r, err
	}
	// The proxy watches through a connection of its own.
	reader, err := newClient(cfg)
	if err != nil {
		return r, err
	}
	px, err := proxy.NewWithNFT(reader, nil, proxy.Config{
		NodeName:    benchNode,
		ClusterCIDR: podNet,
		TableName:   proxyTable,
		Log:         benchLogger(e.lab.logs, "proxy"),
	}, nft)
	if err != nil {
		return r, err
	}
	pctx, stopProxy := context.WithCancel(ctx)
	bg := runInBackground(pctx, px.Run)
	defer func() {
		stopProxy()
		<-bg.done
	}()
	poll := startSyncPoller(px)
	defer poll.stop()

	// The first sync programs the whole table.
	first, err := poll.waitSyncs(ctx, 1, 5*time.Minute, bg)
	if err != nil {
		return r, fmt.Errorf("first sync: %w", err)
	}
	r.initial = first[0]
	if err := poll.waitQuiet(ctx, time.Second, 30*time.Second); err != nil {
		return r, err
	}
	e.progress("proxy: first sync of %d services took %s ms (%d operations)", n, fmtMs(ms(r.initial.duration)), r.initial.ops)
	poll.reset()
	live.takeRuns()

	for k := range changes {
		// A stride coprime with n visits distinct services.
		i := (k*7919 + 13) % n
		addr, err := nthAddr(podNet, proxyChangeBase+k)
		if err != nil {
			return r, err
		}
		target := netip.AddrPortFrom(addr, proxyPort).String()
		sl := slices[i].DeepCopy()
		sl.Endpoints[0].Addresses = []string{addr.String()}
		wait := live.expect(target)
		start := time.Now()
		upd, err := writer.DiscoveryV1().EndpointSlices(proxyNamespace).Update(ctx, sl, metav1.UpdateOptions{})
		if err != nil {
			return r, fmt.Errorf("update endpointslice %s: %w", sl.Name, err)
		}
		slices[i] = upd
		select {
		case at := <-wait:
			r.latencies = append(r.latencies, at.Sub(start))
		case <-time.After(proxyLiveTimeout):
			st := px.Stats()
			return r, fmt.Errorf("endpoint %s of %s not live after %s (proxy: %d syncs, %d failures, last error %q)",
				target, sl.Name, proxyLiveTimeout, st.Syncs, st.Failures, st.LastError)
		case <-bg.done:
			return r, bg.stopped("proxy")
		case <-ctx.Done():
			return r, ctx.Err()
		}
		if err := sleep(ctx, proxyChangeGap); err != nil {
			return r, err
		}
	}

	// One full resync, for its cost. The scheduled ones are an hour apart
	// (proxy.DefaultFullSyncPeriod), so the table is deleted behind the
	// proxy's back: its next periodic check (every proxy.DefaultSyncPeriod)
	// finds it gone and rewrites it whole.
	if !poll.sawFull() {
		e.progress("proxy: deleting the table to time a full resync")
		if _, err := th.Output(ctx, "nft", "delete", "table", "ip", proxyTable); err != nil {
			return r, err
		}
		if err := poll.waitFull(ctx, proxy.DefaultSyncPeriod+30*time.Second, bg); err != nil {
			return r, err
		}
	}
	r.syncs, r.missedSyncs = poll.records()
	r.nftRuns = live.takeRuns()
	r.stats = px.Stats()

	// The table in the kernel has what the commits said: the last
	// changes' endpoints, and a DNAT rule per endpoint.
	out, err := th.Output(ctx, "nft", "list", "table", "ip", proxyTable)
	if err != nil {
		return r, err
	}
	table := string(out)
	r.dnatRules = strings.Count(table, " dnat to ")
	for k := max(0, changes-5); k < changes; k++ {
		addr, _ := nthAddr(podNet, proxyChangeBase+k)
		if !containsDNAT(table, netip.AddrPortFrom(addr, proxyPort).String()) {
			return r, fmt.Errorf("changed endpoint %s is not in the listed table", addr)
		}
	}
	if r.dnatRules < 2*n {
		return r, fmt.Errorf("listed table has %d dnat rules, want at least %d (2 per service)", r.dnatRules, 2*n)
	}
	if on, err := netnstest.HostHasTableContext(ctx, proxyTable); err != nil {
		return r, err
	} else if on {
		return r, fmt.Errorf("table ip %s appeared in the host's ruleset", proxyTable)
	}
	return r, nil
}

// proxyObjects are the i-th selector-less Service and its EndpointSlice
// with two ready endpoints.
func proxyObjects(podNet netip.Prefix, i int) (*corev1.Service, *discoveryv1.EndpointSlice, error) {
	name := fmt.Sprintf("svc-%05d", i)
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ServiceSpec{
			Type:  corev1.ServiceTypeClusterIP,
			Ports: []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(proxyPort)}},
		},
	}
	var eps []discoveryv1.Endpoint
	for j := 1; j <= 2; j++ {
		a, err := nthAddr(podNet, 2*i+j)
		if err != nil {
			return nil, nil, err
		}
		eps = append(eps, discoveryv1.Endpoint{
			Addresses:  []string{a.String()},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr(true), Serving: ptr(true), Terminating: ptr(false)},
			NodeName:   ptr(benchNode),
		})
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name + "-bench", Labels: map[string]string{discoveryv1.LabelServiceName: name}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   eps,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Protocol: ptr(corev1.ProtocolTCP), Port: ptr(int32(proxyPort))}},
	}
	return svc, slice, nil
}

// containsDNAT reports whether nft text has a "dnat to" rule for exactly
// target (ip:port; 10.0.0.1:80 does not match 10.0.0.1:8080).
func containsDNAT(text, target string) bool {
	needle := "dnat to " + target
	for {
		i := strings.Index(text, needle)
		if i < 0 {
			return false
		}
		rest := text[i+len(needle):]
		if rest == "" || rest[0] < '0' || rest[0] > '9' {
			return true
		}
		text = rest
	}
}

// liveTracker tells waiters when a committed nft transaction carried their
// endpoint's DNAT rule. Transactions are searched on a goroutine of its
// own, so the proxy's sync is not slowed by the benchmark.
type liveTracker struct {
	mu      sync.Mutex
	waiting map[string]chan time.Time
	queue   []committedTx
	runs    []nftRun
	kick    chan struct{}
	done    chan struct{}
}

// nftRun is one committed transaction: its size and the time the nft
// process took to apply it.
type nftRun struct {
	ops  int
	took time.Duration
}

// takeRuns returns the transactions committed since the last call.
func (t *liveTracker) takeRuns() []nftRun {
	t.mu.Lock()
	defer t.mu.Unlock()
	runs := t.runs
	t.runs = nil
	return runs
}

type committedTx struct {
	tx *knftables.Transaction
	at time.Time
}

func newLiveTracker() *liveTracker {
	t := &liveTracker{waiting: map[string]chan time.Time{}, kick: make(chan struct{}, 1), done: make(chan struct{})}
	go t.loop()
	return t
}

func (t *liveTracker) stop() { close(t.done) }

// expect registers interest in target (ip:port) before the change that
// adds it is written; the channel gets the commit time.
func (t *liveTracker) expect(target string) <-chan time.Time {
	ch := make(chan time.Time, 1)
	t.mu.Lock()
	t.waiting[target] = ch
	t.mu.Unlock()
	return ch
}

// committed is the nsNFT hook, called after every successful Run.
func (t *liveTracker) committed(tx *knftables.Transaction, at time.Time, took time.Duration) {
	t.mu.Lock()
	t.runs = append(t.runs, nftRun{ops: tx.NumOperations(), took: took})
	if len(t.waiting) > 0 {
		t.queue = append(t.queue, committedTx{tx, at})
	}
	t.mu.Unlock()
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

func (t *liveTracker) loop() {
	for {
		select {
		case <-t.done:
			return
		case <-t.kick:
		}
		t.mu.Lock()
		queue := t.queue
		t.queue = nil
		t.mu.Unlock()
		for _, c := range queue {
			text := c.tx.String()
			t.mu.Lock()
			for target, ch := range t.waiting {
				if containsDNAT(text, target) {
					ch <- c.at
					delete(t.waiting, target)
				}
			}
			t.mu.Unlock()
		}
	}
}

// syncRecord is one proxy sync, from its Stats.
type syncRecord struct {
	mode        string
	duration    time.Duration
	ops         int
	programming time.Duration // 0 when the sync carried no slice change
}

// syncPoller samples the proxy's Stats every 2 ms and records each sync.
// Syncs are at least MinSyncInterval (100 ms) apart, so none is missed in
// practice; missed counts any that were.
type syncPoller struct {
	px   *proxy.Proxier
	stop func()

	mu     sync.Mutex
	syncs  []syncRecord
	missed uint64
	count  uint64 // Syncs seen so far
}

func startSyncPoller(px *proxy.Proxier) *syncPoller {
	ctx, cancel := context.WithCancel(context.Background())
	p := &syncPoller{px: px}
	done := make(chan struct{})
	p.stop = func() { cancel(); <-done }
	go func() {
		defer close(done)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		var samples uint64
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			st := px.Stats()
			p.mu.Lock()
			if st.Syncs != p.count {
				rec := syncRecord{mode: st.LastSyncMode, duration: st.LastSyncDuration, ops: st.LastOperations}
				if st.ProgrammingSamples != samples {
					rec.programming = st.LastProgrammingLatency
				}
				p.syncs = append(p.syncs, rec)
				p.missed += st.Syncs - p.count - 1
				p.count = st.Syncs
			}
			samples = st.ProgrammingSamples
			p.mu.Unlock()
		}
	}()
	return p
}

// reset forgets the syncs recorded so far.
func (p *syncPoller) reset() {
	p.mu.Lock()
	p.syncs, p.missed = nil, 0
	p.mu.Unlock()
}

func (p *syncPoller) records() ([]syncRecord, uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]syncRecord(nil), p.syncs...), p.missed
}

func (p *syncPoller) sawFull() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.syncs {
		if s.mode != "incremental" {
			return true
		}
	}
	return false
}

// waitSyncs waits until n syncs have been recorded and returns them.
func (p *syncPoller) waitSyncs(ctx context.Context, n int, timeout time.Duration, bg *background) ([]syncRecord, error) {
	err := p.waitFor(ctx, timeout, bg, func() bool { return len(p.syncs) >= n })
	if err != nil {
		return nil, fmt.Errorf("waiting for %d proxy syncs: %w", n, err)
	}
	recs, _ := p.records()
	return recs, nil
}

// waitFull waits for a full resync to be recorded.
func (p *syncPoller) waitFull(ctx context.Context, timeout time.Duration, bg *background) error {
	err := p.waitFor(ctx, timeout, bg, func() bool {
		for _, s := range p.syncs {
			if s.mode != "incremental" {
				return true
			}
		}
		return false
	})
	if err != nil {
		return fmt.Errorf("waiting for a full resync: %w", err)
	}
	return nil
}

// waitQuiet waits until no sync has happened for quiet.
func (p *syncPoller) waitQuiet(ctx context.Context, quiet, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	p.mu.Lock()
	last, since := p.count, time.Now()
	p.mu.Unlock()
	for time.Since(since) < quiet {
		if time.Now().After(deadline) {
			return fmt.Errorf("proxy kept syncing for %s after its first sync", timeout)
		}
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			return err
		}
		p.mu.Lock()
		if p.count != last {
			last, since = p.count, time.Now()
		}
		p.mu.Unlock()
	}
	return nil
}

func (p *syncPoller) waitFor(ctx context.Context, timeout time.Duration, bg *background, cond func() bool) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		p.mu.Lock()
		ok := cond()
		p.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-bg.done:
			return bg.stopped("proxy")
		case <-deadline.C:
			return fmt.Errorf("not within %s", timeout)
		case <-tick.C:
		}
	}
}
