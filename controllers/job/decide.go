package job

import (
	"slices"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/utils/ptr"
)

// Limits per reconcile, as Kubernetes keeps them: a huge Job makes
// progress in steps and does not starve the others, and the uncounted
// lists in its status stay small.
const (
	maxCreateDeletePerSync = 500
	maxUncountedPods       = 500
)

// Condition reasons and messages Skiff writes that batch/v1 has no
// constant for.
const (
	reasonSuspended = "JobSuspended"
	reasonResumed   = "JobResumed"
	msgSuspended    = "Job suspended"
	msgResumed      = "Job resumed"

	msgBackoffLimit       = "Job has reached the specified backoff limit"
	msgDeadline           = "Job was active longer than specified deadline"
	msgMaxFailedIndexes   = "Job has exceeded the specified maximal number of failed indexes"
	msgFailedIndexes      = "Job has failed indexes"
	msgCompletionsReached = "Reached expected number of succeeded pods"
)

// world is what one reconcile of a Job observes.
type world struct {
	job  *batchv1.Job  // not changed by decide
	pods []*corev1.Pod // the pods the Job controls
	now  time.Time
	// settled says every creation and deletion the controller asked for
	// has shown up in its cache, so pods may be counted for creating or
	// deleting more.
	settled bool
	// unfinalizing names pods whose tracking finalizer the controller has
	// removed (they are counted) while its cache may still show it.
	unfinalizing sets.Set[types.UID]
	// backoff is the Job's failure record so far; backoffBase and
	// backoffMax shape the pod re-creation backoff.
	backoff                 backoffRecord
	backoffBase, backoffMax time.Duration
}

// event is an Event to record on the Job.
type event struct{ kind, reason, message string }

// plan is what decide asks the loop to do, in order: delete pods, create
// pods, write status, remove tracking finalizers, then settle.
type plan struct {
	// release are pods to delete that must not count as failures (excess
	// pods, a suspended Job's pods): their finalizer goes first.
	release []*corev1.Pod
	// kill are pods to delete that count as failures once they stop (the
	// pods of a failing Job, of failed indexes).
	kill []*corev1.Pod
	// create are the pods to create.
	create []newPod
	// status is the Job's status to write before finalizers are removed:
	// new uncounted pods, counters, interim conditions.
	status batchv1.JobStatus
	// unfinalize are the pods whose tracking finalizer can go once status
	// is written.
	unfinalize []*corev1.Pod
	// finish is the terminal condition (Complete or Failed) to add once
	// every pod is counted and none is terminating; nil if the Job is not
	// finishing.
	finish *batchv1.JobCondition
	// capped says the uncounted lists hit their limit: more pods wait for
	// the next reconcile, so the Job cannot finish in this one.
	capped bool
	events []event
	// backoff is the Job's failure record with the pods counted now; the
	// loop keeps it once the status is written.
	backoff backoffRecord
	// requeueAfter asks for a look when a backoff or deadline ends.
	requeueAfter time.Duration
}

// tally is the counting part of a reconcile.
type tally struct {
	active, terminating []*corev1.Pod
	ready               int32
	succeeded, failed   int32 // including pods not yet recorded in status
	succeededIndexes    indexSet
	failedIndexes       indexSet
	attempts            []attempt // pods counted for the first time
}

// decide is the Job controller's core: from the Job and its pods at now,
// what to delete, create and record. It does no I/O.
func decide(w world) plan {
	j := w.job
	st := *j.Status.DeepCopy()
	if st.UncountedTerminatedPods == nil {
		st.UncountedTerminatedPods = &batchv1.UncountedTerminatedPods{}
	}
	p := plan{}
	suspended := ptr.Deref(j.Spec.Suspend, false)
	deleting := j.DeletionTimestamp != nil
	t := count(w, &st)
	p.backoff = w.backoff.with(t.attempts)
	if st.StartTime == nil && !suspended {
		st.StartTime = ptr.To(metav1.NewTime(w.now))
	}

	ph := perIndex{}
	if hasPerIndexBackoff(j) {
		ph = perIndexState(w, t)
		t.failedIndexes = ph.failed
	}

	// Is the Job finishing? An interim condition already written decides;
	// otherwise failure is checked before success, as Kubernetes does.
	target := interimCondition(j)
	if target == nil {
		target = failureTarget(w, t, &p)
	}
	if target == nil && ph.active {
		target = indexFailureTarget(w, t)
	}

	active := int32(len(t.active))
	terminating := int32(len(t.terminating))
	manage := false
	if isFailure(target) {
		// Stop everything still running; the pods count as failures.
		p.kill = t.active
		terminating += active
		active = 0
		t.ready = 0
	} else if target == nil && w.settled && !deleting {
		manage = true
		p.release, p.kill, p.create = manageJob(w, t, ph, &p)
		for _, pod := range append(slices.Clone(p.release), p.kill...) {
			if isReady(pod) {
				t.ready--
			}
		}
		gone := int32(len(p.release) + len(p.kill))
		active += int32(len(p.create)) - gone
		terminating += gone
	}
	if target == nil && complete(j, t.succeeded, active) {
		target = newCondition(batchv1.JobSuccessCriteriaMet, batchv1.JobReasonCompletionsReached, msgCompletionsReached, w.now)
	}
	if target == nil && manage {
		suspendConditions(w, &st, &p)
	}

	st.Active = active
	st.Ready = ptr.To(t.ready)
	st.Terminating = ptr.To(terminating)
	p.unfinalize, p.capped = track(w, t, ph, target, &st)
	if target != nil {
		if findCondition(st.Conditions, target.Type) == nil {
			st.Conditions = append(st.Conditions, *target)
		}
		final := batchv1.JobFailed
		if target.Type == batchv1.JobSuccessCriteriaMet {
			final = batchv1.JobComplete
		}
		if w.settled {
			// A pod created a moment ago and not yet seen could still run.
			p.finish = newCondition(final, target.Reason, target.Message, w.now)
		}
	}
	p.status = st
	return p
}

// count works out the pods' states and the Job's counters, including
// finished pods not yet recorded in the status.
func count(w world, st *batchv1.JobStatus) tally {
	j := w.job
	indexed := isIndexed(j)
	completions := int(ptr.Deref(j.Spec.Completions, 0))
	onlyFailed := onlyReplaceFailed(j)
	unc := st.UncountedTerminatedPods
	uncSucceeded, uncFailed := sets.New(unc.Succeeded...), sets.New(unc.Failed...)
	t := tally{
		succeeded: st.Succeeded + int32(len(unc.Succeeded)),
		failed:    st.Failed + int32(len(unc.Failed)),
	}
	var newSucceeded []int
	for _, pod := range w.pods {
		switch {
		case isActive(pod):
			t.active = append(t.active, pod)
			if isReady(pod) {
				t.ready++
			}
		case isTerminating(pod):
			t.terminating = append(t.terminating, pod)
		}
		failed := consideredFailed(pod, onlyFailed)
		succeeded := pod.Status.Phase == corev1.PodSucceeded
		if indexed && succeeded {
			if ix := validIndex(pod, completions); ix != noIndex {
				newSucceeded = append(newSucceeded, ix)
			}
		}
		if !unrecorded(w, pod, uncSucceeded, uncFailed) || (indexed && validIndex(pod, completions) == noIndex) {
			continue
		}
		switch {
		case succeeded:
			if !indexed {
				t.succeeded++
			}
			t.attempts = append(t.attempts, attempt{at: finishTime(pod)})
		case failed && judge(j.Spec.PodFailurePolicy, pod).counts():
			t.failed++
			t.attempts = append(t.attempts, attempt{at: finishTime(pod), failed: true})
		}
	}
	if indexed {
		t.succeededIndexes = parseIndexSet(st.CompletedIndexes, completions).with(newSucceeded)
		t.succeeded = int32(t.succeededIndexes.total())
	}
	return t
}

// unrecorded says whether a pod is still to be counted: it holds the
// tracking finalizer, the controller has not just removed it, and it is
// not in the uncounted lists already.
func unrecorded(w world, pod *corev1.Pod, uncSucceeded, uncFailed sets.Set[types.UID]) bool {
	return hasTrackingFinalizer(pod) && !w.unfinalizing.Has(pod.UID) &&
		!uncSucceeded.Has(pod.UID) && !uncFailed.Has(pod.UID)
}

// interimCondition returns the SuccessCriteriaMet or FailureTarget
// condition already in the Job's status.
func interimCondition(j *batchv1.Job) *batchv1.JobCondition {
	for _, ct := range []batchv1.JobConditionType{batchv1.JobSuccessCriteriaMet, batchv1.JobFailureTarget} {
		if c := findCondition(j.Status.Conditions, ct); c != nil && c.Status == corev1.ConditionTrue {
			return c.DeepCopy()
		}
	}
	return nil
}

// failureTarget checks, in Kubernetes' order, whether the Job has failed:
// a FailJob rule matched, too many failures (or container restarts for
// OnFailure pods), or the active deadline passed. When the deadline is
// still ahead it asks for a reconcile then.
func failureTarget(w world, t tally, p *plan) *batchv1.JobCondition {
	j := w.job
	if j.Spec.PodFailurePolicy != nil {
		onlyFailed := onlyReplaceFailed(j)
		for _, pod := range w.pods {
			if !consideredFailed(pod, onlyFailed) {
				continue
			}
			if v := judge(j.Spec.PodFailurePolicy, pod); v.action == batchv1.PodFailurePolicyActionFailJob {
				return newCondition(batchv1.JobFailureTarget, batchv1.JobReasonPodFailurePolicy, v.message, w.now)
			}
		}
	}
	if t.failed > ptr.Deref(j.Spec.BackoffLimit, 6) || pastBackoffLimitOnFailure(j, w.pods) {
		return newCondition(batchv1.JobFailureTarget, batchv1.JobReasonBackoffLimitExceeded, msgBackoffLimit, w.now)
	}
	if d := j.Spec.ActiveDeadlineSeconds; d != nil && !ptr.Deref(j.Spec.Suspend, false) {
		// A Job being resumed starts its deadline afresh (suspendConditions
		// resets startTime in this same reconcile).
		start := w.now
		if j.Status.StartTime != nil && !resuming(j) {
			start = j.Status.StartTime.Time
		}
		left := start.Add(time.Duration(*d) * time.Second).Sub(w.now)
		if left <= 0 {
			return newCondition(batchv1.JobFailureTarget, batchv1.JobReasonDeadlineExceeded, msgDeadline, w.now)
		}
		p.wake(left)
	}
	return nil
}

// pastBackoffLimitOnFailure counts, for a Job whose pods restart their
// containers in place (restartPolicy OnFailure), the restarts of its
// running and pending pods against backoffLimit.
func pastBackoffLimitOnFailure(j *batchv1.Job, pods []*corev1.Pod) bool {
	if j.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyOnFailure {
		return false
	}
	var n int32
	for _, pod := range pods {
		if pod.Status.Phase == corev1.PodRunning || pod.Status.Phase == corev1.PodPending {
			n += restarts(pod)
		}
	}
	limit := ptr.Deref(j.Spec.BackoffLimit, 6)
	if limit == 0 {
		return n > 0
	}
	return n >= limit
}

// complete says whether the Job has succeeded: enough completions (or,
// without completions, any success) and nothing left running.
func complete(j *batchv1.Job, succeeded, active int32) bool {
	if active > 0 {
		return false
	}
	if j.Spec.Completions == nil {
		return succeeded > 0
	}
	return succeeded >= *j.Spec.Completions
}

// manageJob decides the pods to delete and create so that the right
// number runs: none while suspended, otherwise as many as parallelism
// allows and completions still need, after the backoff.
func manageJob(w world, t tally, ph perIndex, p *plan) (release, kill []*corev1.Pod, create []newPod) {
	j := w.job
	active := slices.Clone(t.active)
	slices.SortFunc(active, deleteFirst)
	if ptr.Deref(j.Spec.Suspend, false) {
		return capped(active), nil, nil
	}
	indexed := isIndexed(j)
	completions := ptr.Deref(j.Spec.Completions, 0)
	parallelism := ptr.Deref(j.Spec.Parallelism, 1)

	// Indexed: pods with an unusable or repeated index, or of an index
	// that has failed, go whatever the counts.
	if indexed {
		var keep []*corev1.Pod
		release, kill, keep = sortIndexed(active, int(completions), t.succeededIndexes, t.failedIndexes)
		active = keep
	}

	want := parallelism
	if j.Spec.Completions == nil {
		if t.succeeded > 0 {
			want = int32(len(active)) // let the rest finish; start no more
		}
	} else {
		want = max(min(completions-t.succeeded, parallelism), 0)
	}
	if excess := int32(len(active)) - want; excess > 0 {
		release = append(release, active[:excess]...)
	}
	if len(release)+len(kill) > 0 {
		// Deleting and creating in one go could fight over an index; the
		// deletions' events bring the Job back for the creations.
		return capped(release), capped(kill), nil
	}

	running := int32(len(active))
	if onlyReplaceFailed(j) {
		running += int32(len(t.terminating))
	}
	diff := int(want - running)
	if diff <= 0 {
		return nil, nil, nil
	}
	diff = min(diff, maxCreateDeletePerSync)
	if !indexed {
		if left := p.backoff.remaining(w.now, w.backoffBase, w.backoffMax); left > 0 {
			p.wake(left)
			return nil, nil, nil
		}
		create = make([]newPod, diff)
		for i := range create {
			create[i] = newPod{index: noIndex}
		}
		return nil, nil, create
	}
	taken := map[int]bool{}
	for _, pod := range t.active {
		taken[completionIndex(pod)] = true
	}
	if onlyReplaceFailed(j) {
		for _, pod := range t.terminating {
			taken[completionIndex(pod)] = true
		}
	}
	if !ph.active {
		if left := p.backoff.remaining(w.now, w.backoffBase, w.backoffMax); left > 0 {
			p.wake(left)
			return nil, nil, nil
		}
	}
	for _, ix := range lowestFree(int(completions), int(completions), taken, t.succeededIndexes, t.failedIndexes) {
		if len(create) == diff {
			break
		}
		np := newPod{index: ix}
		if ph.active {
			h := ph.history[ix]
			if left := h.wait(w); left > 0 {
				p.wake(left)
				continue
			}
			np.failures, np.ignored = h.failures, h.ignored
		}
		create = append(create, np)
	}
	return nil, nil, create
}

// sortIndexed splits an Indexed Job's active pods (in deletion order)
// into pods to release (no usable index, an index already completed, or a
// repeat of another active pod's index: the one furthest along stays),
// pods to kill (their index has failed) and the pods to keep.
func sortIndexed(active []*corev1.Pod, completions int, succeeded, failed indexSet) (release, kill, keep []*corev1.Pod) {
	seen := map[int]bool{}
	for i := len(active) - 1; i >= 0; i-- { // furthest along first
		pod := active[i]
		ix := validIndex(pod, completions)
		switch {
		case ix == noIndex || seen[ix] || succeeded.has(ix):
			release = append(release, pod)
		case failed.has(ix):
			kill = append(kill, pod)
		default:
			seen[ix] = true
			keep = append(keep, pod)
		}
	}
	slices.Reverse(keep)
	return release, kill, keep
}

// capped limits a list of pods to delete to one reconcile's share.
func capped(pods []*corev1.Pod) []*corev1.Pod {
	if len(pods) > maxCreateDeletePerSync {
		return pods[:maxCreateDeletePerSync]
	}
	return pods
}

// suspendConditions keeps the Suspended condition in step with
// spec.suspend; resuming restarts the active deadline's clock.
func suspendConditions(w world, st *batchv1.JobStatus, p *plan) {
	if ptr.Deref(w.job.Spec.Suspend, false) {
		if setCondition(&st.Conditions, batchv1.JobSuspended, corev1.ConditionTrue, reasonSuspended, msgSuspended, w.now) {
			p.events = append(p.events, event{corev1.EventTypeNormal, "Suspended", msgSuspended})
		}
		return
	}
	if c := findCondition(st.Conditions, batchv1.JobSuspended); c != nil && c.Status == corev1.ConditionTrue {
		setCondition(&st.Conditions, batchv1.JobSuspended, corev1.ConditionFalse, reasonResumed, msgResumed, w.now)
		st.StartTime = ptr.To(metav1.NewTime(w.now))
		p.events = append(p.events, event{corev1.EventTypeNormal, "Resumed", msgResumed})
	}
}

// resuming says whether the Job is unsuspended but still has its
// Suspended condition: this reconcile resumes it.
func resuming(j *batchv1.Job) bool {
	c := findCondition(j.Status.Conditions, batchv1.JobSuspended)
	return !ptr.Deref(j.Spec.Suspend, false) && c != nil && c.Status == corev1.ConditionTrue
}

// wake asks for a reconcile after d, keeping the earliest request.
func (p *plan) wake(d time.Duration) {
	if d > 0 && (p.requeueAfter == 0 || d < p.requeueAfter) {
		p.requeueAfter = d
	}
}

func isIndexed(j *batchv1.Job) bool {
	return ptr.Deref(j.Spec.CompletionMode, batchv1.NonIndexedCompletion) == batchv1.IndexedCompletion
}

func onlyReplaceFailed(j *batchv1.Job) bool {
	return ptr.Deref(j.Spec.PodReplacementPolicy, batchv1.TerminatingOrFailed) == batchv1.Failed
}

func isFailure(c *batchv1.JobCondition) bool {
	return c != nil && (c.Type == batchv1.JobFailureTarget || c.Type == batchv1.JobFailed)
}
