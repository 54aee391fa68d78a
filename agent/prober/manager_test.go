package prober

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// harness drives a Manager with a fake clock and exec probes whose exit
// codes the test sets per command.
type harness struct {
	t   *testing.T
	clk *clocktesting.FakeClock
	m   *Manager

	mu       sync.Mutex
	codes    map[string]int
	errs     map[string]error
	calls    map[string][]time.Duration // per command, offsets from t0
	updates  []Update
	attempts []Update
}

func newHarness(t *testing.T) *harness {
	h := &harness{
		t:     t,
		clk:   clocktesting.NewFakeClock(t0),
		codes: map[string]int{},
		errs:  map[string]error{},
		calls: map[string][]time.Duration{},
	}
	h.m = NewManager(func(u Update) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.updates = append(h.updates, u)
	}, h.clk)
	h.m.OnProbe(func(u Update) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.attempts = append(h.attempts, u)
	})
	t.Cleanup(func() { h.m.StopPod("uid") })
	return h
}

func (h *harness) exec(_ context.Context, _ string, cmd []string, _ time.Duration) (int, []byte, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	name := cmd[0]
	h.calls[name] = append(h.calls[name], h.clk.Now().Sub(t0))
	if err := h.errs[name]; err != nil {
		return 0, nil, err
	}
	code := h.codes[name]
	return code, []byte(fmt.Sprintf("%s exit %d", name, code)), nil
}

func (h *harness) set(cmd string, code int, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.codes[cmd], h.errs[cmd] = code, err
}

func (h *harness) start(pod *v1.Pod, c *v1.Container, id string) {
	h.m.Start(pod, c, id, h.clk.Now(), Target{PodIP: "10.42.0.5", Exec: h.exec})
	h.settle()
}

// settle waits until every worker is blocked on a timer that has not
// fired yet, or on a startup gate that is still closed.
func (h *harness) settle() {
	h.t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		h.m.mu.Lock()
		idle := true
		for w := range h.m.workers {
			if h.m.containers[w.key] != w.inst {
				// Stopped or replaced: it is on its way out.
				idle = false
				continue
			}
			switch w.state {
			case workerBusy:
				idle = false
			case workerTimer:
				idle = idle && w.wakeAt.After(h.clk.Now())
			case workerGate:
				idle = idle && !w.inst.started
			}
		}
		changed := h.m.changed
		h.m.mu.Unlock()
		if idle {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			h.t.Fatal("probe workers did not settle")
		}
	}
}

// advance moves the clock one second at a time, letting the workers run
// at each step.
func (h *harness) advance(d time.Duration) {
	h.t.Helper()
	for ; d > 0; d -= time.Second {
		h.clk.Step(time.Second)
		h.settle()
	}
}

func (h *harness) callTimes(cmd string) []time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]time.Duration(nil), h.calls[cmd]...)
}

func (h *harness) takeUpdates() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, u := range h.updates {
		s := fmt.Sprintf("%s %s %s", u.ContainerID, u.Kind, u.Result)
		if u.GracePeriodSeconds != nil {
			s += fmt.Sprintf(" grace=%d", *u.GracePeriodSeconds)
		}
		out = append(out, s)
	}
	h.updates = nil
	return out
}

func secs(ss ...int) []time.Duration {
	var out []time.Duration
	for _, s := range ss {
		out = append(out, time.Duration(s)*time.Second)
	}
	return out
}

func testPod(c ...v1.Container) *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "uid"},
		Spec:       v1.PodSpec{Containers: c},
	}
}

func probe(cmd string, delay, period, success, failure int32) *v1.Probe {
	p := execProbe(cmd)
	p.InitialDelaySeconds, p.PeriodSeconds, p.SuccessThreshold, p.FailureThreshold = delay, period, success, failure
	return p
}

func expect[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got %v\nwant %v", what, got, want)
	}
}

func TestManagerWithoutProbes(t *testing.T) {
	h := newHarness(t)
	c := v1.Container{Name: "app"}
	expect(t, "ready before start", h.m.Ready("uid", "app"), false)
	h.start(testPod(c), &c, "c1")
	expect(t, "started", h.m.Started("uid", "app"), true)
	expect(t, "ready", h.m.Ready("uid", "app"), true)
	expect(t, "alive", h.m.Alive("uid", "app"), true)
	h.m.Stop("uid", "app")
	expect(t, "ready after stop", h.m.Ready("uid", "app"), false)
	expect(t, "started after stop", h.m.Started("uid", "app"), false)
}

func TestManagerReadinessThresholds(t *testing.T) {
	h := newHarness(t)
	c := v1.Container{Name: "app", ReadinessProbe: probe("ready", 0, 5, 2, 2)}
	h.start(testPod(c), &c, "c1")

	// First probe at once, then every 5s; two successes make it ready.
	expect(t, "probes", h.callTimes("ready"), secs(0))
	expect(t, "ready after one success", h.m.Ready("uid", "app"), false)
	h.advance(5 * time.Second)
	expect(t, "probes", h.callTimes("ready"), secs(0, 5))
	expect(t, "ready after two successes", h.m.Ready("uid", "app"), true)
	expect(t, "updates", h.takeUpdates(), []string{"c1 Readiness Success"})

	// One failure is not enough with failureThreshold 2.
	h.set("ready", 1, nil)
	h.advance(5 * time.Second)
	expect(t, "ready after one failure", h.m.Ready("uid", "app"), true)
	h.advance(5 * time.Second)
	expect(t, "ready after two failures", h.m.Ready("uid", "app"), false)
	expect(t, "updates", h.takeUpdates(), []string{"c1 Readiness Failure"})

	// Further failures change nothing and keep probing; readiness never
	// stops the container.
	h.advance(10 * time.Second)
	expect(t, "updates", h.takeUpdates(), []string(nil))
	expect(t, "probes", h.callTimes("ready"), secs(0, 5, 10, 15, 20, 25))
	expect(t, "alive", h.m.Alive("uid", "app"), true)

	// Success, failure, success: the run restarts at each change.
	h.set("ready", 0, nil)
	h.advance(5 * time.Second)
	h.set("ready", 1, nil)
	h.advance(5 * time.Second)
	h.set("ready", 0, nil)
	h.advance(5 * time.Second)
	expect(t, "ready after interrupted successes", h.m.Ready("uid", "app"), false)
	h.advance(5 * time.Second)
	expect(t, "ready after two successes", h.m.Ready("uid", "app"), true)
	expect(t, "updates", h.takeUpdates(), []string{"c1 Readiness Success"})

	// Failed attempts are observed one by one, with their messages.
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.attempts) != 5 || h.attempts[0].Message != "Readiness probe failed: ready exit 1" {
		t.Fatalf("attempts: %+v", h.attempts)
	}
}

func TestManagerLivenessFailureStopsProbing(t *testing.T) {
	h := newHarness(t)
	grace := int64(7)
	c := v1.Container{Name: "app", LivenessProbe: probe("live", 0, 10, 1, 3)}
	c.LivenessProbe.TerminationGracePeriodSeconds = &grace
	pod := testPod(c)
	podGrace := int64(30)
	pod.Spec.TerminationGracePeriodSeconds = &podGrace
	h.start(pod, &c, "c1")

	h.advance(10 * time.Second)
	expect(t, "updates while healthy", h.takeUpdates(), []string(nil))
	h.set("live", 1, nil)
	h.advance(20 * time.Second)
	expect(t, "alive after two failures", h.m.Alive("uid", "app"), true)
	h.advance(10 * time.Second)
	expect(t, "updates", h.takeUpdates(), []string{"c1 Liveness Failure grace=7"})
	expect(t, "alive", h.m.Alive("uid", "app"), false)
	expect(t, "ready (no readiness probe)", h.m.Ready("uid", "app"), true)

	// The instance is held: no more probes until the next one starts.
	h.advance(60 * time.Second)
	expect(t, "probes", h.callTimes("live"), secs(0, 10, 20, 30, 40))

	// The restarted instance starts from scratch.
	h.set("live", 0, nil)
	h.start(pod, &c, "c2")
	expect(t, "alive after restart", h.m.Alive("uid", "app"), true)
	h.set("live", 1, nil)
	h.advance(30 * time.Second)
	expect(t, "updates", h.takeUpdates(), []string{"c2 Liveness Failure grace=7"})
	expect(t, "probes", h.callTimes("live"), secs(0, 10, 20, 30, 40, 100, 110, 120, 130))
}

func TestManagerUnknownDoesNotCount(t *testing.T) {
	h := newHarness(t)
	c := v1.Container{Name: "app", LivenessProbe: probe("live", 0, 1, 1, 3)}
	h.start(testPod(c), &c, "c1")
	down := errors.New("container is not running")
	// failure, unknown, failure, unknown: two failures in a row so far.
	for _, err := range []error{nil, down, nil, down} {
		h.set("live", 1, err)
		h.advance(time.Second)
	}
	expect(t, "updates before the third failure", h.takeUpdates(), []string(nil))
	h.set("live", 1, nil)
	h.advance(time.Second)
	expect(t, "updates", h.takeUpdates(), []string{"c1 Liveness Failure"})

	h.mu.Lock()
	defer h.mu.Unlock()
	var errored int
	for _, a := range h.attempts {
		if a.Result == Unknown {
			errored++
			if !strings.HasPrefix(a.Message, "Liveness probe errored: ") {
				t.Fatalf("errored attempt message %q", a.Message)
			}
		}
	}
	expect(t, "errored attempts observed", errored, 2)
	expect(t, "attempts observed", len(h.attempts), 5)
}

func TestManagerInitialDelay(t *testing.T) {
	tests := []struct {
		name          string
		delay, period int32
		want          []time.Duration
	}{
		{"no delay", 0, 10, secs(0, 10, 20)},
		{"delay of one period", 10, 10, secs(10, 20)},
		{"delay between ticks", 15, 10, secs(20)},
		{"delay below the period", 3, 10, secs(10, 20)},
		{"default period", 0, 0, secs(0, 10, 20)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			c := v1.Container{Name: "app", ReadinessProbe: probe("ready", tt.delay, tt.period, 1, 3)}
			h.start(testPod(c), &c, "c1")
			h.advance(25 * time.Second)
			expect(t, "probe times", h.callTimes("ready"), tt.want)
		})
	}
}

func TestManagerStartupGating(t *testing.T) {
	h := newHarness(t)
	c := v1.Container{
		Name:           "app",
		StartupProbe:   probe("startup", 0, 2, 1, 5),
		LivenessProbe:  probe("live", 3, 5, 1, 3),
		ReadinessProbe: probe("ready", 0, 5, 1, 3),
	}
	h.set("startup", 1, nil)
	h.start(testPod(c), &c, "c1")
	h.advance(2 * time.Second)
	expect(t, "started while failing", h.m.Started("uid", "app"), false)
	expect(t, "ready while not started", h.m.Ready("uid", "app"), false)

	h.set("startup", 0, nil)
	h.advance(2 * time.Second) // startup passes at 4s
	expect(t, "started", h.m.Started("uid", "app"), true)
	expect(t, "startup probes", h.callTimes("startup"), secs(0, 2, 4))
	// Readiness probes at once; liveness waits its 3s delay, rounded up
	// to its 5s period, counted from the startup success.
	expect(t, "readiness probes", h.callTimes("ready"), secs(4))
	expect(t, "ready", h.m.Ready("uid", "app"), true)
	// The readiness worker may report before the startup worker does.
	ups := h.takeUpdates()
	sort.Strings(ups)
	expect(t, "updates", ups, []string{"c1 Readiness Success", "c1 Startup Success"})

	h.advance(10 * time.Second)
	expect(t, "startup probes after success", h.callTimes("startup"), secs(0, 2, 4))
	expect(t, "liveness probes", h.callTimes("live"), secs(9, 14))
	expect(t, "readiness probes", h.callTimes("ready"), secs(4, 9, 14))
}

func TestManagerStartupFailure(t *testing.T) {
	h := newHarness(t)
	c := v1.Container{
		Name:           "app",
		StartupProbe:   probe("startup", 0, 3, 1, 2),
		LivenessProbe:  probe("live", 0, 1, 1, 1),
		ReadinessProbe: probe("ready", 0, 1, 1, 1),
	}
	pod := testPod(c)
	grace := int64(12)
	pod.Spec.TerminationGracePeriodSeconds = &grace
	h.set("startup", 1, nil)
	h.start(pod, &c, "c1")
	h.advance(3 * time.Second)
	expect(t, "updates", h.takeUpdates(), []string{"c1 Startup Failure grace=12"})
	expect(t, "alive", h.m.Alive("uid", "app"), false)
	expect(t, "started", h.m.Started("uid", "app"), false)
	h.advance(10 * time.Second)
	expect(t, "startup probes", h.callTimes("startup"), secs(0, 3))
	expect(t, "liveness probes", h.callTimes("live"), []time.Duration(nil))
	expect(t, "readiness probes", h.callTimes("ready"), []time.Duration(nil))
}

func TestManagerStop(t *testing.T) {
	h := newHarness(t)
	a := v1.Container{Name: "a", ReadinessProbe: probe("ready-a", 0, 1, 1, 1)}
	b := v1.Container{Name: "b", ReadinessProbe: probe("ready-b", 0, 1, 1, 1)}
	pod := testPod(a, b)
	h.start(pod, &a, "ca")
	h.start(pod, &b, "cb")
	h.advance(time.Second)
	expect(t, "a ready", h.m.Ready("uid", "a"), true)

	h.m.Stop("uid", "a")
	h.settle()
	h.advance(3 * time.Second)
	expect(t, "a probes", h.callTimes("ready-a"), secs(0, 1))
	expect(t, "b probes", h.callTimes("ready-b"), secs(0, 1, 2, 3, 4))
	expect(t, "a ready after stop", h.m.Ready("uid", "a"), false)
	expect(t, "b ready", h.m.Ready("uid", "b"), true)

	h.m.StopPod("uid")
	h.advance(3 * time.Second)
	expect(t, "b probes", h.callTimes("ready-b"), secs(0, 1, 2, 3, 4))
	expect(t, "b ready after StopPod", h.m.Ready("uid", "b"), false)
	h.m.mu.Lock()
	defer h.m.mu.Unlock()
	expect(t, "live workers", len(h.m.workers), 0)
	expect(t, "known containers", len(h.m.containers), 0)
}

func TestManagerDropsStaleResults(t *testing.T) {
	h := newHarness(t)
	c := v1.Container{Name: "app", ReadinessProbe: probe("ready", 0, 1, 1, 1)}
	pod := testPod(c)
	release := make(chan struct{})
	entered := make(chan struct{})
	slow := func(ctx context.Context, _ string, _ []string, _ time.Duration) (int, []byte, error) {
		close(entered)
		<-release
		return 0, nil, nil
	}
	h.m.Start(pod, &c, "c1", h.clk.Now(), Target{PodIP: "10.42.0.5", Exec: slow})
	<-entered
	// The container is replaced while its first probe is running.
	h.m.Stop(types.UID("uid"), "app")
	close(release)
	h.settle()
	expect(t, "updates", h.takeUpdates(), []string(nil))
	expect(t, "ready", h.m.Ready("uid", "app"), false)
}
