package pods

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/agent/labels"
	"github.com/skiff-sh/skiff/agent/volumes"
)

// podRuntimeOf lists the runtime's sandboxes and containers of one pod.
func (m *Manager) podRuntimeOf(ctx context.Context, uid types.UID) (*podRuntime, error) {
	sel := map[string]string{labels.ManagedBy: m.cfg.NodeName, labels.PodUID: string(uid)}
	sbs, err := m.cfg.Runtime.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{LabelSelector: sel}})
	if err != nil {
		return nil, fmt.Errorf("listing sandboxes: %w", err)
	}
	cs, err := m.cfg.Runtime.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{LabelSelector: sel}})
	if err != nil {
		return nil, fmt.Errorf("listing containers: %w", err)
	}
	snap := groupRuntime(sbs.Items, cs.Containers)
	if r := snap[uid]; r != nil {
		return r, nil
	}
	return &podRuntime{containers: map[string][]*runtimeapi.Container{}}, nil
}

// syncPod makes the runtime match one pod and reports its status. It
// returns when to look again, and finished once the pod is gone from both
// the API and the runtime.
func (m *Manager) syncPod(ctx context.Context, w *worker) (time.Duration, bool) {
	if ctx.Err() != nil {
		return 0, false
	}
	start := time.Now()
	pod := m.currentPod(w)
	rt, err := m.podRuntimeOf(ctx, w.uid)
	if err != nil {
		m.log.Warn("reading the runtime", "pod", w.namespace+"/"+w.name, "err", err)
		return 2 * time.Second, false
	}
	if pod == nil {
		// Gone from the API (force-deleted, or deleted while the agent was
		// away): stop and remove everything without waiting.
		defer m.metrics.since("remove", start)
		if err := m.removePod(ctx, w, nil, rt, 2); err != nil {
			m.log.Warn("removing a deleted pod", "pod", w.namespace+"/"+w.name, "err", err)
			return 2 * time.Second, false
		}
		return 0, true
	}
	if pod.DeletionTimestamp != nil {
		defer m.metrics.since("terminate", start)
		return m.terminatePod(ctx, w, pod, rt), false
	}
	defer m.metrics.since("sync", start)
	if w.startTime.IsZero() {
		w.startTime = m.clock.Now()
		if pod.Status.StartTime != nil {
			w.startTime = pod.Status.StartTime.Time
		}
		// A pod already running when first seen (adopted after an agent
		// restart) is not a start to measure.
		w.reportedRunning = pod.Status.Phase == corev1.PodRunning
	}
	if isTerminal(pod) || w.terminal {
		// Finished pods keep their containers (for logs) but not their
		// sandbox, which holds the IP.
		m.stopPodContainers(ctx, w, pod, rt, gracePeriod(pod))
		m.stopSandboxes(ctx, rt)
		m.writeStatus(ctx, w, pod, rt)
		return time.Minute, false
	}
	next := m.runPod(ctx, w, pod, rt)
	// Re-read: runPod started or stopped containers.
	if rt2, err := m.podRuntimeOf(ctx, w.uid); err == nil {
		rt = rt2
	}
	m.writeStatus(ctx, w, pod, rt)
	if w.terminal {
		return time.Second, false
	}
	return next, false
}

// currentPod returns the worker's pod from the informer, or nil if it is
// gone (a new pod with the same name is not this pod).
func (m *Manager) currentPod(w *worker) *corev1.Pod {
	if w.name == "" {
		return m.podByUID(w.uid)
	}
	p, err := m.pods.Pods(w.namespace).Get(w.name)
	if err != nil || p.UID != w.uid {
		return m.podByUID(w.uid)
	}
	return p
}

func isTerminal(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

func gracePeriod(p *corev1.Pod) int64 {
	if p.DeletionGracePeriodSeconds != nil {
		return *p.DeletionGracePeriodSeconds
	}
	if p.Spec.TerminationGracePeriodSeconds != nil {
		return *p.Spec.TerminationGracePeriodSeconds
	}
	return 30
}

// refreshEvery is how often configMap, secret, downwardAPI and projected
// volumes are re-read from the API (the pods' resync wakes workers every
// 10 s, so updates arrive within about 20 s; kube's default is a minute).
const refreshEvery = 10 * time.Second

// runPod brings the pod's volumes, sandbox and containers to what the spec
// asks, and returns when to look again.
func (m *Manager) runPod(ctx context.Context, w *worker, pod *corev1.Pod, rt *podRuntime) time.Duration {
	// Volumes are set up once per worker (an agent restart sets them up
	// again, which reuses what exists); after that only their API-fed
	// content is re-projected, every refreshEvery, not on every sync.
	now := m.clock.Now()
	pv := w.volumes
	if pv == nil {
		var err error
		if pv, err = m.cfg.Volumes.Setup(ctx, pod); err != nil {
			m.events.Event(pod, corev1.EventTypeWarning, "FailedMount", err.Error())
			return 5 * time.Second
		}
		w.volumes, w.lastRefresh = pv, now
	} else if now.Sub(w.lastRefresh) >= refreshEvery {
		if err := m.cfg.Volumes.Refresh(ctx, pod); err != nil {
			m.log.Warn("refreshing volumes", "pod", pod.Namespace+"/"+pod.Name, "err", err)
		}
		w.lastRefresh = now
	}

	sb := rt.readySandbox()
	if sb == nil {
		if len(rt.sandboxes) > 0 && rt.hasContainers() {
			m.events.Event(pod, corev1.EventTypeNormal, "SandboxChanged", "Pod sandbox changed, it will be killed and re-created.")
			m.stopPodContainers(ctx, w, pod, rt, 2)
			if pod.Spec.RestartPolicy == corev1.RestartPolicyNever && rt.anyMainStarted(pod) {
				// The containers cannot run again: the pod is over.
				w.terminal = true
				return time.Second
			}
		}
		key := string(pod.UID) + "/sandbox"
		if wait, _, until := m.backoff.waiting(key, now); wait {
			return until.Sub(now)
		}
		id, err := m.createSandbox(ctx, pod, rt)
		if err != nil {
			m.backoff.failed(key, now)
			m.events.Event(pod, corev1.EventTypeWarning, "FailedCreatePodSandBox", "Failed to create pod sandbox: "+err.Error())
			return 2 * time.Second
		}
		for _, old := range rt.sandboxes {
			m.removeSandbox(ctx, old.Id)
		}
		rt = &podRuntime{containers: map[string][]*runtimeapi.Container{}}
		sb = &runtimeapi.PodSandbox{Id: id, State: runtimeapi.PodSandboxState_SANDBOX_READY}
		rt.sandboxes = []*runtimeapi.PodSandbox{sb}
	}
	ips, err := m.sandboxIPs(ctx, sb.Id, pod)
	if err != nil {
		m.log.Warn("sandbox status", "pod", pod.Namespace+"/"+pod.Name, "err", err)
		return 2 * time.Second
	}
	sc := m.sandboxConfig(pod, sandboxAttempt(rt))
	pc := &podContext{pod: pod, pv: pv, sandboxID: sb.Id, sandboxConfig: sc, podIPs: ips}

	next := 30 * time.Second
	soon := func(d time.Duration) {
		if d > 0 && d < next {
			next = d
		}
	}
	// Init containers run one at a time, in order, before any main
	// container, unless the main containers already started.
	if !rt.anyMainStarted(pod) {
		done, d := m.runInitContainers(ctx, w, pc, rt)
		if !done {
			soon(d)
			return next
		}
	}
	allDone := true
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		d, finished := m.syncContainer(ctx, w, pc, rt, c, false)
		soon(d)
		if !finished {
			allDone = false
		}
	}
	if allDone && pod.Spec.RestartPolicy != corev1.RestartPolicyAlways {
		w.terminal = true
		return time.Second
	}
	return next
}

// podContext is what creating a pod's containers needs.
type podContext struct {
	pod           *corev1.Pod
	pv            *volumes.PodVolumes
	sandboxID     string
	sandboxConfig *runtimeapi.PodSandboxConfig
	podIPs        []string
}

func (r *podRuntime) hasContainers() bool {
	for _, l := range r.containers {
		if len(l) > 0 {
			return true
		}
	}
	return false
}

// anyMainStarted reports whether a main container of the pod was ever
// created in the current sandbox generation.
func (r *podRuntime) anyMainStarted(pod *corev1.Pod) bool {
	for _, c := range pod.Spec.Containers {
		if len(r.containers[c.Name]) > 0 {
			return true
		}
	}
	return false
}

func sandboxAttempt(r *podRuntime) uint32 {
	if len(r.sandboxes) == 0 {
		return 0
	}
	return r.sandboxes[0].Metadata.GetAttempt()
}

// terminatePod stops a pod being deleted: preStop hooks, then SIGTERM, then
// SIGKILL when the grace period ends; then removes it from the runtime and
// the host, and finally deletes the API object.
func (m *Manager) terminatePod(ctx context.Context, w *worker, pod *corev1.Pod, rt *podRuntime) time.Duration {
	grace := gracePeriod(pod)
	if err := m.removePod(ctx, w, pod, rt, grace); err != nil {
		m.log.Warn("terminating pod", "pod", pod.Namespace+"/"+pod.Name, "err", err)
		return 2 * time.Second
	}
	rt, _ = m.podRuntimeOf(ctx, w.uid)
	m.writeStatus(ctx, w, pod, rt)
	zero := int64(0)
	err := m.cfg.Client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: &zero,
		Preconditions:      &metav1.Preconditions{UID: &pod.UID},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		m.log.Warn("deleting terminated pod", "pod", pod.Namespace+"/"+pod.Name, "err", err)
	}
	return time.Second
}

// removePod stops every container (with preStop hooks when pod is known),
// removes the sandboxes, volumes, logs and pod files.
func (m *Manager) removePod(ctx context.Context, w *worker, pod *corev1.Pod, rt *podRuntime, grace int64) error {
	m.stopPodContainers(ctx, w, pod, rt, grace)
	m.probes.StopPod(w.uid)
	for _, sb := range rt.sandboxes {
		if err := m.removeSandbox(ctx, sb.Id); err != nil {
			return err
		}
	}
	if err := m.cfg.Volumes.Teardown(w.uid); err != nil {
		return fmt.Errorf("removing volumes: %w", err)
	}
	if w.namespace != "" && w.name != "" {
		_ = os.RemoveAll(filepath.Join(m.cfg.LogDir, logDirName(w.namespace, w.name, w.uid)))
	}
	_ = os.RemoveAll(filepath.Join(m.cfg.PodDir, string(w.uid)))
	removeCgroups(m.cfg.CgroupRoot, w.uid)
	m.backoff.forgetPrefix(string(w.uid) + "/")
	return nil
}
