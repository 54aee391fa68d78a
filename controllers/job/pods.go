package job

import (
	"fmt"
	"slices"
	"strconv"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// jobKind is what a Job's children name as their controller.
var jobKind = schema.GroupVersionKind{Group: "batch", Version: "v1", Kind: "Job"}

// envCompletionIndex is the variable through which an Indexed Job's
// containers learn their index (from the pod's annotation, through the
// downward API).
const envCompletionIndex = "JOB_COMPLETION_INDEX"

// maxGeneratedPrefix is the longest generateName the API server keeps
// whole: it appends five random characters to stay within 63.
const maxGeneratedPrefix = 58

// isTerminal says whether the pod's phase is final.
func isTerminal(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

// isActive says whether the pod runs, or will: not finished, not being
// deleted.
func isActive(p *corev1.Pod) bool { return !isTerminal(p) && p.DeletionTimestamp == nil }

// isTerminating says whether the pod is being deleted and has not
// finished yet.
func isTerminating(p *corev1.Pod) bool { return !isTerminal(p) && p.DeletionTimestamp != nil }

// isReady says whether the pod's Ready condition is True.
func isReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// hasTrackingFinalizer says whether the pod still waits to be counted.
func hasTrackingFinalizer(p *corev1.Pod) bool {
	return slices.Contains(p.Finalizers, batchv1.JobTrackingFinalizer)
}

// consideredFailed says whether the pod counts as a failure: it failed,
// or it is being deleted before it could succeed. A Job that replaces only
// Failed pods (podReplacementPolicy Failed) waits for the phase instead.
func consideredFailed(p *corev1.Pod, onlyFailed bool) bool {
	if p.Status.Phase == corev1.PodFailed {
		return true
	}
	return !onlyFailed && p.DeletionTimestamp != nil && p.Status.Phase != corev1.PodSucceeded
}

// restarts is the sum of the pod's container restarts, init containers
// included.
func restarts(p *corev1.Pod) int32 {
	var n int32
	for _, cs := range p.Status.InitContainerStatuses {
		n += cs.RestartCount
	}
	for _, cs := range p.Status.ContainerStatuses {
		n += cs.RestartCount
	}
	return n
}

// deleteFirst orders active pods by how little is lost by deleting them:
// unscheduled before scheduled, pending before running, not ready before
// ready, younger before older.
func deleteFirst(a, b *corev1.Pod) int {
	rank := func(p *corev1.Pod) [3]int {
		var r [3]int
		if p.Spec.NodeName != "" {
			r[0] = 1
		}
		switch p.Status.Phase {
		case corev1.PodPending:
			r[1] = 0
		case corev1.PodUnknown:
			r[1] = 1
		default:
			r[1] = 2
		}
		if isReady(p) {
			r[2] = 1
		}
		return r
	}
	ra, rb := rank(a), rank(b)
	if c := slices.Compare(ra[:], rb[:]); c != 0 {
		return c
	}
	if c := b.CreationTimestamp.Compare(a.CreationTimestamp.Time); c != 0 {
		return c
	}
	switch {
	case a.Name < b.Name:
		return -1
	case a.Name > b.Name:
		return 1
	}
	return 0
}

// newPod is one pod the Job wants created.
type newPod struct {
	index int // completion index, or noIndex for a NonIndexed Job
	// failures and ignored carry an index's history to its next pod
	// (Jobs with backoffLimitPerIndex).
	failures, ignored int
}

// podFor builds the pod the Job creates for np: the template with the
// tracking finalizer and a controller reference; for an Indexed Job also
// its index (annotation, label, hostname, environment), as Kubernetes
// does.
func podFor(job *batchv1.Job, np newPod) *corev1.Pod {
	t := job.Spec.Template.DeepCopy()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName:    generateName(job.Name, np.index),
			Namespace:       job.Namespace,
			Labels:          t.Labels,
			Annotations:     t.Annotations,
			Finalizers:      append(t.Finalizers, batchv1.JobTrackingFinalizer),
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(job, jobKind)},
		},
		Spec: t.Spec,
	}
	if slices.Contains(t.Finalizers, batchv1.JobTrackingFinalizer) {
		pod.Finalizers = t.Finalizers
	}
	if np.index == noIndex {
		return pod
	}
	ix := strconv.Itoa(np.index)
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	pod.Annotations[batchv1.JobCompletionIndexAnnotation] = ix
	pod.Labels[batchv1.JobCompletionIndexAnnotation] = ix
	if job.Spec.BackoffLimitPerIndex != nil {
		pod.Annotations[batchv1.JobIndexFailureCountAnnotation] = strconv.Itoa(np.failures)
		if np.ignored > 0 {
			pod.Annotations[batchv1.JobIndexIgnoredFailureCountAnnotation] = strconv.Itoa(np.ignored)
		}
	}
	pod.Spec.Hostname = fmt.Sprintf("%s-%d", job.Name, np.index)
	env := corev1.EnvVar{Name: envCompletionIndex, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{
		APIVersion: "v1",
		FieldPath:  fmt.Sprintf("metadata.annotations['%s']", batchv1.JobCompletionIndexAnnotation),
	}}}
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range list {
			c := &list[i]
			if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == envCompletionIndex }) {
				c.Env = append(c.Env, env)
			}
		}
	}
	return pod
}

// generateName is "<job>-" for a NonIndexed Job's pods and
// "<job>-<index>-" for an Indexed Job's, the Job's name shortened so the
// index survives the API server's truncation.
func generateName(job string, index int) string {
	suffix := "-"
	if index != noIndex {
		suffix = fmt.Sprintf("-%d-", index)
	}
	if len(job)+len(suffix) > maxGeneratedPrefix {
		job = job[:max(maxGeneratedPrefix-len(suffix), 0)]
	}
	return job + suffix
}

// indexCount reads one of the per-index counters a pod carries.
func indexCount(p *corev1.Pod, annotation string) int {
	n, err := strconv.Atoi(p.Annotations[annotation])
	if err != nil || n < 0 {
		return 0
	}
	return n
}
