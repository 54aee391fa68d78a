package prober

import (
	"context"
	"time"

	v1 "k8s.io/api/core/v1"
)

// workerState says what a worker goroutine is doing, so tests can wait
// until every worker is blocked on the (fake) clock.
type workerState int

const (
	workerBusy workerState = iota
	workerTimer
	workerGate
)

// worker probes one probe of one container instance.
type worker struct {
	m      *Manager
	key    containerKey
	inst   *instance
	kind   Kind
	probe  *v1.Probe
	target Target
	grace  *int64

	// last and streak count consecutive equal results (Unknown ignored).
	last   Result
	streak int

	// state and wakeAt are guarded by m.mu.
	state  workerState
	wakeAt time.Time
}

func (w *worker) run(ctx context.Context) {
	defer w.exit()
	period := time.Duration(w.probe.PeriodSeconds) * time.Second
	if period <= 0 {
		period = 10 * time.Second
	}
	delay := time.Duration(w.probe.InitialDelaySeconds) * time.Second

	// Liveness and readiness wait for the startup probe; their delay then
	// counts from its success.
	origin, delayFrom := w.m.clock.Now(), w.inst.startedAt
	if gate := w.inst.startedCh; gate != nil && w.kind != Startup {
		w.setState(workerGate, time.Time{})
		select {
		case <-gate:
		case <-ctx.Done():
			return
		}
		w.setState(workerBusy, time.Time{})
		origin = w.m.clock.Now()
		delayFrom = w.startedTime()
	}
	next := firstTick(origin, delayFrom, delay, period)

	for {
		if d := next.Sub(w.m.clock.Now()); d > 0 {
			timer := w.m.clock.NewTimer(d)
			w.setState(workerTimer, next)
			select {
			case <-timer.C():
			case <-ctx.Done():
				timer.Stop()
				return
			}
			w.setState(workerBusy, time.Time{})
		}
		if ctx.Err() != nil {
			return
		}
		start := w.m.clock.Now()
		res, msg := Run(ctx, w.kind, w.probe, w.target)
		if ctx.Err() != nil {
			return
		}
		if !w.handle(res, msg) {
			return
		}
		next = start.Add(period)
	}
}

// firstTick is the first of the ticks origin, origin+period, ... that is
// at least delay after delayFrom.
func firstTick(origin, delayFrom time.Time, delay, period time.Duration) time.Time {
	need := delayFrom.Add(delay).Sub(origin)
	if need <= 0 {
		return origin
	}
	ticks := (need + period - 1) / period
	return origin.Add(ticks * period)
}

// handle counts one attempt's result, reports what crossed a threshold and
// says whether the worker goes on probing: a passed startup probe and a
// failed liveness or startup probe end it.
func (w *worker) handle(res Result, msg string) bool {
	if res != Success || msg != "" {
		w.m.mu.Lock()
		observe := w.m.onProbe
		current := w.m.containers[w.key] == w.inst
		w.m.mu.Unlock()
		if observe != nil && current {
			observe(w.update(res, msg))
		}
	}
	if res == Unknown {
		return true
	}
	if res == w.last {
		w.streak++
	} else {
		w.last, w.streak = res, 1
	}
	threshold := int(w.probe.FailureThreshold)
	if res == Success {
		threshold = 1
		if w.kind == Readiness {
			threshold = int(w.probe.SuccessThreshold)
		}
	} else if threshold <= 0 {
		threshold = 3
	}
	if w.streak < threshold {
		return true
	}

	changed, current := w.m.settle(w, res)
	if !current {
		return false
	}
	fatal := res == Failure && w.kind != Readiness
	if changed || fatal {
		u := w.update(res, msg)
		if fatal {
			u.GracePeriodSeconds = w.grace
		}
		w.m.report(u)
	}
	if fatal || (w.kind == Startup && res == Success) {
		return false
	}
	return true
}

func (w *worker) update(res Result, msg string) Update {
	return Update{
		PodUID:        w.key.pod,
		ContainerName: w.key.name,
		ContainerID:   w.inst.id,
		Kind:          w.kind,
		Result:        res,
		Message:       msg,
	}
}

func (w *worker) startedTime() time.Time {
	w.m.mu.Lock()
	defer w.m.mu.Unlock()
	return w.inst.startedTime
}

func (w *worker) setState(s workerState, wakeAt time.Time) {
	w.m.mu.Lock()
	defer w.m.mu.Unlock()
	w.state, w.wakeAt = s, wakeAt
	w.m.signalLocked()
}

func (w *worker) exit() {
	w.m.mu.Lock()
	defer w.m.mu.Unlock()
	delete(w.m.workers, w)
	w.m.signalLocked()
}
