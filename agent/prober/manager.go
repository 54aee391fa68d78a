package prober

import (
	"context"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
)

// Manager runs the probe workers of the containers on a node: one
// goroutine per probe of each started container instance.
//
// Readiness is false until the readiness probe has succeeded
// successThreshold times in a row, and true as soon as the container has
// started when it has no readiness probe. A container with a startup probe
// has not started until that probe succeeds; liveness and readiness
// probes do not run before, and their initialDelaySeconds count from that
// success. Probes run on ticks every periodSeconds from the moment the
// worker may start (Start, or the startup success); a tick closer than
// initialDelaySeconds to the container start (or the startup success) is
// skipped, so the first probe runs on the first tick at or after the
// delay, as with the kubelet.
//
// When a liveness or startup probe fails failureThreshold times in a row,
// the Manager reports it and stops running that probe for the container
// instance (its readiness probe goes on): the caller is expected to kill
// the instance and Start the next one.
type Manager struct {
	report func(Update)
	clock  clock.Clock

	mu         sync.Mutex
	onProbe    func(Update)
	containers map[containerKey]*instance
	// workers are the live worker goroutines and changed is closed and
	// replaced whenever one of them changes state (for tests).
	workers map[*worker]struct{}
	changed chan struct{}
}

type containerKey struct {
	pod  types.UID
	name string
}

// instance is the probe state of one container instance.
type instance struct {
	id           string
	startedAt    time.Time
	hasReadiness bool
	// started is true once the startup probe passed (at once without
	// one); startedCh is closed then (nil without a startup probe) and
	// startedTime records when.
	started     bool
	startedCh   chan struct{}
	startedTime time.Time
	ready       bool
	alive       bool
	cancel      context.CancelFunc
}

// NewManager returns a Manager that calls report (from its worker
// goroutines; it must not block for long) and reads time from clk
// (clock.RealClock{} outside tests).
func NewManager(report func(Update), clk clock.Clock) *Manager {
	if report == nil {
		report = func(Update) {}
	}
	return &Manager{
		report:     report,
		clock:      clk,
		containers: map[containerKey]*instance{},
		workers:    map[*worker]struct{}{},
		changed:    make(chan struct{}),
	}
}

// OnProbe sets a function called after every probe attempt that failed,
// errored (Unknown) or passed with a warning, with the attempt's message:
// the kubelet records an Unhealthy (or ProbeWarning) event for each of
// them, not only when a threshold is crossed. Set it before Start.
func (m *Manager) OnProbe(f func(Update)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.onProbe = f
}

// Start starts the probe workers of one container instance (started at
// startedAt), replacing those of an earlier instance of the same
// container. Fields of t left empty are filled from pod, c and
// containerID. A nil pod or container is ignored.
func (m *Manager) Start(pod *v1.Pod, c *v1.Container, containerID string, startedAt time.Time, t Target) {
	if pod == nil || c == nil {
		return
	}
	if t.Pod == nil {
		t.Pod = pod
	}
	if t.Container == nil {
		t.Container = c
	}
	if t.ContainerID == "" {
		t.ContainerID = containerID
	}
	key := containerKey{pod: pod.UID, name: c.Name}
	ctx, cancel := context.WithCancel(context.Background())
	inst := &instance{
		id:           containerID,
		startedAt:    startedAt,
		hasReadiness: c.ReadinessProbe != nil,
		alive:        true,
		cancel:       cancel,
	}
	if c.StartupProbe != nil {
		inst.startedCh = make(chan struct{})
	} else {
		inst.started = true
	}

	var ws []*worker
	for _, p := range []struct {
		kind  Kind
		probe *v1.Probe
	}{{Startup, c.StartupProbe}, {Liveness, c.LivenessProbe}, {Readiness, c.ReadinessProbe}} {
		if p.probe == nil {
			continue
		}
		ws = append(ws, &worker{
			m:      m,
			key:    key,
			inst:   inst,
			kind:   p.kind,
			probe:  p.probe,
			target: t,
			grace:  graceFor(p.kind, p.probe, pod),
		})
	}

	m.mu.Lock()
	if old := m.containers[key]; old != nil {
		old.cancel()
	}
	m.containers[key] = inst
	for _, w := range ws {
		w.state = workerBusy
		m.workers[w] = struct{}{}
	}
	m.signalLocked()
	m.mu.Unlock()

	for _, w := range ws {
		go w.run(ctx)
	}
}

// graceFor is the grace period a liveness or startup failure kills the
// container with: the probe's, else the pod's.
func graceFor(kind Kind, p *v1.Probe, pod *v1.Pod) *int64 {
	if kind == Readiness {
		return nil
	}
	if p.TerminationGracePeriodSeconds != nil {
		v := *p.TerminationGracePeriodSeconds
		return &v
	}
	if pod != nil && pod.Spec.TerminationGracePeriodSeconds != nil {
		v := *pod.Spec.TerminationGracePeriodSeconds
		return &v
	}
	return nil
}

// Stop stops the probe workers of a container. An attempt already running
// is abandoned and its result dropped.
func (m *Manager) Stop(podUID types.UID, containerName string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := containerKey{pod: podUID, name: containerName}
	if inst := m.containers[key]; inst != nil {
		inst.cancel()
		delete(m.containers, key)
	}
}

// StopPod stops the probe workers of every container of a pod.
func (m *Manager) StopPod(podUID types.UID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for key, inst := range m.containers {
		if key.pod == podUID {
			inst.cancel()
			delete(m.containers, key)
		}
	}
}

// Ready reports whether the container has started and its readiness probe
// (if any) has passed; false for containers the Manager does not know.
func (m *Manager) Ready(podUID types.UID, containerName string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	inst := m.containers[containerKey{pod: podUID, name: containerName}]
	if inst == nil || !inst.started {
		return false
	}
	return !inst.hasReadiness || inst.ready
}

// Started reports whether the container's startup probe has passed (true
// when it has none); false for containers the Manager does not know.
func (m *Manager) Started(podUID types.UID, containerName string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	inst := m.containers[containerKey{pod: podUID, name: containerName}]
	return inst != nil && inst.started
}

// Alive reports whether neither the liveness nor the startup probe of the
// container's current instance has crossed its failure threshold; false
// for containers the Manager does not know.
func (m *Manager) Alive(podUID types.UID, containerName string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	inst := m.containers[containerKey{pod: podUID, name: containerName}]
	return inst != nil && inst.alive
}

// settle records a threshold-crossing result of w and reports whether
// the container's state changed; current is false when w's instance is
// no longer the container's (stopped or replaced), and then nothing is
// recorded.
func (m *Manager) settle(w *worker, r Result) (changed, current bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.containers[w.key] != w.inst {
		return false, false
	}
	inst := w.inst
	switch w.kind {
	case Startup:
		if r == Success && !inst.started {
			inst.started = true
			inst.startedTime = m.clock.Now()
			close(inst.startedCh)
			m.signalLocked()
			return true, true
		}
		if r == Failure {
			changed = inst.alive
			inst.alive = false
			return changed, true
		}
	case Liveness:
		if r == Failure {
			changed = inst.alive
			inst.alive = false
			return changed, true
		}
	case Readiness:
		ready := r == Success
		changed = inst.ready != ready
		inst.ready = ready
		return changed, true
	}
	return false, true
}

// signalLocked wakes whoever waits for a worker state change.
func (m *Manager) signalLocked() {
	close(m.changed)
	m.changed = make(chan struct{})
}
