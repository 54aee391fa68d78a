package nodelifecycle

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/kubectl/pkg/util/podutils"

	"github.com/skiff-sh/skiff/sim"
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

func startSim(t *testing.T, client kubernetes.Interface, prefix string, nodes int) context.CancelFunc {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- sim.Run(ctx, client, sim.Options{Nodes: nodes, NamePrefix: prefix, LeaseInterval: 300 * time.Millisecond,
			TerminationDelay: 50 * time.Millisecond})
	}()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Logf("sim %s: %v", prefix, err)
			}
		}
	}
	t.Cleanup(stop)
	return stop
}

func podOn(node, name string, tolerations ...corev1.Toleration) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{NodeName: node, Tolerations: tolerations,
			Containers: []corev1.Container{{Name: "c", Image: "img"}}},
	}
}

func TestNodeLossAgainstServer(t *testing.T) {
	srv := framework.StartServer(t, framework.Options{})
	client := srv.Client()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	const ns = "default"

	startSim(t, client, "live-", 2)
	stopDoomed := startSim(t, client, "doomed-", 1)
	eventually(t, "three ready nodes", func() (bool, string) {
		nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		ready := 0
		for i := range nodes.Items {
			if readyStatus(&nodes.Items[i]) == corev1.ConditionTrue {
				ready++
			}
		}
		return ready == 3, fmt.Sprint(ready)
	})

	factory := informers.NewSharedInformerFactory(client, 0)
	ctrl, err := New(client, factory, Options{
		Recorder: record.NewFakeRecorder(1000), GracePeriod: 2 * time.Second,
		StartupGracePeriod: 5 * time.Second, MonitorPeriod: 500 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	go func() { _ = ctrl.Start(ctx) }()

	five := int64(5)
	pods := []*corev1.Pod{
		// Tolerates unreachable only with another value: not at all (and
		// the API server adds no default toleration for the key).
		podOn("doomed-0", "untolerated", corev1.Toleration{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpEqual,
			Value: "elsewhere", Effect: corev1.TaintEffectNoExecute}),
		podOn("doomed-0", "five-seconds", corev1.Toleration{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists,
			Effect: corev1.TaintEffectNoExecute, TolerationSeconds: &five}),
		podOn("doomed-0", "defaults"), // the API server's 300 s
		podOn("live-0", "bystander"),
	}
	for _, p := range pods {
		if _, err := client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "pods running", func() (bool, string) {
		list, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		ready := 0
		for i := range list.Items {
			if podutils.IsPodReady(&list.Items[i]) {
				ready++
			}
		}
		return ready == len(pods), fmt.Sprint(ready)
	})
	// Nodes that renew stay ready and untainted past the grace period.
	for until := time.Now().Add(3 * time.Second); time.Now().Before(until); time.Sleep(200 * time.Millisecond) {
		for _, name := range []string{"live-0", "live-1", "doomed-0"} {
			n, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			if err != nil || readyStatus(n) != corev1.ConditionTrue || len(n.Spec.Taints) != 0 {
				t.Fatalf("healthy node %s: err %v ready %s taints %v", name, err, readyStatus(n), n.Spec.Taints)
			}
		}
	}

	// The doomed node stops renewing its Lease.
	stopped := time.Now()
	stopDoomed()
	var taintedAt time.Time
	eventually(t, "doomed-0 unknown and tainted", func() (bool, string) {
		n, err := client.CoreV1().Nodes().Get(ctx, "doomed-0", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		c := condition(n, corev1.NodeReady)
		hasNE, hasNS := false, false
		for _, tt := range n.Spec.Taints {
			if tt.Key == corev1.TaintNodeUnreachable && tt.Effect == corev1.TaintEffectNoExecute && tt.TimeAdded != nil {
				hasNE, taintedAt = true, tt.TimeAdded.Time
			}
			if tt.Key == corev1.TaintNodeUnreachable && tt.Effect == corev1.TaintEffectNoSchedule {
				hasNS = true
			}
		}
		ok := c.Status == corev1.ConditionUnknown && c.Reason == reasonStatusUnknown && c.Message == messageStatusUnknown && hasNE && hasNS
		return ok, fmt.Sprintf("ready=%s/%s taints=%v", c.Status, c.Reason, n.Spec.Taints)
	})
	// The grace runs from the last renewal, up to one lease interval
	// (300ms) before the stop.
	if since := time.Since(stopped); since < 1700*time.Millisecond {
		t.Errorf("node marked %v after its lease stopped, before the 2s grace", since)
	}

	deletedAt := map[string]time.Time{}
	eventually(t, "evictions", func() (bool, string) {
		for _, name := range []string{"untolerated", "five-seconds"} {
			if _, done := deletedAt[name]; done {
				continue
			}
			p, err := client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil || p.DeletionTimestamp != nil {
				deletedAt[name] = time.Now()
			}
		}
		return len(deletedAt) == 2, fmt.Sprint(deletedAt)
	})
	// timeAdded is stored to the second, so allow a second either way.
	if d := deletedAt["untolerated"].Sub(taintedAt); d > 2*time.Second {
		t.Errorf("untolerated pod evicted %v after the taint, want at once", d)
	}
	if d := deletedAt["five-seconds"].Sub(taintedAt); d < 4*time.Second || d > 8*time.Second {
		t.Errorf("five-second pod evicted %v after the taint, want about 5s", d)
	}
	p, err := client.CoreV1().Pods(ns).Get(ctx, "five-seconds", metav1.GetOptions{})
	if err == nil {
		found := false
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.DisruptionTarget && c.Status == corev1.ConditionTrue && c.Reason == reasonDeletionByTaintManager {
				found = true
			}
		}
		if !found {
			t.Errorf("evicted pod lacks the DisruptionTarget condition: %+v", p.Status.Conditions)
		}
	}

	// The pod with the default 300 s toleration stays, marked not ready.
	eventually(t, "defaults pod marked not ready", func() (bool, string) {
		p, err := client.CoreV1().Pods(ns).Get(ctx, "defaults", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return p.DeletionTimestamp == nil && !podutils.IsPodReady(p), fmt.Sprint(p.Status.Conditions)
	})
	b, err := client.CoreV1().Pods(ns).Get(ctx, "bystander", metav1.GetOptions{})
	if err != nil || b.DeletionTimestamp != nil || !podutils.IsPodReady(b) {
		t.Errorf("pod on a live node disturbed: %v", err)
	}
	for _, name := range []string{"live-0", "live-1"} {
		n, _ := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if readyStatus(n) != corev1.ConditionTrue || len(n.Spec.Taints) != 0 {
			t.Errorf("live node %s: ready %s taints %v", name, readyStatus(n), n.Spec.Taints)
		}
	}
}
