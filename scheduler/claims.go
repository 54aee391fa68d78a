package scheduler

import (
	"context"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/skiff-sh/skiff/controllers/volumebinding/pvmatch"
)

// Claims of WaitForFirstConsumer classes that are not bound yet: which
// nodes they allow, and how the chosen node reaches them (the
// volume.kubernetes.io/selected-node annotation, written before the pod
// is bound, which the binder and the provisioner act on).

// reasonBindConflict is Kubernetes' reason for a node where an unbound
// claim can be neither bound nor provisioned.
const reasonBindConflict = "node(s) didn't find available persistent volumes to bind"

var statusBindConflict = unresolvable(reasonBindConflict)

// delayedClaim is what one unbound WaitForFirstConsumer claim asks of a
// node: to be its selected node; or, for a class without a provisioner, to
// hold a volume that matches it; or to be in the class's allowed
// topologies.
type delayedClaim struct {
	node       string
	claim      *corev1.PersistentVolumeClaim
	class      *storagev1.StorageClass
	staticOnly bool
	volumes    []*corev1.PersistentVolume
}

// prepareDelayed records in the cycle what an unbound claim of a
// WaitForFirstConsumer class requires of nodes, if anything. A selected
// node that no longer exists is ignored: the pod may go anywhere and the
// annotation is rewritten.
func prepareDelayed(c *Cycle, objs Objects, pvc *corev1.PersistentVolumeClaim) {
	if node := pvc.Annotations[pvmatch.AnnSelectedNode]; node != "" && c.Snap.Node(node) != nil {
		c.delayed = append(c.delayed, delayedClaim{node: node})
		return
	}
	class := objs.StorageClass(claimClassName(pvc))
	d := delayedClaim{claim: pvc, class: class, staticOnly: class != nil && class.Provisioner == pvmatch.NoProvisioner}
	if d.staticOnly {
		if l, ok := objs.(volumeLister); ok {
			d.volumes = l.PersistentVolumes()
		}
	} else if class == nil || len(class.AllowedTopologies) == 0 {
		return // a provisioner can serve any node
	}
	c.delayed = append(c.delayed, d)
}

// allows reports whether node n can serve the claim.
func (d *delayedClaim) allows(n *corev1.Node) bool {
	switch {
	case d.node != "":
		return n.Name == d.node
	case d.staticOnly:
		return pvmatch.Match(d.claim, d.volumes, n, false) != nil
	}
	return pvmatch.TopologyAllows(d.class, n)
}

// filterDelayed applies the cycle's delayed claims to a node.
func filterDelayed(c *Cycle, n *NodeInfo) *Status {
	for i := range c.delayed {
		if !c.delayed[i].allows(n.node) {
			return statusBindConflict
		}
	}
	return nil
}

// claimClassName is the class a claim names, as waitsForConsumer reads it.
func claimClassName(pvc *corev1.PersistentVolumeClaim) string {
	if pvc.Spec.StorageClassName != nil {
		return *pvc.Spec.StorageClassName
	}
	return pvc.Annotations[corev1.BetaStorageClassAnnotation]
}

// delayedClaims lists the pod's claims that are unbound and wait for
// their first consumer: those that get the selected-node annotation when
// the pod is placed.
func delayedClaims(objs Objects, pod *corev1.Pod) []*corev1.PersistentVolumeClaim {
	var out []*corev1.PersistentVolumeClaim
	for _, name := range pvmatch.PodClaims(pod) {
		pvc := objs.PersistentVolumeClaim(pod.Namespace, name)
		if pvc == nil || pvc.Spec.VolumeName != "" || pvc.DeletionTimestamp != nil || !waitsForConsumer(objs, pvc) {
			continue
		}
		out = append(out, pvc)
	}
	return out
}

// volumeLister is implemented by Objects that can list every volume (the
// candidates for claims of classes without a provisioner).
type volumeLister interface {
	PersistentVolumes() []*corev1.PersistentVolume
}

// PersistentVolumes lists the set's volumes.
func (o *ObjectSet) PersistentVolumes() []*corev1.PersistentVolume { return o.Volumes }

// PersistentVolumes lists the cached volumes.
func (o *listerObjects) PersistentVolumes() []*corev1.PersistentVolume {
	vs, err := o.pvs.List(labels.Everything())
	if err != nil {
		return nil
	}
	return vs
}

// claimOverlay is the scheduler's view of claims: the informer's, plus
// the selected nodes it has decided but the informer has not shown yet,
// so that the next pod using the same claim goes to the same node.
type claimOverlay struct {
	Objects
	mu    sync.Mutex
	nodes map[string]string // "namespace/name" -> assumed selected node
}

func newClaimOverlay(objs Objects) *claimOverlay {
	return &claimOverlay{Objects: objs, nodes: map[string]string{}}
}

// PersistentVolumeClaim returns the claim with its assumed selected node.
func (o *claimOverlay) PersistentVolumeClaim(namespace, name string) *corev1.PersistentVolumeClaim {
	pvc := o.Objects.PersistentVolumeClaim(namespace, name)
	if pvc == nil || pvc.Spec.VolumeName != "" {
		return pvc
	}
	o.mu.Lock()
	node, ok := o.nodes[namespace+"/"+name]
	o.mu.Unlock()
	if !ok || pvc.Annotations[pvmatch.AnnSelectedNode] == node {
		return pvc
	}
	cp := pvc.DeepCopy()
	metav1.SetMetaDataAnnotation(&cp.ObjectMeta, pvmatch.AnnSelectedNode, node)
	return cp
}

// PersistentVolumes passes the listing through.
func (o *claimOverlay) PersistentVolumes() []*corev1.PersistentVolume {
	if l, ok := o.Objects.(volumeLister); ok {
		return l.PersistentVolumes()
	}
	return nil
}

// assume records node as the selected node of the pod's delayed claims.
func (o *claimOverlay) assume(pod *corev1.Pod, node string) {
	claims := delayedClaims(o.Objects, pod)
	if len(claims) == 0 {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, pvc := range claims {
		if pvc.Annotations[pvmatch.AnnSelectedNode] != node {
			o.nodes[pvc.Namespace+"/"+pvc.Name] = node
		}
	}
}

// forget drops what assume recorded for the pod's claims.
func (o *claimOverlay) forget(pod *corev1.Pod) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, name := range pvmatch.PodClaims(pod) {
		delete(o.nodes, pod.Namespace+"/"+name)
	}
}

// handlers drop assumptions the informer has caught up with: the claim
// shows the node, got bound, or is gone.
func (o *claimOverlay) handlers() toolscache.ResourceEventHandler {
	settle := func(obj any, gone bool) {
		if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		pvc, ok := obj.(*corev1.PersistentVolumeClaim)
		if !ok {
			return
		}
		key := pvc.Namespace + "/" + pvc.Name
		o.mu.Lock()
		defer o.mu.Unlock()
		node, ok := o.nodes[key]
		if ok && (gone || pvc.Spec.VolumeName != "" || pvc.Annotations[pvmatch.AnnSelectedNode] == node) {
			delete(o.nodes, key)
		}
	}
	return toolscache.ResourceEventHandlerFuncs{
		UpdateFunc: func(_, obj any) { settle(obj, false) },
		DeleteFunc: func(obj any) { settle(obj, true) },
	}
}

// selectNode writes node into the selected-node annotation of the pod's
// unbound WaitForFirstConsumer claims, before the pod is bound. A claim
// that meanwhile got another node (or was bound) is not overwritten: the
// error sends the pod back to the queue, where the filter sees the claim
// as it is.
func (s *Scheduler) selectNode(ctx context.Context, pod *corev1.Pod, node string) error {
	for _, pvc := range delayedClaims(s.objects, pod) {
		if err := s.annotateClaim(ctx, pvc, node); err != nil {
			return err
		}
	}
	return nil
}

func (s *Scheduler) annotateClaim(ctx context.Context, pvc *corev1.PersistentVolumeClaim, node string) error {
	claims := s.client.CoreV1().PersistentVolumeClaims(pvc.Namespace)
	// A node the decision already overrode (one that no longer exists)
	// may be overwritten; any other node set meanwhile may not.
	stale := pvc.Annotations[pvmatch.AnnSelectedNode]
	for attempt := 0; ; attempt++ {
		cur := pvc.Annotations[pvmatch.AnnSelectedNode]
		switch {
		case pvc.Spec.VolumeName != "" || cur == node:
			return nil
		case cur != "" && cur != stale:
			return fmt.Errorf("claim %s/%s was meanwhile selected for node %s", pvc.Namespace, pvc.Name, cur)
		}
		cp := pvc.DeepCopy()
		metav1.SetMetaDataAnnotation(&cp.ObjectMeta, pvmatch.AnnSelectedNode, node)
		_, err := claims.Update(ctx, cp, metav1.UpdateOptions{})
		if err == nil {
			return nil
		}
		if !apierrors.IsConflict(err) || attempt >= 2 {
			return fmt.Errorf("selecting node %s for claim %s/%s: %w", node, pvc.Namespace, pvc.Name, err)
		}
		live, err := claims.Get(ctx, pvc.Name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("re-reading claim %s/%s: %w", pvc.Namespace, pvc.Name, err)
		}
		pvc = live
	}
}
