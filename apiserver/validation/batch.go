package validation

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	// Time zone names must resolve even on hosts without a zoneinfo
	// database.
	_ "time/tzdata"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8slabels "k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// maxIndexedParallelism bounds the parallelism of an Indexed Job.
const maxIndexedParallelism = 100000

func validateJob(j *batchv1.Job) field.ErrorList {
	return append(validateMeta(&j.ObjectMeta, true, nameIsSubdomain), validateJobSpec(&j.Spec, specPath, false)...)
}

// validateJobSpec checks a Job's spec, or a CronJob's job template spec
// (which may leave the selector to be generated).
func validateJobSpec(s *batchv1.JobSpec, p *field.Path, isTemplate bool) field.ErrorList {
	errs := nonNegativePtr(s.Parallelism, p.Child("parallelism"))
	errs = append(errs, nonNegativePtr(s.Completions, p.Child("completions"))...)
	errs = append(errs, nonNegativePtr(s.ActiveDeadlineSeconds, p.Child("activeDeadlineSeconds"))...)
	errs = append(errs, nonNegativePtr(s.BackoffLimit, p.Child("backoffLimit"))...)
	errs = append(errs, nonNegativePtr(s.TTLSecondsAfterFinished, p.Child("ttlSecondsAfterFinished"))...)
	switch {
	case s.Selector != nil:
		errs = append(errs, labelSelector(s.Selector, p.Child("selector"))...)
		if sel, err := metav1.LabelSelectorAsSelector(s.Selector); err == nil && !sel.Matches(k8slabels.Set(s.Template.Labels)) {
			errs = append(errs, field.Invalid(p.Child("template", "metadata", "labels"), s.Template.Labels, "`selector` does not match template `labels`"))
		}
	case !isTemplate:
		errs = append(errs, field.Required(p.Child("selector"), ""))
	}
	indexed := s.CompletionMode != nil && *s.CompletionMode == batchv1.IndexedCompletion
	if s.CompletionMode != nil {
		errs = append(errs, oneOf(*s.CompletionMode, p.Child("completionMode"), batchv1.NonIndexedCompletion, batchv1.IndexedCompletion)...)
	}
	if indexed {
		if s.Completions == nil {
			errs = append(errs, field.Required(p.Child("completions"), fmt.Sprintf("when completion mode is %s", batchv1.IndexedCompletion)))
		}
		if s.Parallelism != nil && *s.Parallelism > maxIndexedParallelism {
			errs = append(errs, field.Invalid(p.Child("parallelism"), *s.Parallelism,
				fmt.Sprintf("must be less than or equal to %d when completion mode is %s", maxIndexedParallelism, batchv1.IndexedCompletion)))
		}
	}
	if s.BackoffLimitPerIndex != nil {
		errs = append(errs, nonNegative(int64(*s.BackoffLimitPerIndex), p.Child("backoffLimitPerIndex"))...)
		if !indexed {
			errs = append(errs, field.Invalid(p.Child("backoffLimitPerIndex"), *s.BackoffLimitPerIndex, "requires indexed completion mode"))
		}
	}
	if s.MaxFailedIndexes != nil {
		mp := p.Child("maxFailedIndexes")
		errs = append(errs, nonNegative(int64(*s.MaxFailedIndexes), mp)...)
		if s.BackoffLimitPerIndex == nil {
			errs = append(errs, field.Required(p.Child("backoffLimitPerIndex"), "when maxFailedIndexes is specified"))
		}
		if s.Completions != nil && *s.MaxFailedIndexes > *s.Completions {
			errs = append(errs, field.Invalid(mp, *s.MaxFailedIndexes, "must be less than or equal to completions"))
		}
	}
	if s.PodReplacementPolicy != nil {
		rp := p.Child("podReplacementPolicy")
		errs = append(errs, oneOf(*s.PodReplacementPolicy, rp, batchv1.TerminatingOrFailed, batchv1.Failed)...)
		if s.PodFailurePolicy != nil && *s.PodReplacementPolicy != batchv1.Failed {
			errs = append(errs, field.NotSupported(rp, *s.PodReplacementPolicy, []batchv1.PodReplacementPolicy{batchv1.Failed}))
		}
	}
	errs = append(errs, validatePodFailurePolicy(s, p.Child("podFailurePolicy"))...)
	if s.SuccessPolicy != nil && !indexed {
		errs = append(errs, field.Invalid(p.Child("successPolicy"), *s.SuccessPolicy, fmt.Sprintf("requires %s completion mode", batchv1.IndexedCompletion)))
	}
	tp := p.Child("template")
	errs = append(errs, validatePodTemplateSpec(&s.Template, tp)...)
	rp := tp.Child("spec", "restartPolicy")
	switch rpol := s.Template.Spec.RestartPolicy; {
	case rpol != corev1.RestartPolicyOnFailure && rpol != corev1.RestartPolicyNever:
		errs = append(errs, field.NotSupported(rp, rpol, []corev1.RestartPolicy{corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever}))
	case s.PodFailurePolicy != nil && rpol != corev1.RestartPolicyNever:
		errs = append(errs, field.Invalid(rp, rpol, fmt.Sprintf("only %q is supported when podFailurePolicy is specified", corev1.RestartPolicyNever)))
	}
	return errs
}

var podFailureActions = []batchv1.PodFailurePolicyAction{batchv1.PodFailurePolicyActionCount, batchv1.PodFailurePolicyActionFailIndex,
	batchv1.PodFailurePolicyActionFailJob, batchv1.PodFailurePolicyActionIgnore}

func validatePodFailurePolicy(s *batchv1.JobSpec, p *field.Path) field.ErrorList {
	if s.PodFailurePolicy == nil {
		return nil
	}
	var errs field.ErrorList
	for i, r := range s.PodFailurePolicy.Rules {
		rp := p.Child("rules").Index(i)
		errs = append(errs, oneOf(r.Action, rp.Child("action"), podFailureActions...)...)
		if r.Action == batchv1.PodFailurePolicyActionFailIndex && s.BackoffLimitPerIndex == nil {
			errs = append(errs, field.Invalid(rp.Child("action"), r.Action, "requires the backoffLimitPerIndex to be set"))
		}
		if (r.OnExitCodes == nil) == (len(r.OnPodConditions) == 0) {
			errs = append(errs, field.Invalid(rp, r, "specifying one of OnExitCodes and OnPodConditions is required"))
		}
		if ec := r.OnExitCodes; ec != nil {
			ep := rp.Child("onExitCodes")
			errs = append(errs, oneOf(ec.Operator, ep.Child("operator"), batchv1.PodFailurePolicyOnExitCodesOpIn, batchv1.PodFailurePolicyOnExitCodesOpNotIn)...)
			if len(ec.Values) == 0 {
				errs = append(errs, field.Invalid(ep.Child("values"), ec.Values, "at least one value is required"))
			}
		}
		for j, c := range r.OnPodConditions {
			cp := rp.Child("onPodConditions").Index(j)
			errs = append(errs, oneOf(c.Status, cp.Child("status"), corev1.ConditionTrue, corev1.ConditionFalse, corev1.ConditionUnknown)...)
			errs = append(errs, qualifiedName(string(c.Type), cp.Child("type"))...)
		}
	}
	return errs
}

func validateJobUpdate(j, old *batchv1.Job) field.ErrorList {
	errs := withMetaUpdate(&j.ObjectMeta, &old.ObjectMeta, validateJobSpec(&j.Spec, specPath, false))
	errs = append(errs, immutable(j.Spec.Selector, old.Spec.Selector, specPath.Child("selector"))...)
	errs = append(errs, immutable(j.Spec.CompletionMode, old.Spec.CompletionMode, specPath.Child("completionMode"))...)
	errs = append(errs, immutable(j.Spec.PodFailurePolicy, old.Spec.PodFailurePolicy, specPath.Child("podFailurePolicy"))...)
	errs = append(errs, immutable(j.Spec.BackoffLimitPerIndex, old.Spec.BackoffLimitPerIndex, specPath.Child("backoffLimitPerIndex"))...)
	// An Indexed Job may scale when completions follows parallelism.
	elastic := j.Spec.CompletionMode != nil && *j.Spec.CompletionMode == batchv1.IndexedCompletion &&
		equalPtr(j.Spec.Completions, j.Spec.Parallelism) && equalPtr(old.Spec.Completions, old.Spec.Parallelism)
	if !elastic {
		errs = append(errs, immutable(j.Spec.Completions, old.Spec.Completions, specPath.Child("completions"))...)
	}
	// A suspended Job that never started may still change where its pods go.
	t := j.Spec.Template.DeepCopy()
	if old.Spec.Suspend != nil && *old.Spec.Suspend && old.Status.StartTime == nil {
		o := old.Spec.Template
		t.Labels, t.Annotations = o.Labels, o.Annotations
		t.Spec.NodeSelector, t.Spec.Tolerations, t.Spec.Affinity, t.Spec.SchedulingGates =
			o.Spec.NodeSelector, o.Spec.Tolerations, o.Spec.Affinity, o.Spec.SchedulingGates
	}
	if !apiequality.Semantic.DeepEqual(*t, old.Spec.Template) {
		errs = append(errs, field.Invalid(specPath.Child("template"), j.Spec.Template, "field is immutable"))
	}
	return errs
}

func equalPtr[T comparable](a, b *T) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}

// cronJobMaxNameLength leaves room for the suffix of the Jobs it creates.
const cronJobMaxNameLength = 52

func validateCronJob(cj *batchv1.CronJob, allowTZ bool) field.ErrorList {
	errs := validateMeta(&cj.ObjectMeta, true, nameIsSubdomain)
	if len(cj.Name) > cronJobMaxNameLength {
		errs = append(errs, field.Invalid(metadataPath.Child("name"), cj.Name, fmt.Sprintf("must be no more than %d characters", cronJobMaxNameLength)))
	}
	return append(errs, validateCronJobSpec(&cj.Spec, allowTZ)...)
}

func validateCronJobSpec(s *batchv1.CronJobSpec, allowTZ bool) field.ErrorList {
	var errs field.ErrorList
	sp := specPath.Child("schedule")
	if s.Schedule == "" {
		errs = append(errs, field.Required(sp, ""))
	} else {
		if err := parseCronSchedule(s.Schedule); err != nil {
			errs = append(errs, field.Invalid(sp, s.Schedule, err.Error()))
		}
		hasTZ := strings.Contains(s.Schedule, "TZ")
		switch {
		case hasTZ && !allowTZ:
			errs = append(errs, field.Invalid(sp, s.Schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"))
		case hasTZ && s.TimeZone != nil:
			errs = append(errs, field.Invalid(sp, s.Schedule, "cannot use both timeZone field and TZ or CRON_TZ in schedule"))
		}
	}
	errs = append(errs, validateTimeZone(s.TimeZone, specPath.Child("timeZone"))...)
	errs = append(errs, oneOf(s.ConcurrencyPolicy, specPath.Child("concurrencyPolicy"),
		batchv1.AllowConcurrent, batchv1.ForbidConcurrent, batchv1.ReplaceConcurrent)...)
	errs = append(errs, nonNegativePtr(s.StartingDeadlineSeconds, specPath.Child("startingDeadlineSeconds"))...)
	errs = append(errs, nonNegativePtr(s.SuccessfulJobsHistoryLimit, specPath.Child("successfulJobsHistoryLimit"))...)
	errs = append(errs, nonNegativePtr(s.FailedJobsHistoryLimit, specPath.Child("failedJobsHistoryLimit"))...)
	jp := specPath.Child("jobTemplate")
	errs = append(errs, labels(s.JobTemplate.Labels, jp.Child("metadata", "labels"))...)
	errs = append(errs, annotations(s.JobTemplate.Annotations, jp.Child("metadata", "annotations"))...)
	return append(errs, validateJobSpec(&s.JobTemplate.Spec, jp.Child("spec"), true)...)
}

var timeZonePart = regexp.MustCompile(`^[A-Za-z\.\-_0-9+]{1,14}$`)

func validateTimeZone(tz *string, p *field.Path) field.ErrorList {
	if tz == nil {
		return nil
	}
	if *tz == "" {
		return field.ErrorList{field.Invalid(p, *tz, "timeZone must be nil or non-empty string")}
	}
	for _, part := range strings.Split(*tz, "/") {
		if part == "." || part == ".." || strings.HasPrefix(part, "-") || !timeZonePart.MatchString(part) {
			return field.ErrorList{field.Invalid(p, *tz, fmt.Sprintf("unknown time zone %s", *tz))}
		}
	}
	if strings.EqualFold(*tz, "Local") {
		return field.ErrorList{field.Invalid(p, *tz, "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones")}
	}
	if _, err := time.LoadLocation(*tz); err != nil {
		return field.ErrorList{field.Invalid(p, *tz, err.Error())}
	}
	return nil
}

func validateCronJobUpdate(cj, old *batchv1.CronJob) field.ErrorList {
	allowTZ := strings.Contains(old.Spec.Schedule, "TZ")
	return withMetaUpdate(&cj.ObjectMeta, &old.ObjectMeta, validateCronJobSpec(&cj.Spec, allowTZ))
}
