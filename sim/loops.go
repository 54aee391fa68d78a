package sim

import (
	"context"
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-sh/skiff/controllers/reconcile"
)

// The three reconcilers: each reads what it needs, decides with the pure
// functions of node.go and pod.go, and makes at most one write.

func ignoreNotFound(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// reconcileNode registers a fleet node if it is missing and posts its
// status when it changed or its next status slot has come.
func (s *simulator) reconcileNode(ctx context.Context, name string) (reconcile.Result, error) {
	n := s.byName[name]
	if n == nil {
		return reconcile.Result{}, nil
	}
	now := s.opts.Now()
	obj, exists, err := s.nodeInformer.GetIndexer().GetByKey(name)
	if err != nil {
		return reconcile.Result{}, fmt.Errorf("node %s: reading cache: %w", name, err)
	}
	if !exists {
		// Create and post status: an API server may ignore the status of
		// a create. The status write's event brings us back here.
		created, err := s.client.CoreV1().Nodes().Create(ctx, nodeObject(*n, s.opts, now), metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return reconcile.Result{}, nil // the informer will deliver it
		}
		if err != nil {
			return reconcile.Result{}, fmt.Errorf("node %s: registering: %w", name, err)
		}
		created.Status = nodeStatus(*n, s.opts, now, &created.Status)
		if _, err := s.client.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
			return reconcile.Result{}, fmt.Errorf("node %s: posting status: %w", name, err)
		}
		return reconcile.Result{}, nil
	}
	node := obj.(*corev1.Node)
	origin := slotOrigin(s.start, s.opts.StatusInterval, n.index, len(s.nodes))
	due := statusDue(origin, s.opts.StatusInterval, lastHeartbeat(&node.Status))
	want := nodeStatus(*n, s.opts, now, &node.Status)
	if statusCurrent(&node.Status, &want) && now.Before(due) {
		return reconcile.Result{RequeueAfter: due.Sub(now)}, nil
	}
	node = node.DeepCopy()
	node.Status = want
	if _, err := s.client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		return reconcile.Result{}, fmt.Errorf("node %s: posting status: %w", name, ignoreNotFound(err))
	}
	next := statusDue(origin, s.opts.StatusInterval, now.Truncate(time.Second))
	return reconcile.Result{RequeueAfter: next.Sub(now)}, nil
}

// leaseState is the lease loop's memory of one node: its next slot and
// the Lease it last wrote (renewed without reading it first, as a kubelet
// does; a conflict makes it read again).
type leaseState struct {
	due   time.Time
	lease *coordinationv1.Lease
}

// notRegisteredWait is how soon a lease loop looks again for the Node it
// waits for.
const notRegisteredWait = 200 * time.Millisecond

// reconcileLease renews a node's Lease when its slot has come.
func (s *simulator) reconcileLease(ctx context.Context, name string) (reconcile.Result, error) {
	n := s.byName[name]
	if n == nil {
		return reconcile.Result{}, nil
	}
	st := s.leases[name] // the map is fixed at start; one worker per key touches st
	now := s.opts.Now()
	if now.Before(st.due) {
		return reconcile.Result{RequeueAfter: st.due.Sub(now)}, nil
	}
	if st.lease == nil {
		if _, exists, _ := s.nodeInformer.GetIndexer().GetByKey(name); !exists {
			// The Lease names its Node as owner, so it waits for the
			// registration; the retry is short and not an error.
			return reconcile.Result{RequeueAfter: notRegisteredWait}, nil
		}
	}
	written, err := s.renewLease(ctx, n, st.lease, now)
	if err != nil {
		st.lease = nil // read it afresh on the retry
		return reconcile.Result{}, fmt.Errorf("node %s: renewing lease: %w", name, err)
	}
	st.lease = written
	done := s.opts.Now()
	if s.opts.LeaseRenewed != nil {
		s.opts.LeaseRenewed(name, done.Sub(st.due))
	}
	origin := slotOrigin(s.start, s.opts.LeaseInterval, n.index, len(s.nodes))
	st.due = nextSlot(origin, s.opts.LeaseInterval, done)
	return reconcile.Result{RequeueAfter: st.due.Sub(done)}, nil
}

// renewLease writes the node's Lease with renewTime now: an update of the
// last one written, or, not having one, a read and then an update or a
// create.
func (s *simulator) renewLease(ctx context.Context, n *simNode, last *coordinationv1.Lease, now time.Time) (*coordinationv1.Lease, error) {
	leases := s.client.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	if last == nil {
		cur, err := leases.Get(ctx, n.name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			obj, exists, err := s.nodeInformer.GetIndexer().GetByKey(n.name)
			if err != nil || !exists {
				return nil, fmt.Errorf("node %s is not registered", n.name)
			}
			return leases.Create(ctx, nodeLease(*n, obj.(*corev1.Node).UID, s.opts.LeaseInterval, now), metav1.CreateOptions{})
		case err != nil:
			return nil, err
		}
		last = cur
	}
	want := nodeLease(*n, "", s.opts.LeaseInterval, now)
	next := last.DeepCopy()
	next.Spec.HolderIdentity = want.Spec.HolderIdentity
	next.Spec.LeaseDurationSeconds = want.Spec.LeaseDurationSeconds
	next.Spec.RenewTime = want.Spec.RenewTime
	return leases.Update(ctx, next, metav1.UpdateOptions{})
}

// reconcilePod plays the node agent for one pod bound to a fleet node.
func (s *simulator) reconcilePod(ctx context.Context, key string) (reconcile.Result, error) {
	obj, exists, err := s.podInformer.GetIndexer().GetByKey(key)
	if err != nil {
		return reconcile.Result{}, fmt.Errorf("pod %s: reading cache: %w", key, err)
	}
	if !exists {
		s.ipam.release(key)
		return reconcile.Result{}, nil
	}
	pod := obj.(*corev1.Pod)
	n := s.byName[pod.Spec.NodeName]
	if n == nil {
		s.ipam.release(key)
		return reconcile.Result{}, nil
	}
	var ip string
	switch {
	case pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed:
		s.ipam.release(key)
	case pod.Spec.HostNetwork:
		ip = n.hostIP
	case pod.DeletionTimestamp == nil:
		if ip, err = s.ipam.assign(*n, key, pod.UID, pod.Status.PodIP); err != nil {
			return reconcile.Result{}, fmt.Errorf("pod %s: %w", key, err)
		}
	}
	plan := planPod(pod, *n, ip, s.opts.Now(), timingOf(s.opts))
	switch {
	case plan.delete:
		zero := int64(0)
		err := s.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
			GracePeriodSeconds: &zero,
			Preconditions:      &metav1.Preconditions{UID: &pod.UID},
		})
		if err = ignoreNotFound(err); err != nil {
			return reconcile.Result{}, fmt.Errorf("pod %s: confirming deletion: %w", key, err)
		}
	case plan.status != nil:
		next := pod.DeepCopy()
		next.Status = *plan.status
		_, err := s.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{})
		if err = ignoreNotFound(err); err != nil {
			return reconcile.Result{}, fmt.Errorf("pod %s: updating status: %w", key, err)
		}
	}
	return reconcile.Result{RequeueAfter: plan.after}, nil
}
