package job

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"

	"github.com/skiff-sh/skiff/controllers/reconcile"
)

// writers bounds the API calls one reconcile makes at once.
const writers = 16

// enact carries out a plan: deletions, creations, the status with new
// uncounted pods, finalizer removals, and the settled status.
func (c *Controller) enact(ctx context.Context, key string, w world, p plan) (reconcile.Result, error) {
	job := w.job
	var errs []error
	errs = append(errs, c.deletePods(ctx, key, job, p.release, true))
	errs = append(errs, c.deletePods(ctx, key, job, p.kill, false))
	failedCreates, err := c.createPods(ctx, key, job, p.create)
	errs = append(errs, err)
	st := p.status
	st.Active -= int32(failedCreates)

	// Step 1: record what is about to be counted.
	if !equality.Semantic.DeepEqual(job.Status, st) {
		if job, err = c.writeStatus(ctx, key, job, st); err != nil {
			return reconcile.Result{}, errors.Join(append(errs, err)...)
		}
	}
	c.backoffs.set(key, p.backoff)
	for _, e := range p.events {
		c.rec.Event(job, e.kind, e.reason, e.message)
	}

	// Step 2: let the counted pods go.
	held := sets.New[types.UID]()
	for _, pod := range w.pods {
		if hasTrackingFinalizer(pod) && !w.unfinalizing.Has(pod.UID) {
			held.Insert(pod.UID)
		}
	}
	if len(p.unfinalize) > 0 {
		uids := make([]types.UID, len(p.unfinalize))
		for i, pod := range p.unfinalize {
			uids[i] = pod.UID
		}
		c.unfinalizing.expect(key, uids, w.now)
		var mu sync.Mutex
		errs = append(errs, forEach(p.unfinalize, func(pod *corev1.Pod) error {
			if err := c.removeFinalizer(ctx, pod); err != nil {
				c.unfinalizing.observed(key, pod.UID)
				return err
			}
			mu.Lock()
			held.Delete(pod.UID)
			mu.Unlock()
			return nil
		}))
	}

	// Step 3: count them, and finish the Job if that was all.
	settled, events := settle(job.Status, held, p.finish, p.capped)
	if !equality.Semantic.DeepEqual(job.Status, settled) {
		if job, err = c.writeStatus(ctx, key, job, settled); err != nil {
			return reconcile.Result{}, errors.Join(append(errs, err)...)
		}
		for _, e := range events {
			c.rec.Event(job, e.kind, e.reason, e.message)
		}
	}
	if ttl, ok := ttlExpiry(job); ok {
		p.wake(max(ttl.Sub(w.now), 1))
	}
	return reconcile.Result{RequeueAfter: p.requeueAfter}, errors.Join(errs...)
}

// writeStatus writes the Job's status and remembers the version written.
func (c *Controller) writeStatus(ctx context.Context, key string, job *batchv1.Job, st batchv1.JobStatus) (*batchv1.Job, error) {
	next := job.DeepCopy()
	next.Status = st
	written, err := c.client.BatchV1().Jobs(job.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{})
	if err != nil {
		return job, fmt.Errorf("job %s: writing status: %w", key, err)
	}
	c.versions.remember(key, written.UID, written.ResourceVersion)
	return written, nil
}

// createPods creates the pods, in batches of 1, 2, 4 ... so that a Job
// whose pods cannot be created (a quota, a bad template) fails fast
// instead of flooding the API. It returns how many were not created.
func (c *Controller) createPods(ctx context.Context, key string, job *batchv1.Job, pods []newPod) (int, error) {
	if len(pods) == 0 {
		return 0, nil
	}
	c.exp.ExpectCreations(key, len(pods), c.opts.Clock.Now())
	failed := 0
	for batch := 1; len(pods) > 0; batch *= 2 {
		n := min(batch, len(pods))
		err := forEach(pods[:n], func(np newPod) error { return c.createPod(ctx, key, job, np) })
		pods = pods[n:]
		if err != nil {
			failed += countErrs(err)
			for range pods { // not attempted: not expected either
				c.exp.CreationObserved(key)
			}
			return failed + len(pods), err
		}
	}
	return failed, nil
}

func (c *Controller) createPod(ctx context.Context, key string, job *batchv1.Job, np newPod) error {
	created, err := c.client.CoreV1().Pods(job.Namespace).Create(ctx, podFor(job, np), metav1.CreateOptions{})
	if err != nil {
		c.exp.CreationObserved(key)
		if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
			return nil // everything is going away
		}
		c.rec.Eventf(job, corev1.EventTypeWarning, reconcile.ReasonFailedCreate, "Error creating: %v", err)
		return fmt.Errorf("job %s: creating pod: %w", key, err)
	}
	c.rec.Eventf(job, corev1.EventTypeNormal, reconcile.ReasonSuccessfulCreate, "Created pod: %s", created.Name)
	return nil
}

// deletePods deletes pods; with release, each pod's tracking finalizer is
// removed first, so it is never counted.
func (c *Controller) deletePods(ctx context.Context, key string, job *batchv1.Job, pods []*corev1.Pod, release bool) error {
	if len(pods) == 0 {
		return nil
	}
	at := c.opts.Clock.Now()
	uids := make([]string, len(pods))
	tuids := make([]types.UID, len(pods))
	for i, pod := range pods {
		uids[i], tuids[i] = string(pod.UID), pod.UID
	}
	c.exp.ExpectDeletions(key, uids, at)
	if release {
		c.unfinalizing.expect(key, tuids, at)
	}
	return forEach(pods, func(pod *corev1.Pod) error {
		if release {
			if err := c.removeFinalizer(ctx, pod); err != nil {
				c.exp.DeletionObserved(key, string(pod.UID))
				c.unfinalizing.observed(key, pod.UID)
				return err
			}
		}
		err := c.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
			Preconditions: &metav1.Preconditions{UID: &pod.UID},
		})
		if err != nil {
			c.exp.DeletionObserved(key, string(pod.UID))
			if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
				return nil // gone already (or replaced by a namesake)
			}
			c.rec.Eventf(job, corev1.EventTypeWarning, reconcile.ReasonFailedDelete, "Error deleting: %v", err)
			return fmt.Errorf("job %s: deleting pod %s: %w", key, pod.Name, err)
		}
		c.rec.Eventf(job, corev1.EventTypeNormal, reconcile.ReasonSuccessfulDelete, "Deleted pod: %s", pod.Name)
		return nil
	})
}

// removeFinalizer takes the tracking finalizer off a pod. A pod that is
// gone has lost it too.
func (c *Controller) removeFinalizer(ctx context.Context, pod *corev1.Pod) error {
	if !hasTrackingFinalizer(pod) {
		return nil
	}
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{
			"$deleteFromPrimitiveList/finalizers": []string{batchv1.JobTrackingFinalizer},
		},
	})
	if err != nil {
		return err
	}
	_, err = c.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("pod %s/%s: removing tracking finalizer: %w", pod.Namespace, pod.Name, err)
	}
	return nil
}

// claimPods returns the pods the Job controls, after adopting orphans
// that match its selector and releasing pods that no longer do, as
// Kubernetes' controllers do. Pods left by an earlier Job of the same name
// lose their tracking finalizer.
func (c *Controller) claimPods(ctx context.Context, key string, job *batchv1.Job) ([]*corev1.Pod, error) {
	sel, err := metav1.LabelSelectorAsSelector(job.Spec.Selector)
	if err != nil || job.Spec.Selector == nil {
		sel = labels.Nothing()
	}
	objs, err := c.podIndex.ByIndex(ownerIndex, key)
	if err != nil {
		return nil, fmt.Errorf("job %s: listing pods: %w", key, err)
	}
	var owned []*corev1.Pod
	var errs []error
	for _, o := range objs {
		pod := o.(*corev1.Pod)
		ref := metav1.GetControllerOf(pod)
		switch {
		case ref.UID != job.UID:
			if hasTrackingFinalizer(pod) {
				errs = append(errs, c.removeFinalizer(ctx, pod))
			}
		case sel.Matches(labels.Set(pod.Labels)) || pod.DeletionTimestamp != nil:
			owned = append(owned, pod)
		default:
			errs = append(errs, c.release(ctx, job, pod))
		}
	}
	if job.DeletionTimestamp == nil && !sel.Empty() {
		orphans, err := c.pods.Pods(job.Namespace).List(sel)
		if err != nil {
			return nil, fmt.Errorf("job %s: listing pods: %w", key, err)
		}
		checked := false
		for _, pod := range orphans {
			if metav1.GetControllerOf(pod) != nil || pod.DeletionTimestamp != nil {
				continue
			}
			if !checked {
				// Adopt only for a Job that is not being deleted, read
				// from the API: the cache may not know yet.
				live, err := c.client.BatchV1().Jobs(job.Namespace).Get(ctx, job.Name, metav1.GetOptions{})
				if err != nil {
					return nil, fmt.Errorf("job %s: checking before adopting: %w", key, err)
				}
				if live.UID != job.UID || live.DeletionTimestamp != nil {
					break
				}
				checked = true
			}
			adopted, err := c.adopt(ctx, job, pod)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if adopted != nil {
				owned = append(owned, adopted)
			}
		}
	}
	return owned, errors.Join(errs...)
}

// adopt makes the Job the pod's controller and adds the tracking
// finalizer. The pod's UID in the patch makes it fail if the pod was
// replaced by a namesake.
func (c *Controller) adopt(ctx context.Context, job *batchv1.Job, pod *corev1.Pod) (*corev1.Pod, error) {
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{
			"uid":             pod.UID,
			"ownerReferences": []metav1.OwnerReference{*metav1.NewControllerRef(job, jobKind)},
			"finalizers":      []string{batchv1.JobTrackingFinalizer},
		},
	})
	if err != nil {
		return nil, err
	}
	got, err := c.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	if apierrors.IsNotFound(err) || apierrors.IsInvalid(err) || apierrors.IsConflict(err) {
		return nil, nil // gone or replaced
	}
	if err != nil {
		return nil, fmt.Errorf("job %s/%s: adopting pod %s: %w", job.Namespace, job.Name, pod.Name, err)
	}
	return got, nil
}

// release drops the Job's controller reference (and the tracking
// finalizer) from a pod that no longer matches its selector.
func (c *Controller) release(ctx context.Context, job *batchv1.Job, pod *corev1.Pod) error {
	meta := map[string]any{
		"uid":             pod.UID,
		"ownerReferences": []map[string]any{{"$patch": "delete", "uid": job.UID}},
	}
	if hasTrackingFinalizer(pod) {
		meta["$deleteFromPrimitiveList/finalizers"] = []string{batchv1.JobTrackingFinalizer}
	}
	patch, err := json.Marshal(map[string]any{"metadata": meta})
	if err != nil {
		return err
	}
	_, err = c.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsInvalid(err) {
		return fmt.Errorf("job %s/%s: releasing pod %s: %w", job.Namespace, job.Name, pod.Name, err)
	}
	return nil
}

// forEach runs fn on every item, at most writers at a time, and joins
// the errors.
func forEach[T any](items []T, fn func(T) error) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		sem  = make(chan struct{}, writers)
	)
	for _, it := range items {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := fn(it); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// countErrs counts the errors joined in err.
func countErrs(err error) int {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return len(j.Unwrap())
	}
	return 1
}
