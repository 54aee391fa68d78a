package replicaset

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	"github.com/skiff-sh/skiff/controllers/reconcile"
)

// claim performs the adoptions and releases of claims and returns the pods
// the set now controls.
func (c *Controller) claim(ctx context.Context, s *set, claims Claims[*corev1.Pod]) ([]*corev1.Pod, error) {
	owned := slices.Clone(claims.Keep)
	ns := s.meta.GetNamespace()
	var errs []error
	if len(claims.Adopt) > 0 {
		// Adopt only for the set as it is now: not a same-named
		// replacement, and not one that has just been deleted.
		if err := c.canAdopt(ctx, s); err != nil {
			return nil, err
		}
		gvk := c.kind.gvk()
		ref := ControllerRef(s.meta, gvk.GroupVersion().String(), gvk.Kind)
		for _, p := range claims.Adopt {
			patch, err := AdoptPatch(ref, p.UID)
			if err != nil {
				return nil, err
			}
			adopted, err := c.client.CoreV1().Pods(ns).Patch(ctx, p.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
			switch {
			case apierrors.IsNotFound(err):
			case err != nil:
				errs = append(errs, fmt.Errorf("adopting pod %s/%s: %w", ns, p.Name, err))
			default:
				owned = append(owned, adopted)
			}
		}
	}
	for _, p := range claims.Release {
		patch, err := ReleasePatch(s.meta.GetUID(), p.UID)
		if err != nil {
			return nil, err
		}
		_, err = c.client.CoreV1().Pods(ns).Patch(ctx, p.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsInvalid(err) {
			errs = append(errs, fmt.Errorf("releasing pod %s/%s: %w", ns, p.Name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return owned, nil
}

// canAdopt reads the set from the API to check it is the one the cache
// holds and is not being deleted.
func (c *Controller) canAdopt(ctx context.Context, s *set) error {
	ns, name := s.meta.GetNamespace(), s.meta.GetName()
	fresh, err := c.kind.fresh(ctx, ns, name)
	if err != nil {
		return fmt.Errorf("checking %s %s/%s before adopting: %w", c.kind.gvk().Kind, ns, name, err)
	}
	if fresh.GetUID() != s.meta.GetUID() {
		return fmt.Errorf("%s %s/%s was replaced (uid %s, cached %s); not adopting", c.kind.gvk().Kind, ns, name, fresh.GetUID(), s.meta.GetUID())
	}
	if fresh.GetDeletionTimestamp() != nil {
		return fmt.Errorf("%s %s/%s is being deleted; not adopting", c.kind.gvk().Kind, ns, name)
	}
	return nil
}

// manage carries out a Decision, keeping the expectations in step.
func (c *Controller) manage(ctx context.Context, key string, s *set, d Decision) error {
	now := c.clock.Now()
	if d.Create > 0 {
		c.exp.ExpectCreations(key, d.Create, now)
		done, err := SlowStartBatch(d.Create, SlowStart, func() error { return c.createPod(ctx, s) })
		// Creations that failed or were never tried will not be seen.
		for range d.Create - done {
			c.exp.CreationObserved(key)
		}
		return err
	}
	if len(d.Delete) == 0 {
		return nil
	}
	ids := make([]string, len(d.Delete))
	for i, p := range d.Delete {
		ids[i] = string(p.UID)
	}
	c.exp.ExpectDeletions(key, ids, now)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, p := range d.Delete {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.deletePod(ctx, s, p); err != nil {
				c.exp.DeletionObserved(key, string(p.UID))
				if !apierrors.IsNotFound(err) {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// createPod creates one pod from the set's template, controlled by the set.
func (c *Controller) createPod(ctx context.Context, s *set) error {
	gvk := c.kind.gvk()
	pod := PodFromTemplate(s.template, s.meta.GetName(), ControllerRef(s.meta, gvk.GroupVersion().String(), gvk.Kind))
	ns := s.meta.GetNamespace()
	if labels.Set(pod.Labels).AsSelector().Empty() {
		err := errors.New("unable to create pods, no labels")
		c.rec.Eventf(s.obj, corev1.EventTypeWarning, reconcile.ReasonFailedCreate, "Error creating: %v", err)
		return err
	}
	created, err := c.client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		if namespaceTerminating(err) {
			return nil // the namespace, and this set with it, is going away
		}
		c.rec.Eventf(s.obj, corev1.EventTypeWarning, reconcile.ReasonFailedCreate, "Error creating: %v", err)
		return fmt.Errorf("creating pod for %s %s/%s: %w", gvk.Kind, ns, s.meta.GetName(), err)
	}
	c.rec.Eventf(s.obj, corev1.EventTypeNormal, reconcile.ReasonSuccessfulCreate, "Created pod: %s", created.Name)
	return nil
}

// deletePod deletes one pod of the set, guarded by its UID.
func (c *Controller) deletePod(ctx context.Context, s *set, p *corev1.Pod) error {
	uid := p.UID
	err := c.client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil {
		if !apierrors.IsNotFound(err) {
			c.rec.Eventf(s.obj, corev1.EventTypeWarning, reconcile.ReasonFailedDelete, "Error deleting: %v", err)
		}
		return fmt.Errorf("deleting pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	c.rec.Eventf(s.obj, corev1.EventTypeNormal, reconcile.ReasonSuccessfulDelete, "Deleted pod: %s", p.Name)
	return nil
}

// PodFromTemplate is the pod a set named setName creates from template:
// the template's labels, annotations, finalizers and spec, a generated
// name "<setName>-<random>", and ref as its controller.
func PodFromTemplate(template *corev1.PodTemplateSpec, setName string, ref metav1.OwnerReference) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName:    setName + "-",
			Labels:          maps.Clone(template.Labels),
			Annotations:     maps.Clone(template.Annotations),
			Finalizers:      slices.Clone(template.Finalizers),
			OwnerReferences: []metav1.OwnerReference{ref},
		},
		Spec: *template.Spec.DeepCopy(),
	}
}

// namespaceTerminating says whether err is the API refusing new objects in
// a namespace being deleted.
func namespaceTerminating(err error) bool {
	if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
		return true
	}
	return apierrors.IsForbidden(err) && strings.Contains(err.Error(), "being terminated")
}

// controllerUID is the UID of obj's controller, or "".
func controllerUID(obj metav1.Object) string {
	if ref := metav1.GetControllerOf(obj); ref != nil {
		return string(ref.UID)
	}
	return ""
}

// podKeys maps a pod to the sets to reconcile: its controller when that is
// of this controller's kind, or, for an orphan, every set in its namespace
// whose selector matches it (one of them may adopt it).
func (c *Controller) podKeys(obj any) []string {
	pod, ok := reconcile.Untombstone(obj).(*corev1.Pod)
	if !ok {
		return nil
	}
	if metav1.GetControllerOf(pod) != nil {
		return reconcile.OwnerKeys(pod, c.kind.gvk().GroupKind())
	}
	if pod.DeletionTimestamp != nil {
		return nil
	}
	sets, err := c.kind.list(pod.Namespace)
	if err != nil {
		return nil
	}
	var keys []string
	for _, s := range sets {
		if s.selector.Matches(labels.Set(pod.Labels)) {
			keys = append(keys, reconcile.Key(s.meta.GetNamespace(), s.meta.GetName()))
		}
	}
	return keys
}

// observer keeps the expectations in step with the pod cache: a pod of a
// set appearing is a creation observed, a pod being deleted or gone a
// deletion observed. Each observation enqueues the set, since its
// reconcile may have been waiting for exactly this.
func (c *Controller) observer() cache.ResourceEventHandler {
	ownerKey := func(obj any) (*corev1.Pod, string) {
		pod, ok := reconcile.Untombstone(obj).(*corev1.Pod)
		if !ok {
			return nil, ""
		}
		keys := reconcile.OwnerKeys(pod, c.kind.gvk().GroupKind())
		if len(keys) == 0 {
			return nil, ""
		}
		return pod, keys[0]
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			pod, key := ownerKey(obj)
			if key == "" {
				return
			}
			c.exp.CreationObserved(key)
			if pod.DeletionTimestamp != nil {
				c.exp.DeletionObserved(key, string(pod.UID))
			}
			c.loop.Enqueue(key)
		},
		UpdateFunc: func(oldObj, newObj any) {
			old, _ := oldObj.(*corev1.Pod)
			pod, key := ownerKey(newObj)
			if key == "" || old == nil || pod.DeletionTimestamp == nil || old.DeletionTimestamp != nil {
				return
			}
			c.exp.DeletionObserved(key, string(pod.UID))
			c.loop.Enqueue(key)
		},
		DeleteFunc: func(obj any) {
			pod, key := ownerKey(obj)
			if key == "" {
				return
			}
			c.exp.DeletionObserved(key, string(pod.UID))
			c.loop.Enqueue(key)
		},
	}
}
