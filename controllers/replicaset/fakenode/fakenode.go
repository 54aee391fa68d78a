// Package fakenode plays one node's part for pods in controller tests,
// through the API only: it binds pods that have no node to itself, marks
// them Running, makes them Ready after a delay chosen per pod (or never),
// and confirms graceful deletions after a delay. Workload controllers can
// then be tested against a real API server without a scheduler or node
// agent, with readiness under the test's control.
//
//	no node ──bind──> bound ──> Running, not ready ──(ready delay)──> Running, Ready
//	deletionTimestamp set, at any point ──(termination delay)──> deleted (grace 0)
package fakenode

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"

	"github.com/skiff-sh/skiff/controllers/reconcile"
)

// AnnotationReadyAfter on a pod (or its template) overrides
// Options.ReadyDelay: a Go duration ("1.5s") or "never".
const AnnotationReadyAfter = "fakenode.skiff.dev/ready-after"

// Options shape the node. The zero value is usable.
type Options struct {
	// Node is the node name pods are bound to; default "fake-node".
	Node string
	// ReadyDelay is how long a pod runs before it becomes Ready; default 0.
	ReadyDelay time.Duration
	// ReadyAfter, if set, decides each pod's delay instead (ok false:
	// never ready); it takes precedence over the annotation.
	ReadyAfter func(pod *corev1.Pod) (delay time.Duration, ok bool)
	// TerminationDelay is how long a pod being deleted lingers before the
	// node confirms the deletion; default 0.
	TerminationDelay time.Duration
	// Log receives failures; default discards them.
	Log *slog.Logger
}

// node is a running fake node.
type node struct {
	client kubernetes.Interface
	opts   Options
	pods   corelisters.PodLister

	mu      sync.Mutex
	running map[types.UID]time.Time // when the node started the pod
	dying   map[types.UID]time.Time // when the node saw its deletion
}

// Run plays the node until ctx ends.
func Run(ctx context.Context, client kubernetes.Interface, opts Options) error {
	if opts.Node == "" {
		opts.Node = "fake-node"
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	f := informers.NewSharedInformerFactory(client, 0)
	inf := f.Core().V1().Pods()
	n := &node{client: client, opts: opts, pods: inf.Lister(),
		running: map[types.UID]time.Time{}, dying: map[types.UID]time.Time{}}
	loop, err := reconcile.New(reconcile.Options{Name: "fakenode", Reconciler: n, Workers: 4, Log: opts.Log})
	if err != nil {
		return fmt.Errorf("fakenode: %w", err)
	}
	if err := loop.Watch(inf.Informer(), reconcile.ObjectKeys); err != nil {
		return fmt.Errorf("fakenode: %w", err)
	}
	f.Start(ctx.Done())
	defer f.Shutdown()
	return loop.Start(ctx)
}

// Reconcile moves one pod a step along its life.
func (n *node) Reconcile(ctx context.Context, key string) (reconcile.Result, error) {
	ns, name, err := reconcile.SplitKey(key)
	if err != nil {
		return reconcile.Result{}, reconcile.Terminal(err)
	}
	pod, err := n.pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return reconcile.Result{}, nil
	}
	if err != nil {
		return reconcile.Result{}, err
	}
	now := time.Now()
	switch {
	case pod.DeletionTimestamp != nil:
		return n.terminate(ctx, pod, now)
	case pod.Spec.NodeName == "":
		err := n.client.CoreV1().Pods(ns).Bind(ctx, &corev1.Binding{
			ObjectMeta: metav1.ObjectMeta{Name: name, UID: pod.UID},
			Target:     corev1.ObjectReference{Kind: "Node", Name: n.opts.Node},
		}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return reconcile.Result{}, fmt.Errorf("binding %s: %w", key, err)
		}
		return reconcile.Result{}, nil
	case pod.Spec.NodeName != n.opts.Node:
		return reconcile.Result{}, nil
	case pod.Status.Phase == "" || pod.Status.Phase == corev1.PodPending:
		return reconcile.Result{}, n.start(ctx, pod, now)
	case pod.Status.Phase == corev1.PodRunning && !ready(pod):
		delay, ok := n.readyDelay(pod)
		if !ok {
			return reconcile.Result{}, nil
		}
		n.mu.Lock()
		started, seen := n.running[pod.UID]
		if !seen {
			started = now
			n.running[pod.UID] = now
		}
		n.mu.Unlock()
		if wait := started.Add(delay).Sub(now); wait > 0 {
			return reconcile.Result{RequeueAfter: wait}, nil
		}
		return reconcile.Result{}, n.setReady(ctx, pod, now)
	}
	return reconcile.Result{}, nil
}

// start marks pod Running (not yet ready).
func (n *node) start(ctx context.Context, pod *corev1.Pod, now time.Time) error {
	p := pod.DeepCopy()
	t := metav1.NewTime(now)
	p.Status.Phase = corev1.PodRunning
	p.Status.StartTime = &t
	p.Status.HostIP = "10.99.0.1"
	p.Status.PodIP = "10.99.1.1"
	p.Status.Conditions = []corev1.PodCondition{
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: t},
		{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: t},
		{Type: corev1.ContainersReady, Status: corev1.ConditionFalse, LastTransitionTime: t},
		{Type: corev1.PodReady, Status: corev1.ConditionFalse, LastTransitionTime: t},
	}
	p.Status.ContainerStatuses = nil
	for _, c := range p.Spec.Containers {
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: c.Image, Started: ptr(true),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: t}},
		})
	}
	if _, err := n.client.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("starting pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	n.mu.Lock()
	n.running[pod.UID] = now
	n.mu.Unlock()
	return nil
}

// setReady marks pod and its containers Ready.
func (n *node) setReady(ctx context.Context, pod *corev1.Pod, now time.Time) error {
	p := pod.DeepCopy()
	t := metav1.NewTime(now)
	for i := range p.Status.Conditions {
		if c := &p.Status.Conditions[i]; c.Type == corev1.PodReady || c.Type == corev1.ContainersReady {
			c.Status, c.LastTransitionTime = corev1.ConditionTrue, t
		}
	}
	for i := range p.Status.ContainerStatuses {
		p.Status.ContainerStatuses[i].Ready = true
	}
	if _, err := n.client.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("making pod %s/%s ready: %w", p.Namespace, p.Name, err)
	}
	return nil
}

// terminate confirms pod's deletion once TerminationDelay has passed since
// the node saw it.
func (n *node) terminate(ctx context.Context, pod *corev1.Pod, now time.Time) (reconcile.Result, error) {
	n.mu.Lock()
	seen, ok := n.dying[pod.UID]
	if !ok {
		seen = now
		n.dying[pod.UID] = now
	}
	n.mu.Unlock()
	if wait := seen.Add(n.opts.TerminationDelay).Sub(now); wait > 0 {
		return reconcile.Result{RequeueAfter: wait}, nil
	}
	uid := pod.UID
	err := n.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: ptr(int64(0)),
		Preconditions:      &metav1.Preconditions{UID: &uid},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return reconcile.Result{}, fmt.Errorf("confirming deletion of %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	n.mu.Lock()
	delete(n.dying, pod.UID)
	delete(n.running, pod.UID)
	n.mu.Unlock()
	return reconcile.Result{}, nil
}

// readyDelay is how long pod runs before it is Ready; ok false: never.
func (n *node) readyDelay(pod *corev1.Pod) (time.Duration, bool) {
	if n.opts.ReadyAfter != nil {
		return n.opts.ReadyAfter(pod)
	}
	if v, ok := pod.Annotations[AnnotationReadyAfter]; ok {
		if v == "never" {
			return 0, false
		}
		if d, err := time.ParseDuration(v); err == nil {
			return d, true
		}
	}
	return n.opts.ReadyDelay, true
}

func ready(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func ptr[T any](v T) *T { return &v }
