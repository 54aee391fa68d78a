package validation

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8slabels "k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

var specPath = field.NewPath("spec")

// validateSelector checks an apps/v1 selector: required, well formed, not
// empty, and matching the template's labels.
func validateSelector(sel *metav1.LabelSelector, tmplLabels map[string]string, kind string, p *field.Path) field.ErrorList {
	sp := p.Child("selector")
	if sel == nil {
		return field.ErrorList{field.Required(sp, "")}
	}
	errs := labelSelector(sel, sp)
	if len(sel.MatchLabels)+len(sel.MatchExpressions) == 0 {
		errs = append(errs, field.Invalid(sp, sel, "empty selector is invalid for "+kind))
		return errs
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return append(errs, field.Invalid(sp, sel, "invalid label selector"))
	}
	if !s.Matches(k8slabels.Set(tmplLabels)) {
		errs = append(errs, field.Invalid(p.Child("template", "metadata", "labels"), tmplLabels, "`selector` does not match template `labels`"))
	}
	return errs
}

// validateControllerTemplate checks the template of a controller whose pods
// always run: restartPolicy Always and no activeDeadlineSeconds.
func validateControllerTemplate(t *corev1.PodTemplateSpec, kind string, p *field.Path) field.ErrorList {
	tp := p.Child("template")
	errs := validatePodTemplateSpec(t, tp)
	if t.Spec.RestartPolicy != corev1.RestartPolicyAlways && t.Spec.RestartPolicy != "" {
		errs = append(errs, field.NotSupported(tp.Child("spec", "restartPolicy"), t.Spec.RestartPolicy, []corev1.RestartPolicy{corev1.RestartPolicyAlways}))
	}
	if t.Spec.ActiveDeadlineSeconds != nil {
		errs = append(errs, field.Forbidden(tp.Child("spec", "activeDeadlineSeconds"), fmt.Sprintf("activeDeadlineSeconds in %s is not Supported", kind)))
	}
	return errs
}

func validateDeployment(d *appsv1.Deployment) field.ErrorList {
	return append(validateMeta(&d.ObjectMeta, true, nameIsSubdomain), validateDeploymentSpec(&d.Spec)...)
}

func validateDeploymentSpec(s *appsv1.DeploymentSpec) field.ErrorList {
	errs := nonNegativePtr(s.Replicas, specPath.Child("replicas"))
	errs = append(errs, validateSelector(s.Selector, s.Template.Labels, "deployment", specPath)...)
	errs = append(errs, validateControllerTemplate(&s.Template, "ReplicaSet", specPath)...)
	stp := specPath.Child("strategy")
	switch s.Strategy.Type {
	case appsv1.RecreateDeploymentStrategyType:
		if s.Strategy.RollingUpdate != nil {
			errs = append(errs, field.Forbidden(stp.Child("rollingUpdate"), "may not be specified when strategy `type` is 'Recreate'"))
		}
	case appsv1.RollingUpdateDeploymentStrategyType:
		if ru := s.Strategy.RollingUpdate; ru == nil {
			errs = append(errs, field.Required(stp.Child("rollingUpdate"), "this should be defaulted and never be nil"))
		} else {
			errs = append(errs, validateSurge(ru.MaxSurge, ru.MaxUnavailable, stp.Child("rollingUpdate"))...)
		}
	default:
		errs = append(errs, oneOf(s.Strategy.Type, stp.Child("type"), appsv1.RecreateDeploymentStrategyType, appsv1.RollingUpdateDeploymentStrategyType)...)
	}
	errs = append(errs, nonNegative(int64(s.MinReadySeconds), specPath.Child("minReadySeconds"))...)
	errs = append(errs, nonNegativePtr(s.RevisionHistoryLimit, specPath.Child("revisionHistoryLimit"))...)
	if pds := s.ProgressDeadlineSeconds; pds != nil {
		errs = append(errs, nonNegative(int64(*pds), specPath.Child("progressDeadlineSeconds"))...)
		if *pds <= s.MinReadySeconds {
			errs = append(errs, field.Invalid(specPath.Child("progressDeadlineSeconds"), *pds, "must be greater than minReadySeconds"))
		}
	}
	return errs
}

// validateSurge checks maxSurge and maxUnavailable of a rolling update.
func validateSurge(s, u *intstr.IntOrString, p *field.Path) field.ErrorList {
	errs := intOrPercent(u, p.Child("maxUnavailable"))
	errs = append(errs, atMost100Percent(u, p.Child("maxUnavailable"))...)
	errs = append(errs, intOrPercent(s, p.Child("maxSurge"))...)
	if isZeroIntOrPercent(u) && isZeroIntOrPercent(s) {
		errs = append(errs, field.Invalid(p.Child("maxUnavailable"), u, "may not be 0 when `maxSurge` is 0"))
	}
	return errs
}

func validateDeploymentUpdate(d, old *appsv1.Deployment) field.ErrorList {
	errs := withMetaUpdate(&d.ObjectMeta, &old.ObjectMeta, validateDeploymentSpec(&d.Spec))
	return append(errs, immutable(d.Spec.Selector, old.Spec.Selector, specPath.Child("selector"))...)
}

func validateReplicaSet(rs *appsv1.ReplicaSet) field.ErrorList {
	return append(validateMeta(&rs.ObjectMeta, true, nameIsSubdomain), validateReplicaSetSpec(&rs.Spec)...)
}

func validateReplicaSetSpec(s *appsv1.ReplicaSetSpec) field.ErrorList {
	errs := nonNegativePtr(s.Replicas, specPath.Child("replicas"))
	errs = append(errs, nonNegative(int64(s.MinReadySeconds), specPath.Child("minReadySeconds"))...)
	errs = append(errs, validateSelector(s.Selector, s.Template.Labels, "deployment", specPath)...)
	return append(errs, validateControllerTemplate(&s.Template, "ReplicaSet", specPath)...)
}

func validateReplicaSetUpdate(rs, old *appsv1.ReplicaSet) field.ErrorList {
	errs := withMetaUpdate(&rs.ObjectMeta, &old.ObjectMeta, validateReplicaSetSpec(&rs.Spec))
	return append(errs, immutable(rs.Spec.Selector, old.Spec.Selector, specPath.Child("selector"))...)
}

func validateReplicationController(rc *corev1.ReplicationController) field.ErrorList {
	return append(validateMeta(&rc.ObjectMeta, true, nameIsSubdomain), validateRCSpec(&rc.Spec)...)
}

func validateRCSpec(s *corev1.ReplicationControllerSpec) field.ErrorList {
	errs := nonNegativePtr(s.Replicas, specPath.Child("replicas"))
	errs = append(errs, nonNegative(int64(s.MinReadySeconds), specPath.Child("minReadySeconds"))...)
	if len(s.Selector) == 0 {
		errs = append(errs, field.Required(specPath.Child("selector"), ""))
	}
	errs = append(errs, labels(s.Selector, specPath.Child("selector"))...)
	if s.Template == nil {
		return append(errs, field.Required(specPath.Child("template"), ""))
	}
	if len(s.Selector) > 0 && !k8slabels.SelectorFromSet(s.Selector).Matches(k8slabels.Set(s.Template.Labels)) {
		errs = append(errs, field.Invalid(specPath.Child("template", "metadata", "labels"), s.Template.Labels, "`selector` does not match template `labels`"))
	}
	return append(errs, validateControllerTemplate(s.Template, "ReplicationController", specPath)...)
}

func validateReplicationControllerUpdate(rc, old *corev1.ReplicationController) field.ErrorList {
	return withMetaUpdate(&rc.ObjectMeta, &old.ObjectMeta, validateRCSpec(&rc.Spec))
}

func validateDaemonSet(ds *appsv1.DaemonSet) field.ErrorList {
	return append(validateMeta(&ds.ObjectMeta, true, nameIsSubdomain), validateDaemonSetSpec(&ds.Spec)...)
}

func validateDaemonSetSpec(s *appsv1.DaemonSetSpec) field.ErrorList {
	errs := validateSelector(s.Selector, s.Template.Labels, "daemonset", specPath)
	tp := specPath.Child("template")
	errs = append(errs, validatePodTemplateSpec(&s.Template, tp)...)
	if s.Template.Spec.RestartPolicy != corev1.RestartPolicyAlways {
		errs = append(errs, field.NotSupported(tp.Child("spec", "restartPolicy"), s.Template.Spec.RestartPolicy, []corev1.RestartPolicy{corev1.RestartPolicyAlways}))
	}
	if d := s.Template.Spec.ActiveDeadlineSeconds; d != nil {
		errs = append(errs, field.Invalid(tp.Child("spec", "activeDeadlineSeconds"), *d, "activeDeadlineSeconds must be nil for daemonset"))
	}
	errs = append(errs, nonNegative(int64(s.MinReadySeconds), specPath.Child("minReadySeconds"))...)
	errs = append(errs, nonNegativePtr(s.RevisionHistoryLimit, specPath.Child("revisionHistoryLimit"))...)
	up := specPath.Child("updateStrategy")
	switch s.UpdateStrategy.Type {
	case appsv1.OnDeleteDaemonSetStrategyType:
	case appsv1.RollingUpdateDaemonSetStrategyType:
		if ru := s.UpdateStrategy.RollingUpdate; ru == nil {
			errs = append(errs, field.Required(up.Child("rollingUpdate"), ""))
		} else {
			errs = append(errs, validateSurge(ru.MaxSurge, ru.MaxUnavailable, up.Child("rollingUpdate"))...)
			errs = append(errs, atMost100Percent(ru.MaxSurge, up.Child("rollingUpdate", "maxSurge"))...)
		}
	default:
		errs = append(errs, oneOf(s.UpdateStrategy.Type, up.Child("type"), appsv1.OnDeleteDaemonSetStrategyType, appsv1.RollingUpdateDaemonSetStrategyType)...)
	}
	return errs
}

func validateDaemonSetUpdate(ds, old *appsv1.DaemonSet) field.ErrorList {
	errs := withMetaUpdate(&ds.ObjectMeta, &old.ObjectMeta, validateDaemonSetSpec(&ds.Spec))
	return append(errs, immutable(ds.Spec.Selector, old.Spec.Selector, specPath.Child("selector"))...)
}

func validateStatefulSet(ss *appsv1.StatefulSet) field.ErrorList {
	return append(validateMeta(&ss.ObjectMeta, true, nameIsSubdomain), validateStatefulSetSpec(&ss.Spec)...)
}

var pvcRetentionTypes = []appsv1.PersistentVolumeClaimRetentionPolicyType{
	appsv1.DeletePersistentVolumeClaimRetentionPolicyType, appsv1.RetainPersistentVolumeClaimRetentionPolicyType}

func validateStatefulSetSpec(s *appsv1.StatefulSetSpec) field.ErrorList {
	errs := oneOf(s.PodManagementPolicy, specPath.Child("podManagementPolicy"), appsv1.OrderedReadyPodManagement, appsv1.ParallelPodManagement)
	up := specPath.Child("updateStrategy")
	switch s.UpdateStrategy.Type {
	case "":
		errs = append(errs, field.Required(up, ""))
	case appsv1.OnDeleteStatefulSetStrategyType:
		if s.UpdateStrategy.RollingUpdate != nil {
			errs = append(errs, field.Invalid(up.Child("rollingUpdate"), s.UpdateStrategy.RollingUpdate,
				fmt.Sprintf("only allowed for updateStrategy '%s'", appsv1.RollingUpdateStatefulSetStrategyType)))
		}
	case appsv1.RollingUpdateStatefulSetStrategyType:
		if ru := s.UpdateStrategy.RollingUpdate; ru != nil {
			errs = append(errs, nonNegativePtr(ru.Partition, up.Child("rollingUpdate", "partition"))...)
			if ru.MaxUnavailable != nil {
				mp := up.Child("rollingUpdate", "maxUnavailable")
				errs = append(errs, intOrPercent(ru.MaxUnavailable, mp)...)
				errs = append(errs, atMost100Percent(ru.MaxUnavailable, mp)...)
				if isZeroIntOrPercent(ru.MaxUnavailable) {
					errs = append(errs, field.Invalid(mp, ru.MaxUnavailable, "must be greater than 0"))
				}
			}
		}
	default:
		errs = append(errs, field.Invalid(up, s.UpdateStrategy,
			fmt.Sprintf("must be '%s' or '%s'", appsv1.RollingUpdateStatefulSetStrategyType, appsv1.OnDeleteStatefulSetStrategyType)))
	}
	if pol := s.PersistentVolumeClaimRetentionPolicy; pol != nil {
		pp := specPath.Child("persistentVolumeClaimRetentionPolicy")
		errs = append(errs, oneOf(pol.WhenDeleted, pp.Child("whenDeleted"), pvcRetentionTypes...)...)
		errs = append(errs, oneOf(pol.WhenScaled, pp.Child("whenScaled"), pvcRetentionTypes...)...)
	}
	errs = append(errs, nonNegativePtr(s.Replicas, specPath.Child("replicas"))...)
	errs = append(errs, nonNegative(int64(s.MinReadySeconds), specPath.Child("minReadySeconds"))...)
	errs = append(errs, nonNegativePtr(s.RevisionHistoryLimit, specPath.Child("revisionHistoryLimit"))...)
	if s.Ordinals != nil {
		errs = append(errs, nonNegative(int64(s.Ordinals.Start), specPath.Child("ordinals", "start"))...)
	}
	if s.ServiceName != "" {
		errs = append(errs, dnsLabel(s.ServiceName, specPath.Child("serviceName"))...)
	}
	errs = append(errs, validateSelector(s.Selector, s.Template.Labels, "statefulset", specPath)...)
	errs = append(errs, validateControllerTemplate(withClaimVolumes(&s.Template, s.VolumeClaimTemplates), "StatefulSet", specPath)...)
	for i := range s.VolumeClaimTemplates {
		t := &s.VolumeClaimTemplates[i]
		tp := specPath.Child("volumeClaimTemplates").Index(i)
		errs = append(errs, labels(t.Labels, tp.Child("metadata", "labels"))...)
		errs = append(errs, annotations(t.Annotations, tp.Child("metadata", "annotations"))...)
		errs = append(errs, validatePVCSpec(&t.Spec, tp.Child("spec"))...)
	}
	return errs
}

func validateStatefulSetUpdate(ss, old *appsv1.StatefulSet) field.ErrorList {
	errs := withMetaUpdate(&ss.ObjectMeta, &old.ObjectMeta, validateStatefulSetSpec(&ss.Spec))
	// Only these fields may change; everything else must stay as it was.
	s := old.Spec.DeepCopy()
	s.Replicas = ss.Spec.Replicas
	s.Ordinals = ss.Spec.Ordinals
	s.Template = ss.Spec.Template
	s.UpdateStrategy = ss.Spec.UpdateStrategy
	s.MinReadySeconds = ss.Spec.MinReadySeconds
	s.PersistentVolumeClaimRetentionPolicy = ss.Spec.PersistentVolumeClaimRetentionPolicy
	s.RevisionHistoryLimit = ss.Spec.RevisionHistoryLimit
	if !apiequality.Semantic.DeepEqual(*s, ss.Spec) {
		errs = append(errs, field.Forbidden(specPath, "updates to statefulset spec for fields other than 'replicas', 'ordinals', "+
			"'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"))
	}
	return errs
}

func validateControllerRevision(r *appsv1.ControllerRevision) field.ErrorList {
	errs := validateMeta(&r.ObjectMeta, true, nameIsSubdomain)
	if r.Data.Raw == nil && r.Data.Object == nil {
		errs = append(errs, field.Required(field.NewPath("data"), "data is mandatory"))
	}
	return append(errs, nonNegative(r.Revision, field.NewPath("revision"))...)
}

func validateControllerRevisionUpdate(r, old *appsv1.ControllerRevision) field.ErrorList {
	errs := validateMetaUpdate(&r.ObjectMeta, &old.ObjectMeta)
	errs = append(errs, nonNegative(r.Revision, field.NewPath("revision"))...)
	if string(r.Data.Raw) != string(old.Data.Raw) || !apiequality.Semantic.DeepEqual(r.Data.Object, old.Data.Object) {
		errs = append(errs, field.Invalid(field.NewPath("data"), r.Data, "field is immutable"))
	}
	return errs
}

// withClaimVolumes is a StatefulSet's pod template as its pods will have
// it: each volumeClaimTemplate becomes a persistentVolumeClaim volume, so
// volumeMounts may name them.
func withClaimVolumes(t *corev1.PodTemplateSpec, claims []corev1.PersistentVolumeClaim) *corev1.PodTemplateSpec {
	if len(claims) == 0 {
		return t
	}
	cp := t.DeepCopy()
	for _, c := range claims {
		found := false
		for _, v := range cp.Spec.Volumes {
			if v.Name == c.Name {
				found = true
				break
			}
		}
		if !found {
			cp.Spec.Volumes = append(cp.Spec.Volumes, corev1.Volume{Name: c.Name, VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: c.Name},
			}})
		}
	}
	return cp
}
