package deployment

import (
	"fmt"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-sh/skiff/controllers/replicaset"
)

// Snapshot is everything one decision about a Deployment reads.
type Snapshot struct {
	Deployment *appsv1.Deployment
	// ReplicaSets are the ones the Deployment controls (already claimed).
	ReplicaSets []*appsv1.ReplicaSet
	// Pods are the pods those ReplicaSets control, in any state.
	Pods []*corev1.Pod
	Now  time.Time
}

// Plan is what the controller should do about a Deployment, in order:
// create, update, delete ReplicaSets, then write the Deployment's status
// and revision. Each write is guarded by the resourceVersion of the object
// it was decided from, so a decision made on a stale cache fails instead
// of acting.
type Plan struct {
	Create  *Write
	Updates []Write
	Deletes []*appsv1.ReplicaSet
	// Events about the Deployment not tied to a write.
	Events []Event
	// Status, when set, replaces the Deployment's status.
	Status *appsv1.DeploymentStatus
	// Revision, when set, becomes the Deployment's revision annotation.
	Revision string
	// RequeueAfter asks to look again (a progress deadline, a pod about to
	// become available).
	RequeueAfter time.Duration
}

// Write is one ReplicaSet to create or update, with the ScalingReplicaSet
// message to record once it is written ("" for none).
type Write struct {
	RS      *appsv1.ReplicaSet
	Message string
}

// Event is an event to record about the Deployment.
type Event struct {
	Type, Reason, Message string
}

// ReasonScalingReplicaSet is the reason of the Deployment's scaling events.
const ReasonScalingReplicaSet = "ScalingReplicaSet"

// working is one ReplicaSet as the plan changes it.
type working struct {
	rs      *appsv1.ReplicaSet // the plan's copy
	orig    *appsv1.ReplicaSet // as observed; nil for one the plan creates
	changed bool
	pods    podCounts
	// current: its template is the Deployment's (ignoring the hash label).
	current bool
}

func (w *working) replicas() int32 {
	if w.rs.Spec.Replicas == nil {
		return 1
	}
	return *w.rs.Spec.Replicas
}

// podCounts summarise a ReplicaSet's pods.
type podCounts struct {
	active      int32 // not being deleted, not finished
	terminating int32 // being deleted, not finished
	available   int32 // active and available
}

// footprint is how many pods the ReplicaSet may have at once before any of
// its terminating pods is gone: those, plus its active pods or its
// replicas, whichever is more (it is about to create up to its replicas).
func (w *working) footprint() int32 {
	return w.pods.terminating + max(w.replicas(), w.pods.active)
}

// floor is how many available pods the ReplicaSet surely keeps at size n:
// the ReplicaSet controller deletes every pod that is not available before
// any that is (replicaset.RankForDeletion), and pods only become more
// available with time, so it keeps min(available, n).
func (w *working) floor(n int32) int32 {
	return min(w.pods.available, n)
}

// planner decides one Plan. It works on copies: d's status and the
// ReplicaSets change as the decision goes, as they would under
// kube-controller-manager's sequence of writes.
type planner struct {
	d       *appsv1.Deployment // working copy
	orig    *appsv1.Deployment
	now     time.Time
	surge   int32
	unavail int32
	all     []*working // in creation order (oldest first, then name)
	newRS   *working
	old     []*working
	pods    []*corev1.Pod
	plan    Plan
}

// Decide is the Deployment controller's pure core: given the Deployment,
// its ReplicaSets and their pods at a moment, what to do. The structure
// follows Kubernetes' controller (see the package doc); what differs is
// that the rolling update bounds use pods as well as replica counts, so
// the bounds hold even while pods are still terminating or caches lag.
func Decide(s Snapshot) (Plan, error) {
	p := &planner{d: s.Deployment.DeepCopy(), orig: s.Deployment, now: s.Now, pods: s.Pods}
	var err error
	if p.surge, p.unavail, err = fenceposts(p.d); err != nil {
		return Plan{}, fmt.Errorf("deployment %s/%s: %w", p.d.Namespace, p.d.Name, err)
	}
	byOwner := map[types.UID][]*corev1.Pod{}
	for _, pod := range s.Pods {
		if ref := metav1.GetControllerOf(pod); ref != nil {
			byOwner[ref.UID] = append(byOwner[ref.UID], pod)
		}
	}
	for _, rs := range s.ReplicaSets {
		w := &working{rs: rs.DeepCopy(), orig: rs, current: equalIgnoreHash(&rs.Spec.Template, &p.d.Spec.Template)}
		w.pods = countPods(byOwner[rs.UID], p.d.Spec.MinReadySeconds, s.Now)
		p.all = append(p.all, w)
	}
	slices.SortStableFunc(p.all, func(a, b *working) int { return olderFirst(a.rs, b.rs) })

	d := p.d
	switch {
	case selectsEverything(d):
		p.plan.Events = append(p.plan.Events, Event{corev1.EventTypeWarning, "SelectingAll",
			"This deployment is selecting all pods. A non-empty selector is required."})
		if d.Status.ObservedGeneration < d.Generation {
			st := d.Status.DeepCopy()
			st.ObservedGeneration = d.Generation
			p.plan.Status = st
		}
		return p.plan, nil
	case d.DeletionTimestamp != nil:
		p.syncRevision(false)
		p.syncStatus(false)
	default:
		p.checkPaused()
		switch {
		case d.Spec.Paused || p.isScalingEvent():
			p.syncRevision(false)
			p.scale()
			if d.Spec.Paused {
				p.cleanup()
			}
			p.syncStatus(false)
		case isRolling(d):
			p.rollRolling()
		default:
			p.rollRecreate()
		}
	}
	p.finish()
	return p.plan, nil
}

// selectsEverything: an empty selector would claim every pod; kube refuses
// to act on such a Deployment.
func selectsEverything(d *appsv1.Deployment) bool {
	sel := d.Spec.Selector
	return sel != nil && len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0
}

// countPods summarises pods.
func countPods(pods []*corev1.Pod, minReady int32, now time.Time) podCounts {
	var c podCounts
	for _, pod := range pods {
		switch {
		case replicaset.IsActive(pod):
			c.active++
			if replicaset.IsAvailable(pod, minReady, now) {
				c.available++
			}
		case replicaset.IsTerminating(pod):
			c.terminating++
		}
	}
	return c
}

// olderFirst orders ReplicaSets by creation time, then name.
func olderFirst(a, b *appsv1.ReplicaSet) int {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		if a.CreationTimestamp.Before(&b.CreationTimestamp) {
			return -1
		}
		return 1
	}
	return strings.Compare(a.Name, b.Name)
}

// syncRevision finds the new ReplicaSet (the oldest one whose template is
// the Deployment's) and the old ones, brings the new one's revision and
// annotations up to date, and, when create is set and there is none,
// plans its creation.
func (p *planner) syncRevision(create bool) {
	d := p.d
	p.newRS, p.old = nil, nil
	for _, w := range p.all {
		if p.newRS == nil && w.current {
			p.newRS = w
			continue
		}
		p.old = append(p.old, w)
	}
	oldRSs := make([]*appsv1.ReplicaSet, len(p.old))
	for i, w := range p.old {
		oldRSs[i] = w.rs
	}
	revision := maxRevision(oldRSs) + 1

	if w := p.newRS; w != nil {
		changed := setNewRSAnnotations(d, w.rs, revision, true, p.surge)
		if w.rs.Spec.MinReadySeconds != d.Spec.MinReadySeconds {
			w.rs.Spec.MinReadySeconds = d.Spec.MinReadySeconds
			changed = true
		}
		w.changed = w.changed || changed
		p.setRevision(w.rs.Annotations[RevisionAnnotation])
		if hasProgressDeadline(d) && condition(d.Status, appsv1.DeploymentProgressing) == nil {
			setCondition(&d.Status, newCondition(appsv1.DeploymentProgressing, corev1.ConditionTrue,
				ReasonFoundNewRS, fmt.Sprintf("Found new replica set %q", w.rs.Name), p.now))
		}
		return
	}
	if !create {
		return
	}
	hash := TemplateHash(&d.Spec.Template, d.Status.CollisionCount)
	name := d.Name + "-" + hash
	for _, w := range p.all {
		if w.rs.Name == name {
			// Another template hashed to the same name: change the salt
			// and try again with the next decision.
			n := int32(1)
			if d.Status.CollisionCount != nil {
				n = *d.Status.CollisionCount + 1
			}
			d.Status.CollisionCount = &n
			return
		}
	}
	template := *d.Spec.Template.DeepCopy()
	template.Labels = withLabel(template.Labels, HashLabel, hash)
	zero := int32(0)
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{
			Name:            name,
			Namespace:       d.Namespace,
			Labels:          template.Labels,
			OwnerReferences: []metav1.OwnerReference{replicaset.ControllerRef(d, "apps/v1", "Deployment")},
		},
		Spec: appsv1.ReplicaSetSpec{
			Replicas:        &zero,
			MinReadySeconds: d.Spec.MinReadySeconds,
			Selector:        selectorWithLabel(d.Spec.Selector, HashLabel, hash),
			Template:        template,
		},
	}
	w := &working{rs: rs, current: true}
	p.newRS = w
	p.all = append(p.all, w)
	n := p.newReplicas(w)
	rs.Spec.Replicas = &n
	setNewRSAnnotations(d, rs, revision, false, p.surge)
	p.setRevision(fmt.Sprint(revision))
	if hasProgressDeadline(d) {
		setCondition(&d.Status, newCondition(appsv1.DeploymentProgressing, corev1.ConditionTrue,
			ReasonNewRSCreated, fmt.Sprintf("Created new replica set %q", name), p.now))
	}
}

// setRevision plans the Deployment's revision annotation.
func (p *planner) setRevision(rev string) {
	if p.d.Annotations[RevisionAnnotation] == rev {
		return
	}
	if p.d.Annotations == nil {
		p.d.Annotations = map[string]string{}
	}
	p.d.Annotations[RevisionAnnotation] = rev
	p.plan.Revision = rev
}

// newReplicas is how far the new ReplicaSet may grow now: for Recreate,
// all the way; for a rolling update, as far as the surge allows given
// every pod that exists or is about to (see footprint).
func (p *planner) newReplicas(newRS *working) int32 {
	want := replicasOf(p.d)
	if !isRolling(p.d) {
		return want
	}
	var pods int32
	for _, w := range p.all {
		pods += w.footprint()
	}
	room := want + p.surge - pods
	cur := newRS.replicas()
	if room <= 0 {
		return cur
	}
	return cur + max(0, min(room, want-cur))
}

// scaleTo sets w's replicas to n and its replicas annotations, as kube's
// scaleReplicaSet does; it says whether the size changed. A ReplicaSet
// being resized also takes the Deployment's minReadySeconds (kube updates
// only the new one's): the ReplicaSet controller then ranks pods for
// deletion by the same availability the rolling update counts on.
func (p *planner) scaleTo(w *working, n int32) bool {
	r := replicasOf(p.d)
	sized := w.replicas() != n
	if sized || replicasAnnotationsNeedUpdate(w.rs, r, r+p.surge) {
		w.rs.Spec.Replicas = &n
		setReplicasAnnotations(w.rs, r, r+p.surge)
		w.changed = true
	}
	if sized {
		w.rs.Spec.MinReadySeconds = p.d.Spec.MinReadySeconds
	}
	return sized
}

// scaleIfNeeded is scaleTo when the size differs, nothing otherwise.
func (p *planner) scaleIfNeeded(w *working, n int32) bool {
	if w.replicas() == n {
		return false
	}
	return p.scaleTo(w, n)
}

// finish turns the working ReplicaSets into writes, and adds the requeue
// for pods about to become available.
func (p *planner) finish() {
	for _, w := range p.all {
		switch {
		case w.orig == nil:
			msg := ""
			if n := w.replicas(); n > 0 {
				msg = fmt.Sprintf("Scaled up replica set %s to %d", w.rs.Name, n)
			}
			p.plan.Create = &Write{RS: w.rs, Message: msg}
		case w.changed && !equality.Semantic.DeepEqual(w.rs, w.orig):
			msg := ""
			if from, to := replicasOrOne(w.orig), w.replicas(); from != to {
				op := "up"
				if to < from {
					op = "down"
				}
				msg = fmt.Sprintf("Scaled %s replica set %s to %d from %d", op, w.rs.Name, to, from)
			}
			p.plan.Updates = append(p.plan.Updates, Write{RS: w.rs, Message: msg})
		}
	}
	if wait, ok := replicaset.NextAvailable(p.pods, p.d.Spec.MinReadySeconds, p.now); ok {
		p.requeue(wait)
	}
}

func (p *planner) requeue(d time.Duration) {
	if d > 0 && (p.plan.RequeueAfter == 0 || d < p.plan.RequeueAfter) {
		p.plan.RequeueAfter = d
	}
}

func replicasOrOne(rs *appsv1.ReplicaSet) int32 {
	if rs.Spec.Replicas == nil {
		return 1
	}
	return *rs.Spec.Replicas
}
