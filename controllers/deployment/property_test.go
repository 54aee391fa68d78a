package deployment

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/skiff-sh/skiff/controllers/replicaset"
)

// world is a small simulated cluster for property tests: Decide plays the
// Deployment controller, a few lines play the ReplicaSet controller (with
// the real deletion ranking), and pods become ready and finish terminating
// at random moments. Every change is one step; the bounds are checked
// after each.
type world struct {
	t        *testing.T
	rng      *rand.Rand
	d        *appsv1.Deployment
	rss      []*appsv1.ReplicaSet
	pods     []*corev1.Pod
	now      time.Time
	seq      int
	delay    map[types.UID]time.Duration // readiness delay per pod; <0: never
	never    float64                     // chance a new pod never becomes ready
	surge    int32
	unavail  int32
	checking bool // the rollout started from a settled state: check availability
	log      []string
}

func (w *world) logf(format string, args ...any) {
	w.log = append(w.log, fmt.Sprintf("%s ", w.now.Sub(t0))+fmt.Sprintf(format, args...))
	if len(w.log) > 60 {
		w.log = w.log[1:]
	}
}

func (w *world) fail(format string, args ...any) {
	w.t.Helper()
	w.t.Fatalf("%s\nlast steps:\n%s", fmt.Sprintf(format, args...), joinLines(w.log))
}

func joinLines(l []string) string {
	out := ""
	for _, s := range l {
		out += "  " + s + "\n"
	}
	return out
}

// controllerStep runs Decide and applies its plan.
func (w *world) controllerStep() {
	var owned []*corev1.Pod
	uids := map[types.UID]bool{}
	for _, rs := range w.rss {
		uids[rs.UID] = true
	}
	for _, p := range w.pods {
		if ref := metav1.GetControllerOf(p); ref != nil && uids[ref.UID] {
			owned = append(owned, p)
		}
	}
	plan, err := Decide(Snapshot{Deployment: w.d, ReplicaSets: w.rss, Pods: owned, Now: w.now})
	if err != nil {
		w.fail("Decide: %v", err)
	}
	if len(plan.Updates) > 0 || plan.Create != nil {
		w.logf("decide on %s", w.describe())
	}
	if c := plan.Create; c != nil {
		w.seq++
		rs := c.RS.DeepCopy()
		rs.UID = types.UID(fmt.Sprintf("rs-%d", w.seq))
		rs.CreationTimestamp = metav1.NewTime(w.now.Add(time.Duration(w.seq)))
		rs.ResourceVersion, rs.Generation = "1", 1
		w.rss = append(w.rss, rs)
		w.logf("create %s %d", rs.Name, *rs.Spec.Replicas)
	}
	for _, u := range plan.Updates {
		i := slices.IndexFunc(w.rss, func(rs *appsv1.ReplicaSet) bool { return rs.Name == u.RS.Name })
		if i < 0 || w.rss[i].ResourceVersion != u.RS.ResourceVersion {
			w.fail("update of %s from a stale version", u.RS.Name)
		}
		rs := u.RS.DeepCopy()
		rs.ResourceVersion = fmt.Sprint(w.seq)
		w.seq++
		if *rs.Spec.Replicas != *w.rss[i].Spec.Replicas {
			rs.Generation++
		}
		w.rss[i] = rs
		w.logf("update %s %d", rs.Name, *rs.Spec.Replicas)
	}
	for _, del := range plan.Deletes {
		w.rss = slices.DeleteFunc(w.rss, func(rs *appsv1.ReplicaSet) bool { return rs.UID == del.UID })
		w.logf("delete %s", del.Name)
	}
	if plan.Status != nil {
		w.d.Status = *plan.Status
	}
	if plan.Revision != "" {
		if w.d.Annotations == nil {
			w.d.Annotations = map[string]string{}
		}
		w.d.Annotations[RevisionAnnotation] = plan.Revision
	}
}

// replicaSetStep plays the ReplicaSet controller for one ReplicaSet.
func (w *world) replicaSetStep(rs *appsv1.ReplicaSet) {
	var active, related []*corev1.Pod
	for _, p := range w.pods {
		ref := metav1.GetControllerOf(p)
		if ref == nil || !replicaset.IsActive(p) {
			continue
		}
		related = append(related, p)
		if ref.UID == rs.UID {
			active = append(active, p)
		}
	}
	d := replicaset.Decide(replicaset.Input{Replicas: *rs.Spec.Replicas, Owned: active, Related: related,
		MinReadySeconds: rs.Spec.MinReadySeconds, Now: w.now})
	for range d.Create {
		w.seq++
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{
				Name: fmt.Sprintf("%s-%d", rs.Name, w.seq), UID: types.UID(fmt.Sprintf("pod-%d", w.seq)),
				Labels: rs.Spec.Template.Labels, CreationTimestamp: metav1.NewTime(w.now),
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID, Controller: ptr(true)}},
			},
			Status: corev1.PodStatus{Phase: corev1.PodPending},
		}
		delay := time.Duration(w.rng.IntN(3000)) * time.Millisecond
		if w.rng.Float64() < w.never {
			delay = -1
		}
		w.delay[p.UID] = delay
		w.pods = append(w.pods, p)
		active = append(active, p)
	}
	for _, p := range d.Delete {
		p.DeletionTimestamp = ptr(metav1.NewTime(w.now))
	}
	if d.Create > 0 || len(d.Delete) > 0 {
		w.logf("rs %s: +%d -%d", rs.Name, d.Create, len(d.Delete))
	}
	var st appsv1.ReplicaSetStatus
	for _, p := range active {
		if !replicaset.IsActive(p) {
			continue
		}
		st.Replicas++
		if replicaset.IsReady(p) {
			st.ReadyReplicas++
			if replicaset.IsAvailable(p, rs.Spec.MinReadySeconds, w.now) {
				st.AvailableReplicas++
			}
		}
	}
	st.FullyLabeledReplicas = st.Replicas
	st.ObservedGeneration = rs.Generation
	rs.Status = st
}

// describe summarises each ReplicaSet: replicas, and its pods as
// active/ready/available/terminating.
func (w *world) describe() string {
	out := ""
	for _, rs := range w.rss {
		var a, r, av, term int
		for _, p := range w.pods {
			if ref := metav1.GetControllerOf(p); ref == nil || ref.UID != rs.UID {
				continue
			}
			switch {
			case replicaset.IsActive(p):
				a++
				if replicaset.IsReady(p) {
					r++
					if replicaset.IsAvailable(p, w.d.Spec.MinReadySeconds, w.now) {
						av++
					}
				}
			case replicaset.IsTerminating(p):
				term++
			}
		}
		out += fmt.Sprintf("[%s x%d %d/%d/%d/%d] ", rs.Name[len(rs.Name)-4:], *rs.Spec.Replicas, a, r, av, term)
	}
	return out
}

// podStep moves one random pod on: ready once its delay passed, or gone
// if it was terminating.
func (w *world) podStep() {
	if len(w.pods) == 0 {
		return
	}
	i := w.rng.IntN(len(w.pods))
	p := w.pods[i]
	switch {
	case p.DeletionTimestamp != nil:
		w.pods = slices.Delete(w.pods, i, i+1)
	case !replicaset.IsReady(p):
		d := w.delay[p.UID]
		if d >= 0 && !w.now.Before(p.CreationTimestamp.Add(d)) {
			p.Status.Phase = corev1.PodRunning
			p.Spec.NodeName = fmt.Sprintf("n%d", w.rng.IntN(3))
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(w.now)}}
		}
	}
}

// check asserts the rollout bounds.
func (w *world) check() {
	r := replicasOf(w.d)
	var total, avail int32
	for _, p := range w.pods {
		if replicaset.IsTerminal(p) {
			continue
		}
		total++
		if replicaset.IsActive(p) && replicaset.IsAvailable(p, w.d.Spec.MinReadySeconds, w.now) {
			avail++
		}
	}
	if total > r+w.surge {
		w.fail("%d pods exist, more than replicas %d + maxSurge %d", total, r, w.surge)
	}
	if w.checking && avail < r-w.unavail {
		w.fail("%d pods available, fewer than replicas %d - maxUnavailable %d", avail, r, w.unavail)
	}
}

// settled: the Deployment reports completion and only its current
// template's pods exist, all available.
func (w *world) settled() bool {
	r := replicasOf(w.d)
	if !deploymentComplete(w.d, &w.d.Status) {
		return false
	}
	current := map[types.UID]bool{}
	for _, rs := range w.rss {
		current[rs.UID] = equalIgnoreHash(&rs.Spec.Template, &w.d.Spec.Template)
	}
	var n int32
	for _, p := range w.pods {
		ref := metav1.GetControllerOf(p)
		if !current[ref.UID] || !replicaset.IsAvailable(p, w.d.Spec.MinReadySeconds, w.now) || p.DeletionTimestamp != nil {
			return false
		}
		n++
	}
	return n == r
}

// run takes random steps until the rollout settles or maxSteps pass; it
// says whether it settled.
func (w *world) run(maxSteps int, midway func(step int)) bool {
	for step := 0; step < maxSteps; step++ {
		if midway != nil {
			midway(step)
		}
		switch x := w.rng.IntN(10); {
		case x < 3:
			w.controllerStep()
		case x < 6:
			if len(w.rss) > 0 {
				w.replicaSetStep(w.rss[w.rng.IntN(len(w.rss))])
			}
		case x < 9:
			w.podStep()
		default:
			w.now = w.now.Add(time.Duration(w.rng.IntN(700)) * time.Millisecond)
		}
		w.check()
		if w.settled() {
			return true
		}
	}
	return false
}

// randomFencepost is an absolute number 0..4 or a percentage 0..100.
func randomFencepost(rng *rand.Rand) intstr.IntOrString {
	if rng.IntN(2) == 0 {
		return intstr.FromInt32(int32(rng.IntN(5)))
	}
	return intstr.FromString(fmt.Sprintf("%d%%", 5*rng.IntN(21)))
}

// TestRollingUpdateNeverExceedsItsBounds rolls random Deployments (replicas,
// maxSurge, maxUnavailable, minReadySeconds, readiness delays, termination
// timing) from one template to another, sometimes changing the template
// again midway (a new version, or back: a rollback), and checks after every
// single step that no more than replicas + maxSurge pods exist, terminating
// ones included, and no fewer than replicas - maxUnavailable are available.
// Rollouts whose pods all become ready must also finish.
func TestRollingUpdateNeverExceedsItsBounds(t *testing.T) {
	seeds := 400
	if testing.Short() {
		seeds = 40
	}
	for seed := range seeds {
		rng := rand.New(rand.NewPCG(uint64(seed), 7))
		r := int32(1 + rng.IntN(12))
		surge, unavail := randomFencepost(rng), randomFencepost(rng)
		if surge.Type == intstr.Int && unavail.Type == intstr.Int && surge.IntVal == 0 && unavail.IntVal == 0 {
			unavail = intstr.FromInt32(1) // the API rejects both 0
		}
		d := withStrategy(deploy(r, "app:1"), surge, unavail)
		d.Spec.MinReadySeconds = int32(rng.IntN(3))
		w := &world{t: t, rng: rng, d: d, now: t0, delay: map[types.UID]time.Duration{}}
		var err error
		if w.surge, w.unavail, err = fenceposts(d); err != nil {
			t.Fatal(err)
		}
		stalls := rng.IntN(4) == 0
		name := fmt.Sprintf("seed %d: replicas %d surge %s unavailable %s minReady %d stalls %v",
			seed, r, surge.String(), unavail.String(), d.Spec.MinReadySeconds, stalls)
		t.Run(name, func(t *testing.T) {
			w.t = t
			if !w.run(20000, nil) {
				t.Fatalf("the first rollout did not settle")
			}
			// Roll to a new template, with bounds checked throughout.
			w.checking = true
			if stalls {
				w.never = 0.3
			}
			w.d.Spec.Template = template("app:2")
			if rng.IntN(3) == 0 {
				// minReadySeconds changes with the template; let every
				// pod be ready for longer than any value first, so the
				// change itself leaves availability whole.
				w.now = w.now.Add(3 * time.Second)
				w.d.Spec.MinReadySeconds = int32(rng.IntN(3))
			}
			w.d.Generation++
			switchAt := -1
			if rng.IntN(2) == 0 {
				switchAt = rng.IntN(200)
			}
			steps := 30000
			if stalls {
				steps = 3000 // it may never settle; the bounds are what is checked
			}
			settled := w.run(steps, func(step int) {
				if step != switchAt {
					return
				}
				img := "app:3"
				if rng.IntN(2) == 0 {
					img = "app:1" // back to the first template: rollback
				}
				w.logf("template -> %s", img)
				w.d.Spec.Template = template(img)
				w.d.Generation++
			})
			if !settled && !stalls {
				t.Fatalf("the rollout did not settle:\n%s", joinLines(w.log))
			}
		})
	}
}
