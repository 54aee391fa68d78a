package controlplane

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-sh/skiff/controlplane"
	"github.com/skiff-sh/skiff/scheduler"
	"github.com/skiff-sh/skiff/sim"
	"github.com/skiff-sh/skiff/test/framework"
)

// startCluster starts a server with its control plane and n simulated nodes.
func startCluster(t *testing.T, nodes int) (*framework.Server, kubernetes.Interface, context.Context) {
	t.Helper()
	srv := framework.StartServer(t, framework.Options{ControlPlane: controlplane.All()})
	client := srv.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	done := make(chan error, 1)
	go func() {
		done <- sim.Run(ctx, client, sim.Options{Nodes: nodes, LeaseInterval: time.Second, Zones: 2, RunDuration: 500 * time.Millisecond})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("sim: %v", err)
		}
	})
	eventually(t, fmt.Sprintf("%d ready nodes", nodes), func() (bool, string) {
		list, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		ready := 0
		for _, n := range list.Items {
			for _, c := range n.Status.Conditions {
				if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
					ready++
				}
			}
		}
		return ready == nodes, fmt.Sprintf("%d ready", ready)
	})
	return srv, client, ctx
}

func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		ok, msg := cond()
		if ok {
			return
		}
		last = msg
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s (last: %s)", what, last)
}

func podOf(name string, cpu string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "spread"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app", Image: "busybox",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}},
		}}},
	}
}

// Pods land on ready nodes, spread across them, and run.
func TestPodsAreScheduledAndRun(t *testing.T) {
	_, client, ctx := startCluster(t, 3)
	for i := 0; i < 30; i++ {
		if _, err := client.CoreV1().Pods("default").Create(ctx, podOf(fmt.Sprintf("p%d", i), "100m"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	perNode := map[string]int{}
	eventually(t, "30 running pods", func() (bool, string) {
		list, err := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("status.phase", "Running").String()})
		if err != nil {
			return false, err.Error()
		}
		perNode = map[string]int{}
		for _, p := range list.Items {
			perNode[p.Spec.NodeName]++
		}
		return len(list.Items) == 30, fmt.Sprintf("%d running", len(list.Items))
	})
	if len(perNode) != 3 {
		t.Fatalf("pods on %d nodes, want all 3: %v", len(perNode), perNode)
	}
	for node, n := range perNode {
		if n < 5 {
			t.Errorf("node %s got only %d of 30 pods: %v", node, n, perNode)
		}
	}
}

// A pod that fits nowhere says why: the condition, the event, and the
// per-node explanation a `why` command reads.
func TestUnschedulablePodExplainsItself(t *testing.T) {
	_, client, ctx := startCluster(t, 3)
	if _, err := client.CoreV1().Pods("default").Create(ctx, podOf("huge", "100"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	const want = "0/3 nodes are available: 3 Insufficient cpu."
	eventually(t, "PodScheduled=False", func() (bool, string) {
		p, err := client.CoreV1().Pods("default").Get(ctx, "huge", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == "Unschedulable" {
				return strings.HasPrefix(c.Message, want), c.Message
			}
		}
		return false, "no PodScheduled condition"
	})
	eventually(t, "a FailedScheduling event", func() (bool, string) {
		evs, err := client.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=huge,reason=FailedScheduling"})
		if err != nil || len(evs.Items) == 0 {
			return false, fmt.Sprint(err)
		}
		return strings.HasPrefix(evs.Items[0].Message, want) && evs.Items[0].Type == corev1.EventTypeWarning, evs.Items[0].Message
	})
	p, err := client.CoreV1().Pods("default").Get(ctx, "huge", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	raw := p.Annotations[scheduler.AnnotationUnschedulable]
	expl, err := scheduler.ParseExplanation(raw)
	if err != nil {
		t.Fatalf("explanation %q: %v", raw, err)
	}
	b, _ := json.Marshal(expl)
	if !strings.Contains(string(b), "sim-0") || !strings.Contains(string(b), "Insufficient cpu") {
		t.Errorf("explanation does not name the nodes and the reason: %s", b)
	}
}
