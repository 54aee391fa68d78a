package job

import (
	"fmt"
	"reflect"
	"strconv"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/utils/ptr"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// testJob is a Job as the API server stores it: defaults applied, one
// completion, started at t0.
func testJob(mods ...func(*batchv1.Job)) *batchv1.Job {
	j := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "j", Namespace: "ns", UID: "job-uid"},
		Spec: batchv1.JobSpec{
			Completions: ptr.To(int32(1)), Parallelism: ptr.To(int32(1)), BackoffLimit: ptr.To(int32(6)),
			CompletionMode: ptr.To(batchv1.NonIndexedCompletion), Suspend: ptr.To(false),
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever}},
		},
		Status: batchv1.JobStatus{StartTime: ptr.To(metav1.NewTime(t0))},
	}
	for _, m := range mods {
		m(j)
	}
	return j
}

func counts(completions, parallelism int32) func(*batchv1.Job) {
	return func(j *batchv1.Job) { j.Spec.Completions, j.Spec.Parallelism = &completions, &parallelism }
}

func indexed(j *batchv1.Job) { j.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion) }

func withCondition(ct batchv1.JobConditionType, reason string) func(*batchv1.Job) {
	return func(j *batchv1.Job) {
		j.Status.Conditions = append(j.Status.Conditions, *newCondition(ct, reason, "", t0))
	}
}

// testPod is a pod of testJob, holding the tracking finalizer, created at
// t0; its UID is its name.
func testPod(name string, phase corev1.PodPhase, mods ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: "ns", UID: types.UID(name),
			CreationTimestamp: metav1.NewTime(t0),
			Finalizers:        []string{batchv1.JobTrackingFinalizer},
		},
		Status: corev1.PodStatus{Phase: phase},
	}
	for _, m := range mods {
		m(p)
	}
	return p
}

func ready(p *corev1.Pod) {
	p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionTrue})
}

func untracked(p *corev1.Pod) { p.Finalizers = nil }

func deleting(p *corev1.Pod) { p.DeletionTimestamp = ptr.To(metav1.NewTime(t0)) }

func atIndex(i int) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Annotations = map[string]string{batchv1.JobCompletionIndexAnnotation: strconv.Itoa(i)}
	}
}

func exited(code int32, at time.Time) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "main", State: corev1.ContainerState{
			Terminated: &corev1.ContainerStateTerminated{ExitCode: code, FinishedAt: metav1.NewTime(at)},
		}}}
	}
}

func created(at time.Time) func(*corev1.Pod) {
	return func(p *corev1.Pod) { p.CreationTimestamp = metav1.NewTime(at) }
}

// outcome is the part of a plan the tests compare.
type outcome struct {
	Create                     []int
	Release, Kill, Unfinalize  []string
	Active, Ready, Terminating int32
	Succeeded, Failed          int32
	UncSucceeded, UncFailed    []types.UID
	Conditions                 []string
	Finish                     string
	CompletedIndexes           string
	FailedIndexes              string
	Events                     []string
	Requeue                    time.Duration
	Backoff                    backoffRecord
}

func outcomeOf(p plan) outcome {
	names := func(pods []*corev1.Pod) []string {
		var out []string
		for _, p := range pods {
			out = append(out, p.Name)
		}
		return out
	}
	o := outcome{
		Release: names(p.release), Kill: names(p.kill), Unfinalize: names(p.unfinalize),
		Active: p.status.Active, Ready: ptr.Deref(p.status.Ready, -1), Terminating: ptr.Deref(p.status.Terminating, -1),
		Succeeded: p.status.Succeeded, Failed: p.status.Failed,
		UncSucceeded: p.status.UncountedTerminatedPods.Succeeded, UncFailed: p.status.UncountedTerminatedPods.Failed,
		CompletedIndexes: p.status.CompletedIndexes, FailedIndexes: ptr.Deref(p.status.FailedIndexes, "<nil>"),
		Requeue: p.requeueAfter, Backoff: p.backoff,
	}
	for _, np := range p.create {
		o.Create = append(o.Create, np.index)
	}
	for _, c := range p.status.Conditions {
		o.Conditions = append(o.Conditions, fmt.Sprintf("%s=%s/%s", c.Type, c.Status, c.Reason))
	}
	if p.finish != nil {
		o.Finish = fmt.Sprintf("%s/%s", p.finish.Type, p.finish.Reason)
	}
	for _, e := range p.events {
		o.Events = append(o.Events, e.reason)
	}
	return o
}

const (
	base = 10 * time.Second
	cap6 = 6 * time.Minute
)

func TestDecide(t *testing.T) {
	now := t0.Add(time.Minute)
	succeeded := corev1.PodSucceeded
	failed := corev1.PodFailed
	running := corev1.PodRunning
	tests := []struct {
		name         string
		job          *batchv1.Job
		pods         []*corev1.Pod
		unsettled    bool
		unfinalizing []types.UID
		backoff      backoffRecord
		want         outcome
	}{
		{
			name: "a new Job starts as many pods as parallelism allows",
			job:  testJob(counts(3, 2), func(j *batchv1.Job) { j.Status.StartTime = nil }),
			want: outcome{Create: []int{noIndex, noIndex}, Active: 2, Ready: 0, Terminating: 0},
		},
		{
			name: "never more than the completions left",
			job:  testJob(counts(3, 5)),
			pods: []*corev1.Pod{testPod("a", succeeded, untracked)},
			want: outcome{Create: []int{noIndex, noIndex, noIndex}, Active: 3},
		},
		{
			name: "a succeeded pod is recorded as uncounted and its finalizer released; its slot is refilled",
			job:  testJob(counts(3, 2)),
			pods: []*corev1.Pod{testPod("a", succeeded, exited(0, t0)), testPod("b", running, ready)},
			want: outcome{Create: []int{noIndex}, Active: 2, Ready: 1, Unfinalize: []string{"a"},
				UncSucceeded: []types.UID{"a"}},
		},
		{
			name: "a pod already uncounted is not recorded twice, but its finalizer is retried",
			job: testJob(counts(3, 1), func(j *batchv1.Job) {
				j.Status.UncountedTerminatedPods = &batchv1.UncountedTerminatedPods{Succeeded: []types.UID{"a"}}
			}),
			pods: []*corev1.Pod{testPod("a", succeeded), testPod("b", running)},
			want: outcome{Active: 1, Unfinalize: []string{"a"}, UncSucceeded: []types.UID{"a"}},
		},
		{
			name:         "a pod whose finalizer the controller removed is not counted again from a stale cache",
			job:          testJob(counts(2, 1), func(j *batchv1.Job) { j.Status.Succeeded = 1 }),
			pods:         []*corev1.Pod{testPod("a", succeeded)},
			unfinalizing: []types.UID{"a"},
			want:         outcome{Create: []int{noIndex}, Active: 1, Succeeded: 1},
		},
		{
			name:      "while creations are unobserved, nothing is created",
			job:       testJob(counts(3, 3)),
			pods:      []*corev1.Pod{testPod("a", running)},
			unsettled: true,
			want:      outcome{Active: 1},
		},
		{
			name: "a failure is counted and starts the backoff",
			job:  testJob(counts(1, 1)),
			pods: []*corev1.Pod{testPod("a", failed, exited(1, now.Add(-2*time.Second)))},
			want: outcome{Unfinalize: []string{"a"}, UncFailed: []types.UID{"a"}, Requeue: 8 * time.Second,
				Backoff: backoffRecord{failures: 1, lastFailure: now.Add(-2 * time.Second)}},
		},
		{
			name:    "the third failure in a row waits 40s",
			job:     testJob(func(j *batchv1.Job) { j.Status.Failed = 2 }),
			pods:    []*corev1.Pod{testPod("c", failed, exited(1, now.Add(-30*time.Second)))},
			backoff: backoffRecord{failures: 2, lastFailure: now.Add(-50 * time.Second)},
			want: outcome{Failed: 2, Unfinalize: []string{"c"}, UncFailed: []types.UID{"c"}, Requeue: 10 * time.Second,
				Backoff: backoffRecord{failures: 3, lastFailure: now.Add(-30 * time.Second)}},
		},
		{
			name:    "once the backoff has passed, the pod is re-created",
			job:     testJob(func(j *batchv1.Job) { j.Status.Failed = 1 }),
			backoff: backoffRecord{failures: 1, lastFailure: now.Add(-11 * time.Second)},
			want: outcome{Failed: 1, Create: []int{noIndex}, Active: 1,
				Backoff: backoffRecord{failures: 1, lastFailure: now.Add(-11 * time.Second)}},
		},
		{
			name: "a running pod that is deleted counts as a failure and is replaced (its backoff long over)",
			job:  testJob(),
			pods: []*corev1.Pod{testPod("a", running, deleting)},
			want: outcome{Create: []int{noIndex}, Active: 1, Terminating: 1, Unfinalize: []string{"a"}, UncFailed: []types.UID{"a"},
				Backoff: backoffRecord{failures: 1, lastFailure: t0}},
		},
		{
			name: "more failures than backoffLimit: FailureTarget, running pods are killed and counted",
			job:  testJob(counts(2, 2), func(j *batchv1.Job) { j.Spec.BackoffLimit = ptr.To(int32(1)); j.Status.Failed = 1 }),
			pods: []*corev1.Pod{testPod("a", failed, exited(1, t0)), testPod("b", running, ready)},
			want: outcome{Failed: 1, Kill: []string{"b"}, Terminating: 1, Unfinalize: []string{"a", "b"},
				UncFailed: []types.UID{"a", "b"}, Conditions: []string{"FailureTarget=True/BackoffLimitExceeded"},
				Finish: "Failed/BackoffLimitExceeded", Backoff: backoffRecord{failures: 1, lastFailure: t0}},
		},
		{
			name: "container restarts of OnFailure pods count against backoffLimit",
			job: testJob(func(j *batchv1.Job) {
				j.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
				j.Spec.BackoffLimit = ptr.To(int32(2))
			}),
			pods: []*corev1.Pod{testPod("a", running, func(p *corev1.Pod) {
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "main", RestartCount: 2}}
			})},
			want: outcome{Kill: []string{"a"}, Terminating: 1, Unfinalize: []string{"a"}, UncFailed: []types.UID{"a"},
				Conditions: []string{"FailureTarget=True/BackoffLimitExceeded"}, Finish: "Failed/BackoffLimitExceeded"},
		},
		{
			name: "past activeDeadlineSeconds: DeadlineExceeded",
			job:  testJob(func(j *batchv1.Job) { j.Spec.ActiveDeadlineSeconds = ptr.To(int64(60)) }),
			pods: []*corev1.Pod{testPod("a", running)},
			want: outcome{Kill: []string{"a"}, Terminating: 1, Unfinalize: []string{"a"}, UncFailed: []types.UID{"a"},
				Conditions: []string{"FailureTarget=True/DeadlineExceeded"}, Finish: "Failed/DeadlineExceeded"},
		},
		{
			name: "before activeDeadlineSeconds: look again at the deadline",
			job:  testJob(func(j *batchv1.Job) { j.Spec.ActiveDeadlineSeconds = ptr.To(int64(90)) }),
			pods: []*corev1.Pod{testPod("a", running)},
			want: outcome{Active: 1, Requeue: 30 * time.Second},
		},
		{
			name: "a failing Job keeps failing and waits for its terminating pods",
			job:  testJob(withCondition(batchv1.JobFailureTarget, batchv1.JobReasonDeadlineExceeded), func(j *batchv1.Job) { j.Status.Failed = 1 }),
			pods: []*corev1.Pod{testPod("a", running, deleting, untracked)},
			want: outcome{Failed: 1, Terminating: 1, Conditions: []string{"FailureTarget=True/DeadlineExceeded"},
				Finish: "Failed/DeadlineExceeded"},
		},
		{
			name:      "a failing Job with a creation still unobserved does not finish yet",
			job:       testJob(withCondition(batchv1.JobFailureTarget, batchv1.JobReasonDeadlineExceeded)),
			unsettled: true,
			want:      outcome{Conditions: []string{"FailureTarget=True/DeadlineExceeded"}},
		},
		{
			name: "enough successes and nothing running: SuccessCriteriaMet, then Complete",
			job:  testJob(counts(2, 2), func(j *batchv1.Job) { j.Status.Succeeded = 1 }),
			pods: []*corev1.Pod{testPod("a", succeeded, untracked), testPod("b", succeeded, exited(0, t0))},
			want: outcome{Succeeded: 1, Unfinalize: []string{"b"}, UncSucceeded: []types.UID{"b"},
				Conditions: []string{"SuccessCriteriaMet=True/CompletionsReached"}, Finish: "Complete/CompletionsReached",
				Backoff: backoffRecord{}},
		},
		{
			name: "without completions, the first success stops new pods; the Job completes when the rest end",
			job:  testJob(func(j *batchv1.Job) { j.Spec.Completions = nil; j.Spec.Parallelism = ptr.To(int32(3)) }),
			pods: []*corev1.Pod{testPod("a", succeeded), testPod("b", running)},
			want: outcome{Active: 1, Unfinalize: []string{"a"}, UncSucceeded: []types.UID{"a"}},
		},
		{
			name: "suspending deletes the running pods without counting them",
			job:  testJob(counts(2, 2), func(j *batchv1.Job) { j.Spec.Suspend = ptr.To(true) }),
			pods: []*corev1.Pod{testPod("a", running, ready), testPod("b", corev1.PodPending)},
			want: outcome{Release: []string{"b", "a"}, Terminating: 2, Conditions: []string{"Suspended=True/JobSuspended"},
				Events: []string{"Suspended"}},
		},
		{
			name: "resuming clears the condition and restarts the clock",
			job: testJob(withCondition(batchv1.JobSuspended, reasonSuspended), func(j *batchv1.Job) {
				j.Spec.ActiveDeadlineSeconds = ptr.To(int64(30)) // long passed since t0, but the clock restarts
			}),
			want: outcome{Create: []int{noIndex}, Active: 1, Conditions: []string{"Suspended=False/JobResumed"},
				Events: []string{"Resumed"}, Requeue: 30 * time.Second},
		},
		{
			name: "extra pods (parallelism lowered) go, least advanced first",
			job:  testJob(counts(5, 1)),
			pods: []*corev1.Pod{testPod("a", running, ready), testPod("b", running), testPod("c", corev1.PodPending)},
			want: outcome{Release: []string{"c", "b"}, Active: 1, Ready: 1, Terminating: 2},
		},
		{
			name: "Indexed: the lowest free indexes are started",
			job:  testJob(counts(4, 2), indexed),
			pods: []*corev1.Pod{testPod("a", running, atIndex(0)), testPod("b", succeeded, atIndex(1), untracked)},
			want: outcome{Create: []int{2}, Active: 2, Succeeded: 1, CompletedIndexes: "1"},
		},
		{
			name: "Indexed: a succeeded index is recorded in completedIndexes, not the uncounted list",
			job: testJob(counts(3, 3), indexed, func(j *batchv1.Job) {
				j.Status.CompletedIndexes = "0"
				j.Status.Succeeded = 1
			}),
			pods: []*corev1.Pod{testPod("b", succeeded, atIndex(2)), testPod("c", running, atIndex(1))},
			want: outcome{Active: 1, Succeeded: 2, CompletedIndexes: "0,2", Unfinalize: []string{"b"}},
		},
		{
			name: "Indexed: a repeated index and a bad one are released",
			job:  testJob(counts(2, 2), indexed),
			pods: []*corev1.Pod{testPod("a", running, atIndex(0), ready), testPod("b", running, atIndex(0)),
				testPod("c", running, atIndex(7))},
			want: outcome{Release: []string{"c", "b"}, Active: 1, Ready: 1, Terminating: 2},
		},
		{
			name: "Indexed: all indexes done completes the Job",
			job:  testJob(counts(2, 2), indexed, func(j *batchv1.Job) { j.Status.CompletedIndexes = "0"; j.Status.Succeeded = 1 }),
			pods: []*corev1.Pod{testPod("b", succeeded, atIndex(1))},
			want: outcome{Succeeded: 2, CompletedIndexes: "0-1", Unfinalize: []string{"b"},
				Conditions: []string{"SuccessCriteriaMet=True/CompletionsReached"}, Finish: "Complete/CompletionsReached"},
		},
		{
			name: "podFailurePolicy FailJob fails the Job with reason PodFailurePolicy",
			job: testJob(func(j *batchv1.Job) {
				j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
					Action:      batchv1.PodFailurePolicyActionFailJob,
					OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{42}},
				}}}
				j.Spec.PodReplacementPolicy = ptr.To(batchv1.Failed)
			}),
			pods: []*corev1.Pod{testPod("a", failed, exited(42, t0))},
			want: outcome{Unfinalize: []string{"a"}, UncFailed: []types.UID{"a"},
				Conditions: []string{"FailureTarget=True/PodFailurePolicy"}, Finish: "Failed/PodFailurePolicy",
				Backoff: backoffRecord{failures: 1, lastFailure: t0}},
		},
		{
			name: "podFailurePolicy Ignore: not counted, replaced at once",
			job: testJob(func(j *batchv1.Job) {
				j.Spec.BackoffLimit = ptr.To(int32(0))
				j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
					Action:          batchv1.PodFailurePolicyActionIgnore,
					OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}},
				}}}
				j.Spec.PodReplacementPolicy = ptr.To(batchv1.Failed)
			}),
			pods: []*corev1.Pod{testPod("a", failed, exited(137, t0), func(p *corev1.Pod) {
				p.Status.Conditions = []corev1.PodCondition{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}}
			})},
			want: outcome{Create: []int{noIndex}, Active: 1, Unfinalize: []string{"a"}},
		},
		{
			name: "podReplacementPolicy Failed waits for terminating pods before replacing them",
			job:  testJob(func(j *batchv1.Job) { j.Spec.PodReplacementPolicy = ptr.To(batchv1.Failed) }),
			pods: []*corev1.Pod{testPod("a", running, deleting)},
			want: outcome{Terminating: 1},
		},
		{
			name: "a Job being deleted creates nothing and releases every pod",
			job:  testJob(counts(2, 2), func(j *batchv1.Job) { j.DeletionTimestamp = ptr.To(metav1.NewTime(t0)) }),
			pods: []*corev1.Pod{testPod("a", running)},
			want: outcome{Active: 1, Unfinalize: []string{"a"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := world{
				job: tt.job, pods: tt.pods, now: now, settled: !tt.unsettled,
				unfinalizing: sets.New(tt.unfinalizing...), backoff: tt.backoff,
				backoffBase: base, backoffMax: cap6,
			}
			got := outcomeOf(decide(w))
			want := tt.want
			if want.FailedIndexes == "" {
				want.FailedIndexes = "<nil>"
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("decide:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestDecideSetsStartTime(t *testing.T) {
	now := t0.Add(time.Hour)
	p := decide(world{job: testJob(func(j *batchv1.Job) { j.Status.StartTime = nil }), now: now, settled: true,
		unfinalizing: sets.New[types.UID](), backoffBase: base, backoffMax: cap6})
	if p.status.StartTime == nil || !p.status.StartTime.Time.Equal(now) {
		t.Errorf("startTime %v, want %v", p.status.StartTime, now)
	}
	p = decide(world{job: testJob(func(j *batchv1.Job) { j.Status.StartTime = nil; j.Spec.Suspend = ptr.To(true) }),
		now: now, settled: true, unfinalizing: sets.New[types.UID](), backoffBase: base, backoffMax: cap6})
	if p.status.StartTime != nil {
		t.Errorf("a suspended Job got startTime %v", p.status.StartTime)
	}
}
