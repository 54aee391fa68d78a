package cronjob

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/utils/ptr"
)

// The CronJob of these tests was created at 11:58:10 UTC and runs every
// minute; "now" is 12:00:05.
var (
	created = time.Date(2025, 1, 1, 11, 58, 10, 0, time.UTC)
	now     = time.Date(2025, 1, 1, 12, 0, 5, 0, time.UTC)
	noon    = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

	// 01:30 EDT on the night New York's clocks go back (05:30 UTC), and
	// 02:30 EST on the eve of the night they go forward (07:30 UTC).
	fallBackEDT = time.Date(2025, 11, 2, 5, 30, 0, 0, time.UTC)
	springEve   = time.Date(2025, 3, 8, 7, 30, 0, 0, time.UTC)
)

func testCronJob(mods ...func(*batchv1.CronJob)) *batchv1.CronJob {
	cj := &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: "cj", Namespace: "ns", UID: "cj-uid", CreationTimestamp: metav1.NewTime(created)},
		Spec: batchv1.CronJobSpec{
			Schedule: "* * * * *", ConcurrencyPolicy: batchv1.AllowConcurrent, Suspend: ptr.To(false),
			SuccessfulJobsHistoryLimit: ptr.To(int32(3)), FailedJobsHistoryLimit: ptr.To(int32(1)),
			JobTemplate: batchv1.JobTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "x"}, Annotations: map[string]string{"note": "y"}},
				Spec:       batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever}}},
			},
		},
	}
	for _, m := range mods {
		m(cj)
	}
	return cj
}

func lastScheduled(t time.Time) func(*batchv1.CronJob) {
	return func(cj *batchv1.CronJob) { cj.Status.LastScheduleTime = ptr.To(metav1.NewTime(t)) }
}

func activeRef(name string) func(*batchv1.CronJob) {
	return func(cj *batchv1.CronJob) {
		cj.Status.Active = append(cj.Status.Active, corev1.ObjectReference{Kind: "Job", Name: name, Namespace: "ns", UID: types.UID(name)})
	}
}

// testJob is one of testCronJob's Jobs, started at start.
func testJob(name string, start time.Time, finished batchv1.JobConditionType) *batchv1.Job {
	j := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID(name)},
		Status:     batchv1.JobStatus{StartTime: ptr.To(metav1.NewTime(start))},
	}
	if finished != "" {
		j.Status.Conditions = []batchv1.JobCondition{{Type: finished, Status: corev1.ConditionTrue}}
		if finished == batchv1.JobComplete {
			j.Status.CompletionTime = ptr.To(metav1.NewTime(start.Add(10 * time.Second)))
		}
	}
	return j
}

type cronOutcome struct {
	Create         string
	Replace        []string
	Prune          []string
	Active         []string
	LastSchedule   string
	LastSuccessful string
	Events         []string
	Requeue        time.Duration
}

func cronOutcomeOf(p plan) cronOutcome {
	o := cronOutcome{Requeue: p.requeueAfter}
	if p.create != nil {
		o.Create = p.create.Name
	}
	for _, r := range p.replace {
		o.Replace = append(o.Replace, r.Name)
	}
	for _, j := range p.prune {
		o.Prune = append(o.Prune, j.Name)
	}
	for _, r := range p.status.Active {
		o.Active = append(o.Active, r.Name)
	}
	if t := p.status.LastScheduleTime; t != nil {
		o.LastSchedule = t.UTC().Format("15:04:05")
	}
	if t := p.status.LastSuccessfulTime; t != nil {
		o.LastSuccessful = t.UTC().Format("15:04:05")
	}
	for _, e := range p.events {
		o.Events = append(o.Events, e.reason)
	}
	return o
}

func TestDecideCronJob(t *testing.T) {
	noonJob := fmt.Sprintf("cj-%d", noon.Unix()/60)
	next := 55*time.Second + requeueSlack
	tests := []struct {
		name string
		cj   *batchv1.CronJob
		jobs []*batchv1.Job
		gone []types.UID
		now  time.Time
		want cronOutcome
	}{
		{
			name: "two runs missed since creation: only the most recent starts",
			cj:   testCronJob(),
			want: cronOutcome{Create: noonJob, LastSchedule: "12:00:00", Requeue: next},
		},
		{
			name: "the run was started already",
			cj:   testCronJob(lastScheduled(noon)),
			want: cronOutcome{LastSchedule: "12:00:00", Requeue: next},
		},
		{
			name: "its Job is active (status written, lastScheduleTime lost): not again",
			cj:   testCronJob(lastScheduled(noon.Add(-time.Minute)), activeRef(noonJob)),
			jobs: []*batchv1.Job{testJob(noonJob, noon, "")},
			want: cronOutcome{Active: []string{noonJob}, LastSchedule: "11:59:00", Requeue: next},
		},
		{
			name: "Allow: runs beside the active Job",
			cj:   testCronJob(lastScheduled(noon.Add(-time.Minute)), activeRef("old")),
			jobs: []*batchv1.Job{testJob("old", noon.Add(-time.Minute), "")},
			want: cronOutcome{Create: noonJob, Active: []string{"old"}, LastSchedule: "12:00:00", Requeue: next},
		},
		{
			name: "Forbid: waits while a Job runs",
			cj: testCronJob(lastScheduled(noon.Add(-time.Minute)), activeRef("old"), func(cj *batchv1.CronJob) {
				cj.Spec.ConcurrencyPolicy = batchv1.ForbidConcurrent
			}),
			jobs: []*batchv1.Job{testJob("old", noon.Add(-time.Minute), "")},
			want: cronOutcome{Active: []string{"old"}, LastSchedule: "11:59:00", Events: []string{"JobAlreadyActive"}, Requeue: next},
		},
		{
			name: "Forbid: starts once the Job has finished",
			cj: testCronJob(lastScheduled(noon.Add(-time.Minute)), activeRef("old"), func(cj *batchv1.CronJob) {
				cj.Spec.ConcurrencyPolicy = batchv1.ForbidConcurrent
			}),
			jobs: []*batchv1.Job{testJob("old", noon.Add(-time.Minute), batchv1.JobComplete)},
			want: cronOutcome{Create: noonJob, LastSchedule: "12:00:00", LastSuccessful: "11:59:10",
				Events: []string{"SawCompletedJob"}, Requeue: next},
		},
		{
			name: "Replace: the running Job goes, the new one starts",
			cj: testCronJob(lastScheduled(noon.Add(-time.Minute)), activeRef("old"), func(cj *batchv1.CronJob) {
				cj.Spec.ConcurrencyPolicy = batchv1.ReplaceConcurrent
			}),
			jobs: []*batchv1.Job{testJob("old", noon.Add(-time.Minute), "")},
			want: cronOutcome{Create: noonJob, Replace: []string{"old"}, LastSchedule: "12:00:00", Requeue: next},
		},
		{
			name: "a run older than startingDeadlineSeconds is skipped",
			cj:   testCronJob(lastScheduled(noon.Add(-time.Minute)), func(cj *batchv1.CronJob) { cj.Spec.StartingDeadlineSeconds = ptr.To(int64(3)) }),
			want: cronOutcome{LastSchedule: "11:59:00", Events: []string{"MissSchedule"}, Requeue: next},
		},
		{
			name: "a run within startingDeadlineSeconds starts",
			cj:   testCronJob(lastScheduled(noon.Add(-time.Minute)), func(cj *batchv1.CronJob) { cj.Spec.StartingDeadlineSeconds = ptr.To(int64(10)) }),
			want: cronOutcome{Create: noonJob, LastSchedule: "12:00:00", Requeue: next},
		},
		{
			name: "more than 100 missed: warned, the most recent starts",
			cj:   testCronJob(lastScheduled(noon.Add(-5 * time.Hour))),
			want: cronOutcome{Create: noonJob, LastSchedule: "12:00:00", Events: []string{"TooManyMissedTimes"}, Requeue: next},
		},
		{
			name: "startingDeadlineSeconds bounds the count of missed runs",
			cj: testCronJob(lastScheduled(noon.Add(-5*time.Hour)), func(cj *batchv1.CronJob) {
				cj.Spec.StartingDeadlineSeconds = ptr.To(int64(200))
			}),
			want: cronOutcome{Create: noonJob, LastSchedule: "12:00:00", Requeue: next},
		},
		{
			name: "suspended: nothing starts, but finished Jobs still leave the active list",
			cj:   testCronJob(activeRef("old"), func(cj *batchv1.CronJob) { cj.Spec.Suspend = ptr.To(true) }),
			jobs: []*batchv1.Job{testJob("old", noon.Add(-time.Minute), batchv1.JobFailed)},
			want: cronOutcome{Events: []string{"SawCompletedJob"}},
		},
		{
			name: "an active Job that is gone leaves the list",
			cj:   testCronJob(lastScheduled(noon), activeRef("old")),
			gone: []types.UID{"old"},
			want: cronOutcome{LastSchedule: "12:00:00", Events: []string{"MissingJob"}, Requeue: next},
		},
		{
			name: "an active Job the cache lacks but the API has stays",
			cj:   testCronJob(lastScheduled(noon), activeRef("old")),
			want: cronOutcome{Active: []string{"old"}, LastSchedule: "12:00:00", Requeue: next},
		},
		{
			name: "a running Job it did not start is reported",
			cj:   testCronJob(lastScheduled(noon)),
			jobs: []*batchv1.Job{testJob("manual", noon, "")},
			want: cronOutcome{LastSchedule: "12:00:00", Events: []string{"UnexpectedJob"}, Requeue: next},
		},
		{
			name: "history limits: the oldest finished Jobs go",
			cj:   testCronJob(lastScheduled(noon)),
			jobs: []*batchv1.Job{
				testJob("s1", noon.Add(-5*time.Minute), batchv1.JobComplete), testJob("s2", noon.Add(-4*time.Minute), batchv1.JobComplete),
				testJob("s3", noon.Add(-3*time.Minute), batchv1.JobComplete), testJob("s4", noon.Add(-2*time.Minute), batchv1.JobComplete),
				testJob("f1", noon.Add(-5*time.Minute), batchv1.JobFailed), testJob("f2", noon.Add(-time.Minute), batchv1.JobFailed),
				testJob("running", noon.Add(-10*time.Minute), ""),
			},
			want: cronOutcome{Prune: []string{"s1", "f1"}, LastSchedule: "12:00:00", LastSuccessful: "11:58:10",
				Events: []string{"UnexpectedJob"}, Requeue: next},
		},
		{
			name: "an unknown time zone stops it",
			cj:   testCronJob(func(cj *batchv1.CronJob) { cj.Spec.TimeZone = ptr.To("Mars/Olympus") }),
			want: cronOutcome{Events: []string{"UnknownTimeZone"}},
		},
		{
			name: "an unparseable schedule stops it",
			cj:   testCronJob(func(cj *batchv1.CronJob) { cj.Spec.Schedule = "@reboot" }),
			want: cronOutcome{Events: []string{"UnparseableSchedule"}},
		},
		{
			name: "a CronJob being deleted starts nothing",
			cj:   testCronJob(func(cj *batchv1.CronJob) { cj.DeletionTimestamp = ptr.To(metav1.NewTime(now)) }),
		},
		{
			name: "in its time zone: 09:00 in Tokyo is midnight UTC",
			cj: testCronJob(func(cj *batchv1.CronJob) {
				cj.Spec.Schedule = "0 9 * * *"
				cj.Spec.TimeZone = ptr.To("Asia/Tokyo")
				cj.CreationTimestamp = metav1.NewTime(noon.Add(-13 * time.Hour))
			}),
			want: cronOutcome{Create: fmt.Sprintf("cj-%d", noon.Add(-12*time.Hour).Unix()/60), LastSchedule: "00:00:00",
				Requeue: 12*time.Hour - 5*time.Second + requeueSlack},
		},
		{
			name: "New York fall back: 01:30 EST runs an hour after 01:30 EDT, under another name",
			cj: testCronJob(lastScheduled(fallBackEDT), func(cj *batchv1.CronJob) {
				cj.Spec.Schedule = "30 1 * * *"
				cj.Spec.TimeZone = ptr.To("America/New_York")
			}),
			now: fallBackEDT.Add(time.Hour + 20*time.Second),
			want: cronOutcome{Create: fmt.Sprintf("cj-%d", fallBackEDT.Add(time.Hour).Unix()/60), LastSchedule: "06:30:00",
				Requeue: 24*time.Hour - 20*time.Second + requeueSlack},
		},
		{
			name: "New York spring forward: 02:30 does not come; the next run is a day later",
			cj: testCronJob(lastScheduled(springEve), func(cj *batchv1.CronJob) {
				cj.Spec.Schedule = "30 2 * * *"
				cj.Spec.TimeZone = ptr.To("America/New_York")
			}),
			now:  springEve.Add(24 * time.Hour), // 03:30 EDT on the day of the change
			want: cronOutcome{LastSchedule: "07:30:00", Requeue: 23*time.Hour + requeueSlack},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at := now
			if !tt.now.IsZero() {
				at = tt.now
			}
			got := cronOutcomeOf(decide(world{cj: tt.cj, jobs: tt.jobs, gone: sets.New(tt.gone...), now: at, local: time.UTC}))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("decide:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestJobFor(t *testing.T) {
	cj := testCronJob(func(cj *batchv1.CronJob) { cj.Spec.TimeZone = ptr.To("Asia/Tokyo") })
	tokyo, _ := time.LoadLocation("Asia/Tokyo")
	j := jobFor(cj, noon, tokyo)
	if want := fmt.Sprintf("cj-%d", noon.Unix()/60); j.Name != want || j.Namespace != "ns" {
		t.Errorf("name %s/%s, want ns/%s", j.Namespace, j.Name, want)
	}
	if got := j.Annotations[batchv1.CronJobScheduledTimestampAnnotation]; got != "2025-01-01T21:00:00+09:00" {
		t.Errorf("scheduled timestamp %q", got)
	}
	if j.Annotations["note"] != "y" || j.Labels["app"] != "x" {
		t.Errorf("template metadata not copied: %v %v", j.Labels, j.Annotations)
	}
	if cj.Spec.JobTemplate.Annotations[batchv1.CronJobScheduledTimestampAnnotation] != "" {
		t.Error("jobFor changed the template")
	}
	ref := j.OwnerReferences
	if len(ref) != 1 || ref[0].Kind != "CronJob" || ref[0].APIVersion != "batch/v1" || !*ref[0].Controller || !*ref[0].BlockOwnerDeletion {
		t.Errorf("owner references %+v", ref)
	}
}
