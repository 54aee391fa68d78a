package job

import (
	"reflect"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

func TestPodFor(t *testing.T) {
	j := testJob(counts(3, 3), indexed, func(j *batchv1.Job) {
		j.Spec.Template.Labels = map[string]string{"app": "x"}
		j.Spec.Template.Spec.Containers = []corev1.Container{{Name: "main"}}
		j.Spec.Template.Spec.InitContainers = []corev1.Container{{Name: "init"}}
	})
	pod := podFor(j, newPod{index: 2})
	if pod.GenerateName != "j-2-" || pod.Spec.Hostname != "j-2" || pod.Namespace != "ns" {
		t.Errorf("generateName %q hostname %q namespace %q", pod.GenerateName, pod.Spec.Hostname, pod.Namespace)
	}
	if pod.Annotations[batchv1.JobCompletionIndexAnnotation] != "2" || pod.Labels[batchv1.JobCompletionIndexAnnotation] != "2" || pod.Labels["app"] != "x" {
		t.Errorf("annotations %v labels %v", pod.Annotations, pod.Labels)
	}
	if !reflect.DeepEqual(pod.Finalizers, []string{batchv1.JobTrackingFinalizer}) {
		t.Errorf("finalizers %v", pod.Finalizers)
	}
	ref := pod.OwnerReferences
	if len(ref) != 1 || ref[0].Kind != "Job" || ref[0].APIVersion != "batch/v1" || !*ref[0].Controller || !*ref[0].BlockOwnerDeletion || ref[0].UID != "job-uid" {
		t.Errorf("owner references %+v", ref)
	}
	for _, c := range append(pod.Spec.Containers, pod.Spec.InitContainers...) {
		if len(c.Env) != 1 || c.Env[0].Name != envCompletionIndex ||
			c.Env[0].ValueFrom.FieldRef.FieldPath != "metadata.annotations['batch.kubernetes.io/job-completion-index']" {
			t.Errorf("container %s env %+v", c.Name, c.Env)
		}
	}
	if j.Spec.Template.Labels[batchv1.JobCompletionIndexAnnotation] != "" || len(j.Spec.Template.Spec.Containers[0].Env) != 0 {
		t.Error("podFor changed the Job's template")
	}
	plain := podFor(testJob(), newPod{index: noIndex})
	if plain.GenerateName != "j-" || plain.Spec.Hostname != "" || plain.Annotations != nil {
		t.Errorf("NonIndexed pod: %q %q %v", plain.GenerateName, plain.Spec.Hostname, plain.Annotations)
	}
	long := "a-job-name-that-is-quite-long-indeed-and-goes-on-and-on-x"
	if got := generateName(long, 12345); len(got) != maxGeneratedPrefix || got[len(got)-7:] != "-12345-" {
		t.Errorf("generateName(long) = %q (%d)", got, len(got))
	}
}
