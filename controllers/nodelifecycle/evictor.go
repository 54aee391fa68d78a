package nodelifecycle

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-sh/skiff/controllers/reconcile"
)

// The condition a pod gets before the taint manager deletes it.
const (
	reasonDeletionByTaintManager = "DeletionByTaintManager"
	messageTaintEviction         = "Taint manager: deleting due to NoExecute taint"
)

// reconcileEvictions deletes the pods of one node that its NoExecute
// taints evict (judge, eviction.go), and asks to be called back when the
// next tolerationSeconds runs out.
func (c *Controller) reconcileEvictions(ctx context.Context, name string) (reconcile.Result, error) {
	node, err := c.nodes.Get(name)
	if apierrors.IsNotFound(err) {
		c.forgetSeen(name, nil)
		return reconcile.Result{}, nil
	}
	if err != nil {
		return reconcile.Result{}, err
	}
	taints := noExecuteTaints(node)
	now := c.opts.Clock.Now()
	c.forgetSeen(name, taints)
	if len(taints) == 0 {
		return reconcile.Result{}, nil
	}
	seen := func(t corev1.Taint) time.Time {
		c.mu.Lock()
		defer c.mu.Unlock()
		key := name + "/" + t.Key + "=" + t.Value
		at, ok := c.seen[key]
		if !ok {
			at = now
			c.seen[key] = at
		}
		return at
	}
	objs, err := c.podIndex.ByIndex(podsByNode, name)
	if err != nil {
		return reconcile.Result{}, err
	}
	var next time.Duration
	var errs []error
	for _, o := range objs {
		pod, ok := o.(*corev1.Pod)
		if !ok || pod.DeletionTimestamp != nil {
			continue
		}
		v := judge(pod, taints, seen)
		if !v.evict {
			continue
		}
		if wait := v.at.Sub(now); !v.at.IsZero() && wait > 0 {
			if next == 0 || wait < next {
				next = wait
			}
			continue
		}
		if err := c.evict(ctx, pod, now); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return reconcile.Result{}, err
	}
	return reconcile.Result{RequeueAfter: next}, nil
}

// evict marks the pod as disrupted by the taint manager and deletes it.
func (c *Controller) evict(ctx context.Context, pod *corev1.Pod, now time.Time) error {
	c.rec.Eventf(pod, corev1.EventTypeNormal, reasonTaintManagerEvicted, "Marking for deletion Pod %s/%s", pod.Namespace, pod.Name)
	p := pod.DeepCopy()
	setDisruptionTarget(p, now)
	if _, err := c.client.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil &&
		!apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("pod %s/%s: disruption condition: %w", p.Namespace, p.Name, err)
	}
	err := c.client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &pod.UID}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("pod %s/%s: evicting: %w", p.Namespace, p.Name, err)
	}
	return nil
}

func setDisruptionTarget(p *corev1.Pod, now time.Time) {
	cond := corev1.PodCondition{
		Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue,
		Reason: reasonDeletionByTaintManager, Message: messageTaintEviction, LastTransitionTime: metav1.NewTime(now),
	}
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == corev1.DisruptionTarget {
			p.Status.Conditions[i] = cond
			return
		}
	}
	p.Status.Conditions = append(p.Status.Conditions, cond)
}

// forgetSeen drops first-seen times of a node's taints that are gone.
func (c *Controller) forgetSeen(node string, current []corev1.Taint) {
	keep := map[string]bool{}
	for _, t := range current {
		keep[node+"/"+t.Key+"="+t.Value] = true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.seen {
		if len(k) > len(node) && k[:len(node)+1] == node+"/" && !keep[k] {
			delete(c.seen, k)
		}
	}
}
