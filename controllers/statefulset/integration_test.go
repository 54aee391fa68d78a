package statefulset

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/kubectl/pkg/polymorphichelpers"
	"k8s.io/kubectl/pkg/util/podutils"

	"github.com/skiff-sh/skiff/sim"
	"github.com/skiff-sh/skiff/test/framework"
)

const waitFor = 30 * time.Second

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

// bindPods plays the scheduler: every unbound pod in ns goes to one of
// the nodes, in turn.
func bindPods(ctx context.Context, t *testing.T, client kubernetes.Interface, ns string, nodes []string) {
	next := 0
	for ctx.Err() == nil {
		pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName="})
		if err == nil {
			for _, p := range pods.Items {
				if p.DeletionTimestamp != nil {
					continue
				}
				node := nodes[next%len(nodes)]
				next++
				err := client.CoreV1().Pods(ns).Bind(ctx, &corev1.Binding{
					ObjectMeta: metav1.ObjectMeta{Name: p.Name, UID: p.UID},
					Target:     corev1.ObjectReference{Kind: "Node", Name: node},
				}, metav1.CreateOptions{})
				if err != nil && ctx.Err() == nil {
					t.Logf("bind %s: %v", p.Name, err)
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// journal records, from a watch, the order in which pods appear and start
// terminating, and whether each pod's predecessor was ready when it
// appeared.
type journal struct {
	mu        sync.Mutex
	latest    map[string]*corev1.Pod
	created   []string
	deleted   []string
	violation []string
}

func watchPods(ctx context.Context, t *testing.T, client kubernetes.Interface, ns string) *journal {
	w, err := client.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	j := &journal{latest: map[string]*corev1.Pod{}}
	go func() {
		defer w.Stop()
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			j.mu.Lock()
			prev := j.latest[p.Name]
			switch ev.Type {
			case watch.Added:
				j.created = append(j.created, p.Name)
				var ord int
				if _, err := fmt.Sscanf(p.Name, "web-%d", &ord); err == nil && ord > 0 {
					before := j.latest[fmt.Sprintf("web-%d", ord-1)]
					if before == nil || !podutils.IsPodReady(before) || before.DeletionTimestamp != nil {
						j.violation = append(j.violation, fmt.Sprintf("%s created before web-%d was ready", p.Name, ord-1))
					}
				}
				j.latest[p.Name] = p
			case watch.Modified:
				if p.DeletionTimestamp != nil && (prev == nil || prev.DeletionTimestamp == nil) {
					j.deleted = append(j.deleted, p.Name)
				}
				j.latest[p.Name] = p
			case watch.Deleted:
				if prev != nil && prev.DeletionTimestamp == nil {
					j.deleted = append(j.deleted, p.Name)
				}
				delete(j.latest, p.Name)
			}
			j.mu.Unlock()
		}
	}()
	return j
}

func (j *journal) snapshot() (created, deleted, violations []string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]string(nil), j.created...), append([]string(nil), j.deleted...), append([]string(nil), j.violation...)
}

func TestStatefulSetAgainstServer(t *testing.T) {
	srv := framework.StartServer(t, framework.Options{})
	client := srv.Client()
	ctx, cancel := context.WithCancel(context.Background())
	const ns = "default"

	simDone := make(chan error, 1)
	go func() {
		simDone <- sim.Run(ctx, client, sim.Options{Nodes: 2, NamePrefix: "stsn-", LeaseInterval: time.Second,
			StartupDelay: 200 * time.Millisecond, TerminationDelay: 50 * time.Millisecond})
	}()
	t.Cleanup(func() { cancel(); <-simDone })

	factory := informers.NewSharedInformerFactory(client, 0)
	ctrl, err := New(client, factory, Options{Recorder: record.NewFakeRecorder(1000)})
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	go func() { _ = ctrl.Start(ctx) }()
	go bindPods(ctx, t, client, ns, []string{"stsn-0", "stsn-1"})
	j := watchPods(ctx, t, client, ns)

	set := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.StatefulSetSpec{
			Replicas:    ptr(int32(3)),
			ServiceName: "web",
			Selector:    &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "web:1"}}},
			},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
				ObjectMeta: metav1.ObjectMeta{Name: "data"},
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
				},
			}},
		},
	}
	if _, err := client.AppsV1().StatefulSets(ns).Create(ctx, set, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRolledOut(ctx, t, client, ns, 3)
	created, _, violations := j.snapshot()
	if fmt.Sprint(created) != "[web-0 web-1 web-2]" || len(violations) > 0 {
		t.Errorf("creation order %v, violations %v", created, violations)
	}
	for i := 0; i < 3; i++ {
		p, err := client.CoreV1().Pods(ns).Get(ctx, fmt.Sprintf("web-%d", i), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p.Spec.Hostname != p.Name || p.Spec.Subdomain != "web" || p.Labels[appsv1.StatefulSetPodNameLabel] != p.Name ||
			p.Labels[appsv1.PodIndexLabel] != fmt.Sprint(i) {
			t.Errorf("pod %s identity: hostname %q subdomain %q labels %v", p.Name, p.Spec.Hostname, p.Spec.Subdomain, p.Labels)
		}
	}

	// A deleted pod comes back under its name, with the same claim.
	claim, err := client.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "data-web-1", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("claim data-web-1: %v", err)
	}
	old, err := client.CoreV1().Pods(ns).Get(ctx, "web-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := client.CoreV1().Pods(ns).Delete(ctx, "web-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "web-1 recreated and ready", func() (bool, string) {
		p, err := client.CoreV1().Pods(ns).Get(ctx, "web-1", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return p.UID != old.UID && podutils.IsPodReady(p), string(p.Status.Phase)
	})
	again, err := client.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "data-web-1", metav1.GetOptions{})
	if err != nil || again.UID != claim.UID {
		t.Errorf("claim data-web-1 did not survive the pod: %v", err)
	}
	p1, _ := client.CoreV1().Pods(ns).Get(ctx, "web-1", metav1.GetOptions{})
	if v := p1.Spec.Volumes; len(v) == 0 || v[0].PersistentVolumeClaim == nil || v[0].PersistentVolumeClaim.ClaimName != "data-web-1" {
		t.Errorf("web-1 volumes: %+v", p1.Spec.Volumes)
	}
	waitRolledOut(ctx, t, client, ns, 3)

	// A new template rolls from the highest ordinal down.
	_, deletedBefore, _ := j.snapshot()
	patch := `{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"web:2"}]}}}}`
	if _, err := client.AppsV1().StatefulSets(ns).Patch(ctx, "web", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRolledOut(ctx, t, client, ns, 3)
	_, deleted, _ := j.snapshot()
	if got := fmt.Sprint(deleted[len(deletedBefore):]); got != "[web-2 web-1 web-0]" {
		t.Errorf("update order %s, want [web-2 web-1 web-0]", got)
	}
	st, _ := client.AppsV1().StatefulSets(ns).Get(ctx, "web", metav1.GetOptions{})
	if st.Status.CurrentRevision != st.Status.UpdateRevision || st.Status.UpdatedReplicas != 3 {
		t.Errorf("status after rollout: %+v", st.Status)
	}
	revs, err := client.AppsV1().ControllerRevisions(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil || len(revs.Items) != 2 {
		t.Errorf("revisions: %d %v", len(revs.Items), err)
	}

	// Scale down with whenScaled=Delete: highest first, and the claims of
	// the removed pods are handed to those pods for the garbage collector.
	patch = `{"spec":{"replicas":1,"persistentVolumeClaimRetentionPolicy":{"whenScaled":"Delete","whenDeleted":"Delete"}}}`
	if _, err := client.AppsV1().StatefulSets(ns).Patch(ctx, "web", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRolledOut(ctx, t, client, ns, 1)
	eventually(t, "scaled down to web-0", func() (bool, string) {
		pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return false, err.Error()
		}
		return len(pods.Items) == 1 && pods.Items[0].Name == "web-0", fmt.Sprint(len(pods.Items))
	})
	_, deleted, _ = j.snapshot()
	if got := fmt.Sprint(deleted[len(deleted)-2:]); got != "[web-2 web-1]" {
		t.Errorf("scale-down order %s", got)
	}
	for claimName, owner := range map[string]string{"data-web-0": "StatefulSet", "data-web-1": "Pod", "data-web-2": "Pod"} {
		c, err := client.CoreV1().PersistentVolumeClaims(ns).Get(ctx, claimName, metav1.GetOptions{})
		if err != nil {
			t.Errorf("claim %s: %v", claimName, err)
			continue
		}
		if len(c.OwnerReferences) != 1 || c.OwnerReferences[0].Kind != owner {
			t.Errorf("claim %s owners %+v, want one %s", claimName, c.OwnerReferences, owner)
		}
	}
}

// waitRolledOut waits for kubectl's rollout status check to pass with
// the wanted number of ready replicas.
func waitRolledOut(ctx context.Context, t *testing.T, client kubernetes.Interface, ns string, replicas int32) {
	t.Helper()
	eventually(t, fmt.Sprintf("statefulset rolled out with %d replicas", replicas), func() (bool, string) {
		set, err := client.AppsV1().StatefulSets(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		raw, err := runtime.DefaultUnstructuredConverter.ToUnstructured(set)
		if err != nil {
			return false, err.Error()
		}
		msg, done, err := (&polymorphichelpers.StatefulSetStatusViewer{}).Status(&unstructured.Unstructured{Object: raw}, 0)
		if err != nil {
			return false, err.Error()
		}
		st := set.Status
		ok := done && st.Replicas == replicas && st.ReadyReplicas == replicas && st.AvailableReplicas == replicas &&
			st.UpdatedReplicas == replicas && st.CurrentRevision == st.UpdateRevision
		return ok, fmt.Sprintf("%s %+v", msg, st)
	})
}
