// Package history keeps the ControllerRevisions of DaemonSets and
// StatefulSets: the snapshots of a workload's pod template that let a
// controller tell old pods from new ones and let `kubectl rollout history`
// and `kubectl rollout undo` show and restore earlier templates.
//
// # The revision format
//
// A revision's data is the strategic merge patch that puts its template
// back on the workload, in the form kubectl writes and compares:
//
//	{"spec":{"template":{ ...template, keys sorted... ,"$patch":"replace"}}}
//
// kubectl's rollout undo applies that patch to the workload, and skips the
// undo when the workload's current template already gives the same bytes,
// so the bytes here are produced the way kubectl produces them (the
// template marshalled, read back as a generic map, marshalled again).
//
// # Names and numbers
//
// A revision is named <owner>-<hash>, the hash being a short, safe-encoded
// FNV digest of its data and of the owner's collisionCount; when a name is
// taken by a revision with other data, the owner's status.collisionCount
// goes up and the hash changes. Revision numbers grow by one with each new
// template; returning to an old template renumbers its revision to the
// next number instead of making a copy (kubectl shows it as the newest).
package history

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"sort"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
)

// HashLabel is the label that ties pods (and revisions) to a revision.
const HashLabel = appsv1.ControllerRevisionHashLabelKey

// maxOwnerNameInRevision keeps <owner>-<hash> within a name's 253 characters.
const maxOwnerNameInRevision = 223

// TemplatePatch is the revision data for a pod template: the strategic
// merge patch that restores it, byte for byte as kubectl computes it.
func TemplatePatch(template *corev1.PodTemplateSpec) ([]byte, error) {
	raw, err := json.Marshal(template)
	if err != nil {
		return nil, fmt.Errorf("history: marshalling template: %w", err)
	}
	var generic map[string]any
	if err := json.Unmarshal(raw, &generic); err != nil {
		return nil, fmt.Errorf("history: reading template back: %w", err)
	}
	generic["$patch"] = "replace"
	patch := map[string]any{"spec": map[string]any{"template": generic}}
	out, err := json.Marshal(patch)
	if err != nil {
		return nil, fmt.Errorf("history: marshalling patch: %w", err)
	}
	return out, nil
}

// Template reads the pod template stored in a revision made by
// TemplatePatch.
func Template(rev *appsv1.ControllerRevision) (*corev1.PodTemplateSpec, error) {
	var patch struct {
		Spec struct {
			Template corev1.PodTemplateSpec `json:"template"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(rev.Data.Raw, &patch); err != nil {
		return nil, fmt.Errorf("history: revision %s: %w", rev.Name, err)
	}
	return &patch.Spec.Template, nil
}

// Hash is the short name suffix of revision data under a collision count.
func Hash(data []byte, collisionCount *int32) string {
	h := fnv.New32a()
	h.Write(data)
	if collisionCount != nil {
		h.Write([]byte(strconv.FormatInt(int64(*collisionCount), 10)))
	}
	return rand.SafeEncodeString(strconv.FormatUint(uint64(h.Sum32()), 10))
}

// Name is the revision name for an owner and a hash.
func Name(owner, hash string) string {
	if len(owner) > maxOwnerNameInRevision {
		owner = owner[:maxOwnerNameInRevision]
	}
	return owner + "-" + hash
}

// Owner is what a revision needs to know about the workload it belongs to.
type Owner struct {
	Object metav1.Object
	// Kind is the owner's group, version and kind (apps/v1 DaemonSet).
	Kind schema.GroupVersionKind
	// Labels go on every revision (the owner's pod template labels, so
	// kubectl finds revisions with the owner's selector).
	Labels map[string]string
	// CollisionCount is the owner's status.collisionCount.
	CollisionCount *int32
}

// New builds (does not create) the revision of data with the given
// number for owner. Its hash label carries the hash.
func New(owner Owner, data []byte, revision int64) *appsv1.ControllerRevision {
	hash := Hash(data, owner.CollisionCount)
	lbls := make(map[string]string, len(owner.Labels)+1)
	for k, v := range owner.Labels {
		lbls[k] = v
	}
	lbls[HashLabel] = hash
	return &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{
			Name:            Name(owner.Object.GetName(), hash),
			Namespace:       owner.Object.GetNamespace(),
			Labels:          lbls,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(owner.Object, owner.Kind)},
		},
		Data:     runtime.RawExtension{Raw: data},
		Revision: revision,
	}
}

// Sort orders revisions oldest first: by number, then creation, then name.
func Sort(revs []*appsv1.ControllerRevision) {
	sort.SliceStable(revs, func(i, j int) bool {
		a, b := revs[i], revs[j]
		if a.Revision != b.Revision {
			return a.Revision < b.Revision
		}
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.CreationTimestamp.Before(&b.CreationTimestamp)
		}
		return a.Name < b.Name
	})
}

// MaxRevision is the highest revision number among revs, or 0.
func MaxRevision(revs []*appsv1.ControllerRevision) int64 {
	var m int64
	for _, r := range revs {
		m = max(m, r.Revision)
	}
	return m
}

// FindEqual returns the revisions whose data equals data, in revs' order.
func FindEqual(revs []*appsv1.ControllerRevision, data []byte) []*appsv1.ControllerRevision {
	var out []*appsv1.ControllerRevision
	for _, r := range revs {
		if bytes.Equal(r.Data.Raw, data) {
			out = append(out, r)
		}
	}
	return out
}

// Owned splits the revisions of a namespace into those controlled by the
// owner with uid and the orphans whose labels match selector (candidates
// for adoption). Revisions controlled by someone else are left out.
func Owned(all []*appsv1.ControllerRevision, uid types.UID, selector labels.Selector) (owned, orphans []*appsv1.ControllerRevision) {
	for _, r := range all {
		ref := metav1.GetControllerOfNoCopy(r)
		switch {
		case ref != nil && ref.UID == uid:
			owned = append(owned, r)
		case ref == nil && r.DeletionTimestamp == nil && selector.Matches(labels.Set(r.Labels)):
			orphans = append(orphans, r)
		}
	}
	return owned, orphans
}

// ErrCollision is wrapped by Create when the revision's name is held by a
// revision with different data: the owner's collisionCount must go up.
var ErrCollision = errors.New("history: revision name collision")

// Create creates rev. When a revision of that name exists already with the
// same data and the same controller, that one is returned; with other data
// the error wraps ErrCollision.
func Create(ctx context.Context, client kubernetes.Interface, rev *appsv1.ControllerRevision) (*appsv1.ControllerRevision, error) {
	created, err := client.AppsV1().ControllerRevisions(rev.Namespace).Create(ctx, rev, metav1.CreateOptions{})
	if err == nil {
		return created, nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("creating revision %s/%s: %w", rev.Namespace, rev.Name, err)
	}
	existing, gerr := client.AppsV1().ControllerRevisions(rev.Namespace).Get(ctx, rev.Name, metav1.GetOptions{})
	if gerr != nil {
		return nil, fmt.Errorf("reading existing revision %s/%s: %w", rev.Namespace, rev.Name, gerr)
	}
	mine := metav1.GetControllerOfNoCopy(rev)
	theirs := metav1.GetControllerOfNoCopy(existing)
	if mine != nil && theirs != nil && mine.UID == theirs.UID && bytes.Equal(existing.Data.Raw, rev.Data.Raw) {
		return existing, nil
	}
	return nil, fmt.Errorf("revision %s/%s: %w", rev.Namespace, rev.Name, ErrCollision)
}

// Renumber gives an existing revision a new number (a template that came
// back becomes the newest revision again).
func Renumber(ctx context.Context, client kubernetes.Interface, rev *appsv1.ControllerRevision, revision int64) (*appsv1.ControllerRevision, error) {
	if rev.Revision == revision {
		return rev, nil
	}
	c := rev.DeepCopy()
	c.Revision = revision
	out, err := client.AppsV1().ControllerRevisions(c.Namespace).Update(ctx, c, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("renumbering revision %s/%s to %d: %w", c.Namespace, c.Name, revision, err)
	}
	return out, nil
}

// Adopt makes owner the controller of an orphaned revision, guarded by the
// revision's resourceVersion.
func Adopt(ctx context.Context, client kubernetes.Interface, owner Owner, rev *appsv1.ControllerRevision) (*appsv1.ControllerRevision, error) {
	refs := append(append([]metav1.OwnerReference{}, rev.OwnerReferences...), *metav1.NewControllerRef(owner.Object, owner.Kind))
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"ownerReferences": refs, "resourceVersion": rev.ResourceVersion,
	}})
	if err != nil {
		return nil, fmt.Errorf("adopting revision %s: %w", rev.Name, err)
	}
	out, err := client.AppsV1().ControllerRevisions(rev.Namespace).Patch(ctx, rev.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil {
		return nil, fmt.Errorf("adopting revision %s/%s: %w", rev.Namespace, rev.Name, err)
	}
	return out, nil
}

// Prunable lists the revisions to delete to keep at most limit revisions
// that are not live: the oldest non-live ones beyond the limit. live holds
// the names of revisions still in use (current, update, or named by pods).
func Prunable(revs []*appsv1.ControllerRevision, live map[string]bool, limit int32) []*appsv1.ControllerRevision {
	sorted := append([]*appsv1.ControllerRevision(nil), revs...)
	Sort(sorted)
	var dead []*appsv1.ControllerRevision
	for _, r := range sorted {
		if !live[r.Name] {
			dead = append(dead, r)
		}
	}
	excess := len(dead) - int(max(limit, 0))
	if excess <= 0 {
		return nil
	}
	return dead[:excess]
}

// Ensure returns owner's revision for data among its revisions owned,
// creating it (numbered after the newest) when there is none, or
// renumbering it to the newest when an older revision holds the same
// template. An error wrapping ErrCollision asks the caller to raise the
// owner's collisionCount and try again.
func Ensure(ctx context.Context, client kubernetes.Interface, owner Owner, owned []*appsv1.ControllerRevision, data []byte) (*appsv1.ControllerRevision, error) {
	sorted := append([]*appsv1.ControllerRevision(nil), owned...)
	Sort(sorted)
	top := MaxRevision(sorted)
	if equal := FindEqual(sorted, data); len(equal) > 0 {
		newest := equal[len(equal)-1]
		if newest.Revision == top {
			return newest, nil
		}
		return Renumber(ctx, client, newest, top+1)
	}
	return Create(ctx, client, New(owner, data, top+1))
}
