package scheduler

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// The writes a decision leads to. They run on the workers, so the loop
// can decide the next pod while they wait on the API server; each is
// idempotent and skips writes that would change nothing.

// bind assigns pod to node through the pods/binding subresource, after
// writing node as the selected node of its unbound WaitForFirstConsumer
// claims. On failure the assumed pod is forgotten and the pod retried
// after backoff.
func (s *Scheduler) bind(ctx context.Context, key string, pod *corev1.Pod, node string) {
	if err := s.selectNode(ctx, pod, node); err != nil {
		s.cache.Forget(pod)
		s.claims.forget(pod)
		s.log.Warn("select node for claims failed", "pod", key, "node", node, "err", err)
		s.queue.Failed(key, 0, s.opts.Now())
		return
	}
	b := &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
		Target:     corev1.ObjectReference{Kind: "Node", Name: node},
	}
	if err := s.client.CoreV1().Pods(pod.Namespace).Bind(ctx, b, metav1.CreateOptions{}); err != nil {
		s.cache.Forget(pod)
		if apierrors.IsNotFound(err) {
			s.queue.Done(key)
			return
		}
		s.log.Warn("bind failed", "pod", key, "node", node, "err", err)
		s.queue.Failed(key, 0, s.opts.Now())
		return
	}
	s.queue.Done(key)
	s.event(pod, corev1.EventTypeNormal, "Scheduled", "Binding",
		fmt.Sprintf("Successfully assigned %s/%s to %s", pod.Namespace, pod.Name, node))
	if _, ok := pod.Annotations[AnnotationUnschedulable]; ok {
		patch := []byte(fmt.Sprintf(`{"metadata":{"annotations":{%q:null}}}`, AnnotationUnschedulable))
		if _, err := s.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil && !apierrors.IsNotFound(err) {
			s.log.Warn("clear explanation", "pod", key, "err", err)
		}
	}
}

// reportUnschedulable sets PodScheduled=False/Unschedulable with msg and
// the nominated node on the pod's status, stores the explanation in its
// annotation, and records a FailedScheduling event.
func (s *Scheduler) reportUnschedulable(ctx context.Context, pod *corev1.Pod, msg, note, nominated string) {
	key := podKey(pod)
	if s.cache.IsPlaced(pod.UID) {
		return // a later attempt already placed it: this report is stale
	}
	pods := s.client.CoreV1().Pods(pod.Namespace)
	if patch := statusPatch(pod, msg, nominated, s.opts.Now()); patch != nil {
		if _, err := pods.Patch(ctx, pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil {
			if apierrors.IsNotFound(err) {
				return
			}
			s.log.Warn("update pod status", "pod", key, "err", err)
		}
	}
	if note != "" && pod.Annotations[AnnotationUnschedulable] != note {
		patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{AnnotationUnschedulable: note}}})
		if err == nil {
			_, err = pods.Patch(ctx, pod.Name, types.MergePatchType, patch, metav1.PatchOptions{})
		}
		if err != nil && !apierrors.IsNotFound(err) {
			s.log.Warn("annotate pod", "pod", key, "err", err)
		}
	}
	s.event(pod, corev1.EventTypeWarning, "FailedScheduling", "Scheduling", msg)
}

// statusPatch is the strategic merge patch that records the failure, or
// nil when the status already says so.
func statusPatch(pod *corev1.Pod, msg, nominated string, now time.Time) []byte {
	var cur *corev1.PodCondition
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == corev1.PodScheduled {
			cur = &pod.Status.Conditions[i]
		}
	}
	same := cur != nil && cur.Status == corev1.ConditionFalse && cur.Reason == corev1.PodReasonUnschedulable && cur.Message == msg
	if same && nominated == pod.Status.NominatedNodeName {
		return nil
	}
	cond := map[string]any{
		"type": corev1.PodScheduled, "status": corev1.ConditionFalse,
		"reason": corev1.PodReasonUnschedulable, "message": msg, "lastProbeTime": nil,
	}
	if cur == nil || cur.Status != corev1.ConditionFalse {
		cond["lastTransitionTime"] = now.UTC().Format(time.RFC3339)
	}
	status := map[string]any{"conditions": []any{cond}}
	if nominated != pod.Status.NominatedNodeName {
		if nominated == "" {
			status["nominatedNodeName"] = nil
		} else {
			status["nominatedNodeName"] = nominated
		}
	}
	b, err := json.Marshal(map[string]any{"status": status})
	if err != nil {
		return nil
	}
	return b
}

// preempt evicts the victims that make room for pod on node: each gets a
// DisruptionTarget condition, then is deleted with its own grace period.
func (s *Scheduler) preempt(ctx context.Context, pod *corev1.Pod, node string, victims []*corev1.Pod) {
	for _, v := range victims {
		pods := s.client.CoreV1().Pods(v.Namespace)
		cond := map[string]any{"status": map[string]any{"conditions": []any{map[string]any{
			"type": corev1.DisruptionTarget, "status": corev1.ConditionTrue,
			"reason": corev1.PodReasonPreemptionByScheduler, "lastTransitionTime": s.opts.Now().UTC().Format(time.RFC3339),
			"message": fmt.Sprintf("%s: preempting to accommodate a higher priority pod", s.opts.SchedulerName),
		}}}}
		if patch, err := json.Marshal(cond); err == nil {
			if _, err := pods.Patch(ctx, v.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil && !apierrors.IsNotFound(err) {
				s.log.Warn("mark preemption victim", "pod", podKey(v), "err", err)
			}
		}
		uid := v.UID
		opts := metav1.DeleteOptions{GracePeriodSeconds: v.Spec.TerminationGracePeriodSeconds, Preconditions: &metav1.Preconditions{UID: &uid}}
		if err := pods.Delete(ctx, v.Name, opts); err != nil && !apierrors.IsNotFound(err) {
			s.log.Warn("delete preemption victim", "pod", podKey(v), "err", err)
			continue
		}
		s.event(v, corev1.EventTypeNormal, "Preempted", "Preempting",
			fmt.Sprintf("Preempted by pod %s on node %s", pod.UID, node))
	}
}

// event queues a core/v1 Event about a pod. Events are best effort: when
// the API server is slower than the scheduler, the surplus is dropped
// rather than slowing placement down.
func (s *Scheduler) event(pod *corev1.Pod, typ, reason, action, msg string) {
	now := metav1.NewTime(s.opts.Now())
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{
			Name:      fmt.Sprintf("%s.%x", pod.Name, now.UnixNano()),
			Namespace: pod.Namespace,
		},
		InvolvedObject: corev1.ObjectReference{
			Kind: "Pod", APIVersion: "v1", Namespace: pod.Namespace, Name: pod.Name,
			UID: pod.UID, ResourceVersion: pod.ResourceVersion,
		},
		Reason: reason, Message: msg, Type: typ, Action: action,
		Source:         corev1.EventSource{Component: s.opts.SchedulerName},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
		ReportingController: s.opts.SchedulerName,
	}
	select {
	case s.events <- ev:
	default:
	}
}

// emitEvents writes queued events until ctx ends.
func (s *Scheduler) emitEvents(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-s.events:
			if _, err := s.client.CoreV1().Events(ev.Namespace).Create(ctx, ev, metav1.CreateOptions{}); err != nil && ctx.Err() == nil {
				s.log.Debug("record event", "reason", ev.Reason, "pod", ev.InvolvedObject.Name, "err", err)
			}
		}
	}
}
