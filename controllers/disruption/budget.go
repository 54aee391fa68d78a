package disruption

import (
	"errors"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/kubectl/pkg/util/podutils"
)

// Condition reasons, as Kubernetes writes them.
const (
	reasonSufficientPods   = policyv1.SufficientPodsReason
	reasonInsufficientPods = policyv1.InsufficientPodsReason
	reasonSyncFailed       = policyv1.SyncFailedReason
)

// owner is a pod's controlling workload as far as budgets care: its
// identity and how many pods it wants.
type owner struct {
	uid   types.UID
	scale int32
}

// errNoController says a pod's controller could not be found.
var errNoController = errors.New("found no controller for pod")

// expectation is what the budget is measured against.
type expectation struct {
	expected, desiredHealthy int32
	unmanaged                []string // pods without a controller (ignored in the count)
}

// expect works out the expected number of pods and the healthy pods the
// budget demands. An integer minAvailable is measured against the pods
// that exist; maxUnavailable and a percentage minAvailable against the
// sum of the scales of the pods' controllers (owners[i] is pods[i]'s, nil
// when it has no controller; ownerErr is the first failure to find one).
func expect(pdb *policyv1.PodDisruptionBudget, pods []*corev1.Pod, owners []*owner, ownerErr error) (expectation, error) {
	scaled := func() (expectation, error) {
		if ownerErr != nil {
			return expectation{}, ownerErr
		}
		var e expectation
		seen := map[types.UID]bool{}
		for i, o := range owners {
			if o == nil {
				e.unmanaged = append(e.unmanaged, pods[i].Name)
				continue
			}
			if !seen[o.uid] {
				seen[o.uid] = true
				e.expected += o.scale
			}
		}
		return e, nil
	}
	switch {
	case pdb.Spec.MaxUnavailable != nil:
		e, err := scaled()
		if err != nil {
			return e, err
		}
		maxUnavailable, err := intstr.GetScaledValueFromIntOrPercent(pdb.Spec.MaxUnavailable, int(e.expected), true)
		if err != nil {
			return e, err
		}
		e.desiredHealthy = max(e.expected-int32(maxUnavailable), 0)
		return e, nil
	case pdb.Spec.MinAvailable != nil && pdb.Spec.MinAvailable.Type == intstr.Int:
		return expectation{expected: int32(len(pods)), desiredHealthy: pdb.Spec.MinAvailable.IntVal}, nil
	case pdb.Spec.MinAvailable != nil:
		e, err := scaled()
		if err != nil {
			return e, err
		}
		minAvailable, err := intstr.GetScaledValueFromIntOrPercent(pdb.Spec.MinAvailable, int(e.expected), true)
		if err != nil {
			return e, err
		}
		e.desiredHealthy = int32(minAvailable)
		return e, nil
	}
	return expectation{}, nil
}

// computeStatus is the budget's new status at now. Pods that the
// eviction API recorded as disrupted count as gone until they are deleted
// or deletionTimeout passes (then the entry is dropped); recheck is when
// the next entry expires. On err (the expectation could not be worked
// out) no disruption is allowed and the condition says why, and the
// observed generation is left as it was.
func computeStatus(pdb *policyv1.PodDisruptionBudget, pods []*corev1.Pod, e expectation, err error, now time.Time, deletionTimeout time.Duration) (policyv1.PodDisruptionBudgetStatus, time.Duration) {
	st := *pdb.Status.DeepCopy()
	if err != nil {
		st.DisruptionsAllowed = 0
		apimeta.SetStatusCondition(&st.Conditions, metav1.Condition{
			Type: policyv1.DisruptionAllowedCondition, Status: metav1.ConditionFalse,
			Reason: reasonSyncFailed, Message: err.Error(), ObservedGeneration: st.ObservedGeneration,
			LastTransitionTime: metav1.NewTime(now),
		})
		return st, 0
	}

	disrupted := map[string]metav1.Time{}
	var recheck time.Duration
	for _, p := range pods {
		at, ok := pdb.Status.DisruptedPods[p.Name]
		if !ok || p.DeletionTimestamp != nil {
			continue
		}
		expires := at.Add(deletionTimeout)
		if !expires.After(now) {
			continue // the eviction did not lead to a deletion in time
		}
		disrupted[p.Name] = at
		if wait := expires.Sub(now); recheck == 0 || wait < recheck {
			recheck = wait
		}
	}
	var healthy int32
	for _, p := range pods {
		if _, gone := disrupted[p.Name]; gone || p.DeletionTimestamp != nil {
			continue
		}
		if podutils.IsPodReady(p) {
			healthy++
		}
	}
	allowed := healthy - e.desiredHealthy
	if e.expected <= 0 || allowed < 0 {
		allowed = 0
	}
	if len(disrupted) == 0 {
		disrupted = nil
	}
	st.ObservedGeneration = pdb.Generation
	st.DisruptedPods = disrupted
	st.DisruptionsAllowed = allowed
	st.CurrentHealthy = healthy
	st.DesiredHealthy = e.desiredHealthy
	st.ExpectedPods = e.expected
	cond := metav1.Condition{
		Type: policyv1.DisruptionAllowedCondition, Status: metav1.ConditionTrue,
		Reason: reasonSufficientPods, ObservedGeneration: pdb.Generation,
		LastTransitionTime: metav1.NewTime(now), // kept when the status does not change
	}
	if allowed == 0 {
		cond.Status, cond.Reason = metav1.ConditionFalse, reasonInsufficientPods
	}
	apimeta.SetStatusCondition(&st.Conditions, cond)
	return st, recheck
}
