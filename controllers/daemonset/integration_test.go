package daemonset

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/kubectl/pkg/polymorphichelpers"

	"github.com/skiff-sh/skiff/controllers/history"
	"github.com/skiff-sh/skiff/sim"
	"github.com/skiff-sh/skiff/test/framework"
)

const waitFor = 20 * time.Second

// eventually polls cond until it holds or the deadline passes; the last
// reason it gave is reported on failure.
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

// bindDaemonPods plays the scheduler for daemon pods: each unbound pod is
// bound to the node its affinity pins it to.
func bindDaemonPods(ctx context.Context, t *testing.T, client kubernetes.Interface, ns string) {
	for ctx.Err() == nil {
		pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName="})
		if err == nil {
			for _, p := range pods.Items {
				node := targetNode(&p)
				if node == "" || p.DeletionTimestamp != nil {
					continue
				}
				err := client.CoreV1().Pods(ns).Bind(ctx, &corev1.Binding{
					ObjectMeta: metav1.ObjectMeta{Name: p.Name, UID: p.UID},
					Target:     corev1.ObjectReference{Kind: "Node", Name: node},
				}, metav1.CreateOptions{})
				if err != nil && ctx.Err() == nil {
					t.Logf("bind %s to %s: %v", p.Name, node, err)
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func TestDaemonSetAgainstServer(t *testing.T) {
	srv := framework.StartServer(t, framework.Options{})
	client := srv.Client()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	const ns = "default"

	simDone := make(chan error, 1)
	go func() {
		simDone <- sim.Run(ctx, client, sim.Options{Nodes: 3, NamePrefix: "dsn-", LeaseInterval: time.Second,
			TerminationDelay: 50 * time.Millisecond})
	}()
	t.Cleanup(func() { cancel(); <-simDone })
	eventually(t, "sim nodes registered", func() (bool, string) {
		nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		return len(nodes.Items) == 3, fmt.Sprintf("%d nodes", len(nodes.Items))
	})
	for i := 0; i < 3; i++ {
		patchNode(ctx, t, client, fmt.Sprintf("dsn-%d", i), `{"metadata":{"labels":{"daemon":"yes"}}}`)
	}

	factory := informers.NewSharedInformerFactory(client, 0)
	ctrl, err := New(client, factory, Options{Recorder: record.NewFakeRecorder(1000)})
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	go func() { _ = ctrl.Start(ctx) }()
	go bindDaemonPods(ctx, t, client, ns)

	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "agent"},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "agent"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "agent"}},
				Spec: corev1.PodSpec{
					NodeSelector: map[string]string{"daemon": "yes"},
					Containers:   []corev1.Container{{Name: "agent", Image: "agent:1"}},
				},
			},
		},
	}
	if _, err := client.AppsV1().DaemonSets(ns).Create(ctx, ds, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// One ready pod per node, status to match, kubectl rollout status done.
	waitRolledOut(ctx, t, client, ns, "agent", 3)
	perNode := podsByNode(ctx, t, client, ns)
	for i := 0; i < 3; i++ {
		if n := len(perNode[fmt.Sprintf("dsn-%d", i)]); n != 1 {
			t.Errorf("node dsn-%d has %d pods, want 1", i, n)
		}
	}
	revs, err := client.AppsV1().ControllerRevisions(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=agent"})
	if err != nil || len(revs.Items) != 1 {
		t.Fatalf("revisions: %v %v", revs, err)
	}
	rev := revs.Items[0]
	hash := rev.Labels[history.HashLabel]
	if rev.Name != "agent-"+hash || rev.Revision != 1 {
		t.Errorf("revision %s number %d, want agent-%s number 1", rev.Name, rev.Revision, hash)
	}
	for _, pods := range perNode {
		for _, p := range pods {
			if p.Labels[history.HashLabel] != hash {
				t.Errorf("pod %s hash %q, want %q", p.Name, p.Labels[history.HashLabel], hash)
			}
		}
	}

	// A node that stops matching the selector loses its pod.
	patchNode(ctx, t, client, "dsn-2", `{"metadata":{"labels":{"daemon":null}}}`)
	eventually(t, "pod leaves dsn-2", func() (bool, string) {
		by := podsByNode(ctx, t, client, ns)
		return len(by["dsn-2"]) == 0 && len(by["dsn-0"]) == 1, fmt.Sprintf("%v", keys(by))
	})
	waitRolledOut(ctx, t, client, ns, "agent", 2)

	// A new template rolls out node by node; two revisions remain.
	patch := `{"spec":{"template":{"spec":{"containers":[{"name":"agent","image":"agent:2"}]}}}}`
	if _, err := client.AppsV1().DaemonSets(ns).Patch(ctx, "agent", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRolledOut(ctx, t, client, ns, "agent", 2)
	for node, pods := range podsByNode(ctx, t, client, ns) {
		for _, p := range pods {
			if p.Spec.Containers[0].Image != "agent:2" {
				t.Errorf("pod %s on %s still runs %s", p.Name, node, p.Spec.Containers[0].Image)
			}
		}
	}
	revs, err = client.AppsV1().ControllerRevisions(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=agent"})
	if err != nil || len(revs.Items) != 2 {
		t.Fatalf("revisions after update: %d %v", len(revs.Items), err)
	}

	// kubectl rollout history sees both revisions.
	viewer, err := polymorphichelpers.HistoryViewerFor(appsv1.SchemeGroupVersion.WithKind("DaemonSet").GroupKind(), client)
	if err != nil {
		t.Fatal(err)
	}
	out, err := viewer.ViewHistory(ns, "agent", 0)
	if err != nil || !strings.Contains(out, "1 ") || !strings.Contains(out, "2 ") {
		t.Errorf("rollout history: %v\n%s", err, out)
	}

	// An untolerated NoExecute taint removes the pod from that node.
	patchNode(ctx, t, client, "dsn-1", `{"spec":{"taints":[{"key":"maintenance","effect":"NoExecute"}]}}`)
	eventually(t, "pod leaves the tainted node", func() (bool, string) {
		by := podsByNode(ctx, t, client, ns)
		return len(by["dsn-1"]) == 0 && len(by["dsn-0"]) == 1, fmt.Sprintf("%v", keys(by))
	})
	waitRolledOut(ctx, t, client, ns, "agent", 1)
}

// waitRolledOut waits for kubectl's rollout status check to pass with
// the expected number of desired pods.
func waitRolledOut(ctx context.Context, t *testing.T, client kubernetes.Interface, ns, name string, desired int32) {
	t.Helper()
	eventually(t, fmt.Sprintf("daemonset rolled out on %d nodes", desired), func() (bool, string) {
		ds, err := client.AppsV1().DaemonSets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		raw, err := runtime.DefaultUnstructuredConverter.ToUnstructured(ds)
		if err != nil {
			return false, err.Error()
		}
		msg, done, err := (&polymorphichelpers.DaemonSetStatusViewer{}).Status(&unstructured.Unstructured{Object: raw}, 0)
		if err != nil {
			return false, err.Error()
		}
		st := ds.Status
		ok := done && st.DesiredNumberScheduled == desired && st.CurrentNumberScheduled == desired &&
			st.NumberReady == desired && st.NumberMisscheduled == 0 && st.NumberUnavailable == 0
		b, _ := json.Marshal(st)
		return ok, msg + " " + string(b)
	})
}

func patchNode(ctx context.Context, t *testing.T, client kubernetes.Interface, name, patch string) {
	t.Helper()
	if _, err := client.CoreV1().Nodes().Patch(ctx, name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatalf("patch node %s: %v", name, err)
	}
}

// podsByNode lists the live daemon pods by their node.
func podsByNode(ctx context.Context, t *testing.T, client kubernetes.Interface, ns string) map[string][]corev1.Pod {
	t.Helper()
	pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=agent"})
	if err != nil {
		t.Fatalf("list pods: %v", err)
	}
	out := map[string][]corev1.Pod{}
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			out[targetNode(&p)] = append(out[targetNode(&p)], p)
		}
	}
	return out
}

func keys(m map[string][]corev1.Pod) map[string]int {
	out := map[string]int{}
	for k, v := range m {
		out[k] = len(v)
	}
	return out
}
