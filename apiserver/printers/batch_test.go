package printers

import (
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestJobRows(t *testing.T) {
	i32 := func(n int32) *int32 { return &n }
	job := func(mutate func(*batchv1.Job)) *batchv1.Job {
		j := &batchv1.Job{ObjectMeta: objMeta("pi", 10*time.Minute)}
		j.Spec.Completions, j.Spec.Parallelism = i32(1), i32(1)
		j.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"batch.kubernetes.io/controller-uid": "u1"}}
		j.Spec.Template.Spec.Containers = []corev1.Container{{Name: "pi", Image: "perl:5.34"}}
		j.Status.StartTime = agoPtr(10 * time.Minute)
		mutate(j)
		return j
	}
	cond := func(t batchv1.JobConditionType, s corev1.ConditionStatus) batchv1.JobCondition {
		return batchv1.JobCondition{Type: t, Status: s}
	}
	tail := []interface{}{"pi", "perl:5.34", "batch.kubernetes.io/controller-uid=u1"}
	rowOf := func(status, completions, took string) []interface{} {
		return append([]interface{}{"pi", status, completions, took, "10m"}, tail...)
	}
	checkRows(t, schema.GroupKind{Group: "batch", Kind: "Job"}, []rowCase{
		{"running", job(func(*batchv1.Job) {}), rowOf("Running", "0/1", "10m")},
		{"complete", job(func(j *batchv1.Job) {
			j.Status.Succeeded = 1
			j.Status.CompletionTime = agoPtr(7*time.Minute + 30*time.Second)
			j.Status.Conditions = []batchv1.JobCondition{cond(batchv1.JobSuccessCriteriaMet, corev1.ConditionTrue), cond(batchv1.JobComplete, corev1.ConditionTrue)}
		}), rowOf("Complete", "1/1", "2m30s")},
		{"failed", job(func(j *batchv1.Job) {
			j.Status.Conditions = []batchv1.JobCondition{cond(batchv1.JobFailureTarget, corev1.ConditionTrue), cond(batchv1.JobFailed, corev1.ConditionTrue)}
		}), rowOf("Failed", "0/1", "10m")},
		{"failure target only", job(func(j *batchv1.Job) {
			j.Status.Conditions = []batchv1.JobCondition{cond(batchv1.JobFailureTarget, corev1.ConditionTrue)}
		}), rowOf("FailureTarget", "0/1", "10m")},
		{"success criteria met only", job(func(j *batchv1.Job) {
			j.Status.Conditions = []batchv1.JobCondition{cond(batchv1.JobSuccessCriteriaMet, corev1.ConditionTrue)}
		}), rowOf("SuccessCriteriaMet", "0/1", "10m")},
		{"suspended, not started", job(func(j *batchv1.Job) {
			j.Status.StartTime = nil
			j.Status.Conditions = []batchv1.JobCondition{cond(batchv1.JobSuspended, corev1.ConditionTrue)}
		}), rowOf("Suspended", "0/1", "")},
		{"suspension lifted", job(func(j *batchv1.Job) {
			j.Status.Conditions = []batchv1.JobCondition{cond(batchv1.JobSuspended, corev1.ConditionFalse)}
		}), rowOf("Running", "0/1", "10m")},
		{"terminating", job(func(j *batchv1.Job) {
			j.DeletionTimestamp = agoPtr(time.Second)
			j.Status.Conditions = []batchv1.JobCondition{cond(batchv1.JobSuspended, corev1.ConditionTrue)}
		}), rowOf("Terminating", "0/1", "10m")},
		{"work queue with parallelism", job(func(j *batchv1.Job) {
			j.Spec.Completions, j.Spec.Parallelism = nil, i32(4)
			j.Status.Succeeded = 2
		}), rowOf("Running", "2/1 of 4", "10m")},
		{"no completions, single pod", job(func(j *batchv1.Job) {
			j.Spec.Completions, j.Spec.Parallelism = nil, nil
		}), rowOf("Running", "0/1", "10m")},
		{"indexed", job(func(j *batchv1.Job) {
			j.Spec.Completions = i32(5)
			j.Status.Succeeded = 3
		}), rowOf("Running", "3/5", "10m")},
	})
}

func TestCronJobRows(t *testing.T) {
	yes := true
	tz := "Europe/Paris"
	cj := &batchv1.CronJob{ObjectMeta: objMeta("backup", 45*24*time.Hour)}
	cj.Spec.Schedule = "0 3 * * *"
	cj.Spec.JobTemplate.Spec.Template.Spec.Containers = []corev1.Container{{Name: "backup", Image: "restic"}}
	running := cj.DeepCopy()
	running.Spec.TimeZone = &tz
	running.Spec.Suspend = &yes
	running.Status.Active = []corev1.ObjectReference{{Name: "backup-1"}, {Name: "backup-2"}}
	running.Status.LastScheduleTime = agoPtr(9 * time.Hour)
	notSuspended := cj.DeepCopy()
	no := false
	notSuspended.Spec.Suspend = &no

	checkRows(t, schema.GroupKind{Group: "batch", Kind: "CronJob"}, []rowCase{
		{"never scheduled", cj, []interface{}{"backup", "0 3 * * *", "<none>", "<unset>", int64(0), "<none>", "45d", "backup", "restic", "<none>"}},
		{"not suspended", notSuspended, []interface{}{"backup", "0 3 * * *", "<none>", "False", int64(0), "<none>", "45d", "backup", "restic", "<none>"}},
		{"active and suspended", running, []interface{}{"backup", "0 3 * * *", "Europe/Paris", "True", int64(2), "9h", "45d", "backup", "restic", "<none>"}},
	})
}
