package sim

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Pods for the table: built from a base and changed by options.
type podOpt func(*corev1.Pod)

func testPod(opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", UID: "uid-1", Annotations: map[string]string{}},
		Spec: corev1.PodSpec{
			NodeName:      "sim-1",
			RestartPolicy: corev1.RestartPolicyAlways,
			Containers:    []corev1.Container{{Name: "app", Image: "app:1"}},
		},
		Status: corev1.PodStatus{
			Phase:    corev1.PodPending,
			QOSClass: corev1.PodQOSBestEffort,
			Conditions: []corev1.PodCondition{{
				Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(t0.Add(-time.Minute)),
			}},
		},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func policy(r corev1.RestartPolicy) podOpt { return func(p *corev1.Pod) { p.Spec.RestartPolicy = r } }

func annotate(k, v string) podOpt { return func(p *corev1.Pod) { p.Annotations[k] = v } }

// running makes the pod's status the one planPod wrote when it started
// the containers at start (with restarts so far).
func running(start time.Time, restarts int32) podOpt {
	return func(p *corev1.Pod) {
		stamp := metav1.NewTime(start)
		s := runningStatus(p, stamp, restarts, corev1.ContainerState{})
		setPlacement(s, newSimNode("sim-", 1), "10.42.1.2", stamp)
		p.Status = *s
	}
}

// crashed makes the pod wait in CrashLoopBackOff after its restarts-th
// failure, which finished at finished.
func crashed(finished time.Time, restarts int32) podOpt {
	return func(p *corev1.Pod) {
		running(finished.Add(-time.Second), restarts-1)(p)
		term := corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error", FinishedAt: metav1.NewTime(finished)}}
		p.Status = *crashLoopStatus(p, restarts, term, time.Second)
	}
}

func phase(ph corev1.PodPhase) podOpt { return func(p *corev1.Pod) { p.Status.Phase = ph } }

// deleting marks the pod deleted at requested with grace seconds.
func deleting(requested time.Time, grace int64) podOpt {
	return func(p *corev1.Pod) {
		ts := metav1.NewTime(requested.Add(time.Duration(grace) * time.Second))
		p.DeletionTimestamp, p.DeletionGracePeriodSeconds = &ts, &grace
	}
}

func gate(cond corev1.PodConditionType, status corev1.ConditionStatus) podOpt {
	return func(p *corev1.Pod) {
		p.Spec.ReadinessGates = append(p.Spec.ReadinessGates, corev1.PodReadinessGate{ConditionType: cond})
		if status != "" {
			p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: cond, Status: status})
		}
	}
}

func initContainers(sidecar bool) podOpt {
	return func(p *corev1.Pod) {
		p.Spec.InitContainers = append(p.Spec.InitContainers, corev1.Container{Name: "setup", Image: "setup:1"})
		if sidecar {
			always := corev1.ContainerRestartPolicyAlways
			p.Spec.InitContainers = append(p.Spec.InitContainers, corev1.Container{Name: "proxy", Image: "proxy:1", RestartPolicy: &always})
		}
	}
}

// expectation checks one aspect of a plan.
type expectation func(t *testing.T, p podPlan)

func noWrite() expectation {
	return func(t *testing.T, p podPlan) {
		if p.status != nil || p.delete {
			t.Errorf("plan writes (status %v, delete %v), want nothing", p.status != nil, p.delete)
		}
	}
}

func after(d time.Duration) expectation {
	return func(t *testing.T, p podPlan) {
		if p.after != d {
			t.Errorf("look again after %v, want %v", p.after, d)
		}
	}
}

func deletes() expectation {
	return func(t *testing.T, p podPlan) {
		if !p.delete || p.status != nil {
			t.Errorf("plan delete %v status %v, want delete only", p.delete, p.status != nil)
		}
	}
}

// status checks the written status.
func status(check func(t *testing.T, s *corev1.PodStatus)) expectation {
	return func(t *testing.T, p podPlan) {
		if p.status == nil {
			t.Fatal("no status written")
		}
		check(t, p.status)
	}
}

func cond(s *corev1.PodStatus, ct corev1.PodConditionType) corev1.PodCondition {
	for _, c := range s.Conditions {
		if c.Type == ct {
			return c
		}
	}
	return corev1.PodCondition{}
}

func isPhase(want corev1.PodPhase) func(*testing.T, *corev1.PodStatus) {
	return func(t *testing.T, s *corev1.PodStatus) {
		if s.Phase != want {
			t.Errorf("phase %s, want %s", s.Phase, want)
		}
	}
}

func readyIs(want corev1.ConditionStatus, reason string) func(*testing.T, *corev1.PodStatus) {
	return func(t *testing.T, s *corev1.PodStatus) {
		if c := cond(s, corev1.PodReady); c.Status != want || c.Reason != reason {
			t.Errorf("Ready = %s (%q), want %s (%q)", c.Status, c.Reason, want, reason)
		}
	}
}

func terminatedWith(code int32, reason string) func(*testing.T, *corev1.PodStatus) {
	return func(t *testing.T, s *corev1.PodStatus) {
		for _, cs := range s.ContainerStatuses {
			tr := cs.State.Terminated
			if tr == nil || tr.ExitCode != code || tr.Reason != reason || cs.Ready || *cs.Started {
				t.Errorf("container %s state %+v ready %v, want terminated %d %s", cs.Name, cs.State, cs.Ready, code, reason)
			}
		}
	}
}

func TestPlanPod(t *testing.T) {
	now := t0
	tm := timing{run: time.Second, restartBackoff: 10 * time.Second, termination: 500 * time.Millisecond}
	slow := tm
	slow.startup = 2 * time.Second
	tests := []struct {
		name   string
		pod    *corev1.Pod
		now    time.Time
		timing timing
		want   []expectation
	}{
		{"new pod starts at once", testPod(), now, tm, []expectation{after(0), status(func(t *testing.T, s *corev1.PodStatus) {
			isPhase(corev1.PodRunning)(t, s)
			readyIs(corev1.ConditionTrue, "")(t, s)
			for _, ct := range []corev1.PodConditionType{corev1.ContainersReady, corev1.PodInitialized, corev1.PodReadyToStartContainers, corev1.PodScheduled} {
				if c := cond(s, ct); c.Status != corev1.ConditionTrue {
					t.Errorf("%s = %s", ct, c.Status)
				}
			}
			if c := cond(s, corev1.PodScheduled); !c.LastTransitionTime.Time.Equal(t0.Add(-time.Minute)) {
				t.Errorf("PodScheduled transition rewritten: %v", c.LastTransitionTime)
			}
			if s.PodIP != "10.42.1.2" || s.HostIP != "10.41.0.2" || len(s.PodIPs) != 1 || len(s.HostIPs) != 1 {
				t.Errorf("addresses pod %s %v host %s %v", s.PodIP, s.PodIPs, s.HostIP, s.HostIPs)
			}
			if s.StartTime == nil || !s.StartTime.Time.Equal(now) || s.QOSClass != corev1.PodQOSBestEffort {
				t.Errorf("startTime %v qos %s", s.StartTime, s.QOSClass)
			}
			cs := s.ContainerStatuses[0]
			if cs.State.Running == nil || !cs.Ready || !*cs.Started || cs.Image != "app:1" ||
				!strings.HasPrefix(cs.ImageID, "sim://sha256:") || !strings.HasPrefix(cs.ContainerID, "sim://") {
				t.Errorf("container status %+v", cs)
			}
		})}},
		{"new pod with a startup delay is created first", testPod(), now, slow, []expectation{after(2 * time.Second), status(func(t *testing.T, s *corev1.PodStatus) {
			isPhase(corev1.PodPending)(t, s)
			readyIs(corev1.ConditionFalse, "ContainersNotReady")(t, s)
			if w := s.ContainerStatuses[0].State.Waiting; w == nil || w.Reason != "ContainerCreating" || s.ContainerStatuses[0].ContainerID != "" {
				t.Errorf("container status %+v", s.ContainerStatuses[0])
			}
			if c := cond(s, corev1.PodReadyToStartContainers); c.Status != corev1.ConditionFalse {
				t.Errorf("PodReadyToStartContainers = %s", c.Status)
			}
			if s.StartTime == nil || s.PodIP == "" {
				t.Errorf("startTime %v podIP %q", s.StartTime, s.PodIP)
			}
		})}},
		{"being created, not yet due", testPod(func(p *corev1.Pod) {
			st := metav1.NewTime(now.Add(-time.Second))
			p.Status.StartTime = &st
		}), now, slow, []expectation{noWrite(), after(time.Second)}},
		{"being created, due: runs with its start time", testPod(func(p *corev1.Pod) {
			st := metav1.NewTime(now.Add(-3 * time.Second))
			p.Status.StartTime = &st
		}), now, slow, []expectation{status(func(t *testing.T, s *corev1.PodStatus) {
			isPhase(corev1.PodRunning)(t, s)
			if !s.StartTime.Time.Equal(now.Add(-3*time.Second)) || !s.ContainerStatuses[0].State.Running.StartedAt.Time.Equal(now) {
				t.Errorf("startTime %v startedAt %v", s.StartTime, s.ContainerStatuses[0].State.Running.StartedAt)
			}
		})}},
		{"running with restartPolicy Always: nothing to do", testPod(running(now.Add(-time.Hour), 0)), now, tm, []expectation{noWrite(), after(0)}},
		{"new job pod: run time scheduled", testPod(policy(corev1.RestartPolicyNever)), now.Add(sec(0.4)), tm, []expectation{after(sec(0.6)), status(isPhase(corev1.PodRunning))}},
		{"job pod still running", testPod(policy(corev1.RestartPolicyNever), running(now.Add(-sec(0.25)), 0)), now, tm, []expectation{noWrite(), after(sec(0.75))}},
		{"job pod done", testPod(policy(corev1.RestartPolicyNever), running(now.Add(-time.Second), 0)), now, tm, []expectation{after(0), status(func(t *testing.T, s *corev1.PodStatus) {
			isPhase(corev1.PodSucceeded)(t, s)
			terminatedWith(0, "Completed")(t, s)
			readyIs(corev1.ConditionFalse, "PodCompleted")(t, s)
			if tr := s.ContainerStatuses[0].State.Terminated; !tr.StartedAt.Time.Equal(now.Add(-time.Second)) || !tr.FinishedAt.Time.Equal(now) {
				t.Errorf("terminated %v..%v", tr.StartedAt, tr.FinishedAt)
			}
		})}},
		{"run-seconds annotation", testPod(policy(corev1.RestartPolicyNever), annotate(AnnotationRunSeconds, "2.5"), running(now.Add(-time.Second), 0)), now, tm, []expectation{noWrite(), after(sec(1.5))}},
		{"bad run-seconds falls back", testPod(policy(corev1.RestartPolicyNever), annotate(AnnotationRunSeconds, "soon"), running(now.Add(-time.Second), 0)), now, tm, []expectation{status(isPhase(corev1.PodSucceeded))}},
		{"exit code under Never fails the pod", testPod(policy(corev1.RestartPolicyNever), annotate(AnnotationExitCode, "3"), running(now.Add(-time.Second), 0)), now, tm, []expectation{status(func(t *testing.T, s *corev1.PodStatus) {
			isPhase(corev1.PodFailed)(t, s)
			terminatedWith(3, "Error")(t, s)
		})}},
		{"exit code 0 under OnFailure succeeds", testPod(policy(corev1.RestartPolicyOnFailure), running(now.Add(-time.Second), 0)), now, tm, []expectation{status(isPhase(corev1.PodSucceeded))}},
		{"exit code under OnFailure restarts after a backoff", testPod(policy(corev1.RestartPolicyOnFailure), annotate(AnnotationExitCode, "1"), running(now.Add(-time.Second), 0)), now, tm, []expectation{after(10 * time.Second), status(func(t *testing.T, s *corev1.PodStatus) {
			isPhase(corev1.PodRunning)(t, s)
			readyIs(corev1.ConditionFalse, "ContainersNotReady")(t, s)
			cs := s.ContainerStatuses[0]
			if cs.RestartCount != 1 || cs.State.Waiting == nil || cs.State.Waiting.Reason != "CrashLoopBackOff" {
				t.Errorf("container status %+v", cs)
			}
			if last := cs.LastTerminationState.Terminated; last == nil || last.ExitCode != 1 {
				t.Errorf("last termination %+v", cs.LastTerminationState)
			}
		})}},
		{"backing off", testPod(policy(corev1.RestartPolicyOnFailure), annotate(AnnotationExitCode, "1"), crashed(now.Add(-4*time.Second), 2)), now, tm, []expectation{noWrite(), after(16 * time.Second)}},
		{"backoff over: runs again", testPod(policy(corev1.RestartPolicyOnFailure), annotate(AnnotationExitCode, "1"), crashed(now.Add(-10*time.Second), 1)), now, tm, []expectation{after(time.Second), status(func(t *testing.T, s *corev1.PodStatus) {
			readyIs(corev1.ConditionTrue, "")(t, s)
			cs := s.ContainerStatuses[0]
			if cs.RestartCount != 1 || cs.State.Running == nil || cs.LastTerminationState.Terminated == nil {
				t.Errorf("container status %+v", cs)
			}
		})}},
		{"succeeded: nothing to do", testPod(phase(corev1.PodSucceeded)), now, tm, []expectation{noWrite(), after(0)}},
		{"failed: nothing to do", testPod(phase(corev1.PodFailed)), now, tm, []expectation{noWrite(), after(0)}},
		{"deletion just requested: the node takes its time", testPod(running(now.Add(-time.Hour), 0), deleting(now, 30)), now, tm, []expectation{noWrite(), after(500 * time.Millisecond)}},
		{"deletion: containers stopped", testPod(running(now.Add(-time.Hour), 0), deleting(now.Add(-time.Second), 30)), now, tm, []expectation{status(func(t *testing.T, s *corev1.PodStatus) {
			isPhase(corev1.PodFailed)(t, s)
			terminatedWith(exitCodeKilled, "Error")(t, s)
		})}},
		{"deletion: stopped, confirmed", testPod(running(now.Add(-time.Hour), 0), phase(corev1.PodFailed), deleting(now.Add(-time.Second), 30)), now, tm, []expectation{deletes()}},
		{"deletion of a pod that never started", testPod(deleting(now.Add(-time.Second), 30)), now, tm, []expectation{deletes()}},
		{"deletion: a grace period shorter than the delay", testPod(deleting(now.Add(-sec(0.3)), 0)), now, tm, []expectation{deletes()}},
		{"readiness gate missing", testPod(gate("example.com/lb", "")), now, tm, []expectation{status(readyIs(corev1.ConditionFalse, "ReadinessGatesNotReady"))}},
		{"readiness gate false", testPod(gate("example.com/lb", corev1.ConditionFalse)), now, tm, []expectation{status(readyIs(corev1.ConditionFalse, "ReadinessGatesNotReady"))}},
		{"readiness gate true", testPod(gate("example.com/lb", corev1.ConditionTrue)), now, tm, []expectation{status(func(t *testing.T, s *corev1.PodStatus) {
			readyIs(corev1.ConditionTrue, "")(t, s)
			if c := cond(s, "example.com/lb"); c.Status != corev1.ConditionTrue {
				t.Errorf("gate condition lost: %+v", s.Conditions)
			}
		})}},
		{"init containers ran; sidecars run", testPod(initContainers(true)), now, tm, []expectation{status(func(t *testing.T, s *corev1.PodStatus) {
			if len(s.InitContainerStatuses) != 2 {
				t.Fatalf("init statuses %+v", s.InitContainerStatuses)
			}
			if tr := s.InitContainerStatuses[0].State.Terminated; tr == nil || tr.ExitCode != 0 || tr.Reason != "Completed" {
				t.Errorf("init container %+v", s.InitContainerStatuses[0].State)
			}
			if s.InitContainerStatuses[1].State.Running == nil || !*s.InitContainerStatuses[1].Started {
				t.Errorf("sidecar %+v", s.InitContainerStatuses[1])
			}
		})}},
		{"init containers while created", testPod(initContainers(false)), now, slow, []expectation{status(func(t *testing.T, s *corev1.PodStatus) {
			if c := cond(s, corev1.PodInitialized); c.Status != corev1.ConditionFalse || c.Reason != "ContainersNotInitialized" {
				t.Errorf("Initialized %+v", c)
			}
			if w := s.InitContainerStatuses[0].State.Waiting; w == nil || w.Reason != "PodInitializing" {
				t.Errorf("init container %+v", s.InitContainerStatuses[0].State)
			}
		})}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.pod.DeepCopy()
			p := planPod(tt.pod, newSimNode("sim-", 1), "10.42.1.2", tt.now, tt.timing)
			for _, check := range tt.want {
				check(t, p)
			}
			if tt.pod.Status.Phase != before.Status.Phase || len(tt.pod.Status.Conditions) != len(before.Status.Conditions) {
				t.Error("planPod changed its input")
			}
		})
	}
}

func TestPlanPodIsStableOnceApplied(t *testing.T) {
	// Writing a plan's status and planning again must not ask for the
	// same write twice: the loop would spin on its own events.
	tm := timing{run: time.Second, restartBackoff: 10 * time.Second, termination: 500 * time.Millisecond}
	pods := map[string]*corev1.Pod{
		"always":    testPod(),
		"job":       testPod(policy(corev1.RestartPolicyNever)),
		"onfailure": testPod(policy(corev1.RestartPolicyOnFailure), annotate(AnnotationExitCode, "2")),
	}
	for name, pod := range pods {
		t.Run(name, func(t *testing.T) {
			now := t0
			writes := 0
			for step := 0; step < 20; step++ {
				p := planPod(pod, newSimNode("sim-", 1), "10.42.1.2", now, tm)
				if p.status != nil {
					writes++
					pod = pod.DeepCopy()
					pod.Status = *p.status
					continue // the write's event: plan again at once
				}
				if p.after == 0 {
					break
				}
				now = now.Add(p.after)
			}
			if writes > 12 {
				t.Errorf("%d writes in 20 steps", writes)
			}
			again := planPod(pod, newSimNode("sim-", 1), "10.42.1.2", now, tm)
			if again.status != nil && again.after == 0 {
				t.Errorf("plan after settling writes again with nothing scheduled")
			}
		})
	}
}

func TestRestartBackoff(t *testing.T) {
	tm := timing{restartBackoff: 10 * time.Second}
	for _, tt := range []struct {
		n    int32
		want time.Duration
	}{{1, 10 * time.Second}, {2, 20 * time.Second}, {3, 40 * time.Second}, {5, 160 * time.Second}, {6, 5 * time.Minute}, {100, 5 * time.Minute}} {
		if got := restartBackoff(tt.n, tm); got != tt.want {
			t.Errorf("restartBackoff(%d) = %v, want %v", tt.n, got, tt.want)
		}
	}
}

func TestExitCode(t *testing.T) {
	for _, tt := range []struct {
		v    string
		set  bool
		want int32
	}{{"", false, 0}, {"3", true, 3}, {" 42 ", true, 42}, {"x", true, 0}, {"-1", true, -1}} {
		p := testPod()
		if tt.set {
			p.Annotations[AnnotationExitCode] = tt.v
		}
		if got := exitCode(p); got != tt.want {
			t.Errorf("exitCode(%q) = %d, want %d", tt.v, got, tt.want)
		}
	}
}
