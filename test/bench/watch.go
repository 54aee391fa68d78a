package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
)

// watchWriters is how many ConfigMaps (one writer each) share the write
// rate, so one slow request does not hold up the schedule.
const watchWriters = 4

// watchDrain is how long to wait, after the last write, for its event.
const watchDrain = 10 * time.Second

// WatchResult is measurement 5: delivery lag of watch events under a
// steady write rate.
type WatchResult struct {
	Rate            int     `json:"writes_per_second"`
	DurationSeconds float64 `json:"duration_seconds"`
	Writers         int     `json:"writers"`
	// Per run, then summarised.
	Writes       []int `json:"writes"`
	Events       []int `json:"events"`
	Lost         []int `json:"lost"`
	Late         []int `json:"late_writes"`
	AchievedRate Stat  `json:"achieved_writes_per_second"`
	P50Ms        Stat  `json:"lag_p50_ms"`
	P99Ms        Stat  `json:"lag_p99_ms"`
	MaxMs        Stat  `json:"lag_max_ms"`
	WriteP99Ms   Stat  `json:"write_p99_ms"`
}

// watchRun is one run's raw outcome.
type watchRun struct {
	writes, events, lost, late int
	achieved                   float64
	lag, write                 Latencies
}

func measureWatch(ctx context.Context, e *env) error {
	r := &WatchResult{Rate: e.opts.watchRate, DurationSeconds: e.opts.watchDuration.Seconds(), Writers: watchWriters}
	var achieved, p50, p99, maxes, wp99 []float64
	for i := range e.opts.heavyRuns {
		dir := e.lab.NewDataDir("watch")
		s, err := e.lab.Start(ctx, dir)
		if err != nil {
			return err
		}
		run, err := watchOnce(ctx, s, e.opts.watchRate, e.opts.watchDuration)
		stopErr := s.Stop()
		if err != nil {
			return err
		}
		if stopErr != nil {
			return stopErr
		}
		if err := e.lab.RemoveDataDir(dir); err != nil {
			return err
		}
		r.Writes = append(r.Writes, run.writes)
		r.Events = append(r.Events, run.events)
		r.Lost = append(r.Lost, run.lost)
		r.Late = append(r.Late, run.late)
		achieved = append(achieved, run.achieved)
		p50 = append(p50, ms(run.lag.P50))
		p99 = append(p99, ms(run.lag.P99))
		maxes = append(maxes, ms(run.lag.Max))
		wp99 = append(wp99, ms(run.write.P99))
		e.progress("watch run %d/%d: %d writes (%.1f/s, %d late), %d events, %d lost; lag p50 %.2f ms p99 %.2f ms max %.2f ms",
			i+1, e.opts.heavyRuns, run.writes, run.achieved, run.late, run.events, run.lost, ms(run.lag.P50), ms(run.lag.P99), ms(run.lag.Max))
	}
	r.AchievedRate, r.P50Ms, r.P99Ms, r.MaxMs, r.WriteP99Ms = Summarize(achieved), Summarize(p50), Summarize(p99), Summarize(maxes), Summarize(wp99)
	e.rep.Watch = r
	lost := 0
	for _, l := range r.Lost {
		lost += l
	}
	e.rep.add(fmt.Sprintf("watch lag p99 @%d writes/s", r.Rate), "%s   (p50 %.2f ms, worst %.2f ms)",
		fmtStat(r.P99Ms, "ms", 2), r.P50Ms.Median, r.MaxMs.Max)
	e.rep.add("watch events lost", "%d in all runs   (achieved %.1f writes/s median, write p99 %.2f ms)",
		lost, r.AchievedRate.Median, r.WriteP99Ms.Median)
	if lost > 0 {
		return fmt.Errorf("watch lost %d events (runs: %v)", lost, r.Lost)
	}
	return nil
}

// watchOnce opens a watch on a namespace's ConfigMaps, writes at rate for
// d (each write carries its sequence number and send time), and measures
// when each event arrives.
func watchOnce(ctx context.Context, s *Server, rate int, d time.Duration) (watchRun, error) {
	cfg, err := s.RESTConfig()
	if err != nil {
		return watchRun{}, err
	}
	writer, err := newClient(cfg)
	if err != nil {
		return watchRun{}, err
	}
	watcher, err := newClient(cfg)
	if err != nil {
		return watchRun{}, err
	}
	const ns = "watch"
	if err := createNamespace(ctx, writer, ns); err != nil {
		return watchRun{}, err
	}
	for k := range watchWriters {
		if _, err := writer.CoreV1().ConfigMaps(ns).Create(ctx, lagConfigMap(k, -1, 0), metav1.CreateOptions{}); err != nil {
			return watchRun{}, fmt.Errorf("create configmap: %w", err)
		}
	}
	list, err := watcher.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return watchRun{}, fmt.Errorf("list configmaps: %w", err)
	}
	w, err := watcher.CoreV1().ConfigMaps(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		return watchRun{}, fmt.Errorf("open watch: %w", err)
	}
	defer w.Stop()

	total := int(float64(rate) * d.Seconds())
	rec := newLagRecorder(total)
	recvDone := make(chan struct{})
	go func() {
		defer close(recvDone)
		rec.receive(w.ResultChan())
	}()

	wr, err := writeSteadily(ctx, writer, ns, rate, total)
	if err != nil {
		return watchRun{}, err
	}
	// Wait for the last events, then stop the watch and the receiver.
	deadline := time.Now().Add(watchDrain)
	for rec.count(wr.ok) < len(wr.ok) && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	closedEarly := false
	select {
	case <-recvDone:
		closedEarly = true
	default:
	}
	rec.stopping.Store(true) // what Stop makes the stream say is not a failure
	w.Stop()
	<-recvDone
	if ctx.Err() != nil {
		return watchRun{}, ctx.Err()
	}
	if err := rec.failure(); err != nil {
		return watchRun{}, err
	}
	got := rec.count(wr.ok)
	if closedEarly && got < len(wr.ok) {
		return watchRun{}, fmt.Errorf("the server ended the watch early, after %d of %d events", got, len(wr.ok))
	}
	return watchRun{
		writes:   len(wr.ok),
		events:   rec.events(),
		lost:     len(wr.ok) - got,
		late:     wr.late,
		achieved: wr.achieved,
		lag:      Distribution(rec.lags()),
		write:    Distribution(wr.latencies),
	}, nil
}

// lagConfigMap is writer k's ConfigMap carrying write seq sent at sentNs.
func lagConfigMap(k, seq int, sentNs int64) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("lag-%d", k)},
		Data: map[string]string{
			"seq":     strconv.Itoa(seq),
			"sent-ns": strconv.FormatInt(sentNs, 10),
		},
	}
}

// writeResult is what the writers did.
type writeResult struct {
	ok        []int // sequence numbers whose update succeeded
	late      int   // writes that started more than one interval behind schedule
	achieved  float64
	latencies []time.Duration
}

// writeSteadily sends total updates, write seq at start + seq/rate,
// spread round-robin over watchWriters ConfigMaps with one sequential
// writer each. The updates carry no resourceVersion (unconditional).
func writeSteadily(ctx context.Context, c kubernetes.Interface, ns string, rate, total int) (writeResult, error) {
	interval := time.Second / time.Duration(rate)
	var (
		mu       sync.Mutex
		res      writeResult
		firstErr error
		failed   atomic.Int64
		wg       sync.WaitGroup
	)
	queues := make([]chan int, watchWriters)
	start := time.Now()
	for k := range queues {
		queues[k] = make(chan int, total)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := range queues[k] {
				due := start.Add(time.Duration(seq) * interval)
				t0 := time.Now()
				cm := lagConfigMap(k, seq, t0.UnixNano())
				_, err := c.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{})
				lat := time.Since(t0)
				mu.Lock()
				if err != nil {
					failed.Add(1)
					if firstErr == nil {
						firstErr = err
					}
				} else {
					res.ok = append(res.ok, seq)
					res.latencies = append(res.latencies, lat)
				}
				if t0.Sub(due) > interval {
					res.late++
				}
				mu.Unlock()
			}
		}()
	}
	for seq := range total {
		due := start.Add(time.Duration(seq) * interval)
		if err := sleep(ctx, time.Until(due)); err != nil {
			break
		}
		queues[seq%watchWriters] <- seq
	}
	for _, q := range queues {
		close(q)
	}
	wg.Wait()
	res.achieved = float64(len(res.ok)) / time.Since(start).Seconds()
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	if firstErr != nil {
		return res, fmt.Errorf("%d of %d writes failed, first: %w", failed.Load(), total, firstErr)
	}
	return res, nil
}

// lagRecorder collects, from a watch, each write's arrival lag.
type lagRecorder struct {
	mu    sync.Mutex
	seen  []bool
	lag   []time.Duration
	n     int
	dups  int
	fault error
	// stopping is set before the benchmark stops the watch.
	stopping atomic.Bool
}

func newLagRecorder(total int) *lagRecorder {
	return &lagRecorder{seen: make([]bool, total)}
}

// receive consumes events until the channel closes. Only MODIFIED events
// carrying a sequence number count; an ERROR event is a failure.
func (r *lagRecorder) receive(ch <-chan watch.Event) {
	for ev := range ch {
		now := time.Now()
		if r.stopping.Load() {
			continue
		}
		switch ev.Type {
		case watch.Modified:
		case watch.Error:
			r.fail(fmt.Errorf("watch error event: %v", ev.Object))
			continue
		default:
			continue
		}
		cm, ok := ev.Object.(*corev1.ConfigMap)
		if !ok {
			r.fail(fmt.Errorf("watch delivered a %T", ev.Object))
			continue
		}
		seq, err1 := strconv.Atoi(cm.Data["seq"])
		sent, err2 := strconv.ParseInt(cm.Data["sent-ns"], 10, 64)
		if err := errors.Join(err1, err2); err != nil {
			r.fail(fmt.Errorf("event without send stamp: %w", err))
			continue
		}
		r.mu.Lock()
		switch {
		case seq < 0 || seq >= len(r.seen):
			r.fault = errors.Join(r.fault, fmt.Errorf("event with unknown seq %d", seq))
		case r.seen[seq]:
			r.dups++
		default:
			r.seen[seq] = true
			r.n++
			r.lag = append(r.lag, now.Sub(time.Unix(0, sent)))
		}
		r.mu.Unlock()
	}
}

func (r *lagRecorder) fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fault == nil {
		r.fault = err
	}
}

// count is how many of seqs have arrived.
func (r *lagRecorder) count(seqs []int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, s := range seqs {
		if r.seen[s] {
			n++
		}
	}
	return n
}

func (r *lagRecorder) events() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n + r.dups
}

func (r *lagRecorder) lags() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Duration(nil), r.lag...)
}

func (r *lagRecorder) failure() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.dups > 0 {
		return errors.Join(r.fault, fmt.Errorf("%d duplicate events", r.dups))
	}
	return r.fault
}
