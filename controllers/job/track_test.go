package job

import (
	"reflect"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/utils/ptr"
)

func TestSettle(t *testing.T) {
	complete := newCondition(batchv1.JobComplete, batchv1.JobReasonCompletionsReached, msgCompletionsReached, t0)
	failed := newCondition(batchv1.JobFailed, batchv1.JobReasonBackoffLimitExceeded, msgBackoffLimit, t0)
	status := func(succ, fail int32, uncSucc, uncFail []types.UID, terminating int32) batchv1.JobStatus {
		return batchv1.JobStatus{Succeeded: succ, Failed: fail, Terminating: ptr.To(terminating),
			UncountedTerminatedPods: &batchv1.UncountedTerminatedPods{Succeeded: uncSucc, Failed: uncFail}}
	}
	tests := []struct {
		name       string
		in         batchv1.JobStatus
		held       []types.UID
		finish     *batchv1.JobCondition
		capped     bool
		succ, fail int32
		uncounted  int
		finished   bool
		events     []string
	}{
		{name: "released pods move into the counters", in: status(1, 0, []types.UID{"a", "b"}, []types.UID{"c"}, 0),
			succ: 3, fail: 1},
		{name: "pods still held stay uncounted", in: status(0, 0, []types.UID{"a", "b"}, []types.UID{"c"}, 0),
			held: []types.UID{"b", "c"}, succ: 1, fail: 0, uncounted: 2},
		{name: "all counted: Complete", in: status(1, 0, []types.UID{"a"}, nil, 0), finish: complete,
			succ: 2, finished: true, events: []string{"Completed"}},
		{name: "all counted: Failed, with the reason as the event", in: status(0, 1, nil, []types.UID{"a"}, 0), finish: failed,
			fail: 2, finished: true, events: []string{batchv1.JobReasonBackoffLimitExceeded}},
		{name: "a pod still uncounted holds the finish", in: status(0, 0, []types.UID{"a"}, nil, 0), held: []types.UID{"a"},
			finish: complete, uncounted: 1},
		{name: "a terminating pod holds the finish", in: status(2, 0, nil, nil, 1), finish: complete, succ: 2},
		{name: "a capped reconcile does not finish", in: status(2, 0, nil, nil, 0), finish: complete, capped: true, succ: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.in.DeepCopy()
			got, events := settle(tt.in, sets.New(tt.held...), tt.finish, tt.capped)
			if !reflect.DeepEqual(before, &tt.in) {
				t.Errorf("settle changed its input")
			}
			unc := len(got.UncountedTerminatedPods.Succeeded) + len(got.UncountedTerminatedPods.Failed)
			if got.Succeeded != tt.succ || got.Failed != tt.fail || unc != tt.uncounted {
				t.Errorf("succeeded/failed/uncounted = %d/%d/%d, want %d/%d/%d", got.Succeeded, got.Failed, unc, tt.succ, tt.fail, tt.uncounted)
			}
			if fin := finished(&batchv1.Job{Status: got}) != nil; fin != tt.finished {
				t.Errorf("finished = %v, want %v", fin, tt.finished)
			}
			if tt.finished && tt.finish.Type == batchv1.JobComplete && (got.CompletionTime == nil || !got.CompletionTime.Equal(&tt.finish.LastTransitionTime)) {
				t.Errorf("completionTime %v", got.CompletionTime)
			}
			var reasons []string
			for _, e := range events {
				reasons = append(reasons, e.reason)
			}
			if !reflect.DeepEqual(reasons, tt.events) {
				t.Errorf("events %v, want %v", reasons, tt.events)
			}
		})
	}
}

func TestTTLExpiry(t *testing.T) {
	j := testJob(withCondition(batchv1.JobComplete, ""), func(j *batchv1.Job) {
		j.Spec.TTLSecondsAfterFinished = ptr.To(int32(100))
		j.Status.CompletionTime = ptr.To(j.Status.Conditions[0].LastTransitionTime)
	})
	if at, ok := ttlExpiry(j); !ok || !at.Equal(t0.Add(100*time.Second)) {
		t.Errorf("ttlExpiry = %v %v", at, ok)
	}
	if _, ok := ttlExpiry(testJob(func(j *batchv1.Job) { j.Spec.TTLSecondsAfterFinished = ptr.To(int32(0)) })); ok {
		t.Error("a running Job expired")
	}
	if _, ok := ttlExpiry(testJob(withCondition(batchv1.JobFailed, "x"))); ok {
		t.Error("a Job without a TTL expired")
	}
	failedJob := testJob(withCondition(batchv1.JobFailed, "x"), func(j *batchv1.Job) { j.Spec.TTLSecondsAfterFinished = ptr.To(int32(0)) })
	if at, ok := ttlExpiry(failedJob); !ok || !at.Equal(t0) {
		t.Errorf("failed Job ttlExpiry = %v %v", at, ok)
	}
}
