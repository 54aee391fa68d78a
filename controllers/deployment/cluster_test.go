package deployment

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-sh/skiff/controllers/replicaset"
	"github.com/skiff-sh/skiff/controllers/replicaset/fakenode"
	"github.com/skiff-sh/skiff/test/framework"
)

// kubectls are the stock kubectl binaries the end-to-end tests drive.
var kubectls = map[string]string{
	"1.33": "/usr/lib/google-cloud-sdk/bin/kubectl.1.33",
	"1.27": "/usr/lib/google-cloud-sdk/bin/kubectl.1.27",
}

// cluster is a real server running the ReplicaSet and Deployment
// controllers and a fake node.
type cluster struct {
	t          *testing.T
	ctx        context.Context
	client     kubernetes.Interface
	kubeconfig string
	ns         string
}

func startCluster(t *testing.T, node fakenode.Options) *cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a server")
	}
	srv := framework.StartServer(t, framework.Options{})
	client := srv.Client()
	ctx, cancel := context.WithCancel(context.Background())
	factory := informers.NewSharedInformerFactory(client, 0)
	log := slog.New(slog.NewTextHandler(testWriter{t}, nil))
	rsc, err := replicaset.New(client, factory, replicaset.Options{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	dc, err := New(client, factory, Options{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	var wg sync.WaitGroup
	for _, run := range []func(context.Context) error{
		rsc.Start, dc.Start,
		func(ctx context.Context) error { return fakenode.Run(ctx, client, node) },
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(ctx); err != nil {
				t.Errorf("component stopped: %v", err)
			}
		}()
	}
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		factory.Shutdown()
	})
	return &cluster{t: t, ctx: ctx, client: client, kubeconfig: srv.Kubeconfig, ns: "default"}
}

// eventually polls cond until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, seen := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; last saw: %s", timeout, what, seen)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// kubectl runs a stock kubectl against the cluster.
func (c *cluster) kubectl(version string, args ...string) (string, error) {
	c.t.Helper()
	bin := kubectls[version]
	if _, err := os.Stat(bin); err != nil {
		c.t.Skipf("kubectl %s not installed: %v", version, err)
	}
	cmd := exec.CommandContext(c.ctx, bin, append([]string{"--namespace", c.ns}, args...)...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+c.kubeconfig)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// mustKubectl is kubectl that fails the test on error.
func (c *cluster) mustKubectl(version string, args ...string) string {
	c.t.Helper()
	out, err := c.kubectl(version, args...)
	if err != nil {
		c.t.Fatalf("kubectl %s %s: %v\n%s", version, strings.Join(args, " "), err, out)
	}
	return out
}

// webDeployment is a Deployment "name" of image img.
func webDeployment(name string, replicas int32, img string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: img}}},
			},
		},
	}
}

func (c *cluster) create(d *appsv1.Deployment) *appsv1.Deployment {
	c.t.Helper()
	out, err := c.client.AppsV1().Deployments(c.ns).Create(c.ctx, d, metav1.CreateOptions{})
	if err != nil {
		c.t.Fatalf("creating deployment %s: %v", d.Name, err)
	}
	return out
}

func (c *cluster) get(name string) *appsv1.Deployment {
	c.t.Helper()
	d, err := c.client.AppsV1().Deployments(c.ns).Get(c.ctx, name, metav1.GetOptions{})
	if err != nil {
		c.t.Fatalf("getting deployment %s: %v", name, err)
	}
	return d
}

// waitRolledOut waits until name's rollout is complete as kubectl rollout
// status judges it, with every pod of the current template available.
func (c *cluster) waitRolledOut(name string, timeout time.Duration) *appsv1.Deployment {
	c.t.Helper()
	var d *appsv1.Deployment
	eventually(c.t, timeout, "deployment "+name+" rolled out", func() (bool, string) {
		d = c.get(name)
		r := replicasOf(d)
		st := d.Status
		done := d.Generation <= st.ObservedGeneration && st.UpdatedReplicas == r && st.Replicas == r &&
			st.AvailableReplicas == r
		return done && len(c.activePods(name)) == int(r), fmt.Sprintf("generation %d, status %+v", d.Generation, st)
	})
	return d
}

// replicaSets lists name's ReplicaSets, oldest first.
func (c *cluster) replicaSets(d *appsv1.Deployment) []appsv1.ReplicaSet {
	c.t.Helper()
	list, err := c.client.AppsV1().ReplicaSets(c.ns).List(c.ctx, metav1.ListOptions{})
	if err != nil {
		c.t.Fatal(err)
	}
	var out []appsv1.ReplicaSet
	for _, rs := range list.Items {
		if ref := metav1.GetControllerOf(&rs); ref != nil && ref.UID == d.UID {
			out = append(out, rs)
		}
	}
	slices.SortFunc(out, func(a, b appsv1.ReplicaSet) int { return olderFirst(&a, &b) })
	return out
}

// activePods lists the active pods labelled app=name.
func (c *cluster) activePods(name string) []corev1.Pod {
	c.t.Helper()
	list, err := c.client.CoreV1().Pods(c.ns).List(c.ctx, metav1.ListOptions{LabelSelector: "app=" + name})
	if err != nil {
		c.t.Fatal(err)
	}
	var out []corev1.Pod
	for _, p := range list.Items {
		if replicaset.IsActive(&p) {
			out = append(out, p)
		}
	}
	return out
}

// events lists "Reason Message" of the events about Deployment name.
func (c *cluster) events(name string) []string {
	c.t.Helper()
	sel := fields.Set{"involvedObject.kind": "Deployment", "involvedObject.name": name}.AsSelector().String()
	list, err := c.client.CoreV1().Events(c.ns).List(c.ctx, metav1.ListOptions{FieldSelector: sel})
	if err != nil {
		c.t.Fatal(err)
	}
	var out []string
	for _, e := range list.Items {
		out = append(out, e.Reason+" "+e.Message)
	}
	return out
}

// podMonitor watches the pods labelled app=name and checks, at every
// event, that at most maxPods exist (terminating ones included) and at
// least minAvailable are available.
type podMonitor struct {
	mu         sync.Mutex
	pods       map[string]*corev1.Pod
	minReady   int32
	maxPods    int
	minAvail   int
	violations []string
	// also, if set, is one more check of the pods (non-terminal ones);
	// it returns what is wrong or "".
	also   func(pods []*corev1.Pod) string
	events int
	peak   int
	low    int
	done   chan struct{}
}

func (c *cluster) monitor(name string, minReady int32, maxPods, minAvail int) *podMonitor {
	c.t.Helper()
	return c.monitorWith(name, minReady, maxPods, minAvail, nil)
}

func (c *cluster) monitorWith(name string, minReady int32, maxPods, minAvail int, also func([]*corev1.Pod) string) *podMonitor {
	c.t.Helper()
	list, err := c.client.CoreV1().Pods(c.ns).List(c.ctx, metav1.ListOptions{LabelSelector: "app=" + name})
	if err != nil {
		c.t.Fatal(err)
	}
	m := &podMonitor{pods: map[string]*corev1.Pod{}, minReady: minReady, maxPods: maxPods, minAvail: minAvail,
		done: make(chan struct{}), low: 1 << 30, also: also}
	for i := range list.Items {
		m.pods[list.Items[i].Name] = &list.Items[i]
	}
	m.check("initial list")
	w, err := c.client.CoreV1().Pods(c.ns).Watch(c.ctx, metav1.ListOptions{LabelSelector: "app=" + name, ResourceVersion: list.ResourceVersion})
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(c.ctx)
	go func() {
		defer close(m.done)
		defer w.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.ResultChan():
				if !ok {
					m.mu.Lock()
					m.violations = append(m.violations, "the watch ended early")
					m.mu.Unlock()
					return
				}
				pod, isPod := ev.Object.(*corev1.Pod)
				if !isPod {
					continue
				}
				m.mu.Lock()
				if ev.Type == watch.Deleted {
					delete(m.pods, pod.Name)
				} else {
					m.pods[pod.Name] = pod
				}
				m.mu.Unlock()
				m.check(fmt.Sprintf("%s %s", ev.Type, pod.Name))
			}
		}
	}()
	c.t.Cleanup(func() { cancel(); <-m.done })
	return m
}

// check counts the pods now known.
func (m *podMonitor) check(after string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	total, avail := 0, 0
	var live []*corev1.Pod
	for _, p := range m.pods {
		if replicaset.IsTerminal(p) {
			continue
		}
		live = append(live, p)
		total++
		if replicaset.IsActive(p) && replicaset.IsAvailable(p, m.minReady, now) {
			avail++
		}
	}
	m.events++
	m.peak, m.low = max(m.peak, total), min(m.low, avail)
	if total > m.maxPods {
		m.violations = append(m.violations, fmt.Sprintf("after %s: %d pods, more than %d", after, total, m.maxPods))
	}
	if avail < m.minAvail {
		m.violations = append(m.violations, fmt.Sprintf("after %s: %d available, fewer than %d", after, avail, m.minAvail))
	}
	if m.also != nil {
		if msg := m.also(live); msg != "" {
			m.violations = append(m.violations, fmt.Sprintf("after %s: %s", after, msg))
		}
	}
}

func (m *podMonitor) report(t *testing.T) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	t.Logf("monitor: %d events, at most %d pods, at least %d available", m.events, m.peak, m.low)
	for _, v := range m.violations {
		t.Errorf("bound broken %s", v)
	}
}

func rolling(d *appsv1.Deployment, surge, unavailable intstr.IntOrString) *appsv1.Deployment {
	d.Spec.Strategy = appsv1.DeploymentStrategy{
		Type:          appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &surge, MaxUnavailable: &unavailable},
	}
	return d
}

// testWriter sends the controllers' logs to the test's log, shown with -v
// or when the test fails.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(b), "\n"))
	return len(b), nil
}
