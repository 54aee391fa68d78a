package job

import (
	"slices"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// Backoff per index (an Indexed Job with backoffLimitPerIndex): each index
// may fail backoffLimitPerIndex times before it is marked failed in
// status.failedIndexes; the Job fails when more than maxFailedIndexes
// indexes failed, or when every index has either succeeded or failed and
// some failed.
//
// An index's history travels on its pods: each pod carries, in the
// annotation batch.kubernetes.io/job-index-failure-count, how many times
// its index failed before it. So that the history is not lost when a
// failed pod is counted and goes away, a failed pod keeps its tracking
// finalizer until its replacement exists.

// perIndex is what the per-index backoff knows at one reconcile.
type perIndex struct {
	active bool // the Job uses backoffLimitPerIndex
	// failed holds the failed indexes: those recorded and new ones.
	failed indexSet
	// history is, per index still to run, what its next pod inherits.
	history map[int]indexHistory
	// delayed names failed pods whose finalizer stays until their index
	// has a new pod.
	delayed map[types.UID]bool
}

// indexHistory is one index's record.
type indexHistory struct {
	failures, ignored int
	// lastFailure is when the index's newest pod failed; zero when it did
	// not (no backoff applies).
	lastFailure time.Time
}

// wait is how long the index must still back off at w.now.
func (h indexHistory) wait(w world) time.Duration {
	if h.lastFailure.IsZero() {
		return 0
	}
	return max(h.lastFailure.Add(backoffDelay(h.failures, w.backoffBase, w.backoffMax)).Sub(w.now), 0)
}

func hasPerIndexBackoff(j *batchv1.Job) bool {
	return isIndexed(j) && j.Spec.BackoffLimitPerIndex != nil
}

// perIndexState reads each index's history from its pods: the counts its
// pods carry, plus one for each failure not yet counted (a failed pod the
// Job still tracks). The highest counts are what the index's next pod
// inherits, so pods created within the same second cannot confuse it.
func perIndexState(w world, t tally) perIndex {
	j := w.job
	completions := int(ptr.Deref(j.Spec.Completions, 0))
	limit := int(ptr.Deref(j.Spec.BackoffLimitPerIndex, 0))
	onlyFailed := onlyReplaceFailed(j)
	ph := perIndex{
		active:  true,
		history: map[int]indexHistory{},
		delayed: map[types.UID]bool{},
	}
	recorded := parseIndexSet(ptr.Deref(j.Status.FailedIndexes, ""), completions)
	byIndex := map[int][]*corev1.Pod{}
	for _, pod := range w.pods {
		if ix := validIndex(pod, completions); ix != noIndex {
			byIndex[ix] = append(byIndex[ix], pod)
		}
	}
	var newFailed []int
	for ix, pods := range byIndex {
		if recorded.has(ix) || t.succeededIndexes.has(ix) {
			continue
		}
		var h indexHistory
		var failedPods []*corev1.Pod
		indexFailed := false
		for _, pod := range pods {
			failures := indexCount(pod, batchv1.JobIndexFailureCountAnnotation)
			ignored := indexCount(pod, batchv1.JobIndexIgnoredFailureCountAnnotation)
			// Only a failure the Job still tracks counts: a pod the
			// controller deleted itself (suspend) lost its finalizer
			// first, and a counted one has handed its history on.
			if consideredFailed(pod, onlyFailed) && hasTrackingFinalizer(pod) && !w.unfinalizing.Has(pod.UID) {
				failedPods = append(failedPods, pod)
				switch v := judge(j.Spec.PodFailurePolicy, pod); {
				case v.action == batchv1.PodFailurePolicyActionFailIndex:
					indexFailed = true
				case !v.counts():
					ignored++
				default:
					failures++
					indexFailed = indexFailed || failures > limit
					if at := finishTime(pod); at.After(h.lastFailure) {
						h.lastFailure = at
					}
				}
			}
			h.failures, h.ignored = max(h.failures, failures), max(h.ignored, ignored)
		}
		if indexFailed {
			newFailed = append(newFailed, ix)
			continue
		}
		ph.history[ix] = h
		// A failed pod keeps its finalizer until a pod carrying its
		// history (a higher count) exists.
		for _, f := range failedPods {
			if !slices.ContainsFunc(pods, func(q *corev1.Pod) bool { return historyOf(q) > historyOf(f) }) {
				ph.delayed[f.UID] = true
			}
		}
	}
	ph.failed = recorded.with(newFailed)
	return ph
}

// historyOf is how many failures, counted or ignored, a pod's index had
// before it.
func historyOf(p *corev1.Pod) int {
	return indexCount(p, batchv1.JobIndexFailureCountAnnotation) + indexCount(p, batchv1.JobIndexIgnoredFailureCountAnnotation)
}

// indexFailureTarget says whether failed indexes fail the Job.
func indexFailureTarget(w world, t tally) *batchv1.JobCondition {
	j := w.job
	nFailed := t.failedIndexes.total()
	if m := j.Spec.MaxFailedIndexes; m != nil && nFailed > int(*m) {
		return newCondition(batchv1.JobFailureTarget, batchv1.JobReasonMaxFailedIndexesExceeded, msgMaxFailedIndexes, w.now)
	}
	if nFailed > 0 && nFailed+t.succeededIndexes.total() >= int(ptr.Deref(j.Spec.Completions, 0)) {
		return newCondition(batchv1.JobFailureTarget, batchv1.JobReasonFailedIndexes, msgFailedIndexes, w.now)
	}
	return nil
}
