package printers

import (
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/duration"
)

func batchPrinters() map[schema.GroupKind]kindPrinter {
	return map[schema.GroupKind]kindPrinter{
		{Group: "batch", Kind: "Job"}: printer([]metav1.TableColumnDefinition{
			nameColumn(),
			column("Status", typeString, "Where the job stands: Running, Complete, Failed, Suspended and so on."),
			column("Completions", typeString, "Succeeded pods out of the completions wanted."),
			column("Duration", typeString, "How long the job ran, or has been running."),
			ageColumn(),
			containersColumn(),
			imagesColumn(),
			selectorColumn("the job manages"),
		}, jobCells),
		{Group: "batch", Kind: "CronJob"}: printer([]metav1.TableColumnDefinition{
			nameColumn(),
			column("Schedule", typeString, "The cron schedule jobs are made on."),
			column("Timezone", typeString, "The time zone the schedule is read in."),
			// Kubernetes declares this column boolean but fills it with the
			// words True, False or <unset>; the type here says what the
			// cells really are.
			column("Suspend", typeString, "Whether new runs are held back."),
			column("Active", typeInteger, "The number of jobs running now."),
			column("Last Schedule", typeString, "How long ago a job was last scheduled."),
			ageColumn(),
			containersColumn(),
			imagesColumn(),
			selectorColumn("the jobs manage"),
		}, cronJobCells),
	}
}

func jobCells(j *batchv1.Job, now time.Time) []interface{} {
	var completions string
	switch parallelism := int32Or(j.Spec.Parallelism, 0); {
	case j.Spec.Completions != nil:
		completions = fmt.Sprintf("%d/%d", j.Status.Succeeded, *j.Spec.Completions)
	case parallelism > 1:
		completions = fmt.Sprintf("%d/1 of %d", j.Status.Succeeded, parallelism)
	default:
		completions = fmt.Sprintf("%d/1", j.Status.Succeeded)
	}

	var took string
	switch {
	case j.Status.StartTime == nil:
	case j.Status.CompletionTime == nil:
		took = duration.HumanDuration(now.Sub(j.Status.StartTime.Time))
	default:
		took = duration.HumanDuration(j.Status.CompletionTime.Sub(j.Status.StartTime.Time))
	}

	names, images := containerCells(j.Spec.Template.Spec.Containers)
	return []interface{}{
		j.Name, jobStatus(j), completions, took, since(j.CreationTimestamp, now),
		names, images, metav1.FormatLabelSelector(j.Spec.Selector),
	}
}

// jobStatus is the word for where a job stands; finished states first.
func jobStatus(j *batchv1.Job) string {
	switch {
	case jobCondition(j, batchv1.JobComplete):
		return "Complete"
	case jobCondition(j, batchv1.JobFailed):
		return "Failed"
	case j.DeletionTimestamp != nil:
		return "Terminating"
	case jobCondition(j, batchv1.JobSuspended):
		return "Suspended"
	case jobCondition(j, batchv1.JobFailureTarget):
		return "FailureTarget"
	case jobCondition(j, batchv1.JobSuccessCriteriaMet):
		return "SuccessCriteriaMet"
	}
	return "Running"
}

// jobCondition reports whether the job's first condition of type t is true.
func jobCondition(j *batchv1.Job, t batchv1.JobConditionType) bool {
	for _, c := range j.Status.Conditions {
		if c.Type == t {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func cronJobCells(c *batchv1.CronJob, now time.Time) []interface{} {
	last := none
	if c.Status.LastScheduleTime != nil {
		last = since(*c.Status.LastScheduleTime, now)
	}
	tmpl := c.Spec.JobTemplate.Spec
	names, images := containerCells(tmpl.Template.Spec.Containers)
	return []interface{}{
		c.Name,
		c.Spec.Schedule,
		strOr(c.Spec.TimeZone, none),
		boolWord(c.Spec.Suspend),
		int64(len(c.Status.Active)),
		last,
		since(c.CreationTimestamp, now),
		names, images, metav1.FormatLabelSelector(tmpl.Selector),
	}
}
