package deployment

import (
	"fmt"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

// deploy is a defaulted Deployment "web" of image img.
func deploy(replicas int32, img string) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: "d-uid", Generation: 1},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: template(img),
			Strategy: appsv1.DeploymentStrategy{
				Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{
					MaxSurge: ptr(intstr.FromString("25%")), MaxUnavailable: ptr(intstr.FromString("25%")),
				},
			},
			RevisionHistoryLimit:    ptr(int32(10)),
			ProgressDeadlineSeconds: ptr(int32(600)),
		},
	}
}

func template(img string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: img}}},
	}
}

func withStrategy(d *appsv1.Deployment, surge, unavailable intstr.IntOrString) *appsv1.Deployment {
	d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxSurge: &surge, MaxUnavailable: &unavailable}
	return d
}

// rsFor is a ReplicaSet of d for image img as the controller makes them,
// with the given revision, replicas and a settled status (all pods
// available), created at t0 + age order.
func rsFor(d *appsv1.Deployment, img string, revision int, replicas int32, order int) *appsv1.ReplicaSet {
	tmpl := template(img)
	hash := TemplateHash(&tmpl, nil)
	tmpl.Labels = withLabel(tmpl.Labels, HashLabel, hash)
	r := replicasOf(d)
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{
			Name: d.Name + "-" + hash, Namespace: d.Namespace, UID: types.UID("rs-" + img),
			ResourceVersion: "1", Generation: 1,
			CreationTimestamp: metav1.NewTime(t0.Add(time.Duration(order) * time.Minute)),
			Labels:            tmpl.Labels,
			Annotations: map[string]string{
				RevisionAnnotation:        strconv.Itoa(revision),
				DesiredReplicasAnnotation: fmt.Sprint(r),
				MaxReplicasAnnotation:     fmt.Sprint(r + 1),
			},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: d.Name, UID: d.UID, Controller: ptr(true)}},
		},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: ptr(replicas),
			Selector: selectorWithLabel(d.Spec.Selector, HashLabel, hash),
			Template: tmpl,
		},
		Status: appsv1.ReplicaSetStatus{Replicas: replicas, ReadyReplicas: replicas, AvailableReplicas: replicas,
			FullyLabeledReplicas: replicas, ObservedGeneration: 1},
	}
}

// podState is how far a test pod has got.
type podState int

const (
	pending     podState = iota // created, not ready
	readyNow                    // ready at the snapshot's time (not yet available with minReadySeconds)
	available                   // ready an hour ago
	terminating                 // being deleted
)

// podsFor makes n pods of rs in state st.
func podsFor(rs *appsv1.ReplicaSet, n int, st podState) []*corev1.Pod {
	var out []*corev1.Pod
	for i := range n {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{
				Name: fmt.Sprintf("%s-%d-%d", rs.Name, st, i), Namespace: rs.Namespace,
				UID:               types.UID(fmt.Sprintf("%s-%d-%d", rs.UID, st, i)),
				Labels:            rs.Spec.Template.Labels,
				CreationTimestamp: metav1.NewTime(t0),
				OwnerReferences:   []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID, Controller: ptr(true)}},
			},
			Spec:   corev1.PodSpec{NodeName: "n1"},
			Status: corev1.PodStatus{Phase: corev1.PodRunning},
		}
		switch st {
		case readyNow:
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(t0.Add(time.Hour))}}
		case available, terminating:
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(t0)}}
		}
		if st == terminating {
			p.DeletionTimestamp = ptr(metav1.NewTime(t0.Add(time.Hour)))
		}
		out = append(out, p)
	}
	return out
}

// writes summarises a plan's ReplicaSet writes as "create NAME N",
// "update NAME N" and "delete NAME".
func writes(p Plan) []string {
	var out []string
	if p.Create != nil {
		out = append(out, fmt.Sprintf("create %s %d", p.Create.RS.Name, *p.Create.RS.Spec.Replicas))
	}
	for _, w := range p.Updates {
		out = append(out, fmt.Sprintf("update %s %d", w.RS.Name, *w.RS.Spec.Replicas))
	}
	for _, rs := range p.Deletes {
		out = append(out, "delete "+rs.Name)
	}
	return out
}

func messages(p Plan) []string {
	var out []string
	if p.Create != nil && p.Create.Message != "" {
		out = append(out, p.Create.Message)
	}
	for _, w := range p.Updates {
		if w.Message != "" {
			out = append(out, w.Message)
		}
	}
	return out
}

func rsName(img string) string {
	t := template(img)
	return "web-" + TemplateHash(&t, nil)
}
