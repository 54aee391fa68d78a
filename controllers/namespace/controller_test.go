package namespace

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"

	"github.com/skiff-sh/skiff/test/framework"
)

// stockKubectl is the kubectl the tests delete namespaces with.
const stockKubectl = "/usr/lib/google-cloud-sdk/bin/kubectl.1.33"

// env is a server with the namespace controller running against it.
type env struct {
	srv    *framework.Server
	client kubernetes.Interface
}

func start(t *testing.T) *env {
	t.Helper()
	srv := framework.StartServer(t, framework.Options{})
	client := srv.Client()
	meta, err := metadata.NewForConfig(srv.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	factory := informers.NewSharedInformerFactory(client, 0)
	c, err := New(client, meta, factory, Options{Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	done := make(chan error, 1)
	go func() { done <- c.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Start: %v", err)
		}
		factory.Shutdown()
	})
	return &env{srv: srv, client: client}
}

// eventually polls cond until it holds or 20s pass.
func eventually(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	var last error
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(25 * time.Millisecond) {
		ok, err := cond()
		if ok {
			return
		}
		last = err
	}
	t.Fatalf("%s: not within 20s (last error: %v)", what, last)
}

func (e *env) kubectl(t *testing.T, args ...string) string {
	t.Helper()
	if _, err := os.Stat(stockKubectl); err != nil {
		t.Fatalf("kubectl: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, stockKubectl, append([]string{"--kubeconfig", e.srv.Kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func gone(err error) (bool, error) {
	if apierrors.IsNotFound(err) {
		return true, nil
	}
	return false, err
}

func podSpec() corev1.PodSpec {
	return corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "busybox"}}}
}

// fill creates a bit of everything in ns: the pods are an unbound one, and
// one bound to a node (so its deletion waits for the node's confirmation).
func fill(t *testing.T, ctx context.Context, client kubernetes.Interface, ns string) {
	t.Helper()
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"one", "two"} {
		must(client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"k": "v"}}, metav1.CreateOptions{}))
		must(client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name}, StringData: map[string]string{"k": "v"}}, metav1.CreateOptions{}))
	}
	must(client.CoreV1().Services(ns).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}}}, metav1.CreateOptions{}))
	labels := map[string]string{"app": "web"}
	must(client.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: podSpec()}}}, metav1.CreateOptions{}))
	must(client.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "unbound", Labels: labels}, Spec: podSpec()}, metav1.CreateOptions{}))
	bound := podSpec()
	bound.NodeName = "node-1"
	must(client.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "bound", Labels: labels}, Spec: bound}, metav1.CreateOptions{}))
}

func condition(ns *corev1.Namespace, t corev1.NamespaceConditionType) *corev1.NamespaceCondition {
	for i := range ns.Status.Conditions {
		if ns.Status.Conditions[i].Type == t {
			return &ns.Status.Conditions[i]
		}
	}
	return nil
}

func TestKubectlDeleteNamespaceEmptiesAndRemovesIt(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	client := e.client
	const ns = "doomed"
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	fill(t, ctx, client, ns)
	// A namespace that must survive.
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bystander"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	fill(t, ctx, client, "bystander")

	e.kubectl(t, "delete", "namespace", ns, "--wait=false")

	// The bound pod holds the namespace until its node confirms; the
	// controller says so on the namespace.
	eventually(t, "conditions naming the waiting pod", func() (bool, error) {
		n, err := client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		c := condition(n, corev1.NamespaceContentRemaining)
		return c != nil && c.Status == corev1.ConditionTrue && c.Reason == "SomeResourcesRemain" &&
			c.Message == "Some resources are remaining: pods. has 1 resource instances", nil
	})
	pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 1 || pods.Items[0].Name != "bound" || pods.Items[0].DeletionTimestamp == nil {
		t.Fatalf("pods left while waiting for the node: %+v", pods.Items)
	}
	if g := pods.Items[0].DeletionGracePeriodSeconds; g == nil || *g != 30 {
		t.Errorf("bound pod deleted with grace %v, want its 30s", g)
	}
	for what, list := range map[string]func() (int, error){
		"configmaps": func() (int, error) {
			l, err := client.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
			return len(l.Items), err
		},
		"secrets": func() (int, error) {
			l, err := client.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
			return len(l.Items), err
		},
		"services": func() (int, error) {
			l, err := client.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
			return len(l.Items), err
		},
		"deployments": func() (int, error) {
			l, err := client.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
			return len(l.Items), err
		},
	} {
		if n, err := list(); err != nil || n != 0 {
			t.Errorf("%s left while the namespace waits for its pod: %d (%v)", what, n, err)
		}
	}

	// The node confirms: the pod goes, and so does the namespace.
	zero := int64(0)
	uid := pods.Items[0].UID
	if err := client.CoreV1().Pods(ns).Delete(ctx, "bound", metav1.DeleteOptions{GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &uid}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "namespace gone", func() (bool, error) {
		_, err := client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		return gone(err)
	})

	// The bystander kept everything.
	if l, err := client.CoreV1().ConfigMaps("bystander").List(ctx, metav1.ListOptions{}); err != nil || len(l.Items) != 2 {
		t.Errorf("bystander configmaps: %v %v", l, err)
	}
	if l, err := client.CoreV1().Pods("bystander").List(ctx, metav1.ListOptions{}); err != nil || len(l.Items) != 2 {
		t.Errorf("bystander pods: %v %v", l, err)
	}
	// And `kubectl get ns` agrees.
	if out := e.kubectl(t, "get", "namespaces", "-o", "name"); strings.Contains(out, "namespace/"+ns+"\n") {
		t.Errorf("kubectl still lists %s:\n%s", ns, out)
	}
}

func TestFinalizerHoldsNamespaceUntilRemoved(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	client := e.client
	const ns = "held"
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kept",
		Finalizers: []string{"example.com/hold"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := client.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "finalizer condition", func() (bool, error) {
		n, err := client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		c := condition(n, corev1.NamespaceFinalizersRemaining)
		r := condition(n, corev1.NamespaceContentRemaining)
		return c != nil && c.Status == corev1.ConditionTrue && c.Reason == "SomeFinalizersRemain" &&
			c.Message == "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances" &&
			r != nil && r.Status == corev1.ConditionTrue, nil
	})
	n, err := client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n.Status.Phase != corev1.NamespaceTerminating || len(n.Spec.Finalizers) != 1 {
		t.Errorf("held namespace: phase %s finalizers %v", n.Status.Phase, n.Spec.Finalizers)
	}
	if c := condition(n, corev1.NamespaceDeletionDiscoveryFailure); c == nil || c.Status != corev1.ConditionFalse {
		t.Errorf("discovery condition %+v", c)
	}

	patch := []byte(`{"metadata":{"finalizers":null}}`)
	if _, err := client.CoreV1().ConfigMaps(ns).Patch(ctx, "kept", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "namespace gone", func() (bool, error) {
		_, err := client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		return gone(err)
	})
}
