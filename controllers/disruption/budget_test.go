package disruption

import (
	"errors"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func readyPod(name string, ready bool) *corev1.Pod {
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Status: corev1.PodStatus{Phase: corev1.PodRunning,
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}},
	}
}

func budget(minAvailable, maxUnavailable *intstr.IntOrString) *policyv1.PodDisruptionBudget {
	return &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "b", Generation: 3},
		Spec:       policyv1.PodDisruptionBudgetSpec{MinAvailable: minAvailable, MaxUnavailable: maxUnavailable},
	}
}

func TestBudgetMath(t *testing.T) {
	num := func(n int32) *intstr.IntOrString { v := intstr.FromInt32(n); return &v }
	pct := func(s string) *intstr.IntOrString { v := intstr.FromString(s); return &v }
	rs := &owner{uid: "rs", scale: 4}
	sts := &owner{uid: "sts", scale: 2}
	deleting := readyPod("d", true)
	now := metav1.NewTime(t0)
	deleting.DeletionTimestamp = &now

	cases := []struct {
		name                                string
		pdb                                 *policyv1.PodDisruptionBudget
		pods                                []*corev1.Pod
		owners                              []*owner
		ownerErr                            error
		expected, desired, healthy, allowed int32
		reason                              string
	}{
		{name: "minAvailable int counts existing pods", pdb: budget(num(2), nil),
			pods:     []*corev1.Pod{readyPod("a", true), readyPod("b", true), readyPod("c", true)},
			owners:   []*owner{nil, nil, nil},
			expected: 3, desired: 2, healthy: 3, allowed: 1, reason: reasonSufficientPods},
		{name: "minAvailable int not met", pdb: budget(num(3), nil),
			pods:     []*corev1.Pod{readyPod("a", true), readyPod("b", false), readyPod("c", true)},
			owners:   []*owner{nil, nil, nil},
			expected: 3, desired: 3, healthy: 2, allowed: 0, reason: reasonInsufficientPods},
		{name: "maxUnavailable against the controller's scale", pdb: budget(nil, num(1)),
			pods:     []*corev1.Pod{readyPod("a", true), readyPod("b", true), readyPod("c", true)},
			owners:   []*owner{rs, rs, rs},
			expected: 4, desired: 3, healthy: 3, allowed: 0, reason: reasonInsufficientPods},
		{name: "maxUnavailable percentage rounds up", pdb: budget(nil, pct("30%")),
			pods:     []*corev1.Pod{readyPod("a", true), readyPod("b", true), readyPod("c", true), readyPod("d", true)},
			owners:   []*owner{rs, rs, rs, rs},
			expected: 4, desired: 2, healthy: 4, allowed: 2, reason: reasonSufficientPods},
		{name: "minAvailable percentage over two controllers", pdb: budget(pct("50%"), nil),
			pods:     []*corev1.Pod{readyPod("a", true), readyPod("b", true), readyPod("c", true)},
			owners:   []*owner{rs, rs, sts},
			expected: 6, desired: 3, healthy: 3, allowed: 0, reason: reasonInsufficientPods},
		{name: "unmanaged pods are left out of the scale", pdb: budget(nil, num(1)),
			pods:     []*corev1.Pod{readyPod("a", true), readyPod("b", true)},
			owners:   []*owner{sts, nil},
			expected: 2, desired: 1, healthy: 2, allowed: 1, reason: reasonSufficientPods},
		{name: "deleting pods are not healthy", pdb: budget(num(1), nil),
			pods:     []*corev1.Pod{readyPod("a", true), deleting},
			owners:   []*owner{nil, nil},
			expected: 2, desired: 1, healthy: 1, allowed: 0, reason: reasonInsufficientPods},
		{name: "no pods: nothing allowed", pdb: budget(num(0), nil),
			expected: 0, desired: 0, healthy: 0, allowed: 0, reason: reasonInsufficientPods},
		{name: "missing controller: sync failed", pdb: budget(nil, num(1)),
			pods: []*corev1.Pod{readyPod("a", true)}, owners: []*owner{nil},
			ownerErr: fmt.Errorf("%w %q", errNoController, "a"), reason: reasonSyncFailed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, err := expect(tc.pdb, tc.pods, tc.owners, tc.ownerErr)
			st, _ := computeStatus(tc.pdb, tc.pods, e, err, t0, DefaultDeletionTimeout)
			cond := apimeta.FindStatusCondition(st.Conditions, policyv1.DisruptionAllowedCondition)
			if cond == nil || cond.Reason != tc.reason {
				t.Fatalf("condition %+v, want reason %s", cond, tc.reason)
			}
			if tc.reason == reasonSyncFailed {
				if !errors.Is(err, errNoController) || st.DisruptionsAllowed != 0 || st.ObservedGeneration != 0 {
					t.Errorf("sync failure: err %v status %+v", err, st)
				}
				return
			}
			if st.ExpectedPods != tc.expected || st.DesiredHealthy != tc.desired || st.CurrentHealthy != tc.healthy ||
				st.DisruptionsAllowed != tc.allowed || st.ObservedGeneration != 3 {
				t.Errorf("expected %d desired %d healthy %d allowed %d gen %d; want %d %d %d %d 3",
					st.ExpectedPods, st.DesiredHealthy, st.CurrentHealthy, st.DisruptionsAllowed, st.ObservedGeneration,
					tc.expected, tc.desired, tc.healthy, tc.allowed)
			}
			if (cond.Status == metav1.ConditionTrue) != (tc.allowed > 0) {
				t.Errorf("condition status %s with %d allowed", cond.Status, tc.allowed)
			}
		})
	}
}

func TestDisruptedPods(t *testing.T) {
	pdb := budget(func() *intstr.IntOrString { v := intstr.FromInt32(1); return &v }(), nil)
	pdb.Status.DisruptedPods = map[string]metav1.Time{
		"recent":  metav1.NewTime(t0.Add(-30 * time.Second)),
		"stale":   metav1.NewTime(t0.Add(-3 * time.Minute)),
		"deleted": metav1.NewTime(t0.Add(-10 * time.Second)),
		"gone":    metav1.NewTime(t0.Add(-10 * time.Second)),
	}
	deleted := readyPod("deleted", true)
	ts := metav1.NewTime(t0)
	deleted.DeletionTimestamp = &ts
	pods := []*corev1.Pod{readyPod("recent", true), readyPod("stale", true), deleted, readyPod("other", true)}
	e, err := expect(pdb, pods, make([]*owner, len(pods)), nil)
	st, recheck := computeStatus(pdb, pods, e, err, t0, DefaultDeletionTimeout)
	if len(st.DisruptedPods) != 1 || st.DisruptedPods["recent"].Time.IsZero() {
		t.Errorf("disruptedPods %v, want only recent", st.DisruptedPods)
	}
	if recheck != 90*time.Second {
		t.Errorf("recheck %v, want 90s (when recent expires)", recheck)
	}
	// recent counts as gone, deleted is deleting: stale and other are healthy.
	if st.CurrentHealthy != 2 || st.DisruptionsAllowed != 1 {
		t.Errorf("healthy %d allowed %d, want 2 and 1", st.CurrentHealthy, st.DisruptionsAllowed)
	}
	st2, _ := computeStatus(pdb, pods, e, err, t0.Add(2*time.Minute), DefaultDeletionTimeout)
	if len(st2.DisruptedPods) != 0 || st2.CurrentHealthy != 3 {
		t.Errorf("after the timeout: disrupted %v healthy %d", st2.DisruptedPods, st2.CurrentHealthy)
	}
}

func TestConditionTransitionTimeKept(t *testing.T) {
	pdb := budget(func() *intstr.IntOrString { v := intstr.FromInt32(0); return &v }(), nil)
	pods := []*corev1.Pod{readyPod("a", true)}
	e, _ := expect(pdb, pods, []*owner{nil}, nil)
	st, _ := computeStatus(pdb, pods, e, nil, t0, DefaultDeletionTimeout)
	pdb.Status = st
	st2, _ := computeStatus(pdb, pods, e, nil, t0.Add(time.Hour), DefaultDeletionTimeout)
	c := apimeta.FindStatusCondition(st2.Conditions, policyv1.DisruptionAllowedCondition)
	if !c.LastTransitionTime.Time.Equal(t0) {
		t.Errorf("transition time %v, want %v (unchanged status)", c.LastTransitionTime, t0)
	}
}
