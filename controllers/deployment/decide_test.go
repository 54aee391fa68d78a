package deployment

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// now is the time of the table tests' snapshots: pods "available" became
// ready an hour before, pods "readyNow" just now.
var now = t0.Add(time.Hour)

func decide(t *testing.T, d *appsv1.Deployment, rss []*appsv1.ReplicaSet, pods ...[]*corev1.Pod) Plan {
	t.Helper()
	p, err := Decide(Snapshot{Deployment: d, ReplicaSets: rss, Pods: slices.Concat(pods...), Now: now})
	if err != nil {
		t.Fatalf("Decide: %v", err)
	}
	return p
}

func cond(st *appsv1.DeploymentStatus, t appsv1.DeploymentConditionType) string {
	if st == nil {
		return "<no status>"
	}
	c := condition(*st, t)
	if c == nil {
		return "<none>"
	}
	return fmt.Sprintf("%s %s %s", c.Status, c.Reason, c.Message)
}

func TestDecideNewDeployment(t *testing.T) {
	d := deploy(3, "nginx:1")
	p := decide(t, d, nil)
	name := rsName("nginx:1")
	if got := writes(p); !slices.Equal(got, []string{"create " + name + " 3"}) {
		t.Fatalf("writes = %v", got)
	}
	rs := p.Create.RS
	hash := strings.TrimPrefix(name, "web-")
	if rs.Labels[HashLabel] != hash || rs.Spec.Template.Labels[HashLabel] != hash ||
		rs.Spec.Selector.MatchLabels[HashLabel] != hash || rs.Spec.Selector.MatchLabels["app"] != "web" {
		t.Errorf("hash label missing: labels %v, template %v, selector %v", rs.Labels, rs.Spec.Template.Labels, rs.Spec.Selector)
	}
	wantAnn := map[string]string{RevisionAnnotation: "1", DesiredReplicasAnnotation: "3", MaxReplicasAnnotation: "4"}
	for k, v := range wantAnn {
		if rs.Annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, rs.Annotations[k], v)
		}
	}
	if ref := metav1.GetControllerOf(rs); ref == nil || ref.UID != d.UID || ref.Kind != "Deployment" || !*ref.BlockOwnerDeletion {
		t.Errorf("owner = %+v", ref)
	}
	if got := messages(p); !slices.Equal(got, []string{"Scaled up replica set " + name + " to 3"}) {
		t.Errorf("events = %q", got)
	}
	if p.Revision != "1" {
		t.Errorf("revision = %q, want 1", p.Revision)
	}
	if got, want := cond(p.Status, appsv1.DeploymentProgressing), `True NewReplicaSetCreated Created new replica set "`+name+`"`; got != want {
		t.Errorf("Progressing = %s, want %s", got, want)
	}
	if got := cond(p.Status, appsv1.DeploymentAvailable); got != "False MinimumReplicasUnavailable Deployment does not have minimum availability." {
		t.Errorf("Available = %s", got)
	}
}

func TestDecideRollingSteps(t *testing.T) {
	oldImg, newImg := "nginx:1", "nginx:2"
	type tc struct {
		name       string
		d          *appsv1.Deployment
		rss        []*appsv1.ReplicaSet
		pods       [][]*corev1.Pod
		wantWrites []string
		wantEvents []string
	}
	d4 := func() *appsv1.Deployment { // 4 replicas, surge 1, unavailable 1 (25%)
		return deploy(4, newImg)
	}
	old4 := rsFor(d4(), oldImg, 1, 4, 0)
	tests := []tc{
		{
			name: "template changed: create the new set within the surge, shrink the old within unavailability",
			d:    d4(), rss: []*appsv1.ReplicaSet{old4},
			pods:       [][]*corev1.Pod{podsFor(old4, 4, available)},
			wantWrites: []string{"create " + rsName(newImg) + " 1", "update " + old4.Name + " 3"},
			wantEvents: []string{"Scaled up replica set " + rsName(newImg) + " to 1", "Scaled down replica set " + old4.Name + " to 3 from 4"},
		},
		func() tc {
			old := rsFor(d4(), oldImg, 1, 3, 0)
			nw := rsFor(d4(), newImg, 2, 1, 1)
			return tc{
				name: "a pod still terminating counts against the surge",
				d:    d4(), rss: []*appsv1.ReplicaSet{old, nw},
				pods: [][]*corev1.Pod{podsFor(old, 3, available), podsFor(old, 1, terminating), podsFor(nw, 1, available)},
				// footprint 3+1 old + 1 new = 5 = 4+1: no growth; available 4 > 3: shrink old by 1
				wantWrites: []string{"update " + old.Name + " 2"},
				wantEvents: []string{"Scaled down replica set " + old.Name + " to 2 from 3"},
			}
		}(),
		func() tc {
			old := rsFor(d4(), oldImg, 1, 3, 0)
			nw := rsFor(d4(), newImg, 2, 1, 1)
			return tc{
				name: "once the terminating pod is gone the new set grows",
				d:    d4(), rss: []*appsv1.ReplicaSet{old, nw},
				pods:       [][]*corev1.Pod{podsFor(old, 3, available), podsFor(nw, 1, available)},
				wantWrites: []string{"update " + nw.Name + " 2"},
				wantEvents: []string{"Scaled up replica set " + nw.Name + " to 2 from 1"},
			}
		}(),
		func() tc {
			old := rsFor(d4(), oldImg, 1, 3, 0)
			nw := rsFor(d4(), newImg, 2, 2, 1)
			return tc{
				name: "new pods not yet available keep the old ones",
				d:    d4(), rss: []*appsv1.ReplicaSet{old, nw},
				pods:       [][]*corev1.Pod{podsFor(old, 3, available), podsFor(nw, 2, pending)},
				wantWrites: nil,
			}
		}(),
		func() tc {
			old := rsFor(d4(), oldImg, 1, 3, 0)
			nw := rsFor(d4(), newImg, 2, 2, 1)
			d := d4()
			d.Spec.MinReadySeconds = 60
			return tc{
				name: "ready is not available before minReadySeconds",
				d:    d, rss: []*appsv1.ReplicaSet{old, nw},
				pods:       [][]*corev1.Pod{podsFor(old, 3, available), podsFor(nw, 2, readyNow)},
				wantWrites: []string{"update " + nw.Name + " 2"}, // only minReadySeconds synced onto the new set
			}
		}(),
		func() tc {
			old := rsFor(d4(), oldImg, 1, 4, 0)
			nw := rsFor(d4(), newImg, 2, 1, 1)
			return tc{
				name: "old pods that are not ready go first, beyond the unavailability budget",
				d:    d4(), rss: []*appsv1.ReplicaSet{old, nw},
				// old: 2 available, 2 not ready; new: 1 not ready.
				// budget = 5 replicas - 3 min available - 1 new unavailable = 1 unready old pod;
				// then floor 2 < 3: no available old pod may go.
				pods:       [][]*corev1.Pod{podsFor(old, 2, available), podsFor(old, 2, pending), podsFor(nw, 1, pending)},
				wantWrites: []string{"update " + old.Name + " 3"},
				wantEvents: []string{"Scaled down replica set " + old.Name + " to 3 from 4"},
			}
		}(),
		func() tc {
			old := rsFor(d4(), oldImg, 1, 4, 0)
			return tc{
				name: "maxSurge 0: the old set makes room first",
				d:    withStrategy(d4(), intstr.FromInt32(0), intstr.FromInt32(2)), rss: []*appsv1.ReplicaSet{old},
				pods:       [][]*corev1.Pod{podsFor(old, 4, available)},
				wantWrites: []string{"create " + rsName(newImg) + " 0", "update " + old.Name + " 2"},
				wantEvents: []string{"Scaled down replica set " + old.Name + " to 2 from 4"},
			}
		}(),
		func() tc {
			old := rsFor(d4(), oldImg, 1, 2, 0)
			nw := rsFor(d4(), newImg, 2, 0, 1)
			return tc{
				name: "maxSurge 0: the new set grows into the room once the old pods are gone",
				d:    withStrategy(d4(), intstr.FromInt32(0), intstr.FromInt32(2)), rss: []*appsv1.ReplicaSet{old, nw},
				pods:       [][]*corev1.Pod{podsFor(old, 2, available)},
				wantWrites: []string{"update " + nw.Name + " 2"},
				wantEvents: []string{"Scaled up replica set " + nw.Name + " to 2 from 0"},
			}
		}(),
		func() tc {
			old := rsFor(d4(), oldImg, 1, 0, 0)
			nw := rsFor(d4(), newImg, 2, 4, 1)
			return tc{
				name:       "complete: nothing to write",
				d:          d4(),
				rss:        []*appsv1.ReplicaSet{old, nw},
				pods:       [][]*corev1.Pod{podsFor(nw, 4, available)},
				wantWrites: nil,
			}
		}(),
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := decide(t, tt.d, tt.rss, tt.pods...)
			if got := writes(p); !slices.Equal(got, tt.wantWrites) {
				t.Errorf("writes = %q\nwant     %q", got, tt.wantWrites)
			}
			if got := messages(p); !slices.Equal(got, tt.wantEvents) && (len(got) > 0 || len(tt.wantEvents) > 0) {
				t.Errorf("events = %q\nwant     %q", got, tt.wantEvents)
			}
		})
	}
}

func TestDecideRecreate(t *testing.T) {
	recreate := func() *appsv1.Deployment {
		d := deploy(3, "nginx:2")
		d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
		return d
	}
	old := rsFor(recreate(), "nginx:1", 1, 3, 0)
	p := decide(t, recreate(), []*appsv1.ReplicaSet{old}, podsFor(old, 3, available))
	if got := writes(p); !slices.Equal(got, []string{"update " + old.Name + " 0"}) {
		t.Errorf("first step writes = %v, want the old set scaled to 0", got)
	}

	// Old set at 0 but its pods still terminating: wait, create nothing.
	old0 := old.DeepCopy()
	old0.Spec.Replicas = ptr(int32(0))
	old0.Status = appsv1.ReplicaSetStatus{ObservedGeneration: 1}
	p = decide(t, recreate(), []*appsv1.ReplicaSet{old0}, podsFor(old0, 2, terminating))
	if got := writes(p); len(got) != 0 {
		t.Errorf("with old pods terminating writes = %v, want none", got)
	}

	// Old pods gone: the new set at full size.
	p = decide(t, recreate(), []*appsv1.ReplicaSet{old0})
	if got := writes(p); !slices.Equal(got, []string{"create " + rsName("nginx:2") + " 3"}) {
		t.Errorf("with old pods gone writes = %v", got)
	}
	if p.Revision != "2" || p.Create.RS.Annotations[RevisionAnnotation] != "2" {
		t.Errorf("revision %q / %q, want 2", p.Revision, p.Create.RS.Annotations[RevisionAnnotation])
	}
}

func TestDecideProportionalScaling(t *testing.T) {
	// Kubernetes' documented example: 10 replicas, maxSurge 3, maxUnavailable
	// 2, a rollout in flight with 8 old and 5 new, scaled to 15: the 5
	// extra replicas go 3 to the old set and 2 to the new one.
	d := withStrategy(deploy(15, "nginx:2"), intstr.FromInt32(3), intstr.FromInt32(2))
	old := rsFor(d, "nginx:1", 1, 8, 0)
	nw := rsFor(d, "nginx:2", 2, 5, 1)
	for _, rs := range []*appsv1.ReplicaSet{old, nw} {
		rs.Annotations[DesiredReplicasAnnotation] = "10"
		rs.Annotations[MaxReplicasAnnotation] = "13"
	}
	nw.Status.AvailableReplicas = 0
	p := decide(t, d, []*appsv1.ReplicaSet{old, nw}, podsFor(old, 8, available), podsFor(nw, 5, pending))
	want := []string{"update " + old.Name + " 11", "update " + nw.Name + " 7"}
	if got := writes(p); !slices.Equal(got, want) {
		t.Errorf("writes = %v, want %v", got, want)
	}
	for _, w := range p.Updates {
		if w.RS.Annotations[DesiredReplicasAnnotation] != "15" || w.RS.Annotations[MaxReplicasAnnotation] != "18" {
			t.Errorf("%s annotations = %v", w.RS.Name, w.RS.Annotations)
		}
	}

	// Scaling down: 15 -> 5 with the sets at 11 and 7 (max 18) leaves
	// 5 + 3 = 8 spread in proportion.
	d5 := withStrategy(deploy(5, "nginx:2"), intstr.FromInt32(3), intstr.FromInt32(2))
	old11, new7 := old.DeepCopy(), nw.DeepCopy()
	old11.Spec.Replicas, new7.Spec.Replicas = ptr(int32(11)), ptr(int32(7))
	for _, rs := range []*appsv1.ReplicaSet{old11, new7} {
		rs.Annotations[DesiredReplicasAnnotation] = "15"
		rs.Annotations[MaxReplicasAnnotation] = "18"
	}
	p = decide(t, d5, []*appsv1.ReplicaSet{old11, new7}, podsFor(old11, 11, available), podsFor(new7, 7, pending))
	var total int32
	for _, w := range p.Updates {
		total += *w.RS.Spec.Replicas
	}
	if total != 8 || len(p.Updates) != 2 {
		t.Errorf("scaled down to %v (total %d), want 8 in all", writes(p), total)
	}
}

func TestDecidePaused(t *testing.T) {
	d := deploy(3, "nginx:2") // template changed...
	d.Spec.Paused = true      // ...while paused
	old := rsFor(d, "nginx:1", 1, 3, 0)
	p := decide(t, d, []*appsv1.ReplicaSet{old}, podsFor(old, 3, available))
	if got := writes(p); len(got) != 0 {
		t.Errorf("paused deployment wrote %v", got)
	}
	if got := cond(p.Status, appsv1.DeploymentProgressing); got != "Unknown DeploymentPaused Deployment is paused" {
		t.Errorf("Progressing = %s", got)
	}

	// Scaling still works while paused.
	d.Spec.Replicas = ptr(int32(5))
	d.Status = *p.Status
	p = decide(t, d, []*appsv1.ReplicaSet{old}, podsFor(old, 3, available))
	if got := writes(p); !slices.Equal(got, []string{"update " + old.Name + " 5"}) {
		t.Errorf("scaling a paused deployment wrote %v", got)
	}

	// Resumed: the condition says so, and the rollout starts.
	d.Spec.Paused = false
	d.Spec.Replicas = ptr(int32(3))
	p = decide(t, d, []*appsv1.ReplicaSet{old}, podsFor(old, 3, available))
	if got := cond(p.Status, appsv1.DeploymentProgressing); !strings.Contains(got, "NewReplicaSetCreated") {
		t.Errorf("after resume Progressing = %s, want the new set created", got)
	}
	if p.Create == nil {
		t.Errorf("resumed deployment did not create its new set")
	}
}

func TestDecideRollback(t *testing.T) {
	// Revision 1 (nginx:1) is old and empty; revision 2 (nginx:2) runs; the
	// Deployment's template is nginx:1 again (kubectl rollout undo).
	d := deploy(3, "nginx:1")
	rev1 := rsFor(d, "nginx:1", 1, 0, 0)
	rev1.Status = appsv1.ReplicaSetStatus{ObservedGeneration: 1}
	rev2 := rsFor(d, "nginx:2", 2, 3, 1)
	d.Annotations = map[string]string{RevisionAnnotation: "2"}
	p := decide(t, d, []*appsv1.ReplicaSet{rev1, rev2}, podsFor(rev2, 3, available))
	if p.Create != nil {
		t.Fatalf("rollback created a new set %s instead of reusing revision 1", p.Create.RS.Name)
	}
	var reused *appsv1.ReplicaSet
	for _, w := range p.Updates {
		if w.RS.Name == rev1.Name {
			reused = w.RS
		}
	}
	if reused == nil {
		t.Fatalf("writes = %v, want revision 1's set updated", writes(p))
	}
	if reused.Annotations[RevisionAnnotation] != "3" || reused.Annotations[RevisionHistoryAnnotation] != "1" {
		t.Errorf("reused set annotations = %v, want revision 3 with history 1", reused.Annotations)
	}
	if *reused.Spec.Replicas != 1 {
		t.Errorf("reused set scaled to %d, want 1 (the surge)", *reused.Spec.Replicas)
	}
	if p.Revision != "3" {
		t.Errorf("deployment revision = %q, want 3", p.Revision)
	}
}

func TestDecideProgressDeadline(t *testing.T) {
	d := deploy(2, "nginx:2")
	old := rsFor(d, "nginx:1", 1, 1, 0)
	nw := rsFor(d, "nginx:2", 2, 2, 1)
	nw.Status = appsv1.ReplicaSetStatus{Replicas: 2, ObservedGeneration: 1}
	d.Annotations = map[string]string{RevisionAnnotation: "2"}
	d.Status = appsv1.DeploymentStatus{
		ObservedGeneration: 1, Replicas: 3, UpdatedReplicas: 2, ReadyReplicas: 1, AvailableReplicas: 1, UnavailableReplicas: 2,
		Conditions: []appsv1.DeploymentCondition{
			newCondition(appsv1.DeploymentAvailable, corev1.ConditionFalse, ReasonMinimumReplicasUnavailable, "Deployment does not have minimum availability.", now.Add(-time.Hour)),
			newCondition(appsv1.DeploymentProgressing, corev1.ConditionTrue, ReasonRSUpdated, `ReplicaSet "x" is progressing.`, now.Add(-9*time.Minute)),
		},
	}
	pods := [][]*corev1.Pod{podsFor(old, 1, available), podsFor(nw, 2, pending)}

	p := decide(t, d, []*appsv1.ReplicaSet{old, nw}, pods...)
	if p.Status != nil {
		t.Errorf("before the deadline the status changed: %s", cond(p.Status, appsv1.DeploymentProgressing))
	}
	if p.RequeueAfter < 59*time.Second || p.RequeueAfter > 61*time.Second {
		t.Errorf("RequeueAfter = %v, want the minute left to the deadline", p.RequeueAfter)
	}

	d.Status.Conditions[1].LastUpdateTime = metav1.NewTime(now.Add(-11 * time.Minute))
	p = decide(t, d, []*appsv1.ReplicaSet{old, nw}, pods...)
	want := fmt.Sprintf("False ProgressDeadlineExceeded ReplicaSet %q has timed out progressing.", nw.Name)
	if got := cond(p.Status, appsv1.DeploymentProgressing); got != want {
		t.Errorf("Progressing = %s\nwant %s", got, want)
	}
}

func TestDecideCompleteAndHistoryLimit(t *testing.T) {
	d := deploy(2, "nginx:4")
	d.Spec.RevisionHistoryLimit = ptr(int32(1))
	d.Annotations = map[string]string{RevisionAnnotation: "4"}
	var rss []*appsv1.ReplicaSet
	for i, img := range []string{"nginx:1", "nginx:2", "nginx:3"} {
		rs := rsFor(d, img, i+1, 0, i)
		rs.Status = appsv1.ReplicaSetStatus{ObservedGeneration: 1}
		rss = append(rss, rs)
	}
	nw := rsFor(d, "nginx:4", 4, 2, 3)
	d.Status = appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 2, UpdatedReplicas: 2, ReadyReplicas: 2, AvailableReplicas: 2,
		Conditions: []appsv1.DeploymentCondition{
			newCondition(appsv1.DeploymentProgressing, corev1.ConditionTrue, ReasonRSUpdated, "", now.Add(-time.Minute)),
		}}
	p := decide(t, d, append(rss, nw), podsFor(nw, 2, available))
	want := []string{"delete " + rss[0].Name, "delete " + rss[1].Name}
	if got := writes(p); !slices.Equal(got, want) {
		t.Errorf("writes = %v, want %v", got, want)
	}
	if got, want := cond(p.Status, appsv1.DeploymentProgressing), fmt.Sprintf("True NewReplicaSetAvailable ReplicaSet %q has successfully progressed.", nw.Name); got != want {
		t.Errorf("Progressing = %s\nwant %s", got, want)
	}
	if got := cond(p.Status, appsv1.DeploymentAvailable); got != "True MinimumReplicasAvailable Deployment has minimum availability." {
		t.Errorf("Available = %s", got)
	}
	st := p.Status
	if st.Replicas != 2 || st.UpdatedReplicas != 2 || st.AvailableReplicas != 2 || st.ReadyReplicas != 2 || st.UnavailableReplicas != 0 {
		t.Errorf("status counts = %+v", st)
	}
}

func TestDecideSelectingEverything(t *testing.T) {
	d := deploy(1, "nginx:1")
	d.Spec.Selector = &metav1.LabelSelector{}
	d.Generation = 3
	p := decide(t, d, nil)
	if p.Create != nil || len(p.Updates) > 0 {
		t.Errorf("a deployment selecting everything wrote %v", writes(p))
	}
	if len(p.Events) != 1 || p.Events[0].Reason != "SelectingAll" {
		t.Errorf("events = %+v", p.Events)
	}
	if p.Status == nil || p.Status.ObservedGeneration != 3 {
		t.Errorf("status = %+v, want observedGeneration 3", p.Status)
	}
}

func TestDecideNameCollision(t *testing.T) {
	d := deploy(2, "nginx:2")
	// A set of ours has the name the new template hashes to, but another
	// template.
	clash := rsFor(d, "nginx:1", 1, 2, 0)
	clash.Name = rsName("nginx:2")
	p := decide(t, d, []*appsv1.ReplicaSet{clash}, podsFor(clash, 2, available))
	if p.Create != nil {
		t.Fatalf("created %s over a set with another template", p.Create.RS.Name)
	}
	if p.Status == nil || p.Status.CollisionCount == nil || *p.Status.CollisionCount != 1 {
		t.Fatalf("collisionCount not raised: %+v", p.Status)
	}
	d.Status = *p.Status
	p = decide(t, d, []*appsv1.ReplicaSet{clash}, podsFor(clash, 2, available))
	if p.Create == nil || p.Create.RS.Name == clash.Name {
		t.Fatalf("with the collision count the new set should get another name; writes %v", writes(p))
	}
}

func TestDecideFindsAnExistingNewReplicaSet(t *testing.T) {
	// A Deployment whose status has no conditions yet, and a ReplicaSet
	// with its template already there (adopted, or written before a
	// restart): the condition says it was found, not created.
	d := deploy(2, "nginx:1")
	rs := rsFor(d, "nginx:1", 1, 2, 0)
	rs.Status = appsv1.ReplicaSetStatus{Replicas: 2, ObservedGeneration: 1}
	d.Status = appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 2, UpdatedReplicas: 2, UnavailableReplicas: 2}
	p := decide(t, d, []*appsv1.ReplicaSet{rs}, podsFor(rs, 2, pending))
	if p.Create != nil || len(p.Updates) != 0 {
		t.Errorf("writes = %v, want none", writes(p))
	}
	want := fmt.Sprintf("True FoundNewReplicaSet Found new replica set %q", rs.Name)
	if got := cond(p.Status, appsv1.DeploymentProgressing); got != want {
		t.Errorf("Progressing = %s\nwant %s", got, want)
	}
	if p.Revision != "1" {
		t.Errorf("revision = %q, want 1 (from the replica set)", p.Revision)
	}
}
