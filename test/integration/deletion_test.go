package integration

import (
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-sh/skiff/test/framework"
)

// TestDeletion checks graceful deletion, finalizers, propagation policies,
// namespace termination, dry run and eviction.
func TestDeletion(t *testing.T) {
	t.Parallel()
	srv := framework.StartServer(t, framework.Options{})
	cs := newClient(t, srv)
	t.Run("graceful pod deletion", func(t *testing.T) { testGracefulPodDeletion(t, cs) })
	t.Run("finalizers", func(t *testing.T) { testFinalizers(t, cs) })
	t.Run("propagation policy", func(t *testing.T) { testPropagation(t, cs) })
	t.Run("namespace termination", func(t *testing.T) { testNamespaceTermination(t, cs) })
	t.Run("dry run", func(t *testing.T) { testDryRun(t, cs) })
	t.Run("eviction", func(t *testing.T) { testEviction(t, cs) })
}

// boundPod creates a pod and binds it to a node.
func boundPod(t *testing.T, cs kubernetes.Interface, ns, name string, lbls map[string]string) *corev1.Pod {
	t.Helper()
	ctx := testCtx(t)
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, pod(name, lbls), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	err := cs.CoreV1().Pods(ns).Bind(ctx, &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: name},
		Target: corev1.ObjectReference{Kind: "Node", Name: "node-1"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("bind %s: %v", name, err)
	}
	p, err := cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func testGracefulPodDeletion(t *testing.T, cs kubernetes.Interface) {
	ctx := testCtx(t)
	ns := makeNamespace(t, cs, "graceful")
	pods := cs.CoreV1().Pods(ns)

	// An unbound pod has no node to stop it: it goes at once.
	if _, err := pods.Create(ctx, pod("unbound", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := pods.Delete(ctx, "unbound", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := pods.Get(ctx, "unbound", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("unbound pod after delete: want 404, got %v", err)
	}

	// A bound pod is marked, with the grace period its spec defaults to.
	bound := boundPod(t, cs, ns, "bound", nil)
	before := time.Now().Truncate(time.Second)
	if err := pods.Delete(ctx, "bound", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	p, err := pods.Get(ctx, "bound", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("bound pod after a graceful delete: %v", err)
	}
	grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
	if bound.Spec.TerminationGracePeriodSeconds != nil {
		grace = *bound.Spec.TerminationGracePeriodSeconds
	}
	if p.DeletionTimestamp == nil || p.DeletionGracePeriodSeconds == nil || *p.DeletionGracePeriodSeconds != grace {
		t.Fatalf("bound pod: deletionTimestamp=%v grace=%v, want set and %d", p.DeletionTimestamp, p.DeletionGracePeriodSeconds, grace)
	}
	deadline := before.Add(time.Duration(grace) * time.Second)
	if d := p.DeletionTimestamp.Time.Sub(deadline); d < -2*time.Second || d > 3*time.Second {
		t.Fatalf("deletionTimestamp %v is not now+%ds (%v)", p.DeletionTimestamp.Time, grace, deadline)
	}
	// A second delete with a shorter grace shortens it; grace 0 removes it.
	if err := pods.Delete(ctx, "bound", metav1.DeleteOptions{GracePeriodSeconds: int64p(5)}); err != nil {
		t.Fatal(err)
	}
	p, err = pods.Get(ctx, "bound", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if *p.DeletionGracePeriodSeconds != 5 {
		t.Fatalf("after delete with grace 5: grace=%d", *p.DeletionGracePeriodSeconds)
	}
	if err := pods.Delete(ctx, "bound", metav1.DeleteOptions{GracePeriodSeconds: int64p(60)}); err != nil {
		t.Fatal(err)
	}
	p, err = pods.Get(ctx, "bound", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if *p.DeletionGracePeriodSeconds != 5 {
		t.Fatalf("a longer grace period extended the deletion: grace=%d", *p.DeletionGracePeriodSeconds)
	}
	if err := pods.Delete(ctx, "bound", metav1.DeleteOptions{GracePeriodSeconds: int64p(0)}); err != nil {
		t.Fatal(err)
	}
	if _, err := pods.Get(ctx, "bound", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("bound pod after delete with grace 0: want 404, got %v", err)
	}
	// A deleted object is gone for deletes too.
	if err := pods.Delete(ctx, "bound", metav1.DeleteOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("delete of a gone pod: want 404, got %v", err)
	}
	// A finished pod needs no grace.
	done := boundPod(t, cs, ns, "done", nil)
	done.Status.Phase = corev1.PodSucceeded
	if _, err := pods.UpdateStatus(ctx, done, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := pods.Delete(ctx, "done", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := pods.Get(ctx, "done", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("succeeded pod after delete: want 404, got %v", err)
	}
}

func testFinalizers(t *testing.T, cs kubernetes.Interface) {
	ctx := testCtx(t)
	ns := makeNamespace(t, cs, "finalizers")
	cms := cs.CoreV1().ConfigMaps(ns)
	cm := configMap("held", nil, nil)
	cm.Finalizers = []string{"example.com/a", "example.com/b"}
	if _, err := cms.Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cms.Delete(ctx, "held", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := cms.Get(ctx, "held", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("finalized configmap after delete: %v", err)
	}
	if got.DeletionTimestamp == nil {
		t.Fatalf("finalized configmap has no deletionTimestamp")
	}
	// Other changes still go through; new finalizers do not.
	got.Data = map[string]string{"still": "writable"}
	got, err = cms.Update(ctx, got, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("update of a deleting object: %v", err)
	}
	withNew := got.DeepCopy()
	withNew.Finalizers = append(withNew.Finalizers, "example.com/late")
	if _, err := cms.Update(ctx, withNew, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) {
		t.Fatalf("adding a finalizer while deleting: want 422, got %v", err)
	}
	got.Finalizers = []string{"example.com/b"}
	got, err = cms.Update(ctx, got, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.DeletionTimestamp == nil {
		t.Fatalf("configmap lost its deletionTimestamp with a finalizer left")
	}
	if _, err := cms.Patch(ctx, "held", types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{}); err != nil {
		t.Fatalf("remove the last finalizer: %v", err)
	}
	if _, err := cms.Get(ctx, "held", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("after the last finalizer went: want 404, got %v", err)
	}
}

func testPropagation(t *testing.T, cs kubernetes.Interface) {
	ctx := testCtx(t)
	ns := makeNamespace(t, cs, "propagation")
	deps := cs.AppsV1().Deployments(ns)
	for _, tc := range []struct {
		name      string
		policy    metav1.DeletionPropagation
		finalizer string
	}{
		{"orphan", metav1.DeletePropagationOrphan, metav1.FinalizerOrphanDependents},
		{"foreground", metav1.DeletePropagationForeground, metav1.FinalizerDeleteDependents},
		{"background", metav1.DeletePropagationBackground, ""},
	} {
		if _, err := deps.Create(ctx, deployment(tc.name, 1), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		policy := tc.policy
		if err := deps.Delete(ctx, tc.name, metav1.DeleteOptions{PropagationPolicy: &policy}); err != nil {
			t.Fatalf("delete %s: %v", tc.name, err)
		}
		d, err := deps.Get(ctx, tc.name, metav1.GetOptions{})
		if tc.finalizer == "" {
			if !apierrors.IsNotFound(err) {
				t.Fatalf("background delete: want 404, got %v", err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s delete: the deployment should wait for the garbage collector: %v", tc.name, err)
		}
		if d.DeletionTimestamp == nil || !slices.Equal(d.Finalizers, []string{tc.finalizer}) {
			t.Fatalf("%s delete: deletionTimestamp=%v finalizers=%v, want set and [%s]", tc.name, d.DeletionTimestamp, d.Finalizers, tc.finalizer)
		}
	}
	// orphanDependents=true is the old spelling of Orphan.
	if _, err := deps.Create(ctx, deployment("legacy", 1), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	yes := true
	if err := deps.Delete(ctx, "legacy", metav1.DeleteOptions{OrphanDependents: &yes}); err != nil {
		t.Fatal(err)
	}
	d, err := deps.Get(ctx, "legacy", metav1.GetOptions{})
	if err != nil || !slices.Contains(d.Finalizers, metav1.FinalizerOrphanDependents) {
		t.Fatalf("orphanDependents=true: %v, finalizers %v", err, d.Finalizers)
	}
	bad := metav1.DeletionPropagation("Sideways")
	if err := deps.Delete(ctx, "legacy", metav1.DeleteOptions{PropagationPolicy: &bad}); !apierrors.IsBadRequest(err) {
		t.Fatalf("unknown propagationPolicy: want 400, got %v", err)
	}
}

func testNamespaceTermination(t *testing.T, cs kubernetes.Interface) {
	ctx := testCtx(t)
	ns := makeNamespace(t, cs, "doomed")
	if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, configMap("before", nil, nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	n, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n.Status.Phase != corev1.NamespaceActive || !slices.Contains(n.Spec.Finalizers, corev1.FinalizerKubernetes) {
		t.Fatalf("new namespace: phase %q finalizers %v", n.Status.Phase, n.Spec.Finalizers)
	}
	if err := cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	n, err = cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("namespace right after delete: %v", err)
	}
	if n.DeletionTimestamp == nil || n.Status.Phase != corev1.NamespaceTerminating {
		t.Fatalf("deleted namespace: deletionTimestamp=%v phase=%q, want set and Terminating", n.DeletionTimestamp, n.Status.Phase)
	}
	_, err = cs.CoreV1().ConfigMaps(ns).Create(ctx, configMap("after", nil, nil), metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("create in a terminating namespace: want 403, got %v", err)
	}
	if _, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "after", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("refused create left an object: %v", err)
	}
	// Existing content can still be read and changed.
	if _, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "before", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	// Creates in a namespace that does not exist are 404.
	_, err = cs.CoreV1().ConfigMaps("no-such-namespace").Create(ctx, configMap("x", nil, nil), metav1.CreateOptions{})
	if !apierrors.IsNotFound(err) {
		t.Fatalf("create in a missing namespace: want 404, got %v", err)
	}
	// Clearing spec.finalizers through /finalize lets the namespace go.
	n.Spec.Finalizers = nil
	if _, err := cs.CoreV1().Namespaces().Finalize(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("finalize: %v", err)
	}
	if _, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("namespace after finalize: want 404, got %v", err)
	}
}

func testDryRun(t *testing.T, cs kubernetes.Interface) {
	ctx := testCtx(t)
	ns := makeNamespace(t, cs, "dryrun")
	cms := cs.CoreV1().ConfigMaps(ns)
	all := []string{metav1.DryRunAll}
	out, err := cms.Create(ctx, configMap("ghost", map[string]string{"v": "1"}, nil), metav1.CreateOptions{DryRun: all})
	if err != nil {
		t.Fatal(err)
	}
	if out.Name != "ghost" || out.Data["v"] != "1" {
		t.Fatalf("dry-run create answered %+v", out)
	}
	if _, err := cms.Get(ctx, "ghost", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("dry-run create stored the object: %v", err)
	}
	stored, err := cms.Create(ctx, configMap("real", map[string]string{"v": "1"}, nil), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	changed := stored.DeepCopy()
	changed.Data["v"] = "2"
	out, err = cms.Update(ctx, changed, metav1.UpdateOptions{DryRun: all})
	if err != nil {
		t.Fatal(err)
	}
	if out.Data["v"] != "2" {
		t.Fatalf("dry-run update answered %v", out.Data)
	}
	if _, err := cms.Patch(ctx, "real", types.MergePatchType, []byte(`{"data":{"v":"3"}}`), metav1.PatchOptions{DryRun: all}); err != nil {
		t.Fatal(err)
	}
	if err := cms.Delete(ctx, "real", metav1.DeleteOptions{DryRun: all}); err != nil {
		t.Fatal(err)
	}
	got, err := cms.Get(ctx, "real", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("dry-run delete removed the object: %v", err)
	}
	if got.Data["v"] != "1" || got.ResourceVersion != stored.ResourceVersion {
		t.Fatalf("dry runs changed the object: v=%s rv %s -> %s", got.Data["v"], stored.ResourceVersion, got.ResourceVersion)
	}
	// A dry-run delete of a bound pod does not start its grace period.
	boundPod(t, cs, ns, "p", nil)
	if err := cs.CoreV1().Pods(ns).Delete(ctx, "p", metav1.DeleteOptions{DryRun: all}); err != nil {
		t.Fatal(err)
	}
	p, err := cs.CoreV1().Pods(ns).Get(ctx, "p", metav1.GetOptions{})
	if err != nil || p.DeletionTimestamp != nil {
		t.Fatalf("dry-run pod delete: %v, deletionTimestamp %v", err, p.DeletionTimestamp)
	}
	// A dry-run Service allocates nothing: the same IP is free afterwards.
	svc := clusterIPService("dry")
	svc.Spec.ClusterIP = "10.43.200.200"
	if _, err := cs.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{DryRun: all}); err != nil {
		t.Fatal(err)
	}
	svc2 := clusterIPService("wet")
	svc2.Spec.ClusterIP = "10.43.200.200"
	if _, err := cs.CoreV1().Services(ns).Create(ctx, svc2, metav1.CreateOptions{}); err != nil {
		t.Fatalf("the IP a dry run named is taken: %v", err)
	}
}

func testEviction(t *testing.T, cs kubernetes.Interface) {
	ctx := testCtx(t)
	ns := makeNamespace(t, cs, "eviction")
	pdbs := cs.PolicyV1().PodDisruptionBudgets(ns)
	minAvail := intstr.FromInt32(1)
	pdb, err := pdbs.Create(ctx, &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       policyv1.PodDisruptionBudgetSpec{MinAvailable: &minAvail, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	running := func(name string) {
		t.Helper()
		p := boundPod(t, cs, ns, name, map[string]string{"app": "web"})
		p.Status.Phase = corev1.PodRunning
		if _, err := cs.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	setBudget := func(allowed int32, observed int64) {
		t.Helper()
		cur, err := pdbs.Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cur.Status = policyv1.PodDisruptionBudgetStatus{ObservedGeneration: observed, DisruptionsAllowed: allowed,
			CurrentHealthy: 2, DesiredHealthy: 1, ExpectedPods: 2}
		if _, err := pdbs.UpdateStatus(ctx, cur, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	evict := func(name string) error {
		return cs.CoreV1().Pods(ns).EvictV1(ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}})
	}
	running("web-1")
	running("web-2")

	setBudget(0, pdb.Generation)
	if err := evict("web-1"); !apierrors.IsTooManyRequests(err) {
		t.Fatalf("eviction with no disruptions allowed: want 429, got %v", err)
	}
	// A budget the controller has not seen yet protects too.
	setBudget(1, pdb.Generation-1)
	if err := evict("web-1"); !apierrors.IsTooManyRequests(err) {
		t.Fatalf("eviction against a stale budget: want 429, got %v", err)
	}
	p, err := cs.CoreV1().Pods(ns).Get(ctx, "web-1", metav1.GetOptions{})
	if err != nil || p.DeletionTimestamp != nil {
		t.Fatalf("refused eviction touched the pod: %v %v", err, p.DeletionTimestamp)
	}

	setBudget(1, pdb.Generation)
	if err := evict("web-1"); err != nil {
		t.Fatalf("eviction with one disruption allowed: %v", err)
	}
	p, err = cs.CoreV1().Pods(ns).Get(ctx, "web-1", metav1.GetOptions{})
	if err == nil && p.DeletionTimestamp == nil {
		t.Fatalf("evicted pod is neither gone nor terminating")
	} else if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	after, err := pdbs.Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if after.Status.DisruptionsAllowed != 0 {
		t.Fatalf("budget after an eviction allows %d disruptions, want 0", after.Status.DisruptionsAllowed)
	}
	if _, ok := after.Status.DisruptedPods["web-1"]; !ok {
		t.Fatalf("budget does not record web-1 as disrupted: %v", after.Status.DisruptedPods)
	}
	if err := evict("web-2"); !apierrors.IsTooManyRequests(err) {
		t.Fatalf("second eviction after the budget is used: want 429, got %v", err)
	}
	// A pod no budget covers is evicted freely; a missing pod is 404.
	running("loner")
	if _, err := cs.CoreV1().Pods(ns).Patch(ctx, "loner", types.MergePatchType, []byte(`{"metadata":{"labels":{"app":"other"}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := evict("loner"); err != nil {
		t.Fatalf("eviction of an unbudgeted pod: %v", err)
	}
	if err := evict("missing"); !apierrors.IsNotFound(err) {
		t.Fatalf("eviction of a missing pod: want 404, got %v", err)
	}
}
