package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/skiff-sh/skiff/test/framework"
)

// TestObjectSemantics checks the metadata and subresource rules every
// resource shares.
func TestObjectSemantics(t *testing.T) {
	t.Parallel()
	srv := framework.StartServer(t, framework.Options{})
	cs := newClient(t, srv)
	t.Run("server-set metadata", func(t *testing.T) { testServerMetadata(t, cs) })
	t.Run("generation", func(t *testing.T) { testGeneration(t, cs) })
	t.Run("optimistic concurrency", func(t *testing.T) { testConflicts(t, cs) })
	t.Run("status subresource", func(t *testing.T) { testStatusSubresource(t, cs) })
	t.Run("scale subresource", func(t *testing.T) { testScale(t, cs) })
	t.Run("pod binding", func(t *testing.T) { testBinding(t, cs) })
}

func testServerMetadata(t *testing.T, cs kubernetes.Interface) {
	ctx := testCtx(t)
	ns := makeNamespace(t, cs, "metadata")
	cms := cs.CoreV1().ConfigMaps(ns)
	before := time.Now().Add(-time.Second)
	seen := map[string]bool{}
	uids := map[types.UID]bool{}
	for range 5 {
		cm, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
			GenerateName:      "gen-",
			UID:               "client-chosen",
			ResourceVersion:   "",
			CreationTimestamp: metav1.NewTime(time.Unix(1000, 0)),
			Generation:        42,
		}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(cm.Name, "gen-") || len(cm.Name) != len("gen-")+5 || seen[cm.Name] {
			t.Fatalf("generated name %q: want gen- and five new characters", cm.Name)
		}
		seen[cm.Name] = true
		if _, err := uuid.Parse(string(cm.UID)); err != nil || uids[cm.UID] {
			t.Fatalf("uid %q is not a fresh UUID (%v)", cm.UID, err)
		}
		uids[cm.UID] = true
		if ct := cm.CreationTimestamp.Time; ct.Before(before) || ct.After(time.Now().Add(time.Second)) {
			t.Fatalf("creationTimestamp %v is not now", ct)
		}
		if cm.Generation != 0 || cm.ResourceVersion == "" {
			t.Fatalf("configmap (no spec) has generation %d and rv %q", cm.Generation, cm.ResourceVersion)
		}
		got, err := cms.Get(ctx, cm.Name, metav1.GetOptions{})
		if err != nil || got.UID != cm.UID || got.ResourceVersion != cm.ResourceVersion {
			t.Fatalf("get %s: %v (uid %s rv %s)", cm.Name, err, got.UID, got.ResourceVersion)
		}
	}
	// A name that exists is refused; neither name nor generateName is 422.
	if _, err := cms.Create(ctx, configMap("fixed", nil, nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Create(ctx, configMap("fixed", nil, nil), metav1.CreateOptions{}); !apierrors.IsAlreadyExists(err) {
		t.Fatalf("second create of fixed: want 409 AlreadyExists, got %v", err)
	}
	if _, err := cms.Create(ctx, &corev1.ConfigMap{}, metav1.CreateOptions{}); !apierrors.IsInvalid(err) {
		t.Fatalf("create without a name: want 422, got %v", err)
	}
	// Updates cannot change uid or creationTimestamp.
	cm, err := cms.Get(ctx, "fixed", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	orig := cm.DeepCopy()
	cm.CreationTimestamp = metav1.NewTime(time.Unix(1000, 0))
	cm.Data = map[string]string{"x": "y"}
	upd, err := cms.Update(ctx, cm, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !upd.CreationTimestamp.Equal(&orig.CreationTimestamp) || upd.UID != orig.UID {
		t.Fatalf("update changed server-owned metadata: %v %s", upd.CreationTimestamp, upd.UID)
	}
}

func testGeneration(t *testing.T, cs kubernetes.Interface) {
	ctx := testCtx(t)
	ns := makeNamespace(t, cs, "generation")
	deps := cs.AppsV1().Deployments(ns)
	d, err := deps.Create(ctx, deployment("web", 1), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Generation != 1 {
		t.Fatalf("new deployment has generation %d, want 1", d.Generation)
	}
	d.Labels = map[string]string{"touched": "yes"}
	d.Annotations = map[string]string{"note": "metadata only"}
	d2, err := deps.Update(ctx, d, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d2.Generation != 1 || d2.ResourceVersion == d.ResourceVersion {
		t.Fatalf("label change: generation %d rv %s (was %s), want generation 1 and a new rv", d2.Generation, d2.ResourceVersion, d.ResourceVersion)
	}
	d2.Spec.Replicas = int32p(3)
	d3, err := deps.Update(ctx, d2, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d3.Generation != 2 {
		t.Fatalf("spec change: generation %d, want 2", d3.Generation)
	}
	p, err := deps.Patch(ctx, "web", types.MergePatchType, []byte(`{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"registry.example/app:2"}]}}}}`), metav1.PatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Generation != 3 {
		t.Fatalf("spec patch: generation %d, want 3", p.Generation)
	}
	p.Status.ObservedGeneration = p.Generation
	p.Status.Replicas = 3
	s, err := deps.UpdateStatus(ctx, p, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Generation != 3 || s.Status.ObservedGeneration != 3 {
		t.Fatalf("status update: generation %d observed %d, want 3 and 3", s.Generation, s.Status.ObservedGeneration)
	}
}

func testConflicts(t *testing.T, cs kubernetes.Interface) {
	ctx := testCtx(t)
	ns := makeNamespace(t, cs, "conflicts")
	cms := cs.CoreV1().ConfigMaps(ns)
	cm, err := cms.Create(ctx, configMap("c", map[string]string{"v": "0"}, nil), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	stale := cm.DeepCopy()
	cm.Data["v"] = "1"
	fresh, err := cms.Update(ctx, cm, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rv(t, fresh.ResourceVersion) <= rv(t, stale.ResourceVersion) {
		t.Fatalf("update did not raise the resourceVersion: %s -> %s", stale.ResourceVersion, fresh.ResourceVersion)
	}
	stale.Data["v"] = "lost"
	if _, err := cms.Update(ctx, stale, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
		t.Fatalf("update with a stale resourceVersion: want 409, got %v", err)
	}
	// A patch that names a stale resourceVersion is a precondition too.
	patch := fmt.Sprintf(`{"metadata":{"resourceVersion":%q},"data":{"v":"lost"}}`, stale.ResourceVersion)
	if _, err := cms.Patch(ctx, "c", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); !apierrors.IsConflict(err) {
		t.Fatalf("patch with a stale resourceVersion: want 409, got %v", err)
	}
	got, err := cms.Get(ctx, "c", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Data["v"] != "1" || got.ResourceVersion != fresh.ResourceVersion {
		t.Fatalf("after refused writes: v=%s rv=%s, want v=1 rv=%s", got.Data["v"], got.ResourceVersion, fresh.ResourceVersion)
	}
	// An update without a resourceVersion is unconditional.
	got.ResourceVersion = ""
	got.Data["v"] = "2"
	if _, err := cms.Update(ctx, got, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("unconditional update: %v", err)
	}
	// A no-op update writes nothing and keeps the resourceVersion.
	cur, err := cms.Get(ctx, "c", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	same, err := cms.Update(ctx, cur, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if same.ResourceVersion != cur.ResourceVersion {
		t.Fatalf("no-op update moved the resourceVersion %s -> %s", cur.ResourceVersion, same.ResourceVersion)
	}
	noop, err := cms.Patch(ctx, "c", types.MergePatchType, []byte(`{"data":{"v":"2"}}`), metav1.PatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if noop.ResourceVersion != cur.ResourceVersion {
		t.Fatalf("no-op patch moved the resourceVersion %s -> %s", cur.ResourceVersion, noop.ResourceVersion)
	}
	// Updating a missing object is 404, not a create.
	if _, err := cms.Update(ctx, configMap("missing", nil, nil), metav1.UpdateOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("update of a missing configmap: want 404, got %v", err)
	}
}

func testStatusSubresource(t *testing.T, cs kubernetes.Interface) {
	ctx := testCtx(t)
	ns := makeNamespace(t, cs, "status")
	deps := cs.AppsV1().Deployments(ns)
	d, err := deps.Create(ctx, deployment("web", 2), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The status subresource writes status only.
	d.Spec.Replicas = int32p(7)
	d.Labels = map[string]string{"from": "status"}
	d.Status.Replicas = 5
	d.Status.ReadyReplicas = 4
	s, err := deps.UpdateStatus(ctx, d, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if *s.Spec.Replicas != 2 || s.Status.Replicas != 5 || s.Labels["from"] == "status" || s.Generation != 1 {
		t.Fatalf("status update: spec.replicas=%d status.replicas=%d labels=%v generation=%d, want 2, 5, no label, 1",
			*s.Spec.Replicas, s.Status.Replicas, s.Labels, s.Generation)
	}
	// The main resource writes everything but status.
	s.Spec.Replicas = int32p(4)
	s.Status.Replicas = 9
	m, err := deps.Update(ctx, s, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if *m.Spec.Replicas != 4 || m.Status.Replicas != 5 || m.Status.ReadyReplicas != 4 {
		t.Fatalf("main update: spec.replicas=%d status.replicas=%d ready=%d, want 4, 5, 4",
			*m.Spec.Replicas, m.Status.Replicas, m.Status.ReadyReplicas)
	}
	// Patches follow the same split.
	if _, err := deps.Patch(ctx, "web", types.MergePatchType, []byte(`{"status":{"replicas":11},"spec":{"paused":true}}`), metav1.PatchOptions{}, "status"); err != nil {
		t.Fatal(err)
	}
	got, err := deps.Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status.Replicas != 11 || got.Spec.Paused {
		t.Fatalf("status patch: status.replicas=%d paused=%v, want 11 and false", got.Status.Replicas, got.Spec.Paused)
	}
	// Status set on create is dropped: controllers own it.
	nd := deployment("born-with-status", 1)
	nd.Status.Replicas = 3
	created, err := deps.Create(ctx, nd, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if created.Status.Replicas != 0 {
		t.Fatalf("create kept a client-set status: %+v", created.Status)
	}
	// Pods: status.phase through the subresource only.
	po, err := cs.CoreV1().Pods(ns).Create(ctx, pod("p", nil), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if po.Status.Phase != corev1.PodPending {
		t.Fatalf("new pod phase %q, want Pending", po.Status.Phase)
	}
	po.Status.Phase = corev1.PodRunning
	po.Labels = map[string]string{"x": "y"}
	po2, err := cs.CoreV1().Pods(ns).Update(ctx, po, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if po2.Status.Phase != corev1.PodPending || po2.Labels["x"] != "y" {
		t.Fatalf("pod main update: phase %q labels %v, want Pending and x=y", po2.Status.Phase, po2.Labels)
	}
}

// scaleClient reaches the scale subresource of one kind.
type scaleClient struct {
	resource string
	rc       rest.Interface
	create   func(name string) error
	replicas func(name string) (int32, int64, error) // spec.replicas, generation
}

func scaleClients(t *testing.T, cs kubernetes.Interface, ns string) []scaleClient {
	ctx := testCtx(t)
	return []scaleClient{
		{
			resource: "deployments", rc: cs.AppsV1().RESTClient(),
			create: func(n string) error {
				_, err := cs.AppsV1().Deployments(ns).Create(ctx, deployment(n, 1), metav1.CreateOptions{})
				return err
			},
			replicas: func(n string) (int32, int64, error) {
				o, err := cs.AppsV1().Deployments(ns).Get(ctx, n, metav1.GetOptions{})
				if err != nil {
					return 0, 0, err
				}
				return *o.Spec.Replicas, o.Generation, nil
			},
		},
		{
			resource: "replicasets", rc: cs.AppsV1().RESTClient(),
			create: func(n string) error {
				_, err := cs.AppsV1().ReplicaSets(ns).Create(ctx, &appsv1.ReplicaSet{
					ObjectMeta: metav1.ObjectMeta{Name: n},
					Spec: appsv1.ReplicaSetSpec{Replicas: int32p(1), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": n}},
						Template: podTemplate(n)},
				}, metav1.CreateOptions{})
				return err
			},
			replicas: func(n string) (int32, int64, error) {
				o, err := cs.AppsV1().ReplicaSets(ns).Get(ctx, n, metav1.GetOptions{})
				if err != nil {
					return 0, 0, err
				}
				return *o.Spec.Replicas, o.Generation, nil
			},
		},
		{
			resource: "statefulsets", rc: cs.AppsV1().RESTClient(),
			create: func(n string) error {
				_, err := cs.AppsV1().StatefulSets(ns).Create(ctx, &appsv1.StatefulSet{
					ObjectMeta: metav1.ObjectMeta{Name: n},
					Spec: appsv1.StatefulSetSpec{Replicas: int32p(1), ServiceName: n, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": n}},
						Template: podTemplate(n)},
				}, metav1.CreateOptions{})
				return err
			},
			replicas: func(n string) (int32, int64, error) {
				o, err := cs.AppsV1().StatefulSets(ns).Get(ctx, n, metav1.GetOptions{})
				if err != nil {
					return 0, 0, err
				}
				return *o.Spec.Replicas, o.Generation, nil
			},
		},
		{
			resource: "replicationcontrollers", rc: cs.CoreV1().RESTClient(),
			create: func(n string) error {
				tpl := podTemplate(n)
				_, err := cs.CoreV1().ReplicationControllers(ns).Create(ctx, &corev1.ReplicationController{
					ObjectMeta: metav1.ObjectMeta{Name: n},
					Spec:       corev1.ReplicationControllerSpec{Replicas: int32p(1), Selector: map[string]string{"app": n}, Template: &tpl},
				}, metav1.CreateOptions{})
				return err
			},
			replicas: func(n string) (int32, int64, error) {
				o, err := cs.CoreV1().ReplicationControllers(ns).Get(ctx, n, metav1.GetOptions{})
				if err != nil {
					return 0, 0, err
				}
				return *o.Spec.Replicas, o.Generation, nil
			},
		},
	}
}

func testScale(t *testing.T, cs kubernetes.Interface) {
	ns := makeNamespace(t, cs, "scale")
	for _, sc := range scaleClients(t, cs, ns) {
		t.Run(sc.resource, func(t *testing.T) {
			ctx := testCtx(t)
			name := "s-" + sc.resource[:4]
			if err := sc.create(name); err != nil {
				t.Fatal(err)
			}
			get := func() *autoscalingv1.Scale {
				t.Helper()
				s := &autoscalingv1.Scale{}
				if err := sc.rc.Get().Namespace(ns).Resource(sc.resource).Name(name).SubResource("scale").Do(ctx).Into(s); err != nil {
					t.Fatalf("get scale: %v", err)
				}
				return s
			}
			check := func(want int32, gen int64) {
				t.Helper()
				r, g, err := sc.replicas(name)
				if err != nil {
					t.Fatal(err)
				}
				if r != want || g != gen {
					t.Fatalf("%s spec.replicas=%d generation=%d, want %d and %d", sc.resource, r, g, want, gen)
				}
			}
			s := get()
			if s.Name != name || s.Spec.Replicas != 1 || s.ResourceVersion == "" {
				t.Fatalf("scale = %+v, want name %s replicas 1", s, name)
			}
			// PUT
			stale := s.DeepCopy()
			s.Spec.Replicas = 3
			out := &autoscalingv1.Scale{}
			if err := sc.rc.Put().Namespace(ns).Resource(sc.resource).Name(name).SubResource("scale").Body(s).Do(ctx).Into(out); err != nil {
				t.Fatalf("update scale: %v", err)
			}
			if out.Spec.Replicas != 3 {
				t.Fatalf("update scale answered replicas %d", out.Spec.Replicas)
			}
			check(3, 2)
			// A stale resourceVersion is a conflict.
			stale.Spec.Replicas = 9
			err := sc.rc.Put().Namespace(ns).Resource(sc.resource).Name(name).SubResource("scale").Body(stale).Do(ctx).Error()
			if !apierrors.IsConflict(err) {
				t.Fatalf("update scale with a stale resourceVersion: want 409, got %v", err)
			}
			check(3, 2)
			// PATCH (merge and JSON patch)
			if err := sc.rc.Patch(types.MergePatchType).Namespace(ns).Resource(sc.resource).Name(name).SubResource("scale").
				Body([]byte(`{"spec":{"replicas":5}}`)).Do(ctx).Into(out); err != nil {
				t.Fatalf("merge-patch scale: %v", err)
			}
			if out.Spec.Replicas != 5 {
				t.Fatalf("patch scale answered replicas %d", out.Spec.Replicas)
			}
			check(5, 3)
			if err := sc.rc.Patch(types.JSONPatchType).Namespace(ns).Resource(sc.resource).Name(name).SubResource("scale").
				Body([]byte(`[{"op":"replace","path":"/spec/replicas","value":0}]`)).Do(ctx).Into(out); err != nil {
				t.Fatalf("json-patch scale: %v", err)
			}
			check(0, 4)
			if got := get(); got.Spec.Replicas != 0 {
				t.Fatalf("scale after patch to 0 reads %d", got.Spec.Replicas)
			}
			// Negative replicas are invalid and change nothing.
			err = sc.rc.Patch(types.MergePatchType).Namespace(ns).Resource(sc.resource).Name(name).SubResource("scale").
				Body([]byte(`{"spec":{"replicas":-1}}`)).Do(ctx).Error()
			if !apierrors.IsInvalid(err) {
				t.Fatalf("scale to -1: want 422, got %v", err)
			}
			check(0, 4)
		})
	}
}

func testBinding(t *testing.T, cs kubernetes.Interface) {
	ctx := testCtx(t)
	ns := makeNamespace(t, cs, "binding")
	pods := cs.CoreV1().Pods(ns)
	if _, err := pods.Create(ctx, pod("p", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	bind := func(node string) error {
		return pods.Bind(ctx, &corev1.Binding{
			ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: ns},
			Target:     corev1.ObjectReference{Kind: "Node", Name: node},
		}, metav1.CreateOptions{})
	}
	if err := bind("node-1"); err != nil {
		t.Fatalf("bind: %v", err)
	}
	p, err := pods.Get(ctx, "p", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Spec.NodeName != "node-1" {
		t.Fatalf("after bind nodeName=%q", p.Spec.NodeName)
	}
	scheduled := false
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionTrue {
			scheduled = true
		}
	}
	if !scheduled {
		t.Fatalf("after bind the pod has no PodScheduled=True condition: %+v", p.Status.Conditions)
	}
	if err := bind("node-2"); !apierrors.IsConflict(err) {
		t.Fatalf("second bind: want 409, got %v", err)
	}
	p2, err := pods.Get(ctx, "p", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p2.Spec.NodeName != "node-1" || p2.ResourceVersion != p.ResourceVersion {
		t.Fatalf("refused bind changed the pod: node %q rv %s -> %s", p2.Spec.NodeName, p.ResourceVersion, p2.ResourceVersion)
	}
	// nodeName cannot move by a plain update either.
	p2.Spec.NodeName = "node-3"
	if _, err := pods.Update(ctx, p2, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) {
		t.Fatalf("update moving nodeName: want 422, got %v", err)
	}
	if err := pods.Bind(ctx, &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "missing"}, Target: corev1.ObjectReference{Kind: "Node", Name: "n"}}, metav1.CreateOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("bind of a missing pod: want 404, got %v", err)
	}
}
