package printers

import (
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var podKind = schema.GroupKind{Kind: "Pod"}

// Container state builders.

func waiting(reason string) corev1.ContainerState {
	return corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}}
}

func running() corev1.ContainerState {
	return corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: ago(time.Hour)}}
}

func terminated(reason string, exit, signal int32) corev1.ContainerState {
	return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: reason, ExitCode: exit, Signal: signal}}
}

func finished(d time.Duration) corev1.ContainerState {
	return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Error", ExitCode: 1, FinishedAt: ago(d)}}
}

func status(name string, state corev1.ContainerState, ready bool) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: name, State: state, Ready: ready}
}

func condition(t corev1.PodConditionType, s corev1.ConditionStatus) corev1.PodCondition {
	return corev1.PodCondition{Type: t, Status: s}
}

// newPod has main containers c0..c(n-1) and init containers i0..i(m-1).
func newPod(mains, inits int, phase corev1.PodPhase) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", CreationTimestamp: ago(10 * time.Minute)}}
	for i := 0; i < mains; i++ {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "c" + string(rune('0'+i))})
	}
	for i := 0; i < inits; i++ {
		p.Spec.InitContainers = append(p.Spec.InitContainers, corev1.Container{Name: "i" + string(rune('0'+i))})
	}
	p.Status.Phase = phase
	return p
}

func TestPodStatus(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	started := true
	for _, tc := range []struct {
		name                    string
		pod                     func() *corev1.Pod
		ready, status, restarts string
	}{
		{"pending without statuses", func() *corev1.Pod { return newPod(1, 0, corev1.PodPending) }, "0/1", "Pending", "0"},
		{"running and ready", func() *corev1.Pod {
			p := newPod(2, 0, corev1.PodRunning)
			p.Status.ContainerStatuses = []corev1.ContainerStatus{status("c0", running(), true), status("c1", running(), true)}
			return p
		}, "2/2", "Running", "0"},
		{"running, one not ready", func() *corev1.Pod {
			p := newPod(2, 0, corev1.PodRunning)
			p.Status.ContainerStatuses = []corev1.ContainerStatus{status("c0", running(), true), status("c1", running(), false)}
			return p
		}, "1/2", "Running", "0"},
		{"container creating", func() *corev1.Pod {
			p := newPod(1, 0, corev1.PodPending)
			p.Status.ContainerStatuses = []corev1.ContainerStatus{status("c0", waiting("ContainerCreating"), false)}
			return p
		}, "0/1", "ContainerCreating", "0"},
		{"image pull error", func() *corev1.Pod {
			p := newPod(1, 0, corev1.PodPending)
			p.Status.ContainerStatuses = []corev1.ContainerStatus{status("c0", waiting("ErrImagePull"), false)}
			return p
		}, "0/1", "ErrImagePull", "0"},
		{"crash loop with last restart", func() *corev1.Pod {
			p := newPod(1, 0, corev1.PodRunning)
			s := status("c0", waiting("CrashLoopBackOff"), false)
			s.RestartCount = 5
			s.LastTerminationState = finished(3*time.Minute + 2*time.Second)
			p.Status.ContainerStatuses = []corev1.ContainerStatus{s}
			return p
		}, "0/1", "CrashLoopBackOff", "5 (3m2s ago)"},
		{"restarts without a finish time", func() *corev1.Pod {
			p := newPod(1, 0, corev1.PodRunning)
			s := status("c0", running(), true)
			s.RestartCount = 2
			p.Status.ContainerStatuses = []corev1.ContainerStatus{s}
			return p
		}, "1/1", "Running", "2"},
		{"restarts summed, latest finish wins", func() *corev1.Pod {
			p := newPod(2, 0, corev1.PodRunning)
			a := status("c0", running(), true)
			a.RestartCount, a.LastTerminationState = 1, finished(2*time.Hour)
			b := status("c1", running(), true)
			b.RestartCount, b.LastTerminationState = 3, finished(40*time.Second)
			p.Status.ContainerStatuses = []corev1.ContainerStatus{a, b}
			return p
		}, "2/2", "Running", "4 (40s ago)"},
		{"completed", func() *corev1.Pod {
			p := newPod(1, 0, corev1.PodSucceeded)
			p.Status.ContainerStatuses = []corev1.ContainerStatus{status("c0", terminated("Completed", 0, 0), false)}
			return p
		}, "0/1", "Completed", "0"},
		{"killed by a signal", func() *corev1.Pod {
			p := newPod(1, 0, corev1.PodFailed)
			p.Status.ContainerStatuses = []corev1.ContainerStatus{status("c0", terminated("", 137, 9), false)}
			return p
		}, "0/1", "Signal:9", "0"},
		{"exit code without reason", func() *corev1.Pod {
			p := newPod(1, 0, corev1.PodFailed)
			p.Status.ContainerStatuses = []corev1.ContainerStatus{status("c0", terminated("", 3, 0), false)}
			return p
		}, "0/1", "ExitCode:3", "0"},
		{"first container's state has the last word", func() *corev1.Pod {
			p := newPod(2, 0, corev1.PodPending)
			p.Status.ContainerStatuses = []corev1.ContainerStatus{
				status("c0", waiting("ImagePullBackOff"), false),
				status("c1", waiting("ContainerCreating"), false),
			}
			return p
		}, "0/2", "ImagePullBackOff", "0"},
		{"completed beside a running one, pod ready", func() *corev1.Pod {
			p := newPod(2, 0, corev1.PodRunning)
			p.Status.Conditions = []corev1.PodCondition{condition(corev1.PodReady, corev1.ConditionTrue)}
			p.Status.ContainerStatuses = []corev1.ContainerStatus{
				status("c0", terminated("Completed", 0, 0), false),
				status("c1", running(), true),
			}
			return p
		}, "1/2", "Running", "0"},
		{"completed beside a running one, pod not ready", func() *corev1.Pod {
			p := newPod(2, 0, corev1.PodRunning)
			p.Status.Conditions = []corev1.PodCondition{condition(corev1.PodReady, corev1.ConditionFalse)}
			p.Status.ContainerStatuses = []corev1.ContainerStatus{
				status("c0", terminated("Completed", 0, 0), false),
				status("c1", running(), true),
			}
			return p
		}, "1/2", "NotReady", "0"},
		{"init 0 of 2", func() *corev1.Pod {
			p := newPod(1, 2, corev1.PodPending)
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{
				status("i0", running(), false),
				status("i1", waiting("PodInitializing"), false),
			}
			p.Status.ContainerStatuses = []corev1.ContainerStatus{status("c0", waiting("PodInitializing"), false)}
			return p
		}, "0/1", "Init:0/2", "0"},
		{"init 1 of 2", func() *corev1.Pod {
			p := newPod(1, 2, corev1.PodPending)
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{
				status("i0", terminated("Completed", 0, 0), false),
				status("i1", running(), false),
			}
			return p
		}, "0/1", "Init:1/2", "0"},
		{"init crash loop counts init restarts", func() *corev1.Pod {
			p := newPod(1, 1, corev1.PodPending)
			s := status("i0", waiting("CrashLoopBackOff"), false)
			s.RestartCount = 3
			s.LastTerminationState = finished(50 * time.Second)
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{s}
			p.Status.ContainerStatuses = []corev1.ContainerStatus{status("c0", waiting("PodInitializing"), false)}
			return p
		}, "0/1", "Init:CrashLoopBackOff", "3 (50s ago)"},
		{"init error", func() *corev1.Pod {
			p := newPod(1, 1, corev1.PodFailed)
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{status("i0", terminated("Error", 1, 0), false)}
			return p
		}, "0/1", "Init:Error", "0"},
		{"init exit code", func() *corev1.Pod {
			p := newPod(1, 1, corev1.PodPending)
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{status("i0", terminated("", 2, 0), false)}
			return p
		}, "0/1", "Init:ExitCode:2", "0"},
		{"init signal", func() *corev1.Pod {
			p := newPod(1, 1, corev1.PodPending)
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{status("i0", terminated("", 137, 9), false)}
			return p
		}, "0/1", "Init:Signal:9", "0"},
		{"all init done, main running", func() *corev1.Pod {
			p := newPod(1, 1, corev1.PodRunning)
			s := status("i0", terminated("Completed", 0, 0), false)
			s.RestartCount = 4 // init restarts stop counting once initialized
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{s}
			p.Status.ContainerStatuses = []corev1.ContainerStatus{status("c0", running(), true)}
			return p
		}, "1/1", "Running", "0"},
		{"sidecar counts in READY and RESTARTS", func() *corev1.Pod {
			p := newPod(1, 1, corev1.PodRunning)
			p.Spec.InitContainers[0].RestartPolicy = &always
			p.Status.Conditions = []corev1.PodCondition{condition(corev1.PodInitialized, corev1.ConditionTrue)}
			side := status("i0", running(), true)
			side.Started = &started
			side.RestartCount = 2
			side.LastTerminationState = finished(5 * time.Minute)
			main := status("c0", running(), true)
			main.RestartCount = 1
			main.LastTerminationState = finished(time.Hour)
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{side}
			p.Status.ContainerStatuses = []corev1.ContainerStatus{main}
			return p
		}, "2/2", "Running", "3 (5m ago)"},
		{"sidecar started but not ready", func() *corev1.Pod {
			p := newPod(1, 1, corev1.PodRunning)
			p.Spec.InitContainers[0].RestartPolicy = &always
			side := status("i0", running(), false)
			side.Started = &started
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{side}
			p.Status.ContainerStatuses = []corev1.ContainerStatus{status("c0", running(), true)}
			return p
		}, "1/2", "Running", "0"},
		{"sidecar not started holds init", func() *corev1.Pod {
			p := newPod(1, 1, corev1.PodPending)
			p.Spec.InitContainers[0].RestartPolicy = &always
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{status("i0", waiting("PodInitializing"), false)}
			return p
		}, "0/2", "Init:0/1", "0"},
		{"terminating", func() *corev1.Pod {
			p := newPod(1, 0, corev1.PodRunning)
			p.DeletionTimestamp = agoPtr(time.Second)
			p.Status.ContainerStatuses = []corev1.ContainerStatus{status("c0", running(), true)}
			return p
		}, "1/1", "Terminating", "0"},
		{"deleted after success stays completed", func() *corev1.Pod {
			p := newPod(1, 0, corev1.PodSucceeded)
			p.DeletionTimestamp = agoPtr(time.Second)
			p.Status.ContainerStatuses = []corev1.ContainerStatus{status("c0", terminated("Completed", 0, 0), false)}
			return p
		}, "0/1", "Completed", "0"},
		{"node lost", func() *corev1.Pod {
			p := newPod(1, 0, corev1.PodRunning)
			p.DeletionTimestamp = agoPtr(time.Second)
			p.Status.Reason = "NodeLost"
			p.Status.ContainerStatuses = []corev1.ContainerStatus{status("c0", running(), true)}
			return p
		}, "1/1", "Unknown", "0"},
		{"status reason wins over phase", func() *corev1.Pod {
			p := newPod(1, 0, corev1.PodFailed)
			p.Status.Reason = "Evicted"
			return p
		}, "0/1", "Evicted", "0"},
		{"scheduling gated", func() *corev1.Pod {
			p := newPod(1, 0, corev1.PodPending)
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "SchedulingGated"}}
			return p
		}, "0/1", "SchedulingGated", "0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cells := row(t, podKind, tc.pod())
			got := byName(t, podKind, cells, "Ready", "Status", "Restarts")
			want := []interface{}{tc.ready, tc.status, tc.restarts}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("READY/STATUS/RESTARTS = %v, want %v", got, want)
			}
		})
	}
}

func TestPodRow(t *testing.T) {
	p := newPod(1, 0, corev1.PodRunning)
	p.Spec.NodeName = "node-1"
	p.Spec.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: "example.com/lb"}, {ConditionType: "example.com/dns"}}
	p.Status.PodIPs = []corev1.PodIP{{IP: "10.42.0.5"}, {IP: "fd00::5"}}
	p.Status.PodIP = "10.42.0.5"
	p.Status.Conditions = []corev1.PodCondition{
		condition("example.com/lb", corev1.ConditionTrue),
		condition("example.com/dns", corev1.ConditionFalse),
	}
	p.Status.ContainerStatuses = []corev1.ContainerStatus{status("c0", running(), true)}
	want := []interface{}{"web", "1/1", "Running", "0", "10m", "10.42.0.5", "node-1", "<none>", "1/2"}
	if got := row(t, podKind, p); !reflect.DeepEqual(got, want) {
		t.Errorf("row = %v\nwant  %v", got, want)
	}

	empty := &corev1.Pod{}
	want = []interface{}{"", "0/0", "", "0", "<unknown>", "<none>", "<none>", "<none>", "<none>"}
	if got := row(t, podKind, empty); !reflect.DeepEqual(got, want) {
		t.Errorf("empty row = %v\nwant  %v", got, want)
	}
}
