package statefulset

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/kubectl/pkg/util/podutils"

	"github.com/skiff-sh/skiff/controllers/history"
)

// kind is the GroupVersionKind of the owner this controller writes.
var kind = appsv1.SchemeGroupVersion.WithKind("StatefulSet")

// podKind is used in the ownerReferences a scaled-down pod puts on its claims.
var podKind = corev1.SchemeGroupVersion.WithKind("Pod")

// podName is the stable name of the pod with this ordinal.
func podName(set *appsv1.StatefulSet, ordinal int) string {
	return fmt.Sprintf("%s-%d", set.Name, ordinal)
}

// ordinalOf is the ordinal in a pod's name, or -1 when the name is not
// <set>-<non-negative integer>.
func ordinalOf(set *appsv1.StatefulSet, pod *corev1.Pod) int {
	rest, ok := strings.CutPrefix(pod.Name, set.Name+"-")
	if !ok || rest == "" || (len(rest) > 1 && rest[0] == '0') {
		return -1
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n < 0 {
		return -1
	}
	return n
}

// startOrdinal is the first ordinal (spec.ordinals.start, default 0).
func startOrdinal(set *appsv1.StatefulSet) int {
	if set.Spec.Ordinals != nil {
		return int(set.Spec.Ordinals.Start)
	}
	return 0
}

func replicasOf(set *appsv1.StatefulSet) int {
	if set.Spec.Replicas == nil {
		return 1
	}
	return int(*set.Spec.Replicas)
}

// inRange: the ordinal is one the set should run now.
func inRange(set *appsv1.StatefulSet, ordinal int) bool {
	s := startOrdinal(set)
	return ordinal >= s && ordinal < s+replicasOf(set)
}

// claimName is the stable name of a pod's claim from a template:
// <template>-<set>-<ordinal>.
func claimName(set *appsv1.StatefulSet, template string, ordinal int) string {
	return fmt.Sprintf("%s-%s-%d", template, set.Name, ordinal)
}

// revisionOf is the name of the revision a pod was made from.
func revisionOf(pod *corev1.Pod) string { return pod.Labels[history.HashLabel] }

// newPod is the pod with this ordinal from template (the template of the
// named revision): stable name, hostname and subdomain, identity labels,
// and one volume per claim template pointing at the ordinal's claim.
func newPod(set *appsv1.StatefulSet, template *corev1.PodTemplateSpec, revision string, ordinal int) *corev1.Pod {
	tmpl := template.DeepCopy()
	pod := &corev1.Pod{ObjectMeta: tmpl.ObjectMeta, Spec: tmpl.Spec}
	pod.Name = podName(set, ordinal)
	pod.GenerateName = ""
	pod.Namespace = set.Namespace
	pod.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(set, kind)}
	lbls := make(map[string]string, len(tmpl.Labels)+3)
	for k, v := range tmpl.Labels {
		lbls[k] = v
	}
	lbls[history.HashLabel] = revision
	pod.Labels = lbls
	setIdentity(set, pod, ordinal)
	pod.Spec.Hostname = pod.Name
	pod.Spec.Subdomain = set.Spec.ServiceName
	setStorage(set, pod, ordinal)
	return pod
}

// setIdentity puts the identity labels on pod.
func setIdentity(set *appsv1.StatefulSet, pod *corev1.Pod, ordinal int) {
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	pod.Labels[appsv1.StatefulSetPodNameLabel] = podName(set, ordinal)
	pod.Labels[appsv1.PodIndexLabel] = strconv.Itoa(ordinal)
}

// identityMatches: the pod carries the identity of its ordinal.
func identityMatches(set *appsv1.StatefulSet, pod *corev1.Pod, ordinal int) bool {
	return pod.Labels[appsv1.StatefulSetPodNameLabel] == podName(set, ordinal) &&
		pod.Labels[appsv1.PodIndexLabel] == strconv.Itoa(ordinal)
}

// setStorage points one volume per claim template at the ordinal's claim,
// replacing a template volume of the same name.
func setStorage(set *appsv1.StatefulSet, pod *corev1.Pod, ordinal int) {
	if len(set.Spec.VolumeClaimTemplates) == 0 {
		return
	}
	claims := map[string]bool{}
	var vols []corev1.Volume
	for _, t := range set.Spec.VolumeClaimTemplates {
		claims[t.Name] = true
		vols = append(vols, corev1.Volume{Name: t.Name, VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claimName(set, t.Name, ordinal)},
		}})
	}
	for _, v := range pod.Spec.Volumes {
		if !claims[v.Name] {
			vols = append(vols, v)
		}
	}
	pod.Spec.Volumes = vols
}

// newClaims are the claims the ordinal's pod uses, named and labelled as
// Kubernetes does (the template's labels plus the set's matchLabels),
// without owner references (claimOwners decides those).
func newClaims(set *appsv1.StatefulSet, ordinal int) []*corev1.PersistentVolumeClaim {
	var out []*corev1.PersistentVolumeClaim
	for _, t := range set.Spec.VolumeClaimTemplates {
		c := t.DeepCopy()
		c.Name = claimName(set, t.Name, ordinal)
		c.Namespace = set.Namespace
		c.ResourceVersion, c.UID, c.OwnerReferences = "", "", nil
		if c.Labels == nil {
			c.Labels = map[string]string{}
		}
		if set.Spec.Selector != nil {
			for k, v := range set.Spec.Selector.MatchLabels {
				c.Labels[k] = v
			}
		}
		c.Status = corev1.PersistentVolumeClaimStatus{}
		out = append(out, &corev1.PersistentVolumeClaim{ObjectMeta: c.ObjectMeta, Spec: c.Spec})
	}
	return out
}

// Pod health as the StatefulSet controller sees it.

func isTerminating(p *corev1.Pod) bool { return p.DeletionTimestamp != nil }

func isFinished(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded
}

func runningAndReady(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodRunning && podutils.IsPodReady(p)
}

func runningAndAvailable(p *corev1.Pod, minReadySeconds int32, now time.Time) bool {
	return p.Status.Phase == corev1.PodRunning && podutils.IsPodAvailable(p, minReadySeconds, metav1.NewTime(now))
}

// healthy: running, ready and not going away.
func healthy(p *corev1.Pod) bool { return p != nil && runningAndReady(p) && !isTerminating(p) }
