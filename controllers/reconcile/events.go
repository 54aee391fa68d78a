package reconcile

import (
	"context"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/record"
)

// Event reasons that Kubernetes' workload controllers use and Skiff's share;
// controller-specific reasons live with their controllers.
const (
	ReasonSuccessfulCreate = "SuccessfulCreate"
	ReasonFailedCreate     = "FailedCreate"
	ReasonSuccessfulDelete = "SuccessfulDelete"
	ReasonFailedDelete     = "FailedDelete"
)

// maxEarlyEvents bounds the events kept from before Start.
const maxEarlyEvents = 1000

// EventRecorder writes core/v1 Events through the API for one component
// ("replicaset-controller"), with client-go's record package doing the
// aggregation of repeats and spam filtering that kubectl users know. It is a
// record.EventRecorder, so controllers can take that interface and tests
// can hand them record.NewFakeRecorder.
//
// It is a Runnable: Start sends events until ctx ends. Events recorded
// before Start are kept (up to 1000) and sent when it starts; events
// recorded after it stopped are dropped.
type EventRecorder struct {
	client    kubernetes.Interface
	component string
	host      string

	mu      sync.RWMutex
	rec     record.EventRecorder // set while running
	early   []func(record.EventRecorder)
	stopped bool
}

var _ record.EventRecorder = (*EventRecorder)(nil)

// NewEventRecorder makes a recorder for component; nothing runs until Start.
func NewEventRecorder(client kubernetes.Interface, component string) *EventRecorder {
	return &EventRecorder{client: client, component: component}
}

// NewHostEventRecorder makes a recorder for a component that runs on one
// host, as the node agent ("kubelet" on node NAME) does.
func NewHostEventRecorder(client kubernetes.Interface, component, host string) *EventRecorder {
	return &EventRecorder{client: client, component: component, host: host}
}

// Start sends events until ctx ends, then stops the broadcaster. It returns
// an error only when called twice.
func (r *EventRecorder) Start(ctx context.Context) error {
	r.mu.Lock()
	if r.rec != nil || r.stopped {
		r.mu.Unlock()
		return fmt.Errorf("reconcile: event recorder %s started twice", r.component)
	}
	b := record.NewBroadcaster(record.WithContext(ctx))
	w := b.StartRecordingToSink(&eventSink{ctx: ctx, client: r.client})
	r.rec = b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: r.component, Host: r.host})
	for _, send := range r.early {
		send(r.rec)
	}
	r.early = nil
	r.mu.Unlock()

	<-ctx.Done()

	// Take the write lock so no Event call is inside the broadcaster
	// while it shuts down.
	r.mu.Lock()
	r.rec, r.stopped = nil, true
	r.mu.Unlock()
	w.Stop()
	b.Shutdown()
	return nil
}

// send hands an event to the running recorder, or keeps it for Start.
func (r *EventRecorder) send(f func(record.EventRecorder)) {
	r.mu.RLock()
	if rec := r.rec; rec != nil {
		f(rec)
		r.mu.RUnlock()
		return
	}
	r.mu.RUnlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.rec != nil:
		f(r.rec)
	case !r.stopped && len(r.early) < maxEarlyEvents:
		r.early = append(r.early, f)
	}
}

// Event records an event about object; eventtype is corev1.EventTypeNormal
// or corev1.EventTypeWarning.
func (r *EventRecorder) Event(object runtime.Object, eventtype, reason, message string) {
	r.send(func(rec record.EventRecorder) { rec.Event(object, eventtype, reason, message) })
}

// Eventf is Event with a formatted message.
func (r *EventRecorder) Eventf(object runtime.Object, eventtype, reason, messageFmt string, args ...any) {
	r.send(func(rec record.EventRecorder) { rec.Eventf(object, eventtype, reason, messageFmt, args...) })
}

// AnnotatedEventf is Eventf with annotations on the Event.
func (r *EventRecorder) AnnotatedEventf(object runtime.Object, annotations map[string]string, eventtype, reason, messageFmt string, args ...any) {
	r.send(func(rec record.EventRecorder) {
		rec.AnnotatedEventf(object, annotations, eventtype, reason, messageFmt, args...)
	})
}

// eventSink writes events with the recorder's context, so requests in
// flight end with it.
type eventSink struct {
	ctx    context.Context
	client kubernetes.Interface
}

func (s *eventSink) Create(e *corev1.Event) (*corev1.Event, error) {
	return s.client.CoreV1().Events(e.Namespace).Create(s.ctx, e, metav1.CreateOptions{})
}

func (s *eventSink) Update(e *corev1.Event) (*corev1.Event, error) {
	return s.client.CoreV1().Events(e.Namespace).Update(s.ctx, e, metav1.UpdateOptions{})
}

func (s *eventSink) Patch(e *corev1.Event, data []byte) (*corev1.Event, error) {
	return s.client.CoreV1().Events(e.Namespace).Patch(s.ctx, e.Name, types.StrategicMergePatchType, data, metav1.PatchOptions{})
}
