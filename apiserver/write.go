package apiserver

import (
	"context"
	"crypto/rand"
	"fmt"
	"math/big"
	"slices"
	"time"

	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-sh/skiff/apiserver/defaults"
	"github.com/skiff-sh/skiff/apiserver/registry"
	"github.com/skiff-sh/skiff/apiserver/validation"
)

// maxUpdateRetries bounds the retries of an unconditional update (or patch)
// that lost a race with another writer.
const maxUpdateRetries = 16

// Finalizers the API server adds for a deletion's propagation policy; the
// garbage collector removes them.
const (
	finalizerOrphan     = metav1.FinalizerOrphanDependents
	finalizerForeground = metav1.FinalizerDeleteDependents
)

// createObject runs the create path: metadata, defaults, admission,
// validation, then the store.
func (s *Server) createObject(ctx context.Context, res *registry.Resource, ns string, obj runtime.Object, dryRun bool) (runtime.Object, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	if res.Namespaced {
		if m.GetNamespace() == "" {
			m.SetNamespace(ns)
		} else if m.GetNamespace() != ns {
			return nil, apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
		}
		if err := s.checkNamespaceOpen(ctx, ns); err != nil {
			return nil, err
		}
	} else {
		m.SetNamespace("")
	}
	generated := m.GetName() == "" && m.GetGenerateName() != ""
	if m.GetName() == "" && !generated {
		return nil, apierrors.NewInvalid(res.GroupVersionKind().GroupKind(), "",
			field.ErrorList{field.Required(field.NewPath("metadata", "name"), "name or generateName is required")})
	}
	now := metav1.NewTime(s.now().Truncate(time.Second))
	m.SetUID(types.UID(uuid.NewString()))
	m.SetCreationTimestamp(now)
	m.SetDeletionTimestamp(nil)
	m.SetDeletionGracePeriodSeconds(nil)
	m.SetResourceVersion("")
	m.SetSelfLink("")
	m.SetGeneration(0)
	if hasSpec(obj) {
		m.SetGeneration(1)
	}
	s.prepareForCreate(res, obj)
	normalize(obj)
	defaults.Apply(obj)
	if err := s.admitCreate(ctx, res, obj); err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		if generated {
			m.SetName(m.GetGenerateName() + randomSuffix())
			defaults.Apply(obj) // defaults that follow the name (a namespace's name label)
		}
		if errs := validation.ValidateCreate(obj); len(errs) > 0 {
			return nil, apierrors.NewInvalid(res.GroupVersionKind().GroupKind(), m.GetName(), errs)
		}
		if len(m.GetManagedFields()) == 0 {
			obj = s.trackUpdate(res, "", nil, obj, managerFrom(ctx))
			m, _ = meta.Accessor(obj)
		}
		if dryRun {
			return obj, nil
		}
		release, err := s.allocateFor(ctx, res, obj, nil)
		if err != nil {
			return nil, err
		}
		created, err := s.objects.create(ctx, res, obj)
		if err != nil {
			release()
			if generated && apierrors.IsAlreadyExists(err) && attempt < 8 {
				continue
			}
			return nil, err
		}
		return created, nil
	}
}

// randomSuffix is the five characters generateName appends, from the
// alphabet Kubernetes uses (no vowels, no look-alikes).
func randomSuffix() string {
	const alphabet = "bcdfghjklmnpqrstvwxz2456789"
	b := make([]byte, 5)
	for i := range b {
		n, _ := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		b[i] = alphabet[n.Int64()]
	}
	return string(b)
}

// checkNamespaceOpen refuses creates in a namespace that is missing or
// being deleted.
func (s *Server) checkNamespaceOpen(ctx context.Context, ns string) error {
	nsRes, _ := s.catalog.Lookup(corev1.SchemeGroupVersion.WithResource("namespaces"))
	obj, err := s.objects.get(ctx, nsRes, "", ns)
	if err != nil {
		return err
	}
	n := obj.(*corev1.Namespace)
	if n.DeletionTimestamp != nil || n.Status.Phase == corev1.NamespaceTerminating {
		return apierrors.NewForbidden(corev1.Resource("namespaces"), ns,
			fmt.Errorf("unable to create new content in namespace %s because it is being terminated", ns))
	}
	return nil
}

// updateFunc computes the new object from the current one (a copy the
// function may change). current is nil when the object does not exist and
// the update may create it.
type updateFunc func(current runtime.Object) (runtime.Object, error)

// updateOptions shape one update.
type updateOptions struct {
	// subresource is "", "status", "finalize" or "binding" (a pod's
	// spec.nodeName and PodScheduled condition, written together).
	subresource string
	// allowCreate lets an update of a missing object create it.
	allowCreate bool
	dryRun      bool
	// applied: the update function ran server-side apply, which recorded
	// managed fields itself.
	applied bool
}

// managedSub is the subresource managed fields are recorded under.
func managedSub(sub string) string {
	if sub == "status" {
		return "status"
	}
	return ""
}

// updateObject is the guaranteed-update loop: read, compute, check, write
// guarded by the revision read, and start again if another writer came in
// between, unless the caller pinned a resourceVersion (then it is a 409).
func (s *Server) updateObject(ctx context.Context, res *registry.Resource, ns, name string, opts updateOptions, try updateFunc) (obj runtime.Object, created bool, err error) {
	for attempt := 0; ; attempt++ {
		cur, stale, err := s.objects.getState(ctx, res, ns, name)
		if apierrors.IsNotFound(err) && opts.allowCreate && opts.subresource == "" {
			newObj, err := try(nil)
			if err != nil {
				return nil, false, err
			}
			if rv, _ := revisionOf(newObj); rv != 0 {
				return nil, false, err404(res, name)
			}
			obj, err := s.createObject(ctx, res, ns, newObj, opts.dryRun)
			if apierrors.IsAlreadyExists(err) && attempt < maxUpdateRetries {
				continue
			}
			return obj, err == nil, err
		}
		if err != nil {
			return nil, false, err
		}
		curRV, _ := revisionOf(cur)
		newObj, err := try(cur.DeepCopyObject())
		if err != nil {
			return nil, false, err
		}
		pinned, err := revisionOf(newObj)
		if err != nil {
			return nil, false, err
		}
		if pinned != 0 && pinned != curRV {
			return nil, false, apierrors.NewConflict(res.GroupResource(), name, fmt.Errorf("%s", conflictMessage))
		}
		normalize(newObj)
		dropStaleServiceFields(newObj, cur)
		merged, err := s.prepareForUpdate(res, opts.subresource, newObj, cur)
		if err != nil {
			return nil, false, err
		}
		defaults.Apply(merged)
		if err := s.admitUpdate(ctx, res, merged, cur); err != nil {
			return nil, false, err
		}
		if errs := validateUpdate(opts.subresource, merged, cur); len(errs) > 0 {
			return nil, false, apierrors.NewInvalid(res.GroupVersionKind().GroupKind(), name, errs)
		}
		if !opts.applied && opts.subresource != "binding" {
			// A binding is the scheduler's write of one field and, as in
			// kube, is not recorded as a field manager.
			merged = s.trackUpdate(res, managedSub(opts.subresource), cur, merged, managerFrom(ctx))
		}
		mm, _ := meta.Accessor(merged)
		mm.SetResourceVersion(fmt.Sprint(curRV))
		merged.GetObjectKind().SetGroupVersionKind(cur.GetObjectKind().GroupVersionKind())
		if !stale && equality.Semantic.DeepEqual(merged, cur) {
			// A no-op writes nothing and keeps the resourceVersion; a stale
			// value is rewritten so it is encrypted with the current key.
			return cur, false, nil
		}
		if opts.dryRun {
			return merged, false, nil
		}
		release, err := s.allocateFor(ctx, res, merged, cur)
		if err != nil {
			return nil, false, err
		}
		stored, err := s.objects.update(ctx, res, merged, curRV)
		if err != nil {
			release()
			if apierrors.IsConflict(err) && pinned == 0 && attempt < maxUpdateRetries {
				continue
			}
			return nil, false, err
		}
		s.releaseAfterUpdate(ctx, res, stored, cur)
		if finished(stored) {
			return s.finalize(ctx, res, stored)
		}
		return stored, false, nil
	}
}

func err404(res *registry.Resource, name string) error {
	return apierrors.NewNotFound(res.GroupResource(), name)
}

// prepareForUpdate applies the rules that hold for every resource: which
// part of the object the request may change, and the metadata the server
// owns.
func (s *Server) prepareForUpdate(res *registry.Resource, sub string, newObj, old runtime.Object) (runtime.Object, error) {
	nm, err := meta.Accessor(newObj)
	if err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	om, _ := meta.Accessor(old)
	if uid := nm.GetUID(); uid != "" && uid != om.GetUID() {
		return nil, apierrors.NewConflict(res.GroupResource(), om.GetName(),
			fmt.Errorf("Precondition failed: UID in precondition: %v, UID in object meta: %v", uid, om.GetUID()))
	}
	switch sub {
	case "status":
		out := old.DeepCopyObject()
		copyTopField(out, newObj, "Status")
		newObj = out
		nm, _ = meta.Accessor(newObj)
	case "binding":
		// Spec and status both come from the binding.
	case "finalize":
		out := old.DeepCopyObject().(*corev1.Namespace)
		out.Spec.Finalizers = newObj.(*corev1.Namespace).Spec.Finalizers
		newObj = out
		nm, _ = meta.Accessor(newObj)
	default:
		if res.HasStatus {
			copyTopField(newObj, old, "Status")
		}
	}
	nm.SetUID(om.GetUID())
	nm.SetName(om.GetName())
	nm.SetNamespace(om.GetNamespace())
	nm.SetCreationTimestamp(om.GetCreationTimestamp())
	nm.SetDeletionTimestamp(om.GetDeletionTimestamp())
	nm.SetDeletionGracePeriodSeconds(om.GetDeletionGracePeriodSeconds())
	nm.SetGeneration(om.GetGeneration())
	nm.SetSelfLink("")
	if nm.GetManagedFields() == nil {
		nm.SetManagedFields(om.GetManagedFields())
	}
	if hasSpec(newObj) && specChanged(newObj, old) {
		nm.SetGeneration(om.GetGeneration() + 1)
	}
	if om.GetDeletionTimestamp() != nil {
		for _, f := range nm.GetFinalizers() {
			if !slices.Contains(om.GetFinalizers(), f) {
				return nil, apierrors.NewInvalid(res.GroupVersionKind().GroupKind(), om.GetName(), field.ErrorList{
					field.Forbidden(field.NewPath("metadata", "finalizers"), fmt.Sprintf("no new finalizers can be added if the object is being deleted, found new finalizers %q", f)),
				})
			}
		}
	}
	return newObj, nil
}

// finished says whether an object marked for deletion may now leave the
// store: its grace period is over and nothing holds it.
func finished(obj runtime.Object) bool {
	m, err := meta.Accessor(obj)
	if err != nil || m.GetDeletionTimestamp() == nil {
		return false
	}
	if g := m.GetDeletionGracePeriodSeconds(); g != nil && *g > 0 {
		return false
	}
	return !holdsDeletion(obj)
}

// holdsDeletion says whether finalizers keep obj in the store.
func holdsDeletion(obj runtime.Object) bool {
	m, _ := meta.Accessor(obj)
	if len(m.GetFinalizers()) > 0 {
		return true
	}
	if ns, ok := obj.(*corev1.Namespace); ok && len(ns.Spec.Finalizers) > 0 {
		return true
	}
	return false
}

// finalize removes an object whose deletion has finished.
func (s *Server) finalize(ctx context.Context, res *registry.Resource, obj runtime.Object) (runtime.Object, bool, error) {
	m, _ := meta.Accessor(obj)
	rv, _ := revisionOf(obj)
	gone, err := s.objects.remove(ctx, res, m.GetNamespace(), m.GetName(), rv)
	if err != nil {
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			return obj, false, nil // someone else moved it on; they will finish
		}
		return nil, false, err
	}
	s.afterDelete(ctx, res, gone)
	return gone, false, nil
}

// deleteObject deletes one object as the options say. It reports whether
// the object left the store (true) or is now pending, held by a grace
// period or finalizers (false).
func (s *Server) deleteObject(ctx context.Context, res *registry.Resource, ns, name string, opts *metav1.DeleteOptions) (runtime.Object, bool, error) {
	dryRun := slices.Contains(opts.DryRun, metav1.DryRunAll)
	for attempt := 0; ; attempt++ {
		cur, err := s.objects.get(ctx, res, ns, name)
		if err != nil {
			return nil, false, err
		}
		m, _ := meta.Accessor(cur)
		curRV, _ := revisionOf(cur)
		if p := opts.Preconditions; p != nil {
			if p.UID != nil && *p.UID != m.GetUID() {
				return nil, false, apierrors.NewConflict(res.GroupResource(), name,
					fmt.Errorf("Precondition failed: UID in precondition: %v, UID in object meta: %v", *p.UID, m.GetUID()))
			}
			if p.ResourceVersion != nil && *p.ResourceVersion != m.GetResourceVersion() {
				return nil, false, apierrors.NewConflict(res.GroupResource(), name,
					fmt.Errorf("Precondition failed: ResourceVersion in precondition: %v, ResourceVersion in object meta: %v", *p.ResourceVersion, m.GetResourceVersion()))
			}
		}
		grace := gracePeriod(cur, opts)
		next := cur.DeepCopyObject()
		nm, _ := meta.Accessor(next)
		if collectable(res) {
			nm.SetFinalizers(withPropagation(nm.GetFinalizers(), opts))
		}
		if ns, ok := next.(*corev1.Namespace); ok {
			ns.Status.Phase = corev1.NamespaceTerminating
		}
		immediate := grace == 0 && !holdsDeletion(next)
		if dryRun {
			return cur, immediate, nil
		}
		if immediate {
			gone, err := s.objects.remove(ctx, res, ns, name, curRV)
			if apierrors.IsConflict(err) && attempt < maxUpdateRetries {
				continue
			}
			if err != nil {
				return nil, false, err
			}
			s.afterDelete(ctx, res, gone)
			return gone, true, nil
		}
		// Mark for deletion: the deadline is now plus the grace period; a
		// second delete may only shorten it.
		deadline := metav1.NewTime(s.now().Add(time.Duration(grace) * time.Second).Truncate(time.Second))
		if old := m.GetDeletionTimestamp(); old != nil {
			oldGrace := m.GetDeletionGracePeriodSeconds()
			if oldGrace != nil && *oldGrace <= grace && equality.Semantic.DeepEqual(nm.GetFinalizers(), m.GetFinalizers()) {
				return cur, false, nil
			}
			if deadline.After(old.Time) {
				deadline = *old
			}
		}
		nm.SetDeletionTimestamp(&deadline)
		nm.SetDeletionGracePeriodSeconds(&grace)
		if m.GetDeletionTimestamp() == nil && nm.GetGeneration() > 0 {
			nm.SetGeneration(nm.GetGeneration() + 1)
		}
		stored, err := s.objects.update(ctx, res, next, curRV)
		if apierrors.IsConflict(err) && attempt < maxUpdateRetries {
			continue
		}
		if err != nil {
			return nil, false, err
		}
		if finished(stored) {
			gone, _, err := s.finalize(ctx, res, stored)
			return gone, true, err
		}
		return stored, false, nil
	}
}

// gracePeriod is how long a deletion waits. Only pods that a node runs get
// one: the node stops the containers, then deletes with grace 0.
func gracePeriod(obj runtime.Object, opts *metav1.DeleteOptions) int64 {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return 0
	}
	if pod.Spec.NodeName == "" || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return 0
	}
	grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		grace = *pod.Spec.TerminationGracePeriodSeconds
	}
	if opts.GracePeriodSeconds != nil {
		grace = *opts.GracePeriodSeconds
	}
	if grace < 0 {
		grace = 1
	}
	return grace
}

// collectable says whether the garbage collector handles res, so that a
// deletion's propagation policy is recorded on it; events it ignores, as
// kube does.
func collectable(res *registry.Resource) bool {
	return res.Resource != "events"
}

// withPropagation adds the finalizer that records the deletion's
// propagation policy for the garbage collector.
func withPropagation(finalizers []string, opts *metav1.DeleteOptions) []string {
	policy := metav1.DeletePropagationBackground
	if opts.PropagationPolicy != nil {
		policy = *opts.PropagationPolicy
	} else if opts.OrphanDependents != nil && *opts.OrphanDependents {
		policy = metav1.DeletePropagationOrphan
	}
	add := ""
	switch policy {
	case metav1.DeletePropagationOrphan:
		add = finalizerOrphan
	case metav1.DeletePropagationForeground:
		add = finalizerForeground
	}
	if add == "" || slices.Contains(finalizers, add) {
		return finalizers
	}
	return append(slices.Clone(finalizers), add)
}

// validateUpdate validates an update; a binding is the server's own write
// of a pod's node and needs only the checks serveBinding made.
func validateUpdate(sub string, obj, old runtime.Object) field.ErrorList {
	if sub == "binding" {
		return nil
	}
	return validation.ValidateUpdate(obj, old)
}
