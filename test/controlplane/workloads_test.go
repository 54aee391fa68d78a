package controlplane

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-sh/skiff/controlplane"
	"github.com/skiff-sh/skiff/sim"
	"github.com/skiff-sh/skiff/test/framework"
)

// fleet runs simulated nodes until its stop function is called.
func fleet(t *testing.T, ctx context.Context, client kubernetes.Interface, prefix string, n int) (stop func()) {
	t.Helper()
	fctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- sim.Run(fctx, client, sim.Options{Nodes: n, NamePrefix: prefix, LeaseInterval: 500 * time.Millisecond, StatusInterval: time.Second})
	}()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	return stop
}

func webDeployment(name string, replicas int32, tolerate time.Duration) *appsv1.Deployment {
	secs := int64(tolerate / time.Second)
	lbls := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: lbls},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: lbls},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{Name: "web", Image: "nginx"}},
					Tolerations: []corev1.Toleration{
						{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: &secs},
						{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: &secs},
					},
				},
			},
		},
	}
}

// runningPods counts the app's running pods per node.
func runningPods(ctx context.Context, client kubernetes.Interface, app string) (map[string]int, int, error) {
	list, err := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
	if err != nil {
		return nil, 0, err
	}
	per := map[string]int{}
	total := 0
	for _, p := range list.Items {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			per[p.Spec.NodeName]++
			total++
		}
	}
	return per, total, nil
}

// A lost node goes Unknown, its pods are evicted once their toleration
// runs out, and the ReplicaSet brings them back on the nodes that remain.
func TestNodeLossMovesPodsElsewhere(t *testing.T) {
	srv := framework.StartServer(t, framework.Options{ControlPlane: controlplane.AllWith(controlplane.Options{
		NodeGracePeriod: 3 * time.Second, NodeEvictionRate: 100,
	})})
	client := srv.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	stopDoomed := fleet(t, ctx, client, "doomed-", 2)
	fleet(t, ctx, client, "steady-", 2)

	if _, err := client.AppsV1().Deployments("default").Create(ctx, webDeployment("web", 8, 2*time.Second), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "8 running pods on both fleets", func() (bool, string) {
		per, total, err := runningPods(ctx, client, "web")
		if err != nil {
			return false, err.Error()
		}
		doomed := per["doomed-0"] + per["doomed-1"]
		return total == 8 && doomed > 0, fmt.Sprint(per)
	})

	stopDoomed()
	eventually(t, "the lost nodes Unknown and tainted", func() (bool, string) {
		n, err := client.CoreV1().Nodes().Get(ctx, "doomed-0", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		unknown, tainted := false, false
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionUnknown {
				unknown = true
			}
		}
		for _, tn := range n.Spec.Taints {
			if tn.Key == corev1.TaintNodeUnreachable && tn.Effect == corev1.TaintEffectNoExecute {
				tainted = true
			}
		}
		return unknown && tainted, fmt.Sprintf("unknown=%v tainted=%v", unknown, tainted)
	})
	eventually(t, "8 running pods, all on the steady nodes", func() (bool, string) {
		per, total, err := runningPods(ctx, client, "web")
		if err != nil {
			return false, err.Error()
		}
		return total == 8 && per["doomed-0"]+per["doomed-1"] == 0, fmt.Sprint(per)
	})
}

// Deleting a Deployment (background propagation, kubectl's default) leaves
// no ReplicaSet and no pod behind; deleting a namespace empties it.
func TestCascadingDeletes(t *testing.T) {
	srv := framework.StartServer(t, framework.Options{ControlPlane: controlplane.All()})
	client := srv.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	fleet(t, ctx, client, "n-", 2)

	if _, err := client.AppsV1().Deployments("default").Create(ctx, webDeployment("web", 3, 300*time.Second), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "3 running pods", func() (bool, string) {
		_, total, err := runningPods(ctx, client, "web")
		return err == nil && total == 3, fmt.Sprint(total, err)
	})
	bg := metav1.DeletePropagationBackground
	if err := client.AppsV1().Deployments("default").Delete(ctx, "web", metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "no ReplicaSet and no pod left", func() (bool, string) {
		rs, err := client.AppsV1().ReplicaSets("default").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		pods, err := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return false, err.Error()
		}
		return len(rs.Items) == 0 && len(pods.Items) == 0, fmt.Sprintf("%d replicasets, %d pods", len(rs.Items), len(pods.Items))
	})

	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "scratch"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	dep := webDeployment("app", 2, 300*time.Second)
	if _, err := client.AppsV1().Deployments("scratch").Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().ConfigMaps("scratch").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "2 running pods in scratch", func() (bool, string) {
		list, err := client.CoreV1().Pods("scratch").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		running := 0
		for _, p := range list.Items {
			if p.Status.Phase == corev1.PodRunning {
				running++
			}
		}
		return running == 2, fmt.Sprint(running)
	})
	if err := client.CoreV1().Namespaces().Delete(ctx, "scratch", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "namespace scratch gone", func() (bool, string) {
		_, err := client.CoreV1().Namespaces().Get(ctx, "scratch", metav1.GetOptions{})
		return err != nil, fmt.Sprint(err)
	})
}
