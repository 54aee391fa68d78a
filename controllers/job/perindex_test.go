package job

import (
	"reflect"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/utils/ptr"
)

func TestPerIndexBackoff(t *testing.T) {
	now := t0.Add(time.Minute)
	perIndexJob := func(mods ...func(*batchv1.Job)) *batchv1.Job {
		return testJob(append([]func(*batchv1.Job){counts(3, 3), indexed, func(j *batchv1.Job) {
			j.Spec.BackoffLimitPerIndex = ptr.To(int32(1))
			j.Spec.BackoffLimit = ptr.To(int32(1<<31 - 1))
		}}, mods...)...)
	}
	failures := func(n string) func(*corev1.Pod) {
		return func(p *corev1.Pod) { p.Annotations[batchv1.JobIndexFailureCountAnnotation] = n }
	}
	tests := []struct {
		name          string
		job           *batchv1.Job
		pods          []*corev1.Pod
		create        []newPod
		unfinalize    []string
		failedIndexes string
		finish        string
	}{
		{
			name: "a first failure is retried with its count, the failed pod keeps its finalizer until then",
			job:  perIndexJob(),
			pods: []*corev1.Pod{testPod("a", corev1.PodFailed, atIndex(0), exited(1, now.Add(-time.Hour))),
				testPod("b", corev1.PodRunning, atIndex(1)), testPod("c", corev1.PodRunning, atIndex(2))},
			create: []newPod{{index: 0, failures: 1}},
		},
		{
			name: "once replaced, the failed pod is counted",
			job:  perIndexJob(),
			pods: []*corev1.Pod{testPod("a", corev1.PodFailed, atIndex(0), exited(1, t0)),
				testPod("a2", corev1.PodRunning, atIndex(0), failures("1"), created(t0.Add(time.Second))),
				testPod("b", corev1.PodRunning, atIndex(1)), testPod("c", corev1.PodRunning, atIndex(2))},
			unfinalize: []string{"a"},
		},
		{
			name: "failing again past the limit marks the index failed; the others go on",
			job:  perIndexJob(),
			pods: []*corev1.Pod{testPod("a2", corev1.PodFailed, atIndex(0), failures("1"), exited(1, t0)),
				testPod("b", corev1.PodRunning, atIndex(1)), testPod("c", corev1.PodRunning, atIndex(2))},
			unfinalize:    []string{"a2"},
			failedIndexes: "0",
		},
		{
			name: "created in the same second as its predecessor, the replacement's count still wins",
			job:  perIndexJob(),
			pods: []*corev1.Pod{testPod("z-first", corev1.PodFailed, atIndex(0), exited(1, t0)),
				testPod("a-second", corev1.PodFailed, atIndex(0), failures("1"), exited(1, t0)),
				testPod("b", corev1.PodRunning, atIndex(1)), testPod("c", corev1.PodRunning, atIndex(2))},
			unfinalize:    []string{"z-first", "a-second"},
			failedIndexes: "0",
		},
		{
			name:          "every index done, one failed: the Job fails with FailedIndexes",
			job:           perIndexJob(func(j *batchv1.Job) { j.Status.FailedIndexes = ptr.To("0"); j.Status.CompletedIndexes = "1-2" }),
			failedIndexes: "0",
			finish:        "Failed/FailedIndexes",
		},
		{
			name: "more failed indexes than maxFailedIndexes fails the Job at once",
			job: perIndexJob(func(j *batchv1.Job) {
				j.Spec.MaxFailedIndexes = ptr.To(int32(0))
				j.Status.FailedIndexes = ptr.To("0")
			}),
			pods:          []*corev1.Pod{testPod("b", corev1.PodRunning, atIndex(1))},
			unfinalize:    []string{"b"},
			failedIndexes: "0",
			finish:        "Failed/MaxFailedIndexesExceeded",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, p := range tt.pods {
				if p.Annotations == nil {
					p.Annotations = map[string]string{}
				}
			}
			p := decide(world{job: tt.job, pods: tt.pods, now: now, settled: true, unfinalizing: sets.New[types.UID](),
				backoffBase: base, backoffMax: cap6})
			if !reflect.DeepEqual(p.create, tt.create) {
				t.Errorf("create %+v, want %+v", p.create, tt.create)
			}
			var unfin []string
			for _, pod := range p.unfinalize {
				unfin = append(unfin, pod.Name)
			}
			if !reflect.DeepEqual(unfin, tt.unfinalize) {
				t.Errorf("unfinalize %v, want %v", unfin, tt.unfinalize)
			}
			if got := ptr.Deref(p.status.FailedIndexes, "<nil>"); got != tt.failedIndexes {
				t.Errorf("failedIndexes %q, want %q", got, tt.failedIndexes)
			}
			finish := ""
			if p.finish != nil {
				finish = string(p.finish.Type) + "/" + p.finish.Reason
			}
			if finish != tt.finish {
				t.Errorf("finish %q, want %q", finish, tt.finish)
			}
		})
	}
}
