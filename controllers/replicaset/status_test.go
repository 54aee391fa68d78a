package replicaset

import (
	"errors"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
)

func TestComputeStatus(t *testing.T) {
	failure := Condition{Type: ConditionReplicaFailure, Status: corev1.ConditionTrue, Reason: ReasonFailedCreate,
		Message: "first error", LastTransitionTime: metav1.NewTime(t0.Add(-time.Hour))}
	active := []*corev1.Pod{
		mkPod("available", readyAt(t0.Add(-time.Minute)), labelled("app", "web", "tier", "front")),
		mkPod("ready-recently", readyAt(t0.Add(-2*time.Second)), labelled("app", "web", "tier", "front")),
		mkPod("notready", labelled("app", "web")), // matches the selector, not the whole template
	}
	tmpl := map[string]string{"app": "web", "tier": "front"}
	tests := []struct {
		name string
		prev Status
		in   StatusInput
		want Status
	}{
		{
			name: "counts",
			in: StatusInput{Generation: 4, Replicas: 3, MinReadySeconds: 10, TemplateLabels: tmpl,
				Active: active, Now: t0},
			want: Status{Replicas: 3, FullyLabeledReplicas: 2, ReadyReplicas: 2, AvailableReplicas: 1, ObservedGeneration: 4},
		},
		{
			name: "terminating pods are counted apart when the kind reports them",
			in: StatusInput{Generation: 1, TemplateLabels: tmpl, Active: active[:1],
				Terminating: []*corev1.Pod{mkPod("t", deleting())}, CountTerminating: true, Now: t0},
			want: Status{Replicas: 1, FullyLabeledReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1,
				ObservedGeneration: 1, TerminatingReplicas: ptrTo(int32(1))},
		},
		{
			name: "a create error raises ReplicaFailure",
			in: StatusInput{Generation: 2, Replicas: 5, TemplateLabels: tmpl, Active: active[:1],
				ManageErr: errors.New("pods \"x\" is forbidden: quota"), Diff: -4, Now: t0.Add(300 * time.Millisecond)},
			want: Status{Replicas: 1, FullyLabeledReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1, ObservedGeneration: 2,
				Conditions: []Condition{{Type: ConditionReplicaFailure, Status: corev1.ConditionTrue, Reason: ReasonFailedCreate,
					Message: "pods \"x\" is forbidden: quota", LastTransitionTime: metav1.NewTime(t0)}}},
		},
		{
			name: "a delete error says FailedDelete",
			in: StatusInput{Generation: 2, Replicas: 0, TemplateLabels: tmpl, Active: active[:1],
				ManageErr: errors.New("nope"), Diff: 1, Now: t0},
			want: Status{Replicas: 1, FullyLabeledReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1, ObservedGeneration: 2,
				Conditions: []Condition{{Type: ConditionReplicaFailure, Status: corev1.ConditionTrue, Reason: ReasonFailedDelete,
					Message: "nope", LastTransitionTime: metav1.NewTime(t0)}}},
		},
		{
			name: "an existing failure keeps its first message",
			prev: Status{Conditions: []Condition{failure}},
			in:   StatusInput{Generation: 2, Replicas: 5, ManageErr: errors.New("second error"), Diff: -5, Now: t0},
			want: Status{ObservedGeneration: 2, Conditions: []Condition{failure}},
		},
		{
			name: "success clears the failure",
			prev: Status{Conditions: []Condition{failure}},
			in:   StatusInput{Generation: 3, Replicas: 0, Now: t0},
			want: Status{ObservedGeneration: 3},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ComputeStatus(tt.prev, tt.in)
			if !equalStatus(got, tt.want) {
				t.Errorf("status =\n  %+v\nwant\n  %+v", got, tt.want)
			}
		})
	}
}

func ptrTo[T any](v T) *T { return &v }

func TestClaim(t *testing.T) {
	const me, other = types.UID("me"), types.UID("other")
	sel := labels.SelectorFromSet(labels.Set{"app": "web"})
	pods := []*corev1.Pod{
		mkPod("mine", ownedBy(me)),
		mkPod("mine-relabelled", ownedBy(me), labelled("app", "db")),
		mkPod("orphan", labelled("app", "web")),
		mkPod("orphan-elsewhere", labelled("app", "db")),
		mkPod("orphan-dying", deleting()),
		mkPod("theirs", ownedBy(other)),
	}
	tests := []struct {
		name                       string
		deleting                   bool
		keep, adopt, releaseWanted []string
	}{
		{name: "live set", keep: []string{"mine"}, adopt: []string{"orphan"}, releaseWanted: []string{"mine-relabelled"}},
		{name: "set being deleted adopts and releases nothing", deleting: true, keep: []string{"mine"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Claim(me, tt.deleting, sel, pods)
			for _, chk := range []struct {
				what      string
				got, want []string
			}{{"keep", names(c.Keep), tt.keep}, {"adopt", names(c.Adopt), tt.adopt}, {"release", names(c.Release), tt.releaseWanted}} {
				if !slices.Equal(chk.got, chk.want) && (len(chk.got) > 0 || len(chk.want) > 0) {
					t.Errorf("%s = %v, want %v", chk.what, chk.got, chk.want)
				}
			}
		})
	}
}

func TestPatches(t *testing.T) {
	owner := &metav1.ObjectMeta{Name: "web", UID: "rs-uid"}
	adopt, err := AdoptPatch(ControllerRef(owner, "apps/v1", "ReplicaSet"), "pod-uid")
	if err != nil {
		t.Fatal(err)
	}
	want := `{"metadata":{"ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"web","uid":"rs-uid","controller":true,"blockOwnerDeletion":true}],"uid":"pod-uid"}}`
	if string(adopt) != want {
		t.Errorf("adopt patch = %s\nwant %s", adopt, want)
	}
	release, err := ReleasePatch("rs-uid", "pod-uid")
	if err != nil {
		t.Fatal(err)
	}
	want = `{"metadata":{"ownerReferences":[{"$patch":"delete","uid":"rs-uid"}],"uid":"pod-uid"}}`
	if string(release) != want {
		t.Errorf("release patch = %s\nwant %s", release, want)
	}
}
