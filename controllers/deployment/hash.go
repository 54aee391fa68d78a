package deployment

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"maps"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/dump"
	"k8s.io/apimachinery/pkg/util/rand"
)

// HashLabel is the label that ties a Deployment's ReplicaSet and its pods
// to one pod template.
const HashLabel = appsv1.DefaultDeploymentUniqueLabelKey // "pod-template-hash"

// TemplateHash is the pod-template-hash of a Deployment's template: an FNV-1a
// hash of the template's canonical dump (the form Kubernetes hashes, so a
// template gets the same hash as under kube-controller-manager), salted
// with the collision count when there is one, written in the alphabet of
// generated names. It suffixes the ReplicaSet's name and labels it, its
// selector and its pods.
func TemplateHash(t *corev1.PodTemplateSpec, collisionCount *int32) string {
	h := fnv.New32a()
	fmt.Fprintf(h, "%v", dump.ForHash(*t))
	if collisionCount != nil {
		salt := make([]byte, 8)
		binary.LittleEndian.PutUint32(salt, uint32(*collisionCount))
		h.Write(salt)
	}
	return rand.SafeEncodeString(fmt.Sprint(h.Sum32()))
}

// equalIgnoreHash says whether two templates are the same but for the
// pod-template-hash label (a ReplicaSet's template has it, its
// Deployment's does not).
func equalIgnoreHash(a, b *corev1.PodTemplateSpec) bool {
	if !sameLabelsIgnoringHash(a.Labels, b.Labels) {
		return false
	}
	// Shallow copies: clearing their labels leaves the originals alone.
	x, y := *a, *b
	x.Labels, y.Labels = nil, nil
	return equality.Semantic.DeepEqual(x, y)
}

func sameLabelsIgnoringHash(a, b map[string]string) bool {
	n := 0
	for k, v := range a {
		if k == HashLabel {
			continue
		}
		if w, ok := b[k]; !ok || w != v {
			return false
		}
		n++
	}
	for k := range b {
		if k != HashLabel {
			n--
		}
	}
	return n == 0
}

// withLabel is a copy of m with key=value added.
func withLabel(m map[string]string, key, value string) map[string]string {
	out := maps.Clone(m)
	if out == nil {
		out = map[string]string{}
	}
	out[key] = value
	return out
}

// selectorWithLabel is a copy of sel that also requires key=value.
func selectorWithLabel(sel *metav1.LabelSelector, key, value string) *metav1.LabelSelector {
	out := sel.DeepCopy()
	if out == nil {
		out = &metav1.LabelSelector{}
	}
	out.MatchLabels = withLabel(out.MatchLabels, key, value)
	return out
}
