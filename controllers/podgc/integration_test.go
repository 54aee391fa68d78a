package podgc_test

import (
	"context"
	"io"
	"log/slog"
	"sort"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-sh/skiff/controllers/podgc"
	"github.com/skiff-sh/skiff/test/framework"
)

const quarantine = 300 * time.Millisecond

func startGC(t *testing.T) kubernetes.Interface {
	t.Helper()
	srv := framework.StartServer(t, framework.Options{})
	client := srv.Client()
	ctx, cancel := context.WithCancel(context.Background())
	factory := informers.NewSharedInformerFactory(client, 0)
	gc, err := podgc.New(client, factory, podgc.Options{
		TerminatedPodThreshold: 2, Quarantine: quarantine, Period: 200 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	done := make(chan struct{})
	go func() { _ = gc.Start(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; factory.Shutdown() })
	return client
}

func namespace(t *testing.T, c kubernetes.Interface) string {
	t.Helper()
	ns, err := c.CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "gc-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

func createNode(t *testing.T, c kubernetes.Interface, name string, ready corev1.ConditionStatus, taints ...corev1.Taint) {
	t.Helper()
	ctx := context.Background()
	n, err := c.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.NodeSpec{Taints: taints}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: ready, LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}}
	if _, err := c.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func createPod(t *testing.T, c kubernetes.Interface, ns, name, node string, finalizers ...string) *corev1.Pod {
	t.Helper()
	p, err := c.CoreV1().Pods(ns).Create(context.Background(), &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Finalizers: finalizers},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "main", Image: "busybox"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func exists(c kubernetes.Interface, ns, name string) bool {
	_, err := c.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
	return !apierrors.IsNotFound(err)
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if ok() {
			return
		}
		time.Sleep(30 * time.Millisecond)
	}
	t.Fatalf("%s: not within 15s", what)
}

func TestPodGC(t *testing.T) {
	c := startGC(t)
	ctx := context.Background()

	t.Run("pods of a deleted node go after the quarantine", func(t *testing.T) {
		ns := namespace(t, c)
		createNode(t, c, "doomed", corev1.ConditionTrue)
		createNode(t, c, "stays", corev1.ConditionTrue)
		createPod(t, c, ns, "orphan", "doomed")
		createPod(t, c, ns, "ghost", "never-existed")
		createPod(t, c, ns, "kept", "stays")
		createPod(t, c, ns, "unbound", "")
		waitFor(t, "pod on a node that never existed deleted", func() bool { return !exists(c, ns, "ghost") })
		if !exists(c, ns, "orphan") {
			t.Fatal("a pod of a node that still exists was deleted")
		}
		deleted := time.Now()
		if err := c.CoreV1().Nodes().Delete(ctx, "doomed", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "pod of the deleted node deleted", func() bool { return !exists(c, ns, "orphan") })
		if took := time.Since(deleted); took < quarantine {
			t.Errorf("deleted after %v, before the %v quarantine", took, quarantine)
		}
		if !exists(c, ns, "kept") || !exists(c, ns, "unbound") {
			t.Error("pods of a live node or no node were deleted")
		}
	})

	t.Run("terminating pods of an out-of-service node are force-deleted", func(t *testing.T) {
		ns := namespace(t, c)
		oos := corev1.Taint{Key: corev1.TaintNodeOutOfService, Value: "nodeshutdown", Effect: corev1.TaintEffectNoExecute}
		createNode(t, c, "down", corev1.ConditionFalse, oos)
		createNode(t, c, "slow", corev1.ConditionFalse)
		createPod(t, c, ns, "stuck", "down")
		createPod(t, c, ns, "waiting", "slow")
		createPod(t, c, ns, "running", "down")
		for _, name := range []string{"stuck", "waiting"} {
			if err := c.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, "terminating pod force-deleted", func() bool { return !exists(c, ns, "stuck") })
		p, err := c.CoreV1().Pods(ns).Get(ctx, "waiting", metav1.GetOptions{})
		if err != nil || p.DeletionTimestamp == nil {
			t.Errorf("the terminating pod of a node that is only NotReady: %v %v", err, p)
		}
		if !exists(c, ns, "running") {
			t.Error("a pod of the out-of-service node that was not terminating was deleted")
		}
	})

	t.Run("terminated pods over the threshold go, oldest first", func(t *testing.T) {
		ns := namespace(t, c)
		var done []*corev1.Pod
		for _, name := range []string{"a", "b", "c", "d"} {
			p := createPod(t, c, ns, name, "")
			p.Status.Phase = corev1.PodSucceeded
			p, err := c.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			done = append(done, p)
		}
		createPod(t, c, ns, "pending", "")
		sort.SliceStable(done, func(i, j int) bool {
			if !done[i].CreationTimestamp.Equal(&done[j].CreationTimestamp) {
				return done[i].CreationTimestamp.Before(&done[j].CreationTimestamp)
			}
			return done[i].Name < done[j].Name
		})
		waitFor(t, "the two oldest deleted", func() bool { return !exists(c, ns, done[0].Name) && !exists(c, ns, done[1].Name) })
		for _, p := range done[2:] {
			if !exists(c, ns, p.Name) {
				t.Errorf("pod %s deleted; only two of four over a threshold of 2", p.Name)
			}
		}
		if !exists(c, ns, "pending") {
			t.Error("a pending pod was deleted")
		}
	})

	t.Run("an unscheduled terminating pod is failed and force-deleted", func(t *testing.T) {
		ns := namespace(t, c)
		// A finalizer keeps the unbound pod terminating (the API server
		// deletes unbound pods at once otherwise).
		createPod(t, c, ns, "limbo", "", "example.com/hold")
		if err := c.CoreV1().Pods(ns).Delete(ctx, "limbo", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "marked Failed", func() bool {
			p, err := c.CoreV1().Pods(ns).Get(ctx, "limbo", metav1.GetOptions{})
			return err == nil && p.Status.Phase == corev1.PodFailed
		})
		p, err := c.CoreV1().Pods(ns).Get(ctx, "limbo", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p.Finalizers = nil
		if _, err := c.CoreV1().Pods(ns).Update(ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "gone once released", func() bool { return !exists(c, ns, "limbo") })
	})
}
