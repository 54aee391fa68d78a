package sim_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-sh/skiff/sim"
	"github.com/skiff-sh/skiff/test/framework"
)

// runSim runs a fleet in the background; the returned stop cancels it and
// checks that Run returned nil.
func runSim(t *testing.T, client kubernetes.Interface, opts sim.Options) (stop func()) {
	t.Helper()
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sim.Run(ctx, client, opts) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(90 * time.Second):
				t.Errorf("Run did not return within 90s of cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// checkNoGoroutines fails if, after a grace period, a goroutine's stack
// still matches one of the markers.
func checkNoGoroutines(t *testing.T, markers ...string) {
	t.Helper()
	var left []string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		left = left[:0]
		buf := make([]byte, 4<<20)
		buf = buf[:runtime.Stack(buf, true)]
		for _, g := range strings.Split(string(buf), "\n\n") {
			for _, m := range markers {
				if strings.Contains(g, m) {
					left = append(left, g)
					break
				}
			}
		}
		if len(left) == 0 {
			return
		}
	}
	t.Errorf("%d goroutines left behind:\n%s", len(left), strings.Join(left, "\n\n"))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// eventually polls f until it returns nil or the time is up.
func eventually(t *testing.T, within time.Duration, what string, f func() error) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if err = f(); err == nil {
			return
		}
	}
	t.Fatalf("%s: not within %v: %v", what, within, err)
}

func podCondition(p *corev1.Pod, ct corev1.PodConditionType) corev1.ConditionStatus {
	for _, c := range p.Status.Conditions {
		if c.Type == ct {
			return c.Status
		}
	}
	return ""
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// newPod creates a pod and binds it to node through the binding subresource.
func newPod(t *testing.T, client kubernetes.Interface, name, node string, policy corev1.RestartPolicy, annotations map[string]string) *corev1.Pod {
	t.Helper()
	ctx := context.Background()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Annotations: annotations},
		Spec: corev1.PodSpec{
			// Not for any scheduler: the test binds it.
			SchedulerName: "test-binds-by-hand",
			RestartPolicy: policy,
			Containers:    []corev1.Container{{Name: "main", Image: "registry.example/app:1"}, {Name: "side", Image: "registry.example/side:2"}},
		},
	}
	pod, err := client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating pod %s: %v", name, err)
	}
	b := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: name}, Target: corev1.ObjectReference{Kind: "Node", Name: node}}
	if err := client.CoreV1().Pods("default").Bind(ctx, b, metav1.CreateOptions{}); err != nil {
		t.Fatalf("binding pod %s to %s: %v", name, node, err)
	}
	return pod
}

// waitPod polls pod name until ok accepts it.
func waitPod(t *testing.T, client kubernetes.Interface, name string, within time.Duration, ok func(*corev1.Pod) error) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	eventually(t, within, "pod "+name, func() error {
		p, err := client.CoreV1().Pods("default").Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		pod = p
		return ok(p)
	})
	return pod
}

func TestFleet(t *testing.T) {
	srv := framework.StartServer(t, framework.Options{})
	client := srv.Client()
	ctx := context.Background()
	stop := runSim(t, client, sim.Options{
		Nodes: 3, Zones: 2, Cleanup: true,
		LeaseInterval:    500 * time.Millisecond,
		StatusInterval:   time.Minute,
		RunDuration:      time.Second,
		RestartBackoff:   200 * time.Millisecond,
		TerminationDelay: 200 * time.Millisecond,
	})

	// Registration.
	var nodes []corev1.Node
	eventually(t, 20*time.Second, "three Ready sim nodes", func() error {
		l, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: "type=skiff-sim"})
		if err != nil {
			return err
		}
		ready := 0
		for i := range l.Items {
			if nodeReady(&l.Items[i]) {
				ready++
			}
		}
		if ready != 3 {
			return fmt.Errorf("%d of %d nodes ready", ready, len(l.Items))
		}
		nodes = l.Items
		return nil
	})
	for _, n := range nodes {
		i, err := strconv.Atoi(strings.TrimPrefix(n.Name, "sim-"))
		if err != nil {
			t.Fatalf("node name %q", n.Name)
		}
		wantLabels := map[string]string{
			"kubernetes.io/hostname":           n.Name,
			"kubernetes.io/os":                 "linux",
			"node.kubernetes.io/instance-type": "sim",
			"type":                             "skiff-sim",
			"topology.kubernetes.io/zone":      fmt.Sprintf("zone-%d", i%2),
		}
		for k, v := range wantLabels {
			if n.Labels[k] != v {
				t.Errorf("node %s label %s = %q, want %q", n.Name, k, n.Labels[k], v)
			}
		}
		for res, want := range map[corev1.ResourceName]string{"cpu": "8", "memory": "32Gi", "pods": "110"} {
			if q := n.Status.Allocatable[res]; q.Cmp(resource.MustParse(want)) != 0 {
				t.Errorf("node %s allocatable %s = %s, want %s", n.Name, res, q.String(), want)
			}
		}
		if n.Status.NodeInfo.KubeletVersion == "" || n.Status.NodeInfo.OperatingSystem != "linux" {
			t.Errorf("node %s nodeInfo %+v", n.Name, n.Status.NodeInfo)
		}
		if want := fmt.Sprintf("10.42.%d.0/24", i); n.Spec.PodCIDR != want {
			t.Errorf("node %s podCIDR %s, want %s", n.Name, n.Spec.PodCIDR, want)
		}
		if len(n.Status.Addresses) == 0 || n.Status.Addresses[0].Type != corev1.NodeInternalIP {
			t.Errorf("node %s addresses %+v", n.Name, n.Status.Addresses)
		}
		for _, c := range n.Status.Conditions {
			if c.Type != corev1.NodeReady && c.Status != corev1.ConditionFalse {
				t.Errorf("node %s condition %s = %s, want False", n.Name, c.Type, c.Status)
			}
		}
	}

	// Leases are created and renewed.
	renewals := map[string]time.Time{}
	eventually(t, 10*time.Second, "node leases", func() error {
		for _, n := range nodes {
			l, err := client.CoordinationV1().Leases("kube-node-lease").Get(ctx, n.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != n.Name || l.Spec.RenewTime == nil {
				return fmt.Errorf("lease %s: %+v", n.Name, l.Spec)
			}
			if len(l.OwnerReferences) != 1 || l.OwnerReferences[0].UID != n.UID {
				return fmt.Errorf("lease %s owners %+v, want node uid %s", n.Name, l.OwnerReferences, n.UID)
			}
			renewals[n.Name] = l.Spec.RenewTime.Time
		}
		return nil
	})
	eventually(t, 10*time.Second, "lease renewals", func() error {
		for _, n := range nodes {
			l, err := client.CoordinationV1().Leases("kube-node-lease").Get(ctx, n.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if !l.Spec.RenewTime.Time.After(renewals[n.Name]) {
				return fmt.Errorf("lease %s not renewed since %v", n.Name, renewals[n.Name])
			}
		}
		return nil
	})

	// Node status is posted once a StatusInterval, not on every event.
	n0, err := client.CoreV1().Nodes().Get(ctx, "sim-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	if n1, err := client.CoreV1().Nodes().Get(ctx, "sim-0", metav1.GetOptions{}); err != nil || n1.ResourceVersion != n0.ResourceVersion {
		t.Errorf("node sim-0 rewritten within its status interval (rv %s -> %s, err %v)", n0.ResourceVersion, n1.ResourceVersion, err)
	}

	// A long-running pod starts, with an address from its node's range.
	newPod(t, client, "web", "sim-1", corev1.RestartPolicyAlways, nil)
	web := waitPod(t, client, "web", 10*time.Second, func(p *corev1.Pod) error {
		if p.Status.Phase != corev1.PodRunning || podCondition(p, corev1.PodReady) != corev1.ConditionTrue {
			return fmt.Errorf("phase %s, ready %s", p.Status.Phase, podCondition(p, corev1.PodReady))
		}
		return nil
	})
	if ip, err := netip.ParseAddr(web.Status.PodIP); err != nil || !netip.MustParsePrefix("10.42.1.0/24").Contains(ip) {
		t.Errorf("pod IP %q not in sim-1's 10.42.1.0/24", web.Status.PodIP)
	}
	if web.Status.HostIP != "10.41.0.2" || web.Status.StartTime == nil {
		t.Errorf("hostIP %q startTime %v", web.Status.HostIP, web.Status.StartTime)
	}
	for _, ct := range []corev1.PodConditionType{corev1.PodInitialized, corev1.ContainersReady, corev1.PodScheduled} {
		if podCondition(web, ct) != corev1.ConditionTrue {
			t.Errorf("condition %s = %s", ct, podCondition(web, ct))
		}
	}
	if len(web.Status.ContainerStatuses) != 2 {
		t.Fatalf("container statuses %+v", web.Status.ContainerStatuses)
	}
	for _, cs := range web.Status.ContainerStatuses {
		if cs.State.Running == nil || !cs.Ready || cs.Started == nil || !*cs.Started ||
			!strings.HasPrefix(cs.ContainerID, "sim://") || cs.ImageID == "" || cs.Image == "" {
			t.Errorf("container status %+v", cs)
		}
	}

	// Pods that terminate: success, failure, and restarts under OnFailure.
	newPod(t, client, "job-ok", "sim-0", corev1.RestartPolicyNever, nil)
	newPod(t, client, "job-fail", "sim-2", corev1.RestartPolicyNever, map[string]string{sim.AnnotationExitCode: "3", sim.AnnotationRunSeconds: "0.5"})
	newPod(t, client, "job-retry", "sim-2", corev1.RestartPolicyOnFailure, map[string]string{sim.AnnotationExitCode: "1", sim.AnnotationRunSeconds: "0"})
	ok := waitPod(t, client, "job-ok", 10*time.Second, func(p *corev1.Pod) error {
		if p.Status.Phase != corev1.PodSucceeded {
			return fmt.Errorf("phase %s", p.Status.Phase)
		}
		return nil
	})
	for _, cs := range ok.Status.ContainerStatuses {
		if tr := cs.State.Terminated; tr == nil || tr.ExitCode != 0 || tr.Reason != "Completed" {
			t.Errorf("job-ok container %+v", cs.State)
		}
	}
	failed := waitPod(t, client, "job-fail", 10*time.Second, func(p *corev1.Pod) error {
		if p.Status.Phase != corev1.PodFailed {
			return fmt.Errorf("phase %s", p.Status.Phase)
		}
		return nil
	})
	for _, cs := range failed.Status.ContainerStatuses {
		if tr := cs.State.Terminated; tr == nil || tr.ExitCode != 3 || tr.Reason != "Error" {
			t.Errorf("job-fail container %+v", cs.State)
		}
	}
	waitPod(t, client, "job-retry", 10*time.Second, func(p *corev1.Pod) error {
		if p.Status.Phase != corev1.PodRunning || len(p.Status.ContainerStatuses) == 0 || p.Status.ContainerStatuses[0].RestartCount < 2 {
			return fmt.Errorf("phase %s, statuses %+v", p.Status.Phase, p.Status.ContainerStatuses)
		}
		if last := p.Status.ContainerStatuses[0].LastTerminationState.Terminated; last == nil || last.ExitCode != 1 {
			return fmt.Errorf("last termination %+v", p.Status.ContainerStatuses[0].LastTerminationState)
		}
		return nil
	})

	// A pod bound elsewhere is left alone.
	newPod(t, client, "elsewhere", "not-a-sim-node", corev1.RestartPolicyAlways, nil)

	// A graceful deletion is confirmed by the node.
	if err := client.CoreV1().Pods("default").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "web deleted", func() error {
		_, err := client.CoreV1().Pods("default").Get(ctx, "web", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("still there (err %v)", err)
	})
	if p, err := client.CoreV1().Pods("default").Get(ctx, "elsewhere", metav1.GetOptions{}); err == nil && p.Status.StartTime != nil {
		t.Errorf("pod bound to another node was started: %+v", p.Status)
	} else if err != nil && !apierrors.IsNotFound(err) {
		t.Error(err)
	}

	// Stopping with Cleanup removes the fleet.
	stop()
	l, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: "type=skiff-sim"})
	if err != nil || len(l.Items) != 0 {
		t.Errorf("nodes left after cleanup: %d (err %v)", len(l.Items), err)
	}
	ll, err := client.CoordinationV1().Leases("kube-node-lease").List(ctx, metav1.ListOptions{})
	if err != nil || len(ll.Items) != 0 {
		t.Errorf("leases left after cleanup: %d (err %v)", len(ll.Items), err)
	}
}

func TestStartupDelayKeepsPodsPending(t *testing.T) {
	srv := framework.StartServer(t, framework.Options{})
	client := srv.Client()
	stop := runSim(t, client, sim.Options{Nodes: 1, StartupDelay: 2 * time.Second, LeaseInterval: time.Second})
	eventually(t, 20*time.Second, "node registered", func() error {
		_, err := client.CoreV1().Nodes().Get(context.Background(), "sim-0", metav1.GetOptions{})
		return err
	})
	newPod(t, client, "slow", "sim-0", corev1.RestartPolicyAlways, nil)
	creating := waitPod(t, client, "slow", 10*time.Second, func(p *corev1.Pod) error {
		if p.Status.StartTime == nil {
			return fmt.Errorf("not accepted yet")
		}
		return nil
	})
	if creating.Status.Phase != corev1.PodPending {
		t.Errorf("phase %s right after acceptance, want Pending", creating.Status.Phase)
	}
	if cs := creating.Status.ContainerStatuses; len(cs) == 0 || cs[0].State.Waiting == nil || cs[0].State.Waiting.Reason != "ContainerCreating" {
		t.Errorf("container statuses %+v, want waiting ContainerCreating", cs)
	}
	waitPod(t, client, "slow", 10*time.Second, func(p *corev1.Pod) error {
		if p.Status.Phase != corev1.PodRunning {
			return fmt.Errorf("phase %s", p.Status.Phase)
		}
		return nil
	})
	stop()
	checkNoGoroutines(t, "created by github.com/skiff-sh/skiff/sim.", "skiff-sh/skiff/sim.(*simulator)")
}

// timedTransport records how long the API took to answer lease updates.
type timedTransport struct {
	rt    http.RoundTripper
	mu    sync.Mutex
	times []time.Duration
}

func (tt *timedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := tt.rt.RoundTrip(r)
	if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/leases/") {
		tt.mu.Lock()
		tt.times = append(tt.times, time.Since(start))
		tt.mu.Unlock()
	}
	return resp, err
}

func (tt *timedTransport) report(t *testing.T) {
	tt.mu.Lock()
	got := slices.Clone(tt.times)
	tt.mu.Unlock()
	if len(got) == 0 {
		return
	}
	slices.Sort(got)
	p := func(q float64) time.Duration { return got[int(q*float64(len(got)-1))] }
	t.Logf("%d lease PUTs: API p50 %v p90 %v p99 %v", len(got), p(0.5), p(0.9), p(0.99))
}
