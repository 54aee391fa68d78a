package deployment

import (
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-sh/skiff/controllers/replicaset/fakenode"
)

func TestProgressDeadlineExceededWhenPodsNeverBecomeReady(t *testing.T) {
	c := startCluster(t, fakenode.Options{ReadyDelay: 50 * time.Millisecond})
	d := webDeployment("stuck", 2, "nginx:1")
	d.Spec.ProgressDeadlineSeconds = ptr(int32(2))
	d = c.create(d)
	c.waitRolledOut("stuck", 20*time.Second)

	// The new template's pods never become ready.
	d = c.get("stuck")
	d.Spec.Template.Spec.Containers[0].Image = "nginx:broken"
	d.Spec.Template.Annotations = map[string]string{fakenode.AnnotationReadyAfter: "never"}
	if _, err := c.client.AppsV1().Deployments(c.ns).Update(c.ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	var newRS string
	eventually(t, 20*time.Second, "ProgressDeadlineExceeded", func() (bool, string) {
		d := c.get("stuck")
		cond := condition(d.Status, appsv1.DeploymentProgressing)
		if cond == nil {
			return false, "no Progressing condition"
		}
		if rs := byImage(c.replicaSets(d), "nginx:broken"); rs != nil {
			newRS = rs.Name
		}
		return cond.Status == corev1.ConditionFalse && cond.Reason == ReasonProgressDeadlineExceeded &&
			cond.Message == fmt.Sprintf("ReplicaSet %q has timed out progressing.", newRS), fmt.Sprintf("%+v", cond)
	})
	d = c.get("stuck")
	// maxUnavailable 25% of 2 rounds to 0: the old pods stay, so the
	// Deployment is still available while the rollout is stuck.
	if cond := condition(d.Status, appsv1.DeploymentAvailable); cond == nil || cond.Status != corev1.ConditionTrue ||
		cond.Reason != ReasonMinimumReplicasAvailable {
		t.Errorf("Available = %+v", cond)
	}
	out, err := c.kubectl("1.33", "rollout", "status", "deployment/stuck", "--timeout=20s")
	if err == nil || !strings.Contains(out, `deployment "stuck" exceeded its progress deadline`) {
		t.Errorf("rollout status: err %v, output:\n%s", err, out)
	}
}

func TestRevisionHistoryLimitRemovesOldReplicaSets(t *testing.T) {
	c := startCluster(t, fakenode.Options{TerminationDelay: 20 * time.Millisecond})
	d := webDeployment("hist", 1, "nginx:1")
	d.Spec.RevisionHistoryLimit = ptr(int32(1))
	d = c.create(d)
	c.waitRolledOut("hist", 20*time.Second)
	for _, img := range []string{"nginx:2", "nginx:3", "nginx:4"} {
		c.mustKubectl("1.33", "set", "image", "deployment/hist", "app="+img)
		c.waitRolledOut("hist", 20*time.Second)
	}
	eventually(t, 20*time.Second, "one old replica set kept", func() (bool, string) {
		rss := c.replicaSets(d)
		return len(rss) == 2 && byImage(rss, "nginx:3") != nil && byImage(rss, "nginx:4") != nil, rsSummary(rss)
	})
}

func TestScalingAndAdoption(t *testing.T) {
	c := startCluster(t, fakenode.Options{})
	d := c.create(webDeployment("scaled", 2, "nginx:1"))
	c.waitRolledOut("scaled", 20*time.Second)
	for _, n := range []int32{5, 1} {
		patch := fmt.Appendf(nil, `{"spec":{"replicas":%d}}`, n)
		if _, err := c.client.AppsV1().Deployments(c.ns).Patch(c.ctx, "scaled", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		got := c.waitRolledOut("scaled", 20*time.Second)
		rss := c.replicaSets(d)
		if len(rss) != 1 || *rss[0].Spec.Replicas != n || rss[0].Annotations[DesiredReplicasAnnotation] != fmt.Sprint(n) {
			t.Errorf("scaled to %d: %s, annotations %v", n, rsSummary(rss), rss[0].Annotations)
		}
		if got.Status.Replicas != n || got.Status.ReadyReplicas != n || got.Status.UnavailableReplicas != 0 {
			t.Errorf("status after scaling to %d: %+v", n, got.Status)
		}
	}

	// Orphan the ReplicaSet: the Deployment adopts it back instead of
	// making another.
	rs := c.replicaSets(d)[0]
	patch := []byte(`{"metadata":{"ownerReferences":null}}`)
	if _, err := c.client.AppsV1().ReplicaSets(c.ns).Patch(c.ctx, rs.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the replica set adopted again", func() (bool, string) {
		got, err := c.client.AppsV1().ReplicaSets(c.ns).Get(c.ctx, rs.Name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		ref := metav1.GetControllerOf(got)
		return ref != nil && ref.UID == d.UID, fmt.Sprintf("owners %v", got.OwnerReferences)
	})
	list, err := c.client.AppsV1().ReplicaSets(c.ns).List(c.ctx, metav1.ListOptions{LabelSelector: "app=scaled"})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 {
		t.Errorf("%d replica sets after re-adoption, want 1", len(list.Items))
	}
}
