package statefulset

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

func statefulSet(replicas int32, mut ...func(*appsv1.StatefulSet)) *appsv1.StatefulSet {
	set := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: "set-uid", Generation: 2},
		Spec: appsv1.StatefulSetSpec{
			Replicas:    ptr(replicas),
			ServiceName: "web-svc",
			Selector:    &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "img"}}},
			},
			PodManagementPolicy: appsv1.OrderedReadyPodManagement,
			UpdateStrategy: appsv1.StatefulSetUpdateStrategy{
				Type:          appsv1.RollingUpdateStatefulSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: ptr(int32(0))},
			},
		},
	}
	for _, m := range mut {
		m(set)
	}
	return set
}

type podState int

const (
	ready podState = iota
	unready
	terminating
	failed
)

// member makes pod <ordinal> of the "web" set on revision rev.
func member(ordinal int, rev string, st podState) *corev1.Pod {
	set := statefulSet(1)
	p := newPod(set, &set.Spec.Template, rev, ordinal)
	p.UID = types.UID(p.Name)
	p.Status.Phase = corev1.PodRunning
	cond := corev1.ConditionTrue
	switch st {
	case unready:
		cond = corev1.ConditionFalse
	case terminating:
		now := metav1.NewTime(t0)
		p.DeletionTimestamp = &now
	case failed:
		p.Status.Phase = corev1.PodFailed
		cond = corev1.ConditionFalse
	}
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: cond, LastTransitionTime: metav1.NewTime(t0)}}
	return p
}

// describe renders actions as "create 0", "delete 2", "create 1 (current)".
func describe(pl plan) []string {
	var out []string
	for _, a := range pl.actions {
		switch a.kind {
		case actCreate:
			s := fmt.Sprintf("create %d", a.ordinal)
			if a.fromCurrent {
				s += " (current)"
			}
			out = append(out, s)
		case actDelete:
			out = append(out, fmt.Sprintf("delete %d", a.ordinal))
		case actRelabel:
			out = append(out, fmt.Sprintf("relabel %d", a.ordinal))
		case actClaims:
			out = append(out, fmt.Sprintf("claims %d", a.ordinal))
		}
	}
	return out
}

func TestDecide(t *testing.T) {
	parallel := func(s *appsv1.StatefulSet) { s.Spec.PodManagementPolicy = appsv1.ParallelPodManagement }
	partition := func(n int32) func(*appsv1.StatefulSet) {
		return func(s *appsv1.StatefulSet) { s.Spec.UpdateStrategy.RollingUpdate.Partition = ptr(n) }
	}
	onDelete := func(s *appsv1.StatefulSet) {
		s.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType}
	}
	maxUnavailable := func(n int32) func(*appsv1.StatefulSet) {
		return func(s *appsv1.StatefulSet) {
			s.Spec.UpdateStrategy.RollingUpdate.MaxUnavailable = ptr(intstr.FromInt32(n))
		}
	}
	startAt := func(n int32) func(*appsv1.StatefulSet) {
		return func(s *appsv1.StatefulSet) { s.Spec.Ordinals = &appsv1.StatefulSetOrdinals{Start: n} }
	}
	unlabelled := member(0, "new", ready)
	delete(unlabelled.Labels, appsv1.PodIndexLabel)

	cases := []struct {
		name    string
		set     *appsv1.StatefulSet
		current string // default "new"
		pods    []*corev1.Pod
		want    []string
	}{
		{name: "ordered: first pod only", set: statefulSet(3), want: []string{"create 0"}},
		{name: "ordered: wait for 0 to be ready", set: statefulSet(3),
			pods: []*corev1.Pod{member(0, "new", unready)}},
		{name: "ordered: 0 ready, create 1", set: statefulSet(3),
			pods: []*corev1.Pod{member(0, "new", ready)}, want: []string{"create 1"}},
		{name: "ordered: a hole is refilled first", set: statefulSet(3),
			pods: []*corev1.Pod{member(0, "new", ready), member(2, "new", ready)}, want: []string{"create 1"}},
		{name: "parallel: all at once", set: statefulSet(3, parallel), want: []string{"create 0", "create 1", "create 2"}},
		{name: "spec.ordinals.start", set: statefulSet(2, startAt(5), parallel), want: []string{"create 5", "create 6"}},
		{name: "failed pod replaced", set: statefulSet(2),
			pods: []*corev1.Pod{member(0, "new", failed), member(1, "new", ready)}, want: []string{"delete 0"}},
		{name: "identity restored", set: statefulSet(1), pods: []*corev1.Pod{unlabelled}, want: []string{"relabel 0"}},
		{name: "scale down: highest first, one at a time", set: statefulSet(1),
			pods: []*corev1.Pod{member(0, "new", ready), member(1, "new", ready), member(2, "new", ready)},
			want: []string{"delete 2"}},
		{name: "scale down: wait for termination", set: statefulSet(1),
			pods: []*corev1.Pod{member(0, "new", ready), member(1, "new", ready), member(2, "new", terminating)}},
		{name: "scale down: blocked by an unhealthy lower pod", set: statefulSet(2),
			pods: []*corev1.Pod{member(0, "new", ready), member(1, "new", unready), member(2, "new", ready)}},
		{name: "scale down: the first unhealthy pod may go", set: statefulSet(2),
			pods: []*corev1.Pod{member(0, "new", ready), member(1, "new", ready), member(2, "new", unready)},
			want: []string{"delete 2"}},
		{name: "scale down: parallel", set: statefulSet(1, parallel),
			pods: []*corev1.Pod{member(0, "new", ready), member(1, "new", ready), member(2, "new", unready)},
			want: []string{"delete 2", "delete 1"}},
		{name: "update: highest ordinal first", set: statefulSet(3), current: "old",
			pods: []*corev1.Pod{member(0, "old", ready), member(1, "old", ready), member(2, "old", ready)},
			want: []string{"delete 2"}},
		{name: "update: wait for the updated pod to be ready", set: statefulSet(3), current: "old",
			pods: []*corev1.Pod{member(0, "old", ready), member(1, "old", ready), member(2, "new", unready)}},
		{name: "update: then the next", set: statefulSet(3), current: "old",
			pods: []*corev1.Pod{member(0, "old", ready), member(1, "old", ready), member(2, "new", ready)},
			want: []string{"delete 1"}},
		{name: "update: partition stops it", set: statefulSet(3, partition(2)), current: "old",
			pods: []*corev1.Pod{member(0, "old", ready), member(1, "old", ready), member(2, "new", ready)}},
		{name: "update: below the partition a pod comes back old", set: statefulSet(3, partition(2)), current: "old",
			pods: []*corev1.Pod{member(1, "old", ready), member(2, "new", ready)}, want: []string{"create 0 (current)"}},
		{name: "update: OnDelete leaves pods", set: statefulSet(3, onDelete), current: "old",
			pods: []*corev1.Pod{member(0, "old", ready), member(1, "old", ready), member(2, "old", ready)}},
		{name: "update: maxUnavailable 2", set: statefulSet(3, maxUnavailable(2)), current: "old",
			pods: []*corev1.Pod{member(0, "old", ready), member(1, "old", ready), member(2, "old", ready)},
			want: []string{"delete 2", "delete 1"}},
		{name: "update: maxUnavailable counts unhealthy pods", set: statefulSet(3, maxUnavailable(2), parallel), current: "old",
			pods: []*corev1.Pod{member(0, "old", ready), member(1, "old", ready), member(2, "new", unready)},
			want: []string{"delete 1"}},
		{name: "deleting set: nothing", set: statefulSet(3, func(s *appsv1.StatefulSet) { now := metav1.NewTime(t0); s.DeletionTimestamp = &now })},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cur := tc.current
			if cur == "" {
				cur = "new"
			}
			pl := decide(world{set: tc.set, pods: tc.pods, current: cur, update: "new", now: t0.Add(time.Minute)})
			if got := describe(pl); !slices.Equal(got, tc.want) {
				t.Errorf("actions %q, want %q", got, tc.want)
			}
		})
	}
}

func TestStatus(t *testing.T) {
	set := statefulSet(3)
	w := world{set: set, current: "old", update: "new", now: t0.Add(time.Minute),
		pods: []*corev1.Pod{member(0, "old", ready), member(1, "old", unready), member(2, "new", ready), member(3, "new", terminating)}}
	st, _ := computeStatus(w)
	got := fmt.Sprintf("replicas=%d ready=%d available=%d current=%d updated=%d cur=%s upd=%s gen=%d",
		st.Replicas, st.ReadyReplicas, st.AvailableReplicas, st.CurrentReplicas, st.UpdatedReplicas, st.CurrentRevision, st.UpdateRevision, st.ObservedGeneration)
	// A terminating pod still counts as ready (as in Kubernetes) but not
	// towards a revision.
	want := "replicas=4 ready=3 available=3 current=2 updated=1 cur=old upd=new gen=2"
	if got != want {
		t.Errorf("status %s\nwant   %s", got, want)
	}

	w.pods = []*corev1.Pod{member(0, "new", ready), member(1, "new", ready), member(2, "new", ready)}
	st, _ = computeStatus(w)
	if st.CurrentRevision != "new" || st.CurrentReplicas != 3 {
		t.Errorf("completed rollout: current %s x%d, want new x3", st.CurrentRevision, st.CurrentReplicas)
	}

	set.Spec.MinReadySeconds = 90
	st, recheck := computeStatus(w)
	if st.AvailableReplicas != 0 || recheck <= 0 || recheck > 31*time.Second {
		t.Errorf("minReadySeconds: available %d recheck %v, want 0 and ~30s", st.AvailableReplicas, recheck)
	}
}

func TestNewPodIdentityAndStorage(t *testing.T) {
	set := statefulSet(3, func(s *appsv1.StatefulSet) {
		s.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data", Labels: map[string]string{"tier": "db"}}}}
		s.Spec.Template.Spec.Volumes = []corev1.Volume{{Name: "data"}, {Name: "cfg"}}
	})
	p := newPod(set, &set.Spec.Template, "web-abc", 2)
	if p.Name != "web-2" || p.Spec.Hostname != "web-2" || p.Spec.Subdomain != "web-svc" {
		t.Errorf("identity: %s %s %s", p.Name, p.Spec.Hostname, p.Spec.Subdomain)
	}
	if p.Labels[appsv1.StatefulSetPodNameLabel] != "web-2" || p.Labels[appsv1.PodIndexLabel] != "2" || revisionOf(p) != "web-abc" {
		t.Errorf("labels: %v", p.Labels)
	}
	var vols []string
	for _, v := range p.Spec.Volumes {
		s := v.Name
		if v.PersistentVolumeClaim != nil {
			s += "=" + v.PersistentVolumeClaim.ClaimName
		}
		vols = append(vols, s)
	}
	if strings.Join(vols, ",") != "data=data-web-2,cfg" {
		t.Errorf("volumes: %v", vols)
	}
	claims := newClaims(set, 2)
	if len(claims) != 1 || claims[0].Name != "data-web-2" || claims[0].Labels["app"] != "web" || claims[0].Labels["tier"] != "db" {
		t.Errorf("claims: %+v", claims)
	}
	if ordinalOf(set, p) != 2 || ordinalOf(set, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-02"}}) != -1 ||
		ordinalOf(set, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "webby-1"}}) != -1 {
		t.Errorf("ordinal parsing")
	}
}

func TestClaimOwners(t *testing.T) {
	const (
		keep = appsv1.RetainPersistentVolumeClaimRetentionPolicyType
		del  = appsv1.DeletePersistentVolumeClaimRetentionPolicyType
	)
	other := metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: "x", UID: "other"}
	cases := []struct {
		whenDeleted, whenScaled appsv1.PersistentVolumeClaimRetentionPolicyType
		ordinal                 int
		have                    []metav1.OwnerReference
		want                    string // owner kinds, in order
	}{
		{keep, keep, 0, nil, ""},
		{keep, keep, 0, []metav1.OwnerReference{other, {Kind: "StatefulSet", Name: "web", UID: "set-uid"}}, "ConfigMap"},
		{del, keep, 0, nil, "StatefulSet"},
		{del, keep, 5, nil, "StatefulSet"},
		{keep, del, 0, nil, ""},
		{keep, del, 5, nil, "Pod"},
		{del, del, 0, nil, "StatefulSet"},
		{del, del, 5, []metav1.OwnerReference{{Kind: "StatefulSet", Name: "web", UID: "set-uid"}}, "Pod"},
		{del, del, 0, []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: "web-0", UID: "web-0"}}, "StatefulSet"},
	}
	for _, tc := range cases {
		set := statefulSet(3, func(s *appsv1.StatefulSet) {
			s.Spec.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{WhenDeleted: tc.whenDeleted, WhenScaled: tc.whenScaled}
		})
		claim := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "c", OwnerReferences: tc.have}}
		refs, changed := claimOwners(set, claim, member(tc.ordinal, "new", ready), tc.ordinal)
		var kinds []string
		for _, r := range refs {
			kinds = append(kinds, r.Kind)
		}
		if got := strings.Join(kinds, ","); got != tc.want {
			t.Errorf("deleted=%s scaled=%s ordinal %d have %v: owners %q, want %q", tc.whenDeleted, tc.whenScaled, tc.ordinal, tc.have, got, tc.want)
		}
		claim.OwnerReferences = refs
		if _, again := claimOwners(set, claim, member(tc.ordinal, "new", ready), tc.ordinal); again {
			t.Errorf("deleted=%s scaled=%s ordinal %d: not stable (changed twice)", tc.whenDeleted, tc.whenScaled, tc.ordinal)
		}
		var before []string
		for _, r := range tc.have {
			before = append(before, r.Kind)
		}
		if changed != (strings.Join(before, ",") != tc.want) {
			t.Errorf("deleted=%s scaled=%s ordinal %d: changed=%v", tc.whenDeleted, tc.whenScaled, tc.ordinal, changed)
		}
	}
}
