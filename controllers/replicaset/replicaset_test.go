package replicaset

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-sh/skiff/controllers/replicaset/fakenode"
)

func TestReplicaSetScalesUpAndDown(t *testing.T) {
	c := startCluster(t, fakenode.Options{})
	labels := map[string]string{"app": "web"}
	rs, err := c.client.AppsV1().ReplicaSets(c.ns).Create(c.ctx, replicaSet("web", 3, labels), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	get := func() *appsv1.ReplicaSet {
		got, err := c.client.AppsV1().ReplicaSets(c.ns).Get(c.ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	converged := func(n int32) func() (bool, string) {
		return func() (bool, string) {
			rs := get()
			st := rs.Status
			pods := c.podsOf(t, rs)
			ok := st.Replicas == n && st.ReadyReplicas == n && st.AvailableReplicas == n &&
				st.FullyLabeledReplicas == n && st.ObservedGeneration == rs.Generation && len(pods) == int(n)
			return ok, fmt.Sprintf("status %+v, %d pods", st, len(pods))
		}
	}
	eventually(t, 20*time.Second, "3 ready replicas", converged(3))

	for _, p := range c.podsOf(t, rs) {
		if !strings.HasPrefix(p.Name, "web-") || p.GenerateName != "web-" {
			t.Errorf("pod %s (generateName %q) is not named after its set", p.Name, p.GenerateName)
		}
		ref := metav1.GetControllerOf(&p)
		if ref.Kind != "ReplicaSet" || ref.APIVersion != "apps/v1" || ref.Name != "web" ||
			ref.BlockOwnerDeletion == nil || !*ref.BlockOwnerDeletion {
			t.Errorf("pod %s controller reference = %+v", p.Name, ref)
		}
		if p.Labels["app"] != "web" {
			t.Errorf("pod %s labels = %v", p.Name, p.Labels)
		}
	}

	// Scale down: two pods go, with events naming them.
	patch := []byte(`{"spec":{"replicas":1}}`)
	if _, err := c.client.AppsV1().ReplicaSets(c.ns).Patch(c.ctx, "web", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "1 replica", converged(1))

	// Scale up again through the scale subresource, as kubectl scale does.
	scale, err := c.client.AppsV1().ReplicaSets(c.ns).GetScale(c.ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	scale.Spec.Replicas = 4
	if _, err := c.client.AppsV1().ReplicaSets(c.ns).UpdateScale(c.ctx, "web", scale, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "4 replicas", converged(4))

	eventually(t, 10*time.Second, "events", func() (bool, string) {
		ev := c.eventsFor(t, "ReplicaSet", "web")
		creates, deletes := 0, 0
		for _, e := range ev {
			if strings.HasPrefix(e, "Normal SuccessfulCreate Created pod: web-") {
				creates++
			}
			if strings.HasPrefix(e, "Normal SuccessfulDelete Deleted pod: web-") {
				deletes++
			}
		}
		// Events with identical text are aggregated by count, so at least
		// one distinct event per pod name.
		return creates >= 6 && deletes >= 2, strings.Join(ev, "\n")
	})
}

func TestReplicaSetAdoptsAndReleasesPods(t *testing.T) {
	c := startCluster(t, fakenode.Options{})
	labels := map[string]string{"app": "adopt"}
	// An orphan that matches, created before the set.
	orphan := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "orphan", Labels: map[string]string{"app": "adopt", "extra": "x"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx"}}},
	}
	if _, err := c.client.CoreV1().Pods(c.ns).Create(c.ctx, orphan, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// A pod controlled by someone else: never adopted.
	yes := true
	foreign := orphan.DeepCopy()
	foreign.Name = "foreign"
	foreign.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "ReplicationController", Name: "other", UID: "other-uid", Controller: &yes}}
	if _, err := c.client.CoreV1().Pods(c.ns).Create(c.ctx, foreign, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rs, err := c.client.AppsV1().ReplicaSets(c.ns).Create(c.ctx, replicaSet("adopter", 2, labels), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the orphan adopted and one pod created", func() (bool, string) {
		pods := c.podsOf(t, rs)
		names := []string{}
		adopted := false
		for _, p := range pods {
			names = append(names, p.Name)
			adopted = adopted || p.Name == "orphan"
		}
		return adopted && len(pods) == 2, fmt.Sprint(names)
	})
	got, _ := c.client.CoreV1().Pods(c.ns).Get(c.ctx, "foreign", metav1.GetOptions{})
	if ref := metav1.GetControllerOf(got); ref == nil || ref.UID != "other-uid" {
		t.Errorf("foreign pod's controller changed to %+v", ref)
	}

	// Relabel the adopted pod out of the selector: it is released (its
	// owner reference removed) and replaced.
	patch := []byte(`{"metadata":{"labels":{"app":"elsewhere"}}}`)
	if _, err := c.client.CoreV1().Pods(c.ns).Patch(c.ctx, "orphan", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the relabelled pod released and replaced", func() (bool, string) {
		p, err := c.client.CoreV1().Pods(c.ns).Get(c.ctx, "orphan", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		pods := c.podsOf(t, rs)
		return len(p.OwnerReferences) == 0 && activeCount(pods) == 2,
			fmt.Sprintf("owners %v, %d pods of the set", p.OwnerReferences, len(pods))
	})
}

func TestReplicaSetDeletesLeastValuablePodsFirst(t *testing.T) {
	// The first pod the node sees never becomes ready.
	var mu sync.Mutex
	var first types.UID
	node := fakenode.Options{ReadyAfter: func(p *corev1.Pod) (time.Duration, bool) {
		mu.Lock()
		defer mu.Unlock()
		if first == "" {
			first = p.UID
		}
		return 0, p.UID != first
	}}
	c := startCluster(t, node)
	rs, err := c.client.AppsV1().ReplicaSets(c.ns).Create(c.ctx, replicaSet("rank", 4, map[string]string{"app": "rank"}), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "4 pods, 3 ready", func() (bool, string) {
		got, _ := c.client.AppsV1().ReplicaSets(c.ns).Get(c.ctx, "rank", metav1.GetOptions{})
		return got.Status.Replicas == 4 && got.Status.ReadyReplicas == 3, fmt.Sprintf("%+v", got.Status)
	})
	// Of the ready pods, make one cheap and one dear to lose.
	var ready []string
	for _, p := range c.podsOf(t, rs) {
		if p.UID != first {
			ready = append(ready, p.Name)
		}
	}
	slices.Sort(ready)
	cheap, dear := ready[0], ready[1]
	for name, cost := range map[string]string{cheap: "-100", dear: "100"} {
		patch := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:%q}}}`, DeletionCostAnnotation, cost)
		if _, err := c.client.CoreV1().Pods(c.ns).Patch(c.ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// Let the controller's cache (the factory's shared pod informer) see
	// the annotations before scaling.
	pods := c.factory.Core().V1().Pods().Lister().Pods(c.ns)
	eventually(t, 10*time.Second, "annotations in the cache", func() (bool, string) {
		a, err1 := pods.Get(cheap)
		b, err2 := pods.Get(dear)
		return err1 == nil && err2 == nil && a.Annotations[DeletionCostAnnotation] == "-100" &&
			b.Annotations[DeletionCostAnnotation] == "100", ""
	})

	// Down to 2: the unready pod and the cheap one go.
	patch := []byte(`{"spec":{"replicas":2}}`)
	if _, err := c.client.AppsV1().ReplicaSets(c.ns).Patch(c.ctx, "rank", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "2 pods", func() (bool, string) {
		return activeCount(c.podsOf(t, rs)) == 2, ""
	})
	var left []string
	for _, p := range c.podsOf(t, rs) {
		if IsActive(&p) {
			left = append(left, p.Name)
			if p.UID == first || p.Name == cheap {
				t.Errorf("pod %s survived the scale down", p.Name)
			}
		}
	}
	if !slices.Contains(left, dear) {
		t.Errorf("the pod with the highest deletion cost %s was deleted; left %v", dear, left)
	}
}

func TestReplicaSetMinReadySeconds(t *testing.T) {
	c := startCluster(t, fakenode.Options{})
	rs := replicaSet("slow", 2, map[string]string{"app": "slow"})
	rs.Spec.MinReadySeconds = 2
	if _, err := c.client.AppsV1().ReplicaSets(c.ns).Create(c.ctx, rs, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var readyAt time.Time
	eventually(t, 20*time.Second, "2 ready", func() (bool, string) {
		got, _ := c.client.AppsV1().ReplicaSets(c.ns).Get(c.ctx, "slow", metav1.GetOptions{})
		if got.Status.ReadyReplicas == 2 && readyAt.IsZero() {
			readyAt = time.Now()
			if got.Status.AvailableReplicas != 0 {
				t.Errorf("pods available as soon as ready: %+v", got.Status)
			}
		}
		return got.Status.ReadyReplicas == 2, fmt.Sprintf("%+v", got.Status)
	})
	eventually(t, 20*time.Second, "2 available", func() (bool, string) {
		got, _ := c.client.AppsV1().ReplicaSets(c.ns).Get(c.ctx, "slow", metav1.GetOptions{})
		return got.Status.AvailableReplicas == 2, fmt.Sprintf("%+v", got.Status)
	})
	// Ready times are stored to the second, so availability may come up
	// to a second early; it must not come at once, nor much later.
	if took := time.Since(readyAt); took < 900*time.Millisecond || took > 5*time.Second {
		t.Errorf("available %v after ready, want about 2s", took)
	}
}

func TestReplicaSetReportsCreateFailures(t *testing.T) {
	c := startCluster(t, fakenode.Options{})
	rs := replicaSet("blocked", 3, map[string]string{"app": "blocked"})
	rs.Spec.Template.Spec.PriorityClassName = "missing-class"
	if _, err := c.client.AppsV1().ReplicaSets(c.ns).Create(c.ctx, rs, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "a ReplicaFailure condition", func() (bool, string) {
		got, _ := c.client.AppsV1().ReplicaSets(c.ns).Get(c.ctx, "blocked", metav1.GetOptions{})
		for _, cond := range got.Status.Conditions {
			if cond.Type == appsv1.ReplicaSetReplicaFailure && cond.Status == corev1.ConditionTrue &&
				cond.Reason == "FailedCreate" && strings.Contains(cond.Message, "missing-class") {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", got.Status)
	})
	eventually(t, 10*time.Second, "a FailedCreate event", func() (bool, string) {
		ev := c.eventsFor(t, "ReplicaSet", "blocked")
		for _, e := range ev {
			if strings.HasPrefix(e, "Warning FailedCreate Error creating: ") && strings.Contains(e, "missing-class") {
				return true, ""
			}
		}
		return false, strings.Join(ev, "\n")
	})
	pc := &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "missing-class"}, Value: 10}
	if _, err := c.client.SchedulingV1().PriorityClasses().Create(c.ctx, pc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "3 replicas and no failure", func() (bool, string) {
		got, _ := c.client.AppsV1().ReplicaSets(c.ns).Get(c.ctx, "blocked", metav1.GetOptions{})
		return got.Status.Replicas == 3 && len(got.Status.Conditions) == 0, fmt.Sprintf("%+v", got.Status)
	})
}

func TestReplicationController(t *testing.T) {
	c := startCluster(t, fakenode.Options{})
	labels := map[string]string{"app": "legacy"}
	orphan := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "legacy-orphan", Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx"}}},
	}
	if _, err := c.client.CoreV1().Pods(c.ns).Create(c.ctx, orphan, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	replicas := int32(3)
	rc := &corev1.ReplicationController{
		ObjectMeta: metav1.ObjectMeta{Name: "legacy"},
		Spec: corev1.ReplicationControllerSpec{
			Replicas: &replicas,
			Selector: labels,
			Template: &corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "legacy", "tier": "web"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx"}}},
			},
		},
	}
	created, err := c.client.CoreV1().ReplicationControllers(c.ns).Create(c.ctx, rc, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "3 ready replicas, one adopted", func() (bool, string) {
		got, _ := c.client.CoreV1().ReplicationControllers(c.ns).Get(c.ctx, "legacy", metav1.GetOptions{})
		st := got.Status
		pods := c.podsOf(t, created)
		adopted := slices.ContainsFunc(pods, func(p corev1.Pod) bool { return p.Name == "legacy-orphan" })
		// The adopted pod lacks the template's tier label.
		return adopted && st.Replicas == 3 && st.ReadyReplicas == 3 && st.AvailableReplicas == 3 &&
			st.FullyLabeledReplicas == 2 && st.ObservedGeneration == got.Generation, fmt.Sprintf("%+v", st)
	})
	for _, p := range c.podsOf(t, created) {
		ref := metav1.GetControllerOf(&p)
		if ref.APIVersion != "v1" || ref.Kind != "ReplicationController" {
			t.Errorf("pod %s controller = %+v", p.Name, ref)
		}
	}
	patch := []byte(`{"spec":{"replicas":0}}`)
	if _, err := c.client.CoreV1().ReplicationControllers(c.ns).Patch(c.ctx, "legacy", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "no pods", func() (bool, string) {
		got, _ := c.client.CoreV1().ReplicationControllers(c.ns).Get(c.ctx, "legacy", metav1.GetOptions{})
		return len(c.podsOf(t, created)) == 0 && got.Status.Replicas == 0, fmt.Sprintf("%+v", got.Status)
	})
}

func TestReplicaSetReplacesFinishedAndTerminatingPods(t *testing.T) {
	c := startCluster(t, fakenode.Options{TerminationDelay: 3 * time.Second})
	rs, err := c.client.AppsV1().ReplicaSets(c.ns).Create(c.ctx, replicaSet("keep", 2, map[string]string{"app": "keep"}), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	status := func() appsv1.ReplicaSetStatus {
		got, _ := c.client.AppsV1().ReplicaSets(c.ns).Get(c.ctx, "keep", metav1.GetOptions{})
		return got.Status
	}
	eventually(t, 20*time.Second, "2 ready", func() (bool, string) {
		st := status()
		return st.ReadyReplicas == 2, fmt.Sprintf("%+v", st)
	})
	pods := c.podsOf(t, rs)

	// A pod that failed no longer counts: it is replaced.
	failed := pods[0].DeepCopy()
	failed.Status.Phase = corev1.PodFailed
	if _, err := c.client.CoreV1().Pods(c.ns).UpdateStatus(c.ctx, failed, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	// A pod being deleted (gracefully: the node takes 3s to stop it) no
	// longer counts either: it is replaced at once.
	if err := c.client.CoreV1().Pods(c.ns).Delete(c.ctx, pods[1].Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "two replacements while the old pods linger", func() (bool, string) {
		all := c.podsOf(t, rs)
		st := status()
		terminating := st.TerminatingReplicas != nil && *st.TerminatingReplicas == 1
		return len(all) == 4 && activeCount(all) == 2 && st.Replicas == 2 && terminating,
			fmt.Sprintf("%d pods, %d active, status %+v", len(all), activeCount(all), st)
	})
}
