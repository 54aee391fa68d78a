package defaults

import (
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func replicationController(rc *corev1.ReplicationController) {
	if t := rc.Spec.Template; t != nil {
		if t.Labels != nil {
			if len(rc.Spec.Selector) == 0 {
				rc.Spec.Selector = copyMap(t.Labels)
			}
			if len(rc.Labels) == 0 {
				rc.Labels = copyMap(t.Labels)
			}
		}
		podTemplateSpec(t)
	}
	setInt32(&rc.Spec.Replicas, 1)
}

func deployment(d *appsv1.Deployment) {
	setInt32(&d.Spec.Replicas, 1)
	s := &d.Spec.Strategy
	if s.Type == "" {
		s.Type = appsv1.RollingUpdateDeploymentStrategyType
	}
	if s.Type == appsv1.RollingUpdateDeploymentStrategyType {
		if s.RollingUpdate == nil {
			s.RollingUpdate = &appsv1.RollingUpdateDeployment{}
		}
		setIntOrString(&s.RollingUpdate.MaxUnavailable, intstr.FromString("25%"))
		setIntOrString(&s.RollingUpdate.MaxSurge, intstr.FromString("25%"))
	}
	setInt32(&d.Spec.RevisionHistoryLimit, 10)
	setInt32(&d.Spec.ProgressDeadlineSeconds, 600)
	podTemplateSpec(&d.Spec.Template)
}

func daemonSet(ds *appsv1.DaemonSet) {
	s := &ds.Spec.UpdateStrategy
	if s.Type == "" {
		s.Type = appsv1.RollingUpdateDaemonSetStrategyType
	}
	if s.Type == appsv1.RollingUpdateDaemonSetStrategyType {
		if s.RollingUpdate == nil {
			s.RollingUpdate = &appsv1.RollingUpdateDaemonSet{}
		}
		setIntOrString(&s.RollingUpdate.MaxUnavailable, intstr.FromInt32(1))
		setIntOrString(&s.RollingUpdate.MaxSurge, intstr.FromInt32(0))
	}
	setInt32(&ds.Spec.RevisionHistoryLimit, 10)
	podTemplateSpec(&ds.Spec.Template)
}

func statefulSet(ss *appsv1.StatefulSet) {
	if ss.Spec.PodManagementPolicy == "" {
		ss.Spec.PodManagementPolicy = appsv1.OrderedReadyPodManagement
	}
	s := &ss.Spec.UpdateStrategy
	if s.Type == "" {
		s.Type = appsv1.RollingUpdateStatefulSetStrategyType
		if s.RollingUpdate == nil {
			s.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{}
		}
	}
	if s.Type == appsv1.RollingUpdateStatefulSetStrategyType && s.RollingUpdate != nil {
		setInt32(&s.RollingUpdate.Partition, 0)
	}
	if ss.Spec.PersistentVolumeClaimRetentionPolicy == nil {
		ss.Spec.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{}
	}
	p := ss.Spec.PersistentVolumeClaimRetentionPolicy
	if p.WhenDeleted == "" {
		p.WhenDeleted = appsv1.RetainPersistentVolumeClaimRetentionPolicyType
	}
	if p.WhenScaled == "" {
		p.WhenScaled = appsv1.RetainPersistentVolumeClaimRetentionPolicyType
	}
	setInt32(&ss.Spec.Replicas, 1)
	setInt32(&ss.Spec.RevisionHistoryLimit, 10)
	podTemplateSpec(&ss.Spec.Template)
	for i := range ss.Spec.VolumeClaimTemplates {
		persistentVolumeClaim(&ss.Spec.VolumeClaimTemplates[i])
	}
}

// Labels the Job controller's pods carry, and the selector uses, when a Job
// does not ask for a manual selector.
const (
	legacyControllerUIDLabel = "controller-uid"
	legacyJobNameLabel       = "job-name"
)

func job(j *batchv1.Job) {
	s := &j.Spec
	if s.Completions == nil && s.Parallelism == nil {
		setInt32(&s.Completions, 1)
	}
	setInt32(&s.Parallelism, 1)
	if s.BackoffLimit == nil {
		if s.BackoffLimitPerIndex != nil {
			setInt32(&s.BackoffLimit, 1<<31-1)
		} else {
			setInt32(&s.BackoffLimit, 6)
		}
	}
	if s.Template.Labels != nil && len(j.Labels) == 0 {
		j.Labels = copyMap(s.Template.Labels)
	}
	if s.CompletionMode == nil {
		m := batchv1.NonIndexedCompletion
		s.CompletionMode = &m
	}
	setBool(&s.Suspend, false)
	setBool(&s.ManualSelector, false)
	if s.PodFailurePolicy != nil {
		for i := range s.PodFailurePolicy.Rules {
			conds := s.PodFailurePolicy.Rules[i].OnPodConditions
			for k := range conds {
				if conds[k].Status == "" {
					conds[k].Status = corev1.ConditionTrue
				}
			}
		}
	}
	if s.PodReplacementPolicy == nil {
		p := batchv1.TerminatingOrFailed
		if s.PodFailurePolicy != nil {
			p = batchv1.Failed
		}
		s.PodReplacementPolicy = &p
	}
	if !*s.ManualSelector && s.Selector == nil && j.UID != "" {
		uid := string(j.UID)
		if s.Template.Labels == nil {
			s.Template.Labels = map[string]string{}
		}
		for k, v := range map[string]string{
			batchv1.ControllerUidLabel: uid,
			legacyControllerUIDLabel:   uid,
			batchv1.JobNameLabel:       j.Name,
			legacyJobNameLabel:         j.Name,
		} {
			if _, ok := s.Template.Labels[k]; !ok {
				s.Template.Labels[k] = v
			}
		}
		s.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{batchv1.ControllerUidLabel: uid}}
		// Kubernetes defaults again when it reads the stored Job back, so
		// a Job created without labels ends up with the generated ones.
		if len(j.Labels) == 0 {
			j.Labels = copyMap(s.Template.Labels)
		}
	}
	podTemplateSpec(&s.Template)
}

func cronJob(cj *batchv1.CronJob) {
	if cj.Spec.ConcurrencyPolicy == "" {
		cj.Spec.ConcurrencyPolicy = batchv1.AllowConcurrent
	}
	setBool(&cj.Spec.Suspend, false)
	setInt32(&cj.Spec.SuccessfulJobsHistoryLimit, 3)
	setInt32(&cj.Spec.FailedJobsHistoryLimit, 1)
	podTemplateSpec(&cj.Spec.JobTemplate.Spec.Template)
}

func setIntOrString(p **intstr.IntOrString, v intstr.IntOrString) {
	if *p == nil {
		*p = &v
	}
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
