package deployment

import (
	"fmt"
	"math"
	"slices"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Condition reasons, as kubectl and users know them.
const (
	ReasonMinimumReplicasAvailable   = "MinimumReplicasAvailable"
	ReasonMinimumReplicasUnavailable = "MinimumReplicasUnavailable"
	ReasonNewRSCreated               = "NewReplicaSetCreated"
	ReasonFoundNewRS                 = "FoundNewReplicaSet"
	ReasonRSUpdated                  = "ReplicaSetUpdated"
	ReasonNewRSAvailable             = "NewReplicaSetAvailable"
	ReasonProgressDeadlineExceeded   = "ProgressDeadlineExceeded"
	ReasonPaused                     = "DeploymentPaused"
	ReasonResumed                    = "DeploymentResumed"
	ReasonFailedRSCreate             = "ReplicaSetCreateError"
)

// The Progressing condition (only with a progressDeadlineSeconds):
//
//	                 new ReplicaSet created / found
//	                 ──> True NewReplicaSetCreated / FoundNewReplicaSet
//	                              │
//	   pods updated, old gone,    │   no progress for progressDeadlineSeconds
//	   more ready or available    v   (since the condition's lastUpdateTime)
//	 ┌──> True ReplicaSetUpdated ───────────> False ProgressDeadlineExceeded
//	 └──────────┘  (lastUpdateTime bumped)           (kept until a new rollout)
//	                              │
//	   all replicas updated and available
//	                              v
//	                True NewReplicaSetAvailable (kept while nothing changes)
//
//	spec.paused ──> Unknown DeploymentPaused;  resumed ──> Unknown DeploymentResumed
//	(no deadline runs while paused; a timed-out condition is not overwritten)
//	creating the new ReplicaSet fails ──> False ReplicaSetCreateError

// hasProgressDeadline says whether d's rollout has a deadline (the API
// defaults it to 600s; MaxInt32 means none).
func hasProgressDeadline(d *appsv1.Deployment) bool {
	return d.Spec.ProgressDeadlineSeconds != nil && *d.Spec.ProgressDeadlineSeconds != math.MaxInt32
}

func condition(st appsv1.DeploymentStatus, t appsv1.DeploymentConditionType) *appsv1.DeploymentCondition {
	for i := range st.Conditions {
		if st.Conditions[i].Type == t {
			return &st.Conditions[i]
		}
	}
	return nil
}

// newCondition is a condition that changed at now (to the second, as the
// API stores it).
func newCondition(t appsv1.DeploymentConditionType, status corev1.ConditionStatus, reason, msg string, now time.Time) appsv1.DeploymentCondition {
	at := metav1.NewTime(now.Truncate(time.Second))
	return appsv1.DeploymentCondition{Type: t, Status: status, Reason: reason, Message: msg, LastUpdateTime: at, LastTransitionTime: at}
}

// setCondition puts c in st unless a condition of its type already has its
// status and reason; a status that does not change keeps its transition
// time.
func setCondition(st *appsv1.DeploymentStatus, c appsv1.DeploymentCondition) {
	cur := condition(*st, c.Type)
	if cur != nil && cur.Status == c.Status && cur.Reason == c.Reason {
		return
	}
	if cur != nil && cur.Status == c.Status {
		c.LastTransitionTime = cur.LastTransitionTime
	}
	removeCondition(st, c.Type)
	st.Conditions = append(st.Conditions, c)
}

func removeCondition(st *appsv1.DeploymentStatus, t appsv1.DeploymentConditionType) {
	st.Conditions = slices.DeleteFunc(st.Conditions, func(c appsv1.DeploymentCondition) bool { return c.Type == t })
	if len(st.Conditions) == 0 {
		st.Conditions = nil
	}
}

// checkPaused marks a pause or a resume on the Progressing condition, so
// that a deadline never runs across a pause.
func (p *planner) checkPaused() {
	d := p.d
	if !hasProgressDeadline(d) {
		return
	}
	cur := condition(d.Status, appsv1.DeploymentProgressing)
	if cur != nil && cur.Reason == ReasonProgressDeadlineExceeded {
		return
	}
	pausedMarked := cur != nil && cur.Reason == ReasonPaused
	switch {
	case d.Spec.Paused && !pausedMarked:
		setCondition(&d.Status, newCondition(appsv1.DeploymentProgressing, corev1.ConditionUnknown, ReasonPaused, "Deployment is paused", p.now))
	case !d.Spec.Paused && pausedMarked:
		setCondition(&d.Status, newCondition(appsv1.DeploymentProgressing, corev1.ConditionUnknown, ReasonResumed, "Deployment is resumed", p.now))
	}
}

// calculateStatus is d's status from its ReplicaSets (their reported
// status, as kubectl sees them) and the conditions so far.
func (p *planner) calculateStatus() appsv1.DeploymentStatus {
	d := p.d
	st := appsv1.DeploymentStatus{
		ObservedGeneration: d.Generation,
		CollisionCount:     d.Status.CollisionCount,
		Conditions:         slices.Clone(d.Status.Conditions),
	}
	var specTotal int32
	terminating, allReport := int32(0), len(p.all) > 0
	for _, w := range p.all {
		rs := w.rs
		st.Replicas += rs.Status.Replicas
		st.ReadyReplicas += rs.Status.ReadyReplicas
		st.AvailableReplicas += rs.Status.AvailableReplicas
		specTotal += w.replicas()
		if rs.Status.TerminatingReplicas != nil {
			terminating += *rs.Status.TerminatingReplicas
		} else {
			allReport = false
		}
	}
	if p.newRS != nil {
		st.UpdatedReplicas = p.newRS.rs.Status.Replicas
	}
	if allReport {
		st.TerminatingReplicas = &terminating
	}
	st.UnavailableReplicas = max(0, specTotal-st.AvailableReplicas)
	if st.AvailableReplicas >= replicasOf(d)-p.unavail {
		setCondition(&st, newCondition(appsv1.DeploymentAvailable, corev1.ConditionTrue,
			ReasonMinimumReplicasAvailable, "Deployment has minimum availability.", p.now))
	} else {
		setCondition(&st, newCondition(appsv1.DeploymentAvailable, corev1.ConditionFalse,
			ReasonMinimumReplicasUnavailable, "Deployment does not have minimum availability.", p.now))
	}
	return st
}

// syncStatus plans d's new status. With rollout set it also judges the
// rollout's progress against its deadline (the rolling and Recreate
// paths); without, it only recounts (scaling, paused, being deleted).
func (p *planner) syncStatus(rollout bool) {
	st := p.calculateStatus()
	if rollout {
		p.judgeProgress(&st)
	}
	if !equality.Semantic.DeepEqual(st, p.orig.Status) {
		p.plan.Status = &st
	}
}

// judgeProgress sets the Progressing and ReplicaFailure conditions of st,
// and asks for a requeue at the deadline.
func (p *planner) judgeProgress(st *appsv1.DeploymentStatus) {
	d := p.d
	if !hasProgressDeadline(d) {
		removeCondition(st, appsv1.DeploymentProgressing)
	}
	cur := condition(d.Status, appsv1.DeploymentProgressing)
	complete := st.Replicas == st.UpdatedReplicas && cur != nil && cur.Reason == ReasonNewRSAvailable
	if hasProgressDeadline(d) && !complete {
		subject := fmt.Sprintf("Deployment %q", d.Name)
		if p.newRS != nil {
			subject = fmt.Sprintf("ReplicaSet %q", p.newRS.rs.Name)
		}
		switch {
		case deploymentComplete(d, st):
			setCondition(st, newCondition(appsv1.DeploymentProgressing, corev1.ConditionTrue,
				ReasonNewRSAvailable, subject+" has successfully progressed.", p.now))
		case progressing(d, st):
			c := newCondition(appsv1.DeploymentProgressing, corev1.ConditionTrue, ReasonRSUpdated, subject+" is progressing.", p.now)
			// Progress bumps lastUpdateTime even when the reason stays.
			if cur != nil {
				if cur.Status == corev1.ConditionTrue {
					c.LastTransitionTime = cur.LastTransitionTime
				}
				removeCondition(st, appsv1.DeploymentProgressing)
			}
			setCondition(st, c)
		case p.timedOut(st):
			setCondition(st, newCondition(appsv1.DeploymentProgressing, corev1.ConditionFalse,
				ReasonProgressDeadlineExceeded, subject+" has timed out progressing.", p.now))
		}
	}
	if c := p.replicaFailure(); c != nil {
		setCondition(st, *c)
	} else {
		removeCondition(st, appsv1.DeploymentReplicaFailure)
	}
	p.requeueForDeadline(st)
}

// deploymentComplete: every replica updated and available, and the status
// is of the current generation.
func deploymentComplete(d *appsv1.Deployment, st *appsv1.DeploymentStatus) bool {
	r := replicasOf(d)
	return st.UpdatedReplicas == r && st.Replicas == r && st.AvailableReplicas == r && st.ObservedGeneration >= d.Generation
}

// progressing: compared with the status last written, more pods updated,
// fewer old pods, or more ready or available.
func progressing(d *appsv1.Deployment, st *appsv1.DeploymentStatus) bool {
	old := d.Status
	return st.UpdatedReplicas > old.UpdatedReplicas ||
		st.Replicas-st.UpdatedReplicas < old.Replicas-old.UpdatedReplicas ||
		st.ReadyReplicas > old.ReadyReplicas ||
		st.AvailableReplicas > old.AvailableReplicas
}

// timedOut: the Progressing condition was last updated longer than the
// deadline ago (or already says so).
func (p *planner) timedOut(st *appsv1.DeploymentStatus) bool {
	c := condition(*st, appsv1.DeploymentProgressing)
	if c == nil || c.Reason == ReasonNewRSAvailable {
		return false
	}
	if c.Reason == ReasonProgressDeadlineExceeded {
		return true
	}
	deadline := time.Duration(*p.d.Spec.ProgressDeadlineSeconds) * time.Second
	return c.LastUpdateTime.Add(deadline).Before(p.now)
}

// requeueForDeadline asks to look again when the deadline of a rollout
// still in progress passes.
func (p *planner) requeueForDeadline(st *appsv1.DeploymentStatus) {
	c := condition(*st, appsv1.DeploymentProgressing)
	if !hasProgressDeadline(p.d) || c == nil || deploymentComplete(p.d, st) ||
		c.Reason == ReasonProgressDeadlineExceeded || c.Reason == ReasonNewRSAvailable {
		return
	}
	deadline := time.Duration(*p.d.Spec.ProgressDeadlineSeconds) * time.Second
	// Times are stored to the second and "timed out" is strictly after.
	wait := c.LastUpdateTime.Add(deadline).Sub(p.now) + 10*time.Millisecond
	p.requeue(max(wait, 100*time.Millisecond))
}

// replicaFailure is the Deployment's ReplicaFailure condition copied from
// the new ReplicaSet's, or else from an old one's.
func (p *planner) replicaFailure() *appsv1.DeploymentCondition {
	sets := p.old
	if p.newRS != nil {
		sets = append([]*working{p.newRS}, p.old...)
	}
	for _, w := range sets {
		for _, c := range w.rs.Status.Conditions {
			if c.Type == appsv1.ReplicaSetReplicaFailure {
				return &appsv1.DeploymentCondition{
					Type: appsv1.DeploymentReplicaFailure, Status: c.Status, Reason: c.Reason, Message: c.Message,
					LastUpdateTime: c.LastTransitionTime, LastTransitionTime: c.LastTransitionTime,
				}
			}
		}
	}
	return nil
}

// FailedCreateStatus is d's status after creating its new ReplicaSet
// failed: Progressing False with reason ReplicaSetCreateError (only with a
// progress deadline; nil otherwise).
func FailedCreateStatus(d *appsv1.Deployment, msg string, now time.Time) *appsv1.DeploymentStatus {
	if !hasProgressDeadline(d) {
		return nil
	}
	st := d.Status.DeepCopy()
	setCondition(st, newCondition(appsv1.DeploymentProgressing, corev1.ConditionFalse, ReasonFailedRSCreate, msg, now))
	return st
}

// cleanup plans the deletion of the oldest old ReplicaSets beyond
// revisionHistoryLimit, sparing any that still has pods, replicas, an
// unobserved change, or that this plan changes.
func (p *planner) cleanup() {
	limit := p.d.Spec.RevisionHistoryLimit
	if limit == nil {
		return
	}
	var alive []*working
	for _, w := range p.old {
		if w.orig != nil && w.rs.DeletionTimestamp == nil {
			alive = append(alive, w)
		}
	}
	excess := len(alive) - int(*limit)
	if excess <= 0 {
		return
	}
	slices.SortStableFunc(alive, func(a, b *working) int {
		ra, rb := revisionOf(a.rs), revisionOf(b.rs)
		if ra != rb {
			if ra < rb {
				return -1
			}
			return 1
		}
		return olderFirst(a.rs, b.rs)
	})
	for _, w := range alive[:excess] {
		rs := w.rs
		if w.changed || rs.Status.Replicas != 0 || w.replicas() != 0 || rs.Generation > rs.Status.ObservedGeneration {
			continue
		}
		p.plan.Deletes = append(p.plan.Deletes, w.orig)
	}
}
