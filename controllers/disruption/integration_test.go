package disruption

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/retry"

	"github.com/skiff-sh/skiff/test/framework"
)

const waitFor = 20 * time.Second

func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	why := ""
	for time.Now().Before(deadline) {
		var ok bool
		if ok, why = cond(); ok {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not after %v: %s", what, waitFor, why)
}

// runningPod creates a pod (owned by owner, if set) and reports it
// Running, and Ready when ready, as a node would.
func runningPod(ctx context.Context, t *testing.T, client kubernetes.Interface, ns, name string, lbls map[string]string, owner *metav1.OwnerReference, ready bool) {
	t.Helper()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls},
		Spec:       corev1.PodSpec{NodeName: "node-a", Containers: []corev1.Container{{Name: "c", Image: "img"}}},
	}
	if owner != nil {
		p.OwnerReferences = []metav1.OwnerReference{*owner}
	}
	created, err := client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod %s: %v", name, err)
	}
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	now := metav1.Now()
	created.Status.Phase = corev1.PodRunning
	created.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: st, LastTransitionTime: now}}
	if _, err := client.CoreV1().Pods(ns).UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("pod %s status: %v", name, err)
	}
}

func TestBudgetsAgainstServer(t *testing.T) {
	srv := framework.StartServer(t, framework.Options{})
	client := srv.Client()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	const ns = "default"

	factory := informers.NewSharedInformerFactory(client, 0)
	ctrl, err := New(client, factory, Options{Recorder: record.NewFakeRecorder(1000), DeletionTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	go func() { _ = ctrl.Start(ctx) }()

	// A ReplicaSet of 4 (nobody runs it here) with three pods, one unready.
	rs, err := client.AppsV1().ReplicaSets(ns).Create(ctx, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "api"},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: func() *int32 { v := int32(4); return &v }(),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "api"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "api"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "img"}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ref := metav1.NewControllerRef(rs, appsv1.SchemeGroupVersion.WithKind("ReplicaSet"))
	api := map[string]string{"app": "api"}
	runningPod(ctx, t, client, ns, "api-1", api, ref, true)
	runningPod(ctx, t, client, ns, "api-2", api, ref, true)
	runningPod(ctx, t, client, ns, "api-3", api, ref, false)

	maxUnavailable := intstr.FromString("25%")
	createBudget(ctx, t, client, ns, "api", api, nil, &maxUnavailable)
	waitStatus(ctx, t, client, ns, "api", "expected=4 desired=3 healthy=2 allowed=0 reason=InsufficientPods")

	// The fourth pod becomes ready: one disruption allowed.
	runningPod(ctx, t, client, ns, "api-4", api, ref, true)
	waitStatus(ctx, t, client, ns, "api", "expected=4 desired=3 healthy=3 allowed=0 reason=InsufficientPods")
	p3, _ := client.CoreV1().Pods(ns).Get(ctx, "api-3", metav1.GetOptions{})
	p3.Status.Conditions[0].Status = corev1.ConditionTrue
	if _, err := client.CoreV1().Pods(ns).UpdateStatus(ctx, p3, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitStatus(ctx, t, client, ns, "api", "expected=4 desired=3 healthy=4 allowed=1 reason=SufficientPods")

	// An integer minAvailable over unowned pods; evictions spend it.
	db := map[string]string{"app": "db"}
	for i := 1; i <= 3; i++ {
		runningPod(ctx, t, client, ns, fmt.Sprintf("db-%d", i), db, nil, true)
	}
	minAvailable := intstr.FromInt32(2)
	createBudget(ctx, t, client, ns, "db", db, &minAvailable, nil)
	waitStatus(ctx, t, client, ns, "db", "expected=3 desired=2 healthy=3 allowed=1 reason=SufficientPods")
	evict := func(name string) error {
		return client.PolicyV1().Evictions(ns).Evict(ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}})
	}
	if err := evict("db-1"); err != nil {
		t.Fatalf("first eviction: %v", err)
	}
	// db-1 is terminating (no node confirms it): still expected, not healthy.
	waitStatus(ctx, t, client, ns, "db", "expected=3 desired=2 healthy=2 allowed=0 reason=InsufficientPods")
	if err := evict("db-2"); !apierrors.IsTooManyRequests(err) {
		t.Errorf("second eviction: %v, want 429", err)
	}

	// An eviction recorded for a pod that was never deleted stops
	// counting against the budget after the deletion timeout.
	// The controller writes the status too: retry on its conflicts.
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		pdb, err := client.PolicyV1().PodDisruptionBudgets(ns).Get(ctx, "db", metav1.GetOptions{})
		if err != nil {
			return err
		}
		pdb.Status.DisruptedPods = map[string]metav1.Time{"db-2": metav1.Now()}
		_, err = client.PolicyV1().PodDisruptionBudgets(ns).UpdateStatus(ctx, pdb, metav1.UpdateOptions{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	waitStatus(ctx, t, client, ns, "db", "expected=3 desired=2 healthy=1 allowed=0 reason=InsufficientPods")
	waitStatus(ctx, t, client, ns, "db", "expected=3 desired=2 healthy=2 allowed=0 reason=InsufficientPods")
	pdb, _ := client.PolicyV1().PodDisruptionBudgets(ns).Get(ctx, "db", metav1.GetOptions{})
	if len(pdb.Status.DisruptedPods) != 0 {
		t.Errorf("disruptedPods %v, want none after the timeout", pdb.Status.DisruptedPods)
	}

	// A pod whose controller is gone makes the count impossible.
	orphanRef := metav1.OwnerReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "vanished", UID: "vanished", Controller: func() *bool { b := true; return &b }()}
	runningPod(ctx, t, client, ns, "api-5", api, &orphanRef, true)
	waitStatus(ctx, t, client, ns, "api", "allowed=0 reason=SyncFailed")
}

func createBudget(ctx context.Context, t *testing.T, client kubernetes.Interface, ns, name string, sel map[string]string, minAvailable, maxUnavailable *intstr.IntOrString) {
	t.Helper()
	_, err := client.PolicyV1().PodDisruptionBudgets(ns).Create(ctx, &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: policyv1.PodDisruptionBudgetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: sel}, MinAvailable: minAvailable, MaxUnavailable: maxUnavailable,
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

// waitStatus waits until the budget's status, rendered as
// "expected=N desired=N healthy=N allowed=N reason=R" (or for SyncFailed,
// "allowed=N reason=R"), reads want and covers the current generation.
func waitStatus(ctx context.Context, t *testing.T, client kubernetes.Interface, ns, name, want string) {
	t.Helper()
	eventually(t, fmt.Sprintf("budget %s: %s", name, want), func() (bool, string) {
		pdb, err := client.PolicyV1().PodDisruptionBudgets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		st := pdb.Status
		reason := ""
		if c := apimeta.FindStatusCondition(st.Conditions, policyv1.DisruptionAllowedCondition); c != nil {
			reason = c.Reason
		}
		got := fmt.Sprintf("expected=%d desired=%d healthy=%d allowed=%d reason=%s", st.ExpectedPods, st.DesiredHealthy, st.CurrentHealthy, st.DisruptionsAllowed, reason)
		if reason == reasonSyncFailed {
			got = fmt.Sprintf("allowed=%d reason=%s", st.DisruptionsAllowed, reason)
			return got == want, got
		}
		return got == want && st.ObservedGeneration == pdb.Generation, got
	})
}
