package pods

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-sh/skiff/agent/prober"
	"github.com/skiff-sh/skiff/agent/volumes"
)

// worker owns one pod: only it touches the pod's sandbox and containers.
type worker struct {
	m         *Manager
	uid       types.UID
	namespace string
	name      string
	wakeCh    chan struct{}
	done      chan struct{}

	mu sync.Mutex
	// liveness holds containers whose liveness or startup probe failed:
	// container ID -> the update, consumed by the next sync.
	unhealthy map[string]prober.Update
	// startTime is when the agent first saw the pod.
	startTime time.Time
	// lastStatus is the status last written, to skip identical writes.
	lastStatus *corev1.PodStatus
	lastRV     string
	// reportedRunning is set once the pod's start was observed in metrics.
	reportedRunning bool
	// terminal is set once the pod reached Succeeded or Failed here.
	terminal bool
	// messages about waiting containers (pull errors, config errors),
	// by container name: reason and message.
	waiting map[string]waitingReason
	// volumes are the pod's volumes once set up; lastRefresh is when their
	// API-fed content was last re-projected.
	volumes     *volumes.PodVolumes
	lastRefresh time.Time
	// probedIDs are the container instances whose probes run.
	probedIDs map[string]bool
}

// wrote records the resourceVersion of the worker's own status write.
func (w *worker) wrote(rv string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lastRV = rv
}

// ownWrite reports whether rv is the worker's own last status write.
func (w *worker) ownWrite(rv string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return rv != "" && rv == w.lastRV
}

func (w *worker) probed(id string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.probedIDs[id]
}

func (w *worker) markProbed(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.probedIDs[id] = true
}

type waitingReason struct{ reason, message string }

func newWorker(m *Manager, uid types.UID, ns, name string) *worker {
	return &worker{
		m: m, uid: uid, namespace: ns, name: name,
		wakeCh:    make(chan struct{}, 1),
		done:      make(chan struct{}),
		unhealthy: map[string]prober.Update{},
		waiting:   map[string]waitingReason{},
		probedIDs: map[string]bool{},
	}
}

func (w *worker) wake() {
	select {
	case w.wakeCh <- struct{}{}:
	default:
	}
}

func (w *worker) probeResult(u prober.Update) {
	if (u.Kind == prober.Liveness || u.Kind == prober.Startup) && u.Result == prober.Failure {
		w.mu.Lock()
		w.unhealthy[u.ContainerID] = u
		w.mu.Unlock()
	}
}

func (w *worker) takeUnhealthy(containerID string) (prober.Update, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	u, ok := w.unhealthy[containerID]
	delete(w.unhealthy, containerID)
	return u, ok
}

func (w *worker) setWaiting(container, reason, message string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if reason == "" {
		delete(w.waiting, container)
		return
	}
	w.waiting[container] = waitingReason{reason, message}
}

func (w *worker) getWaiting(container string) (waitingReason, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	r, ok := w.waiting[container]
	return r, ok
}

// run syncs the pod whenever woken, and at least every few seconds while
// something is pending, until the pod is gone for good or ctx ends.
func (w *worker) run(ctx context.Context) {
	defer close(w.done)
	for {
		next, finished := w.m.syncPod(ctx, w)
		if finished && w.m.workerDone(w) {
			return
		}
		if next <= 0 {
			next = 30 * time.Second
		}
		t := w.m.clock.NewTimer(next)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-w.wakeCh:
			t.Stop()
		case <-t.C():
		}
	}
}
