package replicaset

import (
	"context"
	"errors"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// set is one ReplicaSet or ReplicationController in the terms of the core.
type set struct {
	obj      runtime.Object // the cached object, for events and status writes
	meta     metav1.Object
	replicas int32
	minReady int32
	selector labels.Selector
	template *corev1.PodTemplateSpec
	status   Status
	// countTerminating: the kind reports status.terminatingReplicas.
	countTerminating bool
}

// kind adapts one API kind to the core: reading sets from the cache and
// the API, and writing their status.
type kind interface {
	// gvk is the kind's group, version and kind (for owner references).
	gvk() schema.GroupVersionKind
	// component names the controller in events.
	component() string
	informer() cache.SharedIndexInformer
	// get reads a set from the cache; the error is NotFound when absent.
	get(ns, name string) (*set, error)
	// list reads the namespace's sets from the cache.
	list(ns string) ([]*set, error)
	// fresh reads a set from the API, bypassing the cache.
	fresh(ctx context.Context, ns, name string) (metav1.Object, error)
	// writeStatus replaces the set's status (guarded by its resourceVersion).
	writeStatus(ctx context.Context, s *set, st Status) error
}

// errBadSet marks sets the core cannot act on (a selector that does not
// parse, no template); retrying does not help until the set changes.
var errBadSet = errors.New("invalid set")

// replicaSets adapts apps/v1 ReplicaSets.
type replicaSets struct {
	client kubernetes.Interface
	inf    cache.SharedIndexInformer
	lister appslisters.ReplicaSetLister
}

func newReplicaSets(client kubernetes.Interface, f informers.SharedInformerFactory) *replicaSets {
	i := f.Apps().V1().ReplicaSets()
	return &replicaSets{client: client, inf: i.Informer(), lister: i.Lister()}
}

func (k *replicaSets) gvk() schema.GroupVersionKind {
	return appsv1.SchemeGroupVersion.WithKind("ReplicaSet")
}
func (k *replicaSets) component() string                   { return "replicaset-controller" }
func (k *replicaSets) informer() cache.SharedIndexInformer { return k.inf }

func (k *replicaSets) get(ns, name string) (*set, error) {
	rs, err := k.lister.ReplicaSets(ns).Get(name)
	if err != nil {
		return nil, err
	}
	return fromReplicaSet(rs)
}

func (k *replicaSets) list(ns string) ([]*set, error) {
	rss, err := k.lister.ReplicaSets(ns).List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("listing replica sets in %s: %w", ns, err)
	}
	out := make([]*set, 0, len(rss))
	for _, rs := range rss {
		if s, err := fromReplicaSet(rs); err == nil {
			out = append(out, s)
		}
	}
	return out, nil
}

func (k *replicaSets) fresh(ctx context.Context, ns, name string) (metav1.Object, error) {
	return k.client.AppsV1().ReplicaSets(ns).Get(ctx, name, metav1.GetOptions{})
}

func (k *replicaSets) writeStatus(ctx context.Context, s *set, st Status) error {
	rs := s.obj.(*appsv1.ReplicaSet).DeepCopy()
	rs.Status = appsv1.ReplicaSetStatus{
		Replicas:             st.Replicas,
		FullyLabeledReplicas: st.FullyLabeledReplicas,
		ReadyReplicas:        st.ReadyReplicas,
		AvailableReplicas:    st.AvailableReplicas,
		TerminatingReplicas:  st.TerminatingReplicas,
		ObservedGeneration:   st.ObservedGeneration,
	}
	for _, c := range st.Conditions {
		rs.Status.Conditions = append(rs.Status.Conditions, appsv1.ReplicaSetCondition{
			Type: appsv1.ReplicaSetConditionType(c.Type), Status: c.Status,
			LastTransitionTime: c.LastTransitionTime, Reason: c.Reason, Message: c.Message,
		})
	}
	if _, err := k.client.AppsV1().ReplicaSets(rs.Namespace).UpdateStatus(ctx, rs, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("updating status of replica set %s/%s: %w", rs.Namespace, rs.Name, err)
	}
	return nil
}

func fromReplicaSet(rs *appsv1.ReplicaSet) (*set, error) {
	sel, err := metav1.LabelSelectorAsSelector(rs.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("replica set %s/%s: selector: %w: %w", rs.Namespace, rs.Name, errBadSet, err)
	}
	s := &set{
		obj: rs, meta: rs, replicas: 1, minReady: rs.Spec.MinReadySeconds,
		selector: sel, template: &rs.Spec.Template, countTerminating: true,
		status: Status{
			Replicas:             rs.Status.Replicas,
			FullyLabeledReplicas: rs.Status.FullyLabeledReplicas,
			ReadyReplicas:        rs.Status.ReadyReplicas,
			AvailableReplicas:    rs.Status.AvailableReplicas,
			TerminatingReplicas:  rs.Status.TerminatingReplicas,
			ObservedGeneration:   rs.Status.ObservedGeneration,
		},
	}
	if rs.Spec.Replicas != nil {
		s.replicas = *rs.Spec.Replicas
	}
	for _, c := range rs.Status.Conditions {
		s.status.Conditions = append(s.status.Conditions, Condition{
			Type: string(c.Type), Status: c.Status, LastTransitionTime: c.LastTransitionTime,
			Reason: c.Reason, Message: c.Message,
		})
	}
	return s, nil
}

// replicationControllers adapts core/v1 ReplicationControllers.
type replicationControllers struct {
	client kubernetes.Interface
	inf    cache.SharedIndexInformer
	lister corelisters.ReplicationControllerLister
}

func newReplicationControllers(client kubernetes.Interface, f informers.SharedInformerFactory) *replicationControllers {
	i := f.Core().V1().ReplicationControllers()
	return &replicationControllers{client: client, inf: i.Informer(), lister: i.Lister()}
}

func (k *replicationControllers) gvk() schema.GroupVersionKind {
	return corev1.SchemeGroupVersion.WithKind("ReplicationController")
}
func (k *replicationControllers) component() string                   { return "replication-controller" }
func (k *replicationControllers) informer() cache.SharedIndexInformer { return k.inf }

func (k *replicationControllers) get(ns, name string) (*set, error) {
	rc, err := k.lister.ReplicationControllers(ns).Get(name)
	if err != nil {
		return nil, err
	}
	return fromReplicationController(rc)
}

func (k *replicationControllers) list(ns string) ([]*set, error) {
	rcs, err := k.lister.ReplicationControllers(ns).List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("listing replication controllers in %s: %w", ns, err)
	}
	out := make([]*set, 0, len(rcs))
	for _, rc := range rcs {
		if s, err := fromReplicationController(rc); err == nil {
			out = append(out, s)
		}
	}
	return out, nil
}

func (k *replicationControllers) fresh(ctx context.Context, ns, name string) (metav1.Object, error) {
	return k.client.CoreV1().ReplicationControllers(ns).Get(ctx, name, metav1.GetOptions{})
}

func (k *replicationControllers) writeStatus(ctx context.Context, s *set, st Status) error {
	rc := s.obj.(*corev1.ReplicationController).DeepCopy()
	rc.Status = corev1.ReplicationControllerStatus{
		Replicas:             st.Replicas,
		FullyLabeledReplicas: st.FullyLabeledReplicas,
		ReadyReplicas:        st.ReadyReplicas,
		AvailableReplicas:    st.AvailableReplicas,
		ObservedGeneration:   st.ObservedGeneration,
	}
	for _, c := range st.Conditions {
		rc.Status.Conditions = append(rc.Status.Conditions, corev1.ReplicationControllerCondition{
			Type: corev1.ReplicationControllerConditionType(c.Type), Status: c.Status,
			LastTransitionTime: c.LastTransitionTime, Reason: c.Reason, Message: c.Message,
		})
	}
	if _, err := k.client.CoreV1().ReplicationControllers(rc.Namespace).UpdateStatus(ctx, rc, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("updating status of replication controller %s/%s: %w", rc.Namespace, rc.Name, err)
	}
	return nil
}

func fromReplicationController(rc *corev1.ReplicationController) (*set, error) {
	if rc.Spec.Template == nil {
		return nil, fmt.Errorf("replication controller %s/%s: %w: no pod template", rc.Namespace, rc.Name, errBadSet)
	}
	// An empty selector would claim every pod in the namespace; the API
	// rejects it, and the core treats it as selecting nothing.
	sel := labels.Nothing()
	if len(rc.Spec.Selector) > 0 {
		sel = labels.SelectorFromSet(rc.Spec.Selector)
	}
	s := &set{
		obj: rc, meta: rc, replicas: 1, minReady: rc.Spec.MinReadySeconds,
		selector: sel, template: rc.Spec.Template,
		status: Status{
			Replicas:             rc.Status.Replicas,
			FullyLabeledReplicas: rc.Status.FullyLabeledReplicas,
			ReadyReplicas:        rc.Status.ReadyReplicas,
			AvailableReplicas:    rc.Status.AvailableReplicas,
			ObservedGeneration:   rc.Status.ObservedGeneration,
		},
	}
	if rc.Spec.Replicas != nil {
		s.replicas = *rc.Spec.Replicas
	}
	for _, c := range rc.Status.Conditions {
		s.status.Conditions = append(s.status.Conditions, Condition{
			Type: string(c.Type), Status: c.Status, LastTransitionTime: c.LastTransitionTime,
			Reason: c.Reason, Message: c.Message,
		})
	}
	return s, nil
}
