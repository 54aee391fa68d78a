package cronjob

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/utils/ptr"
)

// cronJobKind is what a CronJob's Jobs name as their controller.
var cronJobKind = schema.GroupVersionKind{Group: "batch", Version: "v1", Kind: "CronJob"}

// requeueSlack is added to the wait for the next run, so that the
// reconcile surely comes after it.
const requeueSlack = 100 * time.Millisecond

// world is what one reconcile of a CronJob observes.
type world struct {
	cj *batchv1.CronJob
	// jobs are the Jobs the CronJob controls.
	jobs []*batchv1.Job
	// gone names Jobs in status.active that the API confirmed deleted.
	gone sets.Set[types.UID]
	now  time.Time
	// local is the zone of CronJobs without spec.timeZone.
	local *time.Location
}

// event is an Event to record on the CronJob.
type event struct{ kind, reason, message string }

// plan is decide's answer. The loop deletes replaced Jobs, creates the new
// one (adding it to status.active), deletes Jobs beyond the history
// limits, and writes the status.
type plan struct {
	status batchv1.CronJobStatus
	// replace are the running Jobs to delete before create (Replace).
	replace []corev1.ObjectReference
	// create is the Job to start, or nil.
	create *batchv1.Job
	// prune are finished Jobs beyond the history limits.
	prune  []*batchv1.Job
	events []event
	// requeueAfter is the wait until the next run (zero: none to wait for).
	requeueAfter time.Duration
}

// decide is the CronJob controller's core: from the CronJob, its Jobs and
// the time, which Job to start (at most one: the most recent missed run),
// which to delete, and the new status. It does no I/O.
func decide(w world) plan {
	cj := w.cj
	p := plan{status: *cj.Status.DeepCopy()}
	st := &p.status
	p.prune = prune(cj, w.jobs)

	// Reconcile status.active with the Jobs as they are.
	owned := sets.New[types.UID]()
	for _, j := range w.jobs {
		owned.Insert(j.UID)
		cond := finishedCondition(j)
		inActive := slices.ContainsFunc(st.Active, func(r corev1.ObjectReference) bool { return r.UID == j.UID })
		switch {
		case inActive && cond != nil:
			st.Active = withoutUID(st.Active, j.UID)
			p.events = append(p.events, event{corev1.EventTypeNormal, "SawCompletedJob",
				fmt.Sprintf("Saw completed job: %s, condition: %s", j.Name, cond.Type)})
		case !inActive && cond == nil:
			p.events = append(p.events, event{corev1.EventTypeWarning, "UnexpectedJob",
				fmt.Sprintf("Saw a job that the controller did not create or forgot: %s", j.Name)})
		}
		if cond != nil && cond.Type == batchv1.JobComplete && j.Status.CompletionTime != nil &&
			(st.LastSuccessfulTime == nil || j.Status.CompletionTime.After(st.LastSuccessfulTime.Time)) {
			st.LastSuccessfulTime = j.Status.CompletionTime.DeepCopy()
		}
	}
	for _, r := range slices.Clone(st.Active) {
		if !owned.Has(r.UID) && w.gone.Has(r.UID) {
			st.Active = withoutUID(st.Active, r.UID)
			p.events = append(p.events, event{corev1.EventTypeNormal, "MissingJob", fmt.Sprintf("Active job went missing: %s", r.Name)})
		}
	}
	if cj.DeletionTimestamp != nil {
		return p
	}

	loc := w.local
	if tz := cj.Spec.TimeZone; tz != nil {
		l, err := time.LoadLocation(*tz)
		if err != nil {
			p.events = append(p.events, event{corev1.EventTypeWarning, "UnknownTimeZone", fmt.Sprintf("invalid timeZone: %q: %v", *tz, err)})
			return p
		}
		loc = l
	}
	if ptr.Deref(cj.Spec.Suspend, false) {
		return p
	}
	sched, err := parseSchedule(cj.Spec.Schedule)
	if err != nil {
		p.events = append(p.events, event{corev1.EventTypeWarning, "UnparseableSchedule",
			fmt.Sprintf("unparseable schedule: %q : %v", cj.Spec.Schedule, err)})
		return p
	}
	if next := sched.next(w.now, loc); !next.IsZero() {
		p.requeueAfter = next.Sub(w.now) + requeueSlack
	}

	// The most recent run since the last one started (or the CronJob's
	// creation); runs older than startingDeadlineSeconds are not counted.
	earliest := cj.CreationTimestamp.Time
	if st.LastScheduleTime != nil {
		earliest = st.LastScheduleTime.Time
	}
	window := earliest
	if d := cj.Spec.StartingDeadlineSeconds; d != nil {
		if cut := w.now.Add(-time.Duration(*d) * time.Second); cut.After(window) {
			window = cut
		}
	}
	scheduled, missed, ok := sched.mostRecent(window, w.now, loc)
	if missed > maxMissed {
		p.events = append(p.events, event{corev1.EventTypeWarning, "TooManyMissedTimes",
			fmt.Sprintf("too many missed start times: more than %d. Set or decrease .spec.startingDeadlineSeconds or check clock skew", maxMissed)})
	}
	if !ok {
		// A run older than the deadline was skipped: say so.
		if late, _, found := sched.mostRecent(earliest, w.now, loc); found && window.After(earliest) && !late.After(window) {
			p.events = append(p.events, event{corev1.EventTypeWarning, "MissSchedule",
				fmt.Sprintf("Missed scheduled time to start a job: %s", late.UTC().Format(time.RFC1123Z))})
		}
		return p
	}
	name := jobName(cj, scheduled)
	if slices.ContainsFunc(st.Active, func(r corev1.ObjectReference) bool { return r.Name == name }) ||
		(st.LastScheduleTime != nil && st.LastScheduleTime.Time.Equal(scheduled)) {
		return p // started already
	}
	switch cj.Spec.ConcurrencyPolicy {
	case batchv1.ForbidConcurrent:
		if len(st.Active) > 0 {
			p.events = append(p.events, event{corev1.EventTypeNormal, "JobAlreadyActive",
				"Not starting job because prior execution is running and concurrency policy is Forbid"})
			return p
		}
	case batchv1.ReplaceConcurrent:
		p.replace = st.Active
		st.Active = nil
	}
	p.create = jobFor(cj, scheduled, loc)
	st.LastScheduleTime = ptr.To(metav1.NewTime(scheduled))
	return p
}

// jobName is the deterministic name of the Job for a run: the CronJob's
// name and the run's time in minutes since the epoch, so that a run is
// never started twice.
func jobName(cj *batchv1.CronJob, scheduled time.Time) string {
	return fmt.Sprintf("%s-%d", cj.Name, scheduled.Unix()/60)
}

// jobFor is the Job for the run at scheduled: the CronJob's template, its
// name, the scheduled time (in the CronJob's zone) annotated, and the
// CronJob as controller.
func jobFor(cj *batchv1.CronJob, scheduled time.Time, loc *time.Location) *batchv1.Job {
	t := cj.Spec.JobTemplate.DeepCopy()
	annotations := maps.Clone(t.Annotations)
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[batchv1.CronJobScheduledTimestampAnnotation] = scheduled.In(loc).Format(time.RFC3339)
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name:            jobName(cj, scheduled),
			Namespace:       cj.Namespace,
			Labels:          maps.Clone(t.Labels),
			Annotations:     annotations,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(cj, cronJobKind)},
		},
		Spec: t.Spec,
	}
}

// prune returns the finished Jobs beyond the CronJob's history limits,
// oldest first (by start time; Jobs that never started count as newest).
func prune(cj *batchv1.CronJob, jobs []*batchv1.Job) []*batchv1.Job {
	var succeeded, failed []*batchv1.Job
	for _, j := range jobs {
		switch c := finishedCondition(j); {
		case c == nil:
		case c.Type == batchv1.JobComplete:
			succeeded = append(succeeded, j)
		default:
			failed = append(failed, j)
		}
	}
	var out []*batchv1.Job
	for _, g := range []struct {
		jobs  []*batchv1.Job
		limit *int32
	}{{succeeded, cj.Spec.SuccessfulJobsHistoryLimit}, {failed, cj.Spec.FailedJobsHistoryLimit}} {
		if g.limit == nil || len(g.jobs) <= int(*g.limit) {
			continue
		}
		slices.SortFunc(g.jobs, byStartTime)
		out = append(out, g.jobs[:len(g.jobs)-int(*g.limit)]...)
	}
	return out
}

func byStartTime(a, b *batchv1.Job) int {
	as, bs := a.Status.StartTime, b.Status.StartTime
	switch {
	case as == nil && bs == nil:
		return cmp.Compare(a.Name, b.Name)
	case as == nil:
		return 1
	case bs == nil:
		return -1
	}
	if c := as.Compare(bs.Time); c != 0 {
		return c
	}
	return cmp.Compare(a.Name, b.Name)
}

// finishedCondition is the Job's Complete or Failed condition when True.
func finishedCondition(j *batchv1.Job) *batchv1.JobCondition {
	for i := range j.Status.Conditions {
		c := &j.Status.Conditions[i]
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return c
		}
	}
	return nil
}

func withoutUID(refs []corev1.ObjectReference, uid types.UID) []corev1.ObjectReference {
	return slices.DeleteFunc(slices.Clone(refs), func(r corev1.ObjectReference) bool { return r.UID == uid })
}

// jobRef is how status.active names a Job.
func jobRef(j *batchv1.Job) corev1.ObjectReference {
	return corev1.ObjectReference{
		Kind: "Job", APIVersion: "batch/v1", Namespace: j.Namespace, Name: j.Name,
		UID: j.UID, ResourceVersion: j.ResourceVersion,
	}
}
