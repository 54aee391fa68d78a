package daemonset

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-sh/skiff/controllers/reconcile"
)

// act carries out a plan: deletions in parallel, creations in batches of
// 1, 2, 4, ... that stop at the first failure (so a quota or a webhook
// that rejects pods costs one request, not hundreds). Expectations are
// raised before the requests so the next reconcile waits for the cache.
// A node whose daemon pod keeps failing is given an exponential backoff
// before its pod is replaced again; wait is when that backoff ends.
func (c *Controller) act(ctx context.Context, key string, ds *appsv1.DaemonSet, pl plan, hash string) (wait time.Duration, err error) {
	now := c.opts.Clock.Now()
	var dels []*corev1.Pod
	for _, d := range pl.delete {
		if d.reason == reasonFailed {
			id := key + "/" + targetNode(d.pod)
			if c.backoff.IsInBackOffSinceUpdate(id, now) {
				w := c.backoff.Get(id)
				if wait == 0 || w < wait {
					wait = w
				}
				continue
			}
			c.backoff.Next(id, now)
			c.rec.Eventf(ds, corev1.EventTypeWarning, reasonFailedDaemonPod,
				"Found failed daemon pod %s/%s on node %s, will try to kill it", d.pod.Namespace, d.pod.Name, targetNode(d.pod))
		}
		dels = append(dels, d.pod)
	}
	creates := pl.create
	if len(creates) > c.opts.BurstReplicas {
		creates = creates[:c.opts.BurstReplicas]
	}
	if len(dels) > c.opts.BurstReplicas {
		dels = dels[:c.opts.BurstReplicas]
	}
	uids := make([]string, len(dels))
	for i, p := range dels {
		uids[i] = string(p.UID)
	}
	c.exp.ExpectCreations(key, len(creates), now)
	c.exp.ExpectDeletions(key, uids, now)

	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for _, p := range dels {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := c.client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{
				Preconditions: &metav1.Preconditions{UID: &p.UID},
			})
			switch {
			case err == nil:
				c.rec.Eventf(ds, corev1.EventTypeNormal, reconcile.ReasonSuccessfulDelete, "Deleted pod: %s", p.Name)
			case apierrors.IsNotFound(err) || apierrors.IsConflict(err):
				c.exp.DeletionObserved(key, string(p.UID))
			default:
				c.exp.DeletionObserved(key, string(p.UID))
				c.rec.Eventf(ds, corev1.EventTypeWarning, reconcile.ReasonFailedDelete, "Error deleting: %v", err)
				mu.Lock()
				errs = append(errs, fmt.Errorf("deleting pod %s/%s: %w", p.Namespace, p.Name, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()

	for start, batch := 0, 1; start < len(creates); start, batch = start+batch, batch*2 {
		end := min(start+batch, len(creates))
		failed := false
		for _, node := range creates[start:end] {
			wg.Add(1)
			go func() {
				defer wg.Done()
				pod, err := c.client.CoreV1().Pods(ds.Namespace).Create(ctx, newPod(ds, node, hash), metav1.CreateOptions{})
				if err != nil {
					c.exp.CreationObserved(key)
					c.rec.Eventf(ds, corev1.EventTypeWarning, reconcile.ReasonFailedCreate, "Error creating: %v", err)
					mu.Lock()
					failed = true
					errs = append(errs, fmt.Errorf("creating pod for node %s: %w", node, err))
					mu.Unlock()
					return
				}
				c.rec.Eventf(ds, corev1.EventTypeNormal, reconcile.ReasonSuccessfulCreate, "Created pod: %s", pod.Name)
			}()
		}
		wg.Wait()
		if failed {
			for range creates[end:] {
				c.exp.CreationObserved(key) // never sent
			}
			break
		}
	}
	return wait, errors.Join(errs...)
}
