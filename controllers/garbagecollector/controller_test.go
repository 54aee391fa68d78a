package garbagecollector

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"

	"github.com/skiff-sh/skiff/test/framework"
)

// stockKubectl is the kubectl the tests delete with.
const stockKubectl = "/usr/lib/google-cloud-sdk/bin/kubectl.1.33"

type env struct {
	srv    *framework.Server
	client kubernetes.Interface
}

// start runs a server and the collector against it.
func start(t *testing.T) *env {
	t.Helper()
	srv := framework.StartServer(t, framework.Options{})
	client := srv.Client()
	c, err := New(client, metadataClient(t, srv), Options{Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Start: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("Start did not return within 15s of cancel")
		}
	})
	return &env{srv: srv, client: client}
}

// metadataClient is a metadata client for srv, asking for protobuf
// PartialObjectMetadata first as client-go does.
func metadataClient(t *testing.T, srv *framework.Server) metadata.Interface {
	t.Helper()
	m, err := metadata.NewForConfig(srv.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// eventually polls cond until it holds or 20s pass.
func eventually(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	var last error
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		ok, err := cond()
		if ok {
			return
		}
		last = err
	}
	t.Fatalf("%s: not within 20s (last error: %v)", what, last)
}

func gone(err error) (bool, error) {
	if apierrors.IsNotFound(err) {
		return true, nil
	}
	return false, err
}

func ownerRef(apiVersion, kind, name string, uid types.UID) metav1.OwnerReference {
	yes := true
	return metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Name: name, UID: uid, Controller: &yes, BlockOwnerDeletion: &yes}
}

func podSpec() corev1.PodSpec {
	return corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "busybox"}}}
}

// chain is a Deployment, its ReplicaSet and its pods, linked by hand.
type chain struct {
	ns     string
	deploy *appsv1.Deployment
	rs     *appsv1.ReplicaSet
	pods   []*corev1.Pod
}

// makeChain builds deploy -> rs -> pods in ns; hold names pods created
// with a finalizer that keeps them after deletion.
func makeChain(t *testing.T, ctx context.Context, client kubernetes.Interface, ns, name string, pods int, hold ...string) *chain {
	t.Helper()
	labels := map[string]string{"app": name}
	sel := &metav1.LabelSelector{MatchLabels: labels}
	tmpl := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: podSpec()}
	d, err := client.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{Selector: sel, Template: tmpl}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := client.AppsV1().ReplicaSets(ns).Create(ctx, &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: name + "-5d8f7c",
		OwnerReferences: []metav1.OwnerReference{ownerRef("apps/v1", "Deployment", d.Name, d.UID)}},
		Spec: appsv1.ReplicaSetSpec{Selector: sel, Template: tmpl}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := &chain{ns: ns, deploy: d, rs: rs}
	for i := range pods {
		pname := rs.Name + "-" + string(rune('a'+i))
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: pname, Labels: labels,
			OwnerReferences: []metav1.OwnerReference{ownerRef("apps/v1", "ReplicaSet", rs.Name, rs.UID)}}, Spec: podSpec()}
		if slices.Contains(hold, pname) {
			p.Finalizers = []string{"example.com/hold"}
		}
		p, err = client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		c.pods = append(c.pods, p)
	}
	return c
}

// counts reports how many of the chain's objects still exist.
func (c *chain) counts(ctx context.Context, client kubernetes.Interface) (deploy, rs, pods int, err error) {
	if _, err := client.AppsV1().Deployments(c.ns).Get(ctx, c.deploy.Name, metav1.GetOptions{}); err == nil {
		deploy = 1
	} else if !apierrors.IsNotFound(err) {
		return 0, 0, 0, err
	}
	if _, err := client.AppsV1().ReplicaSets(c.ns).Get(ctx, c.rs.Name, metav1.GetOptions{}); err == nil {
		rs = 1
	} else if !apierrors.IsNotFound(err) {
		return 0, 0, 0, err
	}
	for _, p := range c.pods {
		if _, err := client.CoreV1().Pods(c.ns).Get(ctx, p.Name, metav1.GetOptions{}); err == nil {
			pods++
		} else if !apierrors.IsNotFound(err) {
			return 0, 0, 0, err
		}
	}
	return deploy, rs, pods, nil
}

func (c *chain) waitAllGone(t *testing.T, ctx context.Context, client kubernetes.Interface) {
	t.Helper()
	eventually(t, "the whole chain gone", func() (bool, error) {
		d, r, p, err := c.counts(ctx, client)
		return d+r+p == 0, err
	})
}

func deleteWith(t *testing.T, ctx context.Context, client kubernetes.Interface, ns, name string, policy metav1.DeletionPropagation) {
	t.Helper()
	if err := client.AppsV1().Deployments(ns).Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &policy}); err != nil {
		t.Fatal(err)
	}
}

func TestBackgroundDeletionRemovesTheChain(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	c := makeChain(t, ctx, e.client, "default", "web", 3)
	deleteWith(t, ctx, e.client, "default", "web", metav1.DeletePropagationBackground)
	c.waitAllGone(t, ctx, e.client)
}

func TestForegroundKeepsOwnersUntilDependentsAreGone(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	client := e.client
	c := makeChain(t, ctx, client, "default", "web", 3, "web-5d8f7c-b")
	deleteWith(t, ctx, client, "default", "web", metav1.DeletePropagationForeground)

	// The free pods go; the held one is marked; the deployment and the
	// replicaset wait, marked and carrying the foregroundDeletion finalizer.
	eventually(t, "free pods deleted, held pod marked", func() (bool, error) {
		pods, err := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		return len(pods.Items) == 1 && pods.Items[0].Name == "web-5d8f7c-b" && pods.Items[0].DeletionTimestamp != nil, nil
	})
	for i := 0; i < 10; i++ { // for a while, not only once
		d, err := client.AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("deployment gone while a blocking dependent remains: %v", err)
		}
		rs, err := client.AppsV1().ReplicaSets("default").Get(ctx, c.rs.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("replicaset gone while a blocking dependent remains: %v", err)
		}
		for _, m := range []metav1.ObjectMeta{d.ObjectMeta, rs.ObjectMeta} {
			if m.DeletionTimestamp == nil || !slices.Contains(m.Finalizers, metav1.FinalizerDeleteDependents) {
				t.Fatalf("%s: deletionTimestamp %v finalizers %v", m.Name, m.DeletionTimestamp, m.Finalizers)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Release the held pod: everything goes.
	if _, err := client.CoreV1().Pods("default").Patch(ctx, "web-5d8f7c-b", types.MergePatchType,
		[]byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	c.waitAllGone(t, ctx, client)
}

func TestOrphanLeavesDependentsWithoutTheOwner(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	client := e.client
	c := makeChain(t, ctx, client, "default", "web", 2)
	deleteWith(t, ctx, client, "default", "web", metav1.DeletePropagationOrphan)
	eventually(t, "deployment gone", func() (bool, error) {
		_, err := client.AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{})
		return gone(err)
	})
	// Once a dangling sentinel is collected, the collector has seen the
	// deployment go and judged the replicaset.
	sentinel := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "sentinel",
		OwnerReferences: []metav1.OwnerReference{ownerRef("apps/v1", "ReplicaSet", "never-existed", "00000000-0000-0000-0000-000000000000")}}, Spec: podSpec()}
	if _, err := client.CoreV1().Pods("default").Create(ctx, sentinel, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "sentinel collected", func() (bool, error) {
		_, err := client.CoreV1().Pods("default").Get(ctx, "sentinel", metav1.GetOptions{})
		return gone(err)
	})
	rs, err := client.AppsV1().ReplicaSets("default").Get(ctx, c.rs.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("orphaned replicaset: %v", err)
	}
	if len(rs.OwnerReferences) != 0 || rs.DeletionTimestamp != nil {
		t.Errorf("orphaned replicaset keeps owners %+v / deletion %v", rs.OwnerReferences, rs.DeletionTimestamp)
	}
	for _, p := range c.pods {
		got, err := client.CoreV1().Pods("default").Get(ctx, p.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("pod %s: %v", p.Name, err)
		}
		if len(got.OwnerReferences) != 1 || got.OwnerReferences[0].UID != c.rs.UID {
			t.Errorf("pod %s owners %+v, want the replicaset", p.Name, got.OwnerReferences)
		}
	}
}

func TestKubectlDeleteDeploymentLeavesNothing(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	if _, err := os.Stat(stockKubectl); err != nil {
		t.Fatalf("kubectl: %v", err)
	}
	c := makeChain(t, ctx, e.client, "default", "web", 3)
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(cctx, stockKubectl, "--kubeconfig", e.srv.Kubeconfig, "delete", "deploy", "web").CombinedOutput()
	if err != nil || !strings.Contains(string(out), `deployment.apps "web" deleted`) {
		t.Fatalf("kubectl delete: %v\n%s", err, out)
	}
	c.waitAllGone(t, ctx, e.client)
}

func TestDanglingReferencesAndNamespaceRules(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	client := e.client
	for _, ns := range []string{"a", "b"} {
		if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// An owner in namespace a.
	owner, err := client.CoreV1().ConfigMaps("a").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "owner"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ownerRefTo := func(cm *corev1.ConfigMap) metav1.OwnerReference { return ownerRef("v1", "ConfigMap", cm.Name, cm.UID) }
	// A cluster-scoped owner.
	role, err := client.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "owner-role"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	roleRef := ownerRef("rbac.authorization.k8s.io/v1", "ClusterRole", role.Name, role.UID)
	mk := func(ns, name string, refs ...metav1.OwnerReference) {
		t.Helper()
		if _, err := client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, OwnerReferences: refs}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	mk("a", "same-namespace", ownerRefTo(owner))  // kept
	mk("b", "other-namespace", ownerRefTo(owner)) // owner not in b: dangling
	mk("b", "cluster-owner", roleRef)             // kept while the role lives
	mk("a", "never-existed", ownerRef("v1", "ConfigMap", "x", "11111111-1111-1111-1111-111111111111"))
	second := ownerRef("v1", "ConfigMap", "y", "22222222-2222-2222-2222-222222222222")
	second.Controller = nil
	mk("a", "two-owners", ownerRefTo(owner), second)
	mk("a", "unknown-kind", ownerRef("example.com/v1", "Widget", "w", "33333333-3333-3333-3333-333333333333"))
	// A cluster-scoped dependent naming a namespaced kind: unresolvable, kept.
	if _, err := client.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "bad-owner",
		OwnerReferences: []metav1.OwnerReference{ownerRefTo(owner)}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	cmGone := func(ns, name string) func() (bool, error) {
		return func() (bool, error) {
			_, err := client.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
			return gone(err)
		}
	}
	eventually(t, "dangling reference collected", cmGone("a", "never-existed"))
	eventually(t, "reference across namespaces collected", cmGone("b", "other-namespace"))
	eventually(t, "dangling one of two references dropped", func() (bool, error) {
		cm, err := client.CoreV1().ConfigMaps("a").Get(ctx, "two-owners", metav1.GetOptions{})
		return err == nil && len(cm.OwnerReferences) == 1 && cm.OwnerReferences[0].UID == owner.UID, err
	})
	eventually(t, "OwnerRefInvalidNamespace warning", func() (bool, error) {
		evs, err := client.CoreV1().Events("b").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, ev := range evs.Items {
			if ev.Reason == reasonOwnerRefInvalidNamespace && ev.InvolvedObject.Name == "other-namespace" && ev.Type == corev1.EventTypeWarning {
				return true, nil
			}
		}
		return false, nil
	})
	for _, k := range [][2]string{{"a", "same-namespace"}, {"b", "cluster-owner"}, {"a", "unknown-kind"}} {
		if _, err := client.CoreV1().ConfigMaps(k[0]).Get(ctx, k[1], metav1.GetOptions{}); err != nil {
			t.Errorf("%s/%s: %v", k[0], k[1], err)
		}
	}
	if _, err := client.RbacV1().ClusterRoles().Get(ctx, "bad-owner", metav1.GetOptions{}); err != nil {
		t.Errorf("cluster-scoped dependent of a namespaced kind: %v", err)
	}

	// The owners go; so do their dependents.
	if err := client.RbacV1().ClusterRoles().Delete(ctx, role.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "dependent of the cluster-scoped owner collected", cmGone("b", "cluster-owner"))
	if err := client.CoreV1().ConfigMaps("a").Delete(ctx, owner.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "dependents of the namespaced owner collected", func() (bool, error) {
		for _, n := range []string{"same-namespace", "two-owners"} {
			if ok, err := cmGone("a", n)(); !ok {
				return false, err
			}
		}
		return true, nil
	})
}
