package history

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/polymorphichelpers"
)

func template(image string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "a"}, Annotations: map[string]string{"z": "1", "a": "2"}},
		Spec: corev1.PodSpec{
			Containers:                    []corev1.Container{{Name: "c", Image: image, Ports: []corev1.ContainerPort{{ContainerPort: 8080}}}},
			TerminationGracePeriodSeconds: func() *int64 { v := int64(30); return &v }(),
		},
	}
}

// TestKubectlSeesTheSameTemplate checks the revision format against
// kubectl itself: rollout undo skips a revision whose bytes equal the
// patch kubectl computes from the workload's current template.
func TestKubectlSeesTheSameTemplate(t *testing.T) {
	for _, kind := range []string{"DaemonSet", "StatefulSet"} {
		t.Run(kind, func(t *testing.T) {
			tmpl := template("img:1")
			sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "a"}}
			meta := metav1.ObjectMeta{Name: "w", Namespace: "ns", UID: "w-uid"}
			var obj runtime.Object
			var owner metav1.Object
			switch kind {
			case "DaemonSet":
				ds := &appsv1.DaemonSet{ObjectMeta: meta, Spec: appsv1.DaemonSetSpec{Selector: sel, Template: tmpl}}
				obj, owner = ds, ds
			default:
				set := &appsv1.StatefulSet{ObjectMeta: meta, Spec: appsv1.StatefulSetSpec{Selector: sel, Template: tmpl}}
				obj, owner = set, set
			}
			data, err := TemplatePatch(&tmpl)
			if err != nil {
				t.Fatal(err)
			}
			rev := New(Owner{Object: owner, Kind: appsv1.SchemeGroupVersion.WithKind(kind), Labels: tmpl.Labels}, data, 1)
			client := fake.NewSimpleClientset(obj, rev)
			rb, err := polymorphichelpers.RollbackerFor(appsv1.SchemeGroupVersion.WithKind(kind).GroupKind(), client)
			if err != nil {
				t.Fatal(err)
			}
			msg, err := rb.Rollback(obj, nil, 1, cmdutil.DryRunNone)
			if err != nil || !strings.Contains(msg, "skipped rollback") {
				t.Errorf("rollback to the current template: %q %v, want it skipped", msg, err)
			}
			back, err := Template(rev)
			if err != nil || back.Spec.Containers[0].Image != "img:1" || back.Annotations["z"] != "1" {
				t.Errorf("template read back: %+v %v", back, err)
			}
		})
	}
}

func TestHashAndName(t *testing.T) {
	a, _ := TemplatePatch(func() *corev1.PodTemplateSpec { t := template("img:1"); return &t }())
	b, _ := TemplatePatch(func() *corev1.PodTemplateSpec { t := template("img:2"); return &t }())
	one := int32(1)
	if Hash(a, nil) == Hash(b, nil) || Hash(a, nil) == Hash(a, &one) || Hash(a, nil) != Hash(a, nil) {
		t.Errorf("hash must follow data and collision count, and be stable")
	}
	long := strings.Repeat("x", 300)
	if n := Name(long, "abc"); len(n) > 253 || !strings.HasSuffix(n, "-abc") {
		t.Errorf("long name %d chars", len(n))
	}
}

func rev(name string, number int64, data string, created time.Time) *appsv1.ControllerRevision {
	return &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", CreationTimestamp: metav1.NewTime(created)},
		Revision:   number, Data: runtime.RawExtension{Raw: []byte(data)},
	}
}

func TestPrunable(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	revs := []*appsv1.ControllerRevision{
		rev("r3", 3, "c", t0), rev("r1", 1, "a", t0), rev("r2", 2, "b", t0), rev("r4", 4, "d", t0), rev("r5", 5, "e", t0),
	}
	got := Prunable(revs, map[string]bool{"r5": true, "r1": true}, 1)
	var names []string
	for _, r := range got {
		names = append(names, r.Name)
	}
	if strings.Join(names, ",") != "r2,r3" {
		t.Errorf("prunable %v, want r2,r3 (oldest dead beyond one kept)", names)
	}
	if len(Prunable(revs, nil, 10)) != 0 {
		t.Errorf("nothing beyond a limit of 10")
	}
}

func TestEnsure(t *testing.T) {
	ctx := context.Background()
	ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "w", Namespace: "ns", UID: "w-uid"}}
	owner := Owner{Object: ds, Kind: appsv1.SchemeGroupVersion.WithKind("DaemonSet"), Labels: map[string]string{"app": "a"}}
	client := fake.NewSimpleClientset()
	list := func() []*appsv1.ControllerRevision {
		l, _ := client.AppsV1().ControllerRevisions("ns").List(ctx, metav1.ListOptions{})
		var out []*appsv1.ControllerRevision
		for i := range l.Items {
			out = append(out, &l.Items[i])
		}
		owned, _ := Owned(out, ds.UID, labels.Everything())
		return owned
	}
	r1, err := Ensure(ctx, client, owner, list(), []byte(`{"v":1}`))
	if err != nil || r1.Revision != 1 || r1.Labels[HashLabel] == "" || metav1.GetControllerOf(r1).UID != ds.UID {
		t.Fatalf("first revision: %+v %v", r1, err)
	}
	r2, _ := Ensure(ctx, client, owner, list(), []byte(`{"v":2}`))
	if r2.Revision != 2 {
		t.Errorf("second template: revision %d", r2.Revision)
	}
	again, _ := Ensure(ctx, client, owner, list(), []byte(`{"v":2}`))
	if again.Name != r2.Name || again.Revision != 2 {
		t.Errorf("same template again: %s #%d", again.Name, again.Revision)
	}
	back, _ := Ensure(ctx, client, owner, list(), []byte(`{"v":1}`))
	if back.Name != r1.Name || back.Revision != 3 {
		t.Errorf("returning to the first template: %s #%d, want %s renumbered 3", back.Name, back.Revision, r1.Name)
	}
	// A name held by other data is a collision.
	clash := New(owner, []byte(`{"v":9}`), 9)
	clash.Data.Raw = []byte(`{"other":true}`)
	if _, err := client.AppsV1().ControllerRevisions("ns").Create(ctx, clash, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Ensure(ctx, client, owner, list()[:0], []byte(`{"v":9}`)); !errors.Is(err, ErrCollision) {
		t.Errorf("collision: %v", err)
	}
}
