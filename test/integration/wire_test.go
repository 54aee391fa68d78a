package integration

import (
	"testing"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-sh/skiff/test/framework"
)

// TestClientWireFormats runs every request body a typed client sends —
// objects, DeleteOptions, Binding, Eviction, Scale — once as JSON and once
// as protobuf, the format generated clients use by default for built-in
// kinds.
func TestClientWireFormats(t *testing.T) {
	t.Parallel()
	srv := framework.StartServer(t, framework.Options{})
	for _, ct := range []string{"application/json", "application/vnd.kubernetes.protobuf"} {
		t.Run(ct, func(t *testing.T) {
			cfg := srv.RESTConfig()
			cfg.ContentType = ct
			cfg.AcceptContentTypes = ct
			cs, err := kubernetes.NewForConfig(cfg)
			if err != nil {
				t.Fatal(err)
			}
			ns := "wire-json"
			if ct != "application/json" {
				ns = "wire-proto"
			}
			wireRoundTrip(t, cs, makeNamespace(t, cs, ns))
		})
	}
}

func wireRoundTrip(t *testing.T, cs kubernetes.Interface, ns string) {
	ctx := testCtx(t)
	cms := cs.CoreV1().ConfigMaps(ns)
	cm, err := cms.Create(ctx, configMap("c", map[string]string{"v": "1"}, nil), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	cm.Data["v"] = "2"
	if cm, err = cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil || cm.Data["v"] != "2" {
		t.Fatalf("update: %v", err)
	}
	gone := metav1.DeletePropagationBackground
	if err := cms.Delete(ctx, "c", metav1.DeleteOptions{PropagationPolicy: &gone}); err != nil {
		t.Errorf("delete with DeleteOptions: %v", err)
	} else if _, err := cms.Get(ctx, "c", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("after delete: want 404, got %v", err)
	}
	// A precondition in the body must be read, not ignored.
	keep, err := cms.Create(ctx, configMap("keep", nil, nil), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	stale := "1"
	err = cms.Delete(ctx, "keep", metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &stale}})
	if !apierrors.IsConflict(err) {
		t.Errorf("delete with a stale resourceVersion precondition: want 409, got %v", err)
	}
	if _, err := cms.Get(ctx, "keep", metav1.GetOptions{}); err != nil {
		t.Errorf("precondition failure deleted the object: %v", err)
	}
	for _, n := range []string{"x1", "x2"} {
		if _, err := cms.Create(ctx, configMap(n, nil, map[string]string{"batch": "x"}), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := cms.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "batch=x"}); err != nil {
		t.Errorf("deletecollection: %v", err)
	}
	if list, err := cms.List(ctx, metav1.ListOptions{}); err != nil || len(list.Items) != 1 || list.Items[0].Name != keep.Name {
		t.Errorf("after deletecollection: %v %v", err, cmNames(list.Items))
	}

	// Pod subresources.
	pods := cs.CoreV1().Pods(ns)
	if _, err := pods.Create(ctx, pod("p", map[string]string{"app": "p"}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := pods.Bind(ctx, &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Target: corev1.ObjectReference{Kind: "Node", Name: "n1"}}, metav1.CreateOptions{}); err != nil {
		t.Errorf("bind: %v", err)
	}
	if err := pods.EvictV1(ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: ns}}); err != nil {
		t.Errorf("evict: %v", err)
	} else if p, err := pods.Get(ctx, "p", metav1.GetOptions{}); err == nil && p.DeletionTimestamp == nil {
		t.Errorf("evicted pod is not terminating")
	}

	// Scale.
	deps := cs.AppsV1().Deployments(ns)
	if _, err := deps.Create(ctx, deployment("d", 1), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	sc, err := deps.GetScale(ctx, "d", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get scale: %v", err)
	}
	sc.Spec.Replicas = 4
	var out *autoscalingv1.Scale
	if out, err = deps.UpdateScale(ctx, "d", sc, metav1.UpdateOptions{}); err != nil || out.Spec.Replicas != 4 {
		t.Errorf("update scale: %v", err)
	}
	if d, err := deps.Get(ctx, "d", metav1.GetOptions{}); err != nil || *d.Spec.Replicas != 4 {
		t.Errorf("deployment after scale: %v", err)
	}
}
