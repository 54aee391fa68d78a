package node

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-sh/skiff/controlplane"
	"github.com/skiff-sh/skiff/test/framework"
)

// cluster is a server with its control plane and one node.
type cluster struct {
	srv    *framework.Server
	node   *framework.Node
	client kubernetes.Interface
	// network is the cluster's claimed address space.
	network framework.Network
	// kubectlBin overrides kubectlPath() for this view of the cluster.
	kubectlBin string
}

// with returns a view of the cluster that runs another kubectl binary.
func (c *cluster) with(bin string) *cluster {
	cp := *c
	cp.kubectlBin = bin
	return &cp
}

func (c *cluster) kubectlPath() string {
	if c.kubectlBin != "" {
		return c.kubectlBin
	}
	return kubectlPath()
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	return startClusterWith(t, framework.NodeOptions{})
}

func startClusterWith(t *testing.T, opts framework.NodeOptions) *cluster {
	t.Helper()
	framework.NeedRoot(t)
	network := framework.ClaimNetwork(t)
	srv := framework.StartServer(t, framework.Options{
		ControlPlane: controlplane.AllWith(controlplane.Options{ClusterCIDR: network.PodCIDR}),
		Network:      &network,
		Log:          logSink(t, "server"),
	})
	opts.Log = logSink(t, "agent")
	node := framework.StartNode(t, srv, opts)
	return &cluster{srv: srv, node: node, client: srv.Client(), network: network}
}

// logSink returns a writer for component logs when SKIFF_TEST_LOGS is set.
func logSink(t *testing.T, name string) *os.File {
	dir := os.Getenv("SKIFF_TEST_LOGS")
	if dir == "" {
		return nil
	}
	f, err := os.Create(filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+"-"+name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func (c *cluster) namespace(t *testing.T, name string) string {
	t.Helper()
	_, err := c.client.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("namespace %s: %v", name, err)
	}
	return name
}

func (c *cluster) createPod(t *testing.T, pod *corev1.Pod) *corev1.Pod {
	t.Helper()
	p, err := c.client.CoreV1().Pods(pod.Namespace).Create(context.Background(), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating pod %s: %v", pod.Name, err)
	}
	return p
}

// waitPod polls a pod until cond holds, failing after timeout with the
// pod's last status.
func (c *cluster) waitPod(t *testing.T, ns, name string, timeout time.Duration, what string, cond func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last *corev1.Pod
	for time.Now().Before(deadline) {
		p, err := c.client.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err == nil {
			last = p
			if cond(p) {
				return p
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("pod %s/%s: not %s after %s; status: %s\nevents:\n%s", ns, name, what, timeout, statusString(last), c.events(ns, name))
	return nil
}

func (c *cluster) waitGone(t *testing.T, ns, name string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		_, err := c.client.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("pod %s/%s still exists after %s", ns, name, timeout)
}

func statusString(p *corev1.Pod) string {
	if p == nil {
		return "<none>"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "phase=%s node=%s ip=%s", p.Status.Phase, p.Spec.NodeName, p.Status.PodIP)
	for _, c := range p.Status.Conditions {
		fmt.Fprintf(&b, " %s=%s", c.Type, c.Status)
	}
	for _, cs := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		fmt.Fprintf(&b, "\n  %s ready=%v restarts=%d state=%s", cs.Name, cs.Ready, cs.RestartCount, stateString(cs.State))
	}
	return b.String()
}

func stateString(s corev1.ContainerState) string {
	switch {
	case s.Running != nil:
		return "running"
	case s.Terminated != nil:
		return fmt.Sprintf("terminated(%d %s %q)", s.Terminated.ExitCode, s.Terminated.Reason, s.Terminated.Message)
	case s.Waiting != nil:
		return fmt.Sprintf("waiting(%s %q)", s.Waiting.Reason, s.Waiting.Message)
	}
	return "none"
}

func (c *cluster) events(ns, name string) string {
	list, err := c.client.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, e := range list.Items {
		if e.InvolvedObject.Name == name {
			fmt.Fprintf(&b, "  %s %s: %s (x%d)\n", e.Type, e.Reason, e.Message, e.Count)
		}
	}
	return b.String()
}

func running(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning }

func ready(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// kubectl runs a stock kubectl (1.33 unless KUBECTL is set) against the
// cluster and returns its output; it fails the test on a non-zero exit.
func (c *cluster) kubectl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := c.kubectlErr(t, "", args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func kubectlPath() string {
	if p := os.Getenv("KUBECTL"); p != "" {
		return p
	}
	return "/usr/lib/google-cloud-sdk/bin/kubectl.1.33"
}

func (c *cluster) kubectlErr(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.kubectlPath(), args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+c.srv.Kubeconfig, "HOME="+t.TempDir())
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.String() + errb.String(), err
	}
	return out.String(), nil
}

func busyboxPod(ns, name string, command ...string) *corev1.Pod {
	zero := int64(0)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: &zero,
			Containers: []corev1.Container{{
				Name: "main", Image: "busybox", Command: command,
			}},
		},
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	return string(b)
}
