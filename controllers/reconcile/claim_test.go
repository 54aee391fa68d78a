package reconcile

import (
	"context"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func claimPod(name string, lbls map[string]string, owner *metav1.OwnerReference) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: lbls, ResourceVersion: "1"}}
	if owner != nil {
		p.OwnerReferences = []metav1.OwnerReference{*owner}
	}
	return p
}

func TestClaimPods(t *testing.T) {
	kind := appsv1.SchemeGroupVersion.WithKind("DaemonSet")
	ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "ds", Namespace: "ns", UID: "ds-uid"},
		Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "x"}}}}
	mine := metav1.NewControllerRef(ds, kind)
	other := &metav1.OwnerReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "rs", UID: "rs-uid", Controller: ptrTrue()}
	pods := []*corev1.Pod{
		claimPod("owned", map[string]string{"app": "x"}, mine),
		claimPod("stray", map[string]string{"app": "y"}, mine),
		claimPod("orphan", map[string]string{"app": "x"}, nil),
		claimPod("theirs", map[string]string{"app": "x"}, other),
		claimPod("unrelated", map[string]string{"app": "y"}, nil),
	}
	client := fake.NewSimpleClientset(ds, pods[0], pods[1], pods[2], pods[3], pods[4])
	claim := PodClaim{Client: client, Owner: ds, Kind: kind, Selector: ds.Spec.Selector,
		Current: func(ctx context.Context) (metav1.Object, error) {
			return client.AppsV1().DaemonSets("ns").Get(ctx, "ds", metav1.GetOptions{})
		}}
	got, err := ClaimPods(context.Background(), claim, pods)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, p := range got {
		names[p.Name] = true
	}
	if len(got) != 2 || !names["owned"] || !names["orphan"] {
		t.Fatalf("claimed %v, want owned and orphan", names)
	}
	ctx := context.Background()
	if p, _ := client.CoreV1().Pods("ns").Get(ctx, "orphan", metav1.GetOptions{}); metav1.GetControllerOf(p) == nil || metav1.GetControllerOf(p).UID != "ds-uid" {
		t.Errorf("orphan not adopted: %+v", p.OwnerReferences)
	}
	if p, _ := client.CoreV1().Pods("ns").Get(ctx, "stray", metav1.GetOptions{}); len(p.OwnerReferences) != 0 {
		t.Errorf("stray not released: %+v", p.OwnerReferences)
	}

	// An owner recreated under the same name (another UID) adopts nothing.
	recreated := ds.DeepCopy()
	recreated.UID = "new-uid"
	claim.Current = func(context.Context) (metav1.Object, error) { return recreated, nil }
	orphan2 := claimPod("orphan2", map[string]string{"app": "x"}, nil)
	got, err = ClaimPods(ctx, claim, []*corev1.Pod{orphan2})
	if err != nil || len(got) != 0 {
		t.Fatalf("stale owner claimed %d pods (%v)", len(got), err)
	}
	// Adoptable narrows which orphans are taken.
	claim.Current = func(context.Context) (metav1.Object, error) { return ds, nil }
	claim.Adoptable = func(p *corev1.Pod) bool { return p.Name == "wanted" }
	_ = client.Tracker().Add(claimPod("wanted", map[string]string{"app": "x"}, nil))
	_ = client.Tracker().Add(claimPod("unwanted", map[string]string{"app": "x"}, nil))
	got, err = ClaimPods(ctx, claim, []*corev1.Pod{claimPod("wanted", map[string]string{"app": "x"}, nil), claimPod("unwanted", map[string]string{"app": "x"}, nil)})
	if err != nil || len(got) != 1 || got[0].Name != "wanted" {
		t.Fatalf("Adoptable: got %d pods (%v)", len(got), err)
	}
}

func ptrTrue() *bool { b := true; return &b }
