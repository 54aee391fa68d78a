package validation

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func selector() *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
}

func deployment(mut func(d *appsv1.Deployment)) *appsv1.Deployment {
	d := &appsv1.Deployment{ObjectMeta: nsMeta("web"), Spec: appsv1.DeploymentSpec{Selector: selector(), Template: podTemplate(nil)}}
	if mut != nil {
		mut(d)
	}
	return d
}

func TestDeploymentCreate(t *testing.T) {
	runCreate(t, []createCase{
		{name: "valid", obj: deployment(nil)},
		{name: "recreate", obj: deployment(func(d *appsv1.Deployment) { d.Spec.Strategy.Type = appsv1.RecreateDeploymentStrategyType })},
		{name: "selector required", obj: deployment(func(d *appsv1.Deployment) { d.Spec.Selector = nil }), want: []string{e(required, "spec.selector")}},
		{name: "empty selector", obj: deployment(func(d *appsv1.Deployment) { d.Spec.Selector = &metav1.LabelSelector{} }),
			want: []string{e(invalid, "spec.selector")}},
		{name: "selector must match labels", obj: deployment(func(d *appsv1.Deployment) { d.Spec.Template.Labels = map[string]string{"app": "db"} }),
			want: []string{e(invalid, "spec.template.metadata.labels")}},
		{name: "bad selector operator", obj: deployment(func(d *appsv1.Deployment) {
			d.Spec.Selector.MatchExpressions = []metav1.LabelSelectorRequirement{{Key: "app", Operator: "Near"}}
		}), want: []string{e(invalid, "spec.selector.matchExpressions[0].operator"), e(invalid, "spec.selector")}},
		{name: "negative replicas", obj: deployment(func(d *appsv1.Deployment) { d.Spec.Replicas = ptr(int32(-1)) }),
			want: []string{e(invalid, "spec.replicas")}},
		{name: "template must restart always", obj: deployment(func(d *appsv1.Deployment) { d.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever }),
			want: []string{e(notSupported, "spec.template.spec.restartPolicy")}},
		{name: "template may not have a deadline", obj: deployment(func(d *appsv1.Deployment) { d.Spec.Template.Spec.ActiveDeadlineSeconds = ptr(int64(5)) }),
			want: []string{e(forbidden, "spec.template.spec.activeDeadlineSeconds")}},
		{name: "surge and unavailable both zero", obj: deployment(func(d *appsv1.Deployment) {
			d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxSurge: ptr(intstr.FromInt32(0)), MaxUnavailable: ptr(intstr.FromString("0%"))}
		}), want: []string{e(invalid, "spec.strategy.rollingUpdate.maxUnavailable")}},
		{name: "unavailable above 100%", obj: deployment(func(d *appsv1.Deployment) {
			d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxUnavailable: ptr(intstr.FromString("150%"))}
		}), want: []string{e(invalid, "spec.strategy.rollingUpdate.maxUnavailable")}},
		{name: "bad percent", obj: deployment(func(d *appsv1.Deployment) {
			d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxSurge: ptr(intstr.FromString("half"))}
		}), want: []string{e(invalid, "spec.strategy.rollingUpdate.maxSurge")}},
		{name: "recreate with rolling update", obj: deployment(func(d *appsv1.Deployment) {
			d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{}}
		}), want: []string{e(forbidden, "spec.strategy.rollingUpdate")}},
		{name: "unknown strategy", obj: deployment(func(d *appsv1.Deployment) { d.Spec.Strategy.Type = "BlueGreen" }),
			want: []string{e(notSupported, "spec.strategy.type")}},
		{name: "progress deadline not above min ready", obj: deployment(func(d *appsv1.Deployment) {
			d.Spec.MinReadySeconds = 600
		}), want: []string{e(invalid, "spec.progressDeadlineSeconds")}},
		{name: "template container errors carry the template path", obj: deployment(func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "" }),
			want: []string{e(required, "spec.template.spec.containers[0].image")}},
	})
}

func TestWorkloadUpdates(t *testing.T) {
	runUpdate(t, []updateCase{
		{name: "deployment scale and image", old: deployment(nil), change: func(o runtime.Object) {
			d := o.(*appsv1.Deployment)
			d.Spec.Replicas = ptr(int32(5))
			d.Spec.Template.Spec.Containers[0].Image = "nginx:2"
		}},
		{name: "deployment selector is immutable", old: deployment(nil), change: func(o runtime.Object) {
			d := o.(*appsv1.Deployment)
			d.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web", "tier": "fe"}}
			d.Spec.Template.Labels = map[string]string{"app": "web", "tier": "fe"}
		}, want: []string{e(invalid, "spec.selector")}},
		{name: "replicaset selector is immutable", old: replicaSet(nil), change: func(o runtime.Object) {
			o.(*appsv1.ReplicaSet).Spec.Selector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: metav1.LabelSelectorOpExists}}}
		}, want: []string{e(invalid, "spec.selector")}},
		{name: "daemonset selector is immutable", old: daemonSet(nil), change: func(o runtime.Object) {
			o.(*appsv1.DaemonSet).Spec.Selector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: metav1.LabelSelectorOpExists}}}
		}, want: []string{e(invalid, "spec.selector")}},
		{name: "replication controller selector may change", old: &corev1.ReplicationController{ObjectMeta: nsMeta("rc"),
			Spec: corev1.ReplicationControllerSpec{Template: ptr(podTemplate(nil))}}, change: func(o runtime.Object) {
			rc := o.(*corev1.ReplicationController)
			rc.Spec.Selector = map[string]string{"app": "web", "v": "2"}
			rc.Spec.Template.Labels = map[string]string{"app": "web", "v": "2"}
		}},
		{name: "statefulset replicas, template and strategy", old: statefulSet(nil), change: func(o runtime.Object) {
			s := o.(*appsv1.StatefulSet)
			s.Spec.Replicas = ptr(int32(3))
			s.Spec.Template.Spec.Containers[0].Image = "db:2"
			s.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType}
		}},
		{name: "statefulset other fields", old: statefulSet(nil), change: func(o runtime.Object) {
			o.(*appsv1.StatefulSet).Spec.ServiceName = "other"
		}, want: []string{e(forbidden, "spec")}},
		{name: "controller revision data is immutable", old: revision(nil), change: func(o runtime.Object) {
			o.(*appsv1.ControllerRevision).Data = runtime.RawExtension{Raw: []byte(`{"b":2}`)}
		}, want: []string{e(invalid, "data")}},
		{name: "controller revision labels may change", old: revision(nil), change: func(o runtime.Object) {
			o.(*appsv1.ControllerRevision).Labels = map[string]string{"a": "b"}
		}},
	})
}

func replicaSet(mut func(*appsv1.ReplicaSet)) *appsv1.ReplicaSet {
	rs := &appsv1.ReplicaSet{ObjectMeta: nsMeta("web-1"), Spec: appsv1.ReplicaSetSpec{Selector: selector(), Template: podTemplate(nil)}}
	if mut != nil {
		mut(rs)
	}
	return rs
}

func daemonSet(mut func(*appsv1.DaemonSet)) *appsv1.DaemonSet {
	ds := &appsv1.DaemonSet{ObjectMeta: nsMeta("agent"), Spec: appsv1.DaemonSetSpec{Selector: selector(), Template: podTemplate(nil)}}
	if mut != nil {
		mut(ds)
	}
	return ds
}

func statefulSet(mut func(*appsv1.StatefulSet)) *appsv1.StatefulSet {
	ss := &appsv1.StatefulSet{ObjectMeta: nsMeta("db"), Spec: appsv1.StatefulSetSpec{ServiceName: "db", Selector: selector(), Template: podTemplate(nil),
		VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"}, Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: q("1Gi")}}}}}}}
	if mut != nil {
		mut(ss)
	}
	return ss
}

func revision(mut func(*appsv1.ControllerRevision)) *appsv1.ControllerRevision {
	r := &appsv1.ControllerRevision{ObjectMeta: nsMeta("web-abc"), Revision: 1, Data: runtime.RawExtension{Raw: []byte(`{"a":1}`)}}
	if mut != nil {
		mut(r)
	}
	return r
}

func TestOtherWorkloadsCreate(t *testing.T) {
	runCreate(t, []createCase{
		{name: "replicaset valid", obj: replicaSet(nil)},
		{name: "replicaset selector required", obj: replicaSet(func(rs *appsv1.ReplicaSet) { rs.Spec.Selector = nil }), want: []string{e(required, "spec.selector")}},
		{name: "rc valid", obj: &corev1.ReplicationController{ObjectMeta: nsMeta("rc"), Spec: corev1.ReplicationControllerSpec{Template: ptr(podTemplate(nil))}}},
		{name: "rc template required", obj: &corev1.ReplicationController{ObjectMeta: nsMeta("rc"), Spec: corev1.ReplicationControllerSpec{Selector: appLabels}},
			want: []string{e(required, "spec.template")}},
		{name: "rc selector mismatch", obj: &corev1.ReplicationController{ObjectMeta: nsMeta("rc"), Spec: corev1.ReplicationControllerSpec{
			Selector: map[string]string{"app": "db"}, Template: ptr(podTemplate(nil))}}, want: []string{e(invalid, "spec.template.metadata.labels")}},
		{name: "daemonset valid", obj: daemonSet(nil)},
		{name: "daemonset on delete", obj: daemonSet(func(ds *appsv1.DaemonSet) { ds.Spec.UpdateStrategy.Type = appsv1.OnDeleteDaemonSetStrategyType })},
		{name: "daemonset strategy", obj: daemonSet(func(ds *appsv1.DaemonSet) {
			ds.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateDaemonSet{MaxUnavailable: ptr(intstr.FromInt32(0)), MaxSurge: ptr(intstr.FromString("200%"))}
		}), want: []string{e(invalid, "spec.updateStrategy.rollingUpdate.maxSurge")}},
		{name: "daemonset template deadline", obj: daemonSet(func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.ActiveDeadlineSeconds = ptr(int64(3)) }),
			want: []string{e(invalid, "spec.template.spec.activeDeadlineSeconds")}},
		{name: "statefulset valid", obj: statefulSet(nil)},
		{name: "statefulset enums", obj: statefulSet(func(s *appsv1.StatefulSet) {
			s.Spec.PodManagementPolicy = "Random"
			s.Spec.UpdateStrategy.Type = "Sometimes"
			s.Spec.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{WhenDeleted: "Keep"}
		}), want: []string{e(notSupported, "spec.podManagementPolicy"), e(invalid, "spec.updateStrategy"),
			e(notSupported, "spec.persistentVolumeClaimRetentionPolicy.whenDeleted")}},
		{name: "statefulset claim template without storage", obj: statefulSet(func(s *appsv1.StatefulSet) {
			s.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests = nil
		}), want: []string{e(required, "spec.volumeClaimTemplates[0].spec.resources[storage]")}},
		{name: "controller revision valid", obj: revision(nil)},
		{name: "controller revision", obj: revision(func(r *appsv1.ControllerRevision) { r.Revision = -1; r.Data = runtime.RawExtension{} }),
			want: []string{e(invalid, "revision"), e(required, "data")}},
	})
}

func job(mut func(j *batchv1.Job)) *batchv1.Job {
	j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "pi", Namespace: "default", UID: "7f1c"},
		Spec: batchv1.JobSpec{Template: podTemplate(func(t *corev1.PodTemplateSpec) {
			t.Labels = nil
			t.Spec.RestartPolicy = corev1.RestartPolicyNever
		})}}
	if mut != nil {
		mut(j)
	}
	return j
}

func TestJobCreate(t *testing.T) {
	runCreate(t, []createCase{
		{name: "valid", obj: job(nil)},
		{name: "template restarting always", obj: job(func(j *batchv1.Job) { j.Spec.Template.Spec.RestartPolicy = "" }),
			want: []string{e(notSupported, "spec.template.spec.restartPolicy")}},
		{name: "selector is required without a generated one", obj: job(func(j *batchv1.Job) { j.UID = "" }),
			want: []string{e(required, "spec.selector")}},
		{name: "manual selector must match", obj: job(func(j *batchv1.Job) {
			j.Spec.ManualSelector = ptr(true)
			j.Spec.Selector = selector()
		}), want: []string{e(invalid, "spec.template.metadata.labels")}},
		{name: "indexed needs completions", obj: job(func(j *batchv1.Job) {
			j.Spec.CompletionMode = ptr(batchv1.IndexedCompletion)
			j.Spec.Parallelism = ptr(int32(2))
		}), want: []string{e(required, "spec.completions")}},
		{name: "per-index backoff needs indexed", obj: job(func(j *batchv1.Job) { j.Spec.BackoffLimitPerIndex = ptr(int32(1)) }),
			want: []string{e(invalid, "spec.backoffLimitPerIndex")}},
		{name: "negative numbers", obj: job(func(j *batchv1.Job) {
			j.Spec.Parallelism = ptr(int32(-1))
			j.Spec.BackoffLimit = ptr(int32(-1))
			j.Spec.TTLSecondsAfterFinished = ptr(int32(-1))
		}), want: []string{e(invalid, "spec.parallelism"), e(invalid, "spec.backoffLimit"), e(invalid, "spec.ttlSecondsAfterFinished")}},
		{name: "pod failure policy needs Never", obj: job(func(j *batchv1.Job) {
			j.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
			j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{Action: batchv1.PodFailurePolicyActionFailJob,
				OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{42}}}}}
		}), want: []string{e(invalid, "spec.template.spec.restartPolicy")}},
	})
}

func TestJobUpdate(t *testing.T) {
	change := func(f func(j *batchv1.Job)) func(runtime.Object) {
		return func(o runtime.Object) { f(o.(*batchv1.Job)) }
	}
	runUpdate(t, []updateCase{
		{name: "parallelism and suspend may change", old: job(nil), change: change(func(j *batchv1.Job) {
			j.Spec.Parallelism = ptr(int32(4))
			j.Spec.Suspend = ptr(true)
		})},
		{name: "template is immutable", old: job(nil), change: change(func(j *batchv1.Job) { j.Spec.Template.Spec.Containers[0].Image = "x:2" }),
			want: []string{e(invalid, "spec.template")}},
		{name: "suspended job may move its pods", old: job(func(j *batchv1.Job) { j.Spec.Suspend = ptr(true) }), change: change(func(j *batchv1.Job) {
			j.Spec.Template.Spec.NodeSelector = map[string]string{"zone": "b"}
		})},
		{name: "completions is immutable", old: job(nil), change: change(func(j *batchv1.Job) { j.Spec.Completions = ptr(int32(3)) }),
			want: []string{e(invalid, "spec.completions")}},
		{name: "elastic indexed job", old: job(func(j *batchv1.Job) {
			j.Spec.CompletionMode = ptr(batchv1.IndexedCompletion)
			j.Spec.Completions, j.Spec.Parallelism = ptr(int32(2)), ptr(int32(2))
		}), change: change(func(j *batchv1.Job) { j.Spec.Completions, j.Spec.Parallelism = ptr(int32(5)), ptr(int32(5)) })},
		{name: "selector is immutable", old: job(nil), change: change(func(j *batchv1.Job) {
			j.Spec.Selector.MatchLabels["extra"] = "x"
			j.Spec.Template.Labels["extra"] = "x"
		}), want: []string{e(invalid, "spec.selector"), e(invalid, "spec.template")}},
	})
}

func cronJob(mut func(c *batchv1.CronJob)) *batchv1.CronJob {
	c := &batchv1.CronJob{ObjectMeta: nsMeta("nightly"), Spec: batchv1.CronJobSpec{Schedule: "0 3 * * *",
		JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: podTemplate(func(t *corev1.PodTemplateSpec) {
			t.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
		})}}}}
	if mut != nil {
		mut(c)
	}
	return c
}

func TestCronJob(t *testing.T) {
	runCreate(t, []createCase{
		{name: "valid", obj: cronJob(nil)},
		{name: "valid with time zone", obj: cronJob(func(c *batchv1.CronJob) { c.Spec.TimeZone = ptr("Europe/Berlin"); c.Spec.Schedule = "@daily" })},
		{name: "schedule required", obj: cronJob(func(c *batchv1.CronJob) { c.Spec.Schedule = "" }), want: []string{e(required, "spec.schedule")}},
		{name: "bad schedule", obj: cronJob(func(c *batchv1.CronJob) { c.Spec.Schedule = "61 * * * *" }), want: []string{e(invalid, "spec.schedule")}},
		{name: "TZ in schedule", obj: cronJob(func(c *batchv1.CronJob) { c.Spec.Schedule = "TZ=UTC 0 3 * * *" }), want: []string{e(invalid, "spec.schedule")}},
		{name: "bad time zones", obj: cronJob(func(c *batchv1.CronJob) { c.Spec.TimeZone = ptr("Mars/Olympus") }), want: []string{e(invalid, "spec.timeZone")}},
		{name: "local time zone", obj: cronJob(func(c *batchv1.CronJob) { c.Spec.TimeZone = ptr("Local") }), want: []string{e(invalid, "spec.timeZone")}},
		{name: "name too long", obj: cronJob(func(c *batchv1.CronJob) { c.Name = strings.Repeat("a", 53) }), want: []string{e(invalid, "metadata.name")}},
		{name: "concurrency policy", obj: cronJob(func(c *batchv1.CronJob) { c.Spec.ConcurrencyPolicy = "Sometimes" }),
			want: []string{e(notSupported, "spec.concurrencyPolicy")}},
		{name: "job template restarts", obj: cronJob(func(c *batchv1.CronJob) { c.Spec.JobTemplate.Spec.Template.Spec.RestartPolicy = "" }),
			want: []string{e(notSupported, "spec.jobTemplate.spec.template.spec.restartPolicy")}},
	})
	runUpdate(t, []updateCase{
		{name: "schedule may change", old: cronJob(nil), change: func(o runtime.Object) { o.(*batchv1.CronJob).Spec.Schedule = "*/5 * * * *" }},
		{name: "a TZ schedule may not be introduced", old: cronJob(nil), change: func(o runtime.Object) {
			o.(*batchv1.CronJob).Spec.Schedule = "CRON_TZ=UTC 0 3 * * *"
		}, want: []string{e(invalid, "spec.schedule")}},
	})
}

func TestCronSchedule(t *testing.T) {
	valid := []string{"* * * * *", "*/5 * * * *", "0 0 * * 0", "0 9-17 * * mon-fri", "0 0 1 jan,JUL *", "5/15 * * * *",
		"? * * * ?", "0 0 * * 6", "@daily", "@every 1h30m", "TZ=UTC 0 0 * * *", "  0 0 * * *  "}
	for _, s := range valid {
		if err := parseCronSchedule(s); err != nil {
			t.Errorf("parseCronSchedule(%q) = %v, want nil", s, err)
		}
	}
	invalid := []string{"", "* * * *", "* * * * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *", "* * * * 7",
		"*/0 * * * *", "1-2-3 * * * *", "1/2/3 * * * *", "a * * * *", "-1 * * * *", "5-1 * * * *", "@weekly2", "@every x",
		"TZ=Nowhere/Land 0 0 * * *"}
	for _, s := range invalid {
		if err := parseCronSchedule(s); err == nil {
			t.Errorf("parseCronSchedule(%q) = nil, want an error", s)
		}
	}
}
