package job

import (
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestJudge(t *testing.T) {
	in := func(action batchv1.PodFailurePolicyAction, codes ...int32) batchv1.PodFailurePolicyRule {
		return batchv1.PodFailurePolicyRule{Action: action, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{
			Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: codes}}
	}
	notIn := func(action batchv1.PodFailurePolicyAction, codes ...int32) batchv1.PodFailurePolicyRule {
		r := in(action, codes...)
		r.OnExitCodes.Operator = batchv1.PodFailurePolicyOnExitCodesOpNotIn
		return r
	}
	onCondition := func(action batchv1.PodFailurePolicyAction, ct corev1.PodConditionType) batchv1.PodFailurePolicyRule {
		return batchv1.PodFailurePolicyRule{Action: action, OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{
			{Type: ct, Status: corev1.ConditionTrue}}}
	}
	disrupted := func(p *corev1.Pod) {
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}}
	}
	twoContainers := func(p *corev1.Pod) {
		p.Status.ContainerStatuses = []corev1.ContainerStatus{
			{Name: "ok", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0}}},
			{Name: "bad", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 3}}},
		}
	}
	tests := []struct {
		name   string
		rules  []batchv1.PodFailurePolicyRule
		pod    *corev1.Pod
		action batchv1.PodFailurePolicyAction
		msg    string
	}{
		{name: "no rules: counts", pod: testPod("p", corev1.PodFailed, exited(1, t0))},
		{name: "In matches", rules: []batchv1.PodFailurePolicyRule{in(batchv1.PodFailurePolicyActionFailJob, 1, 2)},
			pod: testPod("p", corev1.PodFailed, exited(2, t0)), action: batchv1.PodFailurePolicyActionFailJob,
			msg: "Pod ns/p container main exited with code 2, matching the FailJob rule at index 0"},
		{name: "In does not match", rules: []batchv1.PodFailurePolicyRule{in(batchv1.PodFailurePolicyActionFailJob, 1)},
			pod: testPod("p", corev1.PodFailed, exited(2, t0))},
		{name: "NotIn matches other codes", rules: []batchv1.PodFailurePolicyRule{notIn(batchv1.PodFailurePolicyActionIgnore, 1)},
			pod: testPod("p", corev1.PodFailed, exited(2, t0)), action: batchv1.PodFailurePolicyActionIgnore,
			msg: "Pod ns/p container main exited with code 2, matching the Ignore rule at index 0"},
		{name: "exit code 0 never matches, even NotIn", rules: []batchv1.PodFailurePolicyRule{notIn(batchv1.PodFailurePolicyActionFailJob, 1)},
			pod: testPod("p", corev1.PodFailed, exited(0, t0))},
		{name: "first matching rule wins", rules: []batchv1.PodFailurePolicyRule{
			in(batchv1.PodFailurePolicyActionCount, 5), in(batchv1.PodFailurePolicyActionIgnore, 3), in(batchv1.PodFailurePolicyActionFailJob, 3)},
			pod: testPod("p", corev1.PodFailed, twoContainers), action: batchv1.PodFailurePolicyActionIgnore,
			msg: "Pod ns/p container bad exited with code 3, matching the Ignore rule at index 1"},
		{name: "containerName restricts the match", rules: []batchv1.PodFailurePolicyRule{func() batchv1.PodFailurePolicyRule {
			r := in(batchv1.PodFailurePolicyActionFailJob, 3)
			r.OnExitCodes.ContainerName = ptr.To("ok")
			return r
		}()}, pod: testPod("p", corev1.PodFailed, twoContainers)},
		{name: "pod condition", rules: []batchv1.PodFailurePolicyRule{onCondition(batchv1.PodFailurePolicyActionIgnore, corev1.DisruptionTarget)},
			pod: testPod("p", corev1.PodFailed, disrupted), action: batchv1.PodFailurePolicyActionIgnore,
			msg: "Pod ns/p has condition DisruptionTarget=True, matching the Ignore rule at index 0"},
		{name: "init container exit codes count too", rules: []batchv1.PodFailurePolicyRule{in(batchv1.PodFailurePolicyActionFailIndex, 9)},
			pod: testPod("p", corev1.PodFailed, func(p *corev1.Pod) {
				p.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "init",
					State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 9}}}}
			}), action: batchv1.PodFailurePolicyActionFailIndex,
			msg: "Pod ns/p container init exited with code 9, matching the FailIndex rule at index 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var policy *batchv1.PodFailurePolicy
			if tt.rules != nil {
				policy = &batchv1.PodFailurePolicy{Rules: tt.rules}
			}
			v := judge(policy, tt.pod)
			if v.action != tt.action || v.message != tt.msg {
				t.Errorf("judge = %q %q, want %q %q", v.action, v.message, tt.action, tt.msg)
			}
			if v.counts() != (tt.action != batchv1.PodFailurePolicyActionIgnore) {
				t.Errorf("counts = %v", v.counts())
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	for _, tt := range []struct {
		failures int
		want     time.Duration
	}{{0, 0}, {1, 10 * time.Second}, {2, 20 * time.Second}, {3, 40 * time.Second}, {6, 320 * time.Second}, {7, 6 * time.Minute}, {60, 6 * time.Minute}} {
		if got := backoffDelay(tt.failures, base, cap6); got != tt.want {
			t.Errorf("backoffDelay(%d) = %v, want %v", tt.failures, got, tt.want)
		}
	}
	// A success resets the run; failures count from the last of them.
	r := backoffRecord{failures: 4, lastFailure: t0}.with([]attempt{
		{at: t0.Add(3 * time.Second), failed: true},
		{at: t0.Add(time.Second)},
		{at: t0.Add(2 * time.Second), failed: true},
	})
	if want := (backoffRecord{failures: 2, lastFailure: t0.Add(3 * time.Second)}); r != want {
		t.Errorf("record = %+v, want %+v", r, want)
	}
	if got := r.remaining(t0.Add(13*time.Second), base, cap6); got != 10*time.Second {
		t.Errorf("remaining = %v, want 10s", got)
	}
	if got := r.remaining(t0.Add(time.Hour), base, cap6); got != 0 {
		t.Errorf("remaining after an hour = %v", got)
	}
}

func TestFinishTime(t *testing.T) {
	if got := finishTime(testPod("p", corev1.PodFailed, exited(1, t0.Add(time.Minute)))); !got.Equal(t0.Add(time.Minute)) {
		t.Errorf("from the container: %v", got)
	}
	del := testPod("p", corev1.PodRunning, func(p *corev1.Pod) {
		p.DeletionTimestamp = ptr.To(metav1.NewTime(t0.Add(30 * time.Second)))
		p.DeletionGracePeriodSeconds = ptr.To(int64(30))
	})
	if got := finishTime(del); !got.Equal(t0) {
		t.Errorf("from the deletion: %v, want %v", got, t0)
	}
	if got := finishTime(testPod("p", corev1.PodFailed)); !got.Equal(t0) {
		t.Errorf("from the creation: %v", got)
	}
}
