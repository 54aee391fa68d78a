package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	policylisters "k8s.io/client-go/listers/policy/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	toolscache "k8s.io/client-go/tools/cache"

	storagev1 "k8s.io/api/storage/v1"
)

// DefaultSchedulerName is the spec.schedulerName of pods this scheduler
// places unless Options say otherwise (an empty schedulerName counts as
// this one, as the API server would default it).
const DefaultSchedulerName = "default-scheduler"

// Options configure a Scheduler. Zero values take the defaults.
type Options struct {
	// SchedulerName selects the pods to place (DefaultSchedulerName).
	SchedulerName string
	// Profile is the filters and scorers (DefaultProfile()).
	Profile *Profile
	// Workers is how many goroutines carry out bindings, status updates
	// and preemptions while the loop decides the next pod (16).
	Workers int
	// InitialBackoff and MaxBackoff bound a failed pod's retry delay
	// (1s doubling to 10s).
	InitialBackoff, MaxBackoff time.Duration
	// MaxUnschedulableWait is how long an unschedulable pod waits for a
	// helpful cluster change before it is retried anyway (5m).
	MaxUnschedulableWait time.Duration
	// Log receives messages (slog.Default()).
	Log *slog.Logger
	// Now is the clock (time.Now).
	Now func() time.Time
}

// Scheduler places pending pods on nodes. It is an ordinary API client:
// informers feed its Cache and Queue, a single loop makes decisions with
// the pure Profile, and workers write the results back through the API
// (bindings, pod status, events, evictions).
type Scheduler struct {
	client  kubernetes.Interface
	factory informers.SharedInformerFactory
	opts    Options
	profile *Profile
	log     *slog.Logger

	cache *Cache
	queue *Queue
	snap  *Snapshot

	pods    corelisters.PodLister
	pdbs    policylisters.PodDisruptionBudgetLister
	objects *listerObjects
	claims  *claimOverlay // objects plus selected nodes not seen yet
	synced  []toolscache.InformerSynced

	work   chan func(context.Context)
	events chan *corev1.Event
	ready  chan struct{}
	once   sync.Once
}

// New builds a scheduler on the informers of factory (which must watch
// all namespaces) and registers its event handlers. Nothing runs until
// Start.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, opts Options) *Scheduler {
	if opts.SchedulerName == "" {
		opts.SchedulerName = DefaultSchedulerName
	}
	if opts.Profile == nil {
		opts.Profile = DefaultProfile()
	}
	if opts.Workers <= 0 {
		opts.Workers = 16
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	q := NewQueue()
	if opts.InitialBackoff > 0 {
		q.Initial = opts.InitialBackoff
	}
	if opts.MaxBackoff > 0 {
		q.Max = opts.MaxBackoff
	}
	if opts.MaxUnschedulableWait > 0 {
		q.MaxUnschedulableWait = opts.MaxUnschedulableWait
	}
	s := &Scheduler{
		client:  client,
		factory: factory,
		opts:    opts,
		profile: opts.Profile,
		log:     opts.Log.With("component", "scheduler"),
		cache:   NewCache(),
		queue:   q,
		snap:    &Snapshot{},
		work:    make(chan func(context.Context), 1024),
		events:  make(chan *corev1.Event, 4096),
		ready:   make(chan struct{}),
	}
	core := factory.Core().V1()
	podInf := core.Pods()
	nodeInf := core.Nodes()
	pvcInf := core.PersistentVolumeClaims()
	pvInf := core.PersistentVolumes()
	nsInf := core.Namespaces()
	scInf := factory.Storage().V1().StorageClasses()
	pdbInf := factory.Policy().V1().PodDisruptionBudgets()

	s.pods = podInf.Lister()
	s.pdbs = pdbInf.Lister()
	s.objects = &listerObjects{pvcs: pvcInf.Lister(), pvs: pvInf.Lister(), classes: scInf.Lister(), namespaces: nsInf.Lister()}
	s.claims = newClaimOverlay(s.objects)
	s.snap.objects = s.claims

	handlers := []struct {
		inf toolscache.SharedIndexInformer
		h   toolscache.ResourceEventHandler
	}{
		{podInf.Informer(), toolscache.ResourceEventHandlerFuncs{AddFunc: s.onPodAdd, UpdateFunc: s.onPodUpdate, DeleteFunc: s.onPodDelete}},
		{nodeInf.Informer(), toolscache.ResourceEventHandlerFuncs{AddFunc: s.onNodeAdd, UpdateFunc: s.onNodeUpdate, DeleteFunc: s.onNodeDelete}},
		{pvcInf.Informer(), s.mover(HintVolume)},
		{pvcInf.Informer(), s.claims.handlers()},
		{pvInf.Informer(), s.mover(HintVolume)},
		{scInf.Informer(), s.mover(HintVolume)},
		{nsInf.Informer(), s.mover(HintNamespace)},
		{pdbInf.Informer(), toolscache.ResourceEventHandlerFuncs{}},
	}
	for _, h := range handlers {
		// AddEventHandler fails only on a stopped informer; Start would
		// then fail to sync and say so.
		if reg, err := h.inf.AddEventHandler(h.h); err == nil {
			s.synced = append(s.synced, reg.HasSynced)
		} else {
			s.synced = append(s.synced, h.inf.HasSynced)
		}
	}
	return s
}

// Ready is closed once the informers have synced and the scheduler is
// placing pods.
func (s *Scheduler) Ready() <-chan struct{} { return s.ready }

// Start runs the scheduler until ctx ends: it starts the informers, waits
// for them to sync, then runs the decision loop, the backoff timer and the
// workers. It returns nil on a normal stop, an error if it could not start.
func (s *Scheduler) Start(ctx context.Context) error {
	started := false
	s.once.Do(func() { started = true })
	if !started {
		return errors.New("scheduler: Start called twice")
	}
	s.factory.Start(ctx.Done())
	if !toolscache.WaitForCacheSync(ctx.Done(), s.synced...) {
		if ctx.Err() != nil {
			return nil
		}
		return errors.New("scheduler: informer caches did not sync")
	}
	close(s.ready)
	s.log.Info("scheduler started", "name", s.opts.SchedulerName)

	var workers, side sync.WaitGroup
	for range s.opts.Workers {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for fn := range s.work {
				fn(ctx)
			}
		}()
	}
	const eventWorkers = 4
	side.Add(eventWorkers + 1)
	for range eventWorkers {
		go func() {
			defer side.Done()
			s.emitEvents(ctx)
		}()
	}
	go func() {
		defer side.Done()
		s.runTimer(ctx)
	}()
	loopDone := make(chan struct{})
	go func() {
		defer close(loopDone)
		for {
			key, ok := s.queue.Pop()
			if !ok {
				return
			}
			s.scheduleOne(ctx, key)
		}
	}()
	<-ctx.Done()
	s.queue.Close()
	<-loopDone
	close(s.work)
	workers.Wait()
	side.Wait()
	s.log.Info("scheduler stopped")
	return nil
}

// runTimer calls Flush whenever a backoff ends or an unschedulable pod
// has waited too long, and never otherwise.
func (s *Scheduler) runTimer(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		next := s.queue.Flush(s.opts.Now())
		wait := time.Hour
		if !next.IsZero() {
			wait = max(next.Sub(s.opts.Now()), time.Millisecond)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-s.queue.Woken():
			if !timer.Stop() {
				<-timer.C
			}
		}
	}
}

// scheduleOne decides one pod and hands the writes to the workers.
func (s *Scheduler) scheduleOne(ctx context.Context, key string) {
	ns, name, err := toolscache.SplitMetaNamespaceKey(key)
	if err != nil {
		s.queue.Done(key)
		return
	}
	pod, err := s.pods.Pods(ns).Get(name)
	if err != nil || !s.ours(pod) || s.cache.IsPlaced(pod.UID) {
		s.queue.Done(key)
		return
	}
	s.cache.UpdateSnapshot(s.snap)
	d, err := s.profile.Schedule(s.snap, pod)
	if err != nil {
		s.log.Error("schedule failed", "pod", key, "err", err)
		s.queue.Failed(key, 0, s.opts.Now())
		return
	}
	s.snap.Advance(d.Visited)
	if d.Unschedulable == nil {
		if err := s.cache.Assume(pod, d.Node); err != nil {
			s.log.Error("assume failed", "pod", key, "err", err)
			s.queue.Failed(key, 0, s.opts.Now())
			return
		}
		s.claims.assume(pod, d.Node)
		s.do(ctx, func(ctx context.Context) { s.bind(ctx, key, pod, d.Node) })
		return
	}
	u := d.Unschedulable
	nominate := pod.Status.NominatedNodeName
	var victims []*corev1.Pod
	if u.NumNodes > 0 {
		pdbs, err := s.pdbs.List(labels.Everything())
		if err != nil {
			s.log.Error("list pod disruption budgets", "err", err)
		}
		pre := s.profile.Preempt(s.snap, pod, pdbs, u)
		switch {
		case pre.Node != "":
			nominate, victims = pre.Node, pre.Victims
		case pre.Message != msgTerminating:
			nominate = ""
			u.Preemption = pre.Message
		default:
			u.Preemption = pre.Message
		}
	}
	if nominate != pod.Status.NominatedNodeName {
		s.cache.Nominate(pod, nominate)
	}
	hints := hintsFor(u)
	if nominate != "" {
		hints |= HintPodGone
	}
	s.queue.Failed(key, hints, s.opts.Now())
	msg := u.Message()
	note, err := u.Annotation()
	if err != nil {
		s.log.Error("explain failure", "pod", key, "err", err)
	}
	s.do(ctx, func(ctx context.Context) {
		s.preempt(ctx, pod, nominate, victims)
		s.reportUnschedulable(ctx, pod, msg, note, nominate)
	})
}

// do hands fn to a worker; it gives up when ctx ends.
func (s *Scheduler) do(ctx context.Context, fn func(context.Context)) {
	select {
	case s.work <- fn:
	case <-ctx.Done():
	}
}

// hintsFor says which cluster changes could help a pod rejected for u.
func hintsFor(u *Unschedulable) Hint {
	h := HintNode
	if u.PodReason != "" {
		return h | HintVolume
	}
	for _, n := range u.Nodes {
		if n.Code == CodeUnschedulable {
			h |= HintPodGone
		}
		for _, r := range n.Reasons {
			switch r {
			case reasonAffinity:
				h |= HintPodAdded | HintNamespace
			case reasonAntiAffinity, reasonExistingAntiAff:
				h |= HintNamespace
			case reasonSpread:
				h |= HintPodAdded
			case reasonVolumeAffinity, reasonMissingPV, reasonBindConflict:
				h |= HintVolume
			}
		}
	}
	return h
}

// ours reports whether pod is a pending pod this scheduler should place.
func (s *Scheduler) ours(pod *corev1.Pod) bool {
	name := pod.Spec.SchedulerName
	if name == "" {
		name = DefaultSchedulerName
	}
	return name == s.opts.SchedulerName && pod.Spec.NodeName == "" && pod.DeletionTimestamp == nil &&
		len(pod.Spec.SchedulingGates) == 0 && !isTerminal(pod)
}

func podKey(pod *corev1.Pod) string { return pod.Namespace + "/" + pod.Name }

func (s *Scheduler) enqueue(pod *corev1.Pod) {
	prio := int32(0)
	if pod.Spec.Priority != nil {
		prio = *pod.Spec.Priority
	}
	s.queue.Add(podKey(pod), prio, pod.CreationTimestamp.Time, s.opts.Now())
}

func (s *Scheduler) onPodAdd(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	s.cache.AddPod(pod)
	if pod.Spec.NodeName != "" {
		if !isTerminal(pod) {
			s.queue.Move(HintPodAdded, s.opts.Now())
		}
		return
	}
	if s.ours(pod) {
		s.enqueue(pod)
	}
}

func (s *Scheduler) onPodUpdate(oldObj, newObj any) {
	old, ok1 := oldObj.(*corev1.Pod)
	pod, ok2 := newObj.(*corev1.Pod)
	if !ok1 || !ok2 {
		return
	}
	s.cache.UpdatePod(pod)
	now := s.opts.Now()
	if pod.Spec.NodeName != "" {
		if old.Spec.NodeName == "" {
			s.queue.Delete(podKey(pod))
		}
		switch {
		case isTerminal(pod) && !isTerminal(old):
			s.queue.Move(HintPodGone, now)
		case old.Spec.NodeName == "" || !maps.Equal(old.Labels, pod.Labels):
			s.queue.Move(HintPodAdded, now)
		}
		return
	}
	if !s.ours(pod) {
		s.queue.Delete(podKey(pod))
		return
	}
	if !s.queue.Has(podKey(pod)) || !maps.Equal(old.Labels, pod.Labels) || !equality.Semantic.DeepEqual(old.Spec, pod.Spec) {
		s.enqueue(pod)
	}
}

func (s *Scheduler) onPodDelete(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		tomb, ok := obj.(toolscache.DeletedFinalStateUnknown)
		if !ok {
			return
		}
		if pod, ok = tomb.Obj.(*corev1.Pod); !ok {
			return
		}
	}
	s.cache.RemovePod(pod)
	s.queue.Delete(podKey(pod))
	if pod.Spec.NodeName != "" {
		s.queue.Move(HintPodGone, s.opts.Now())
	}
}

func (s *Scheduler) onNodeAdd(obj any) {
	if node, ok := obj.(*corev1.Node); ok {
		s.cache.AddNode(node)
		s.queue.Move(HintNode, s.opts.Now())
	}
}

func (s *Scheduler) onNodeUpdate(oldObj, newObj any) {
	old, ok1 := oldObj.(*corev1.Node)
	node, ok2 := newObj.(*corev1.Node)
	if !ok1 || !ok2 {
		return
	}
	s.cache.UpdateNode(node)
	if nodeChangeMatters(old, node) {
		s.queue.Move(HintNode, s.opts.Now())
	}
}

func (s *Scheduler) onNodeDelete(obj any) {
	node, ok := obj.(*corev1.Node)
	if !ok {
		tomb, ok := obj.(toolscache.DeletedFinalStateUnknown)
		if !ok {
			return
		}
		if node, ok = tomb.Obj.(*corev1.Node); !ok {
			return
		}
	}
	s.cache.RemoveNode(node.Name)
}

// nodeChangeMatters reports whether a node update could make a pod fit:
// heartbeats and image lists do not.
func nodeChangeMatters(old, node *corev1.Node) bool {
	if old.Spec.Unschedulable != node.Spec.Unschedulable || !maps.Equal(old.Labels, node.Labels) {
		return true
	}
	if !equality.Semantic.DeepEqual(old.Spec.Taints, node.Spec.Taints) ||
		!equality.Semantic.DeepEqual(old.Status.Allocatable, node.Status.Allocatable) {
		return true
	}
	return impliedTaint(old) != impliedTaint(node)
}

// mover returns handlers that wake pods waiting for a change of kind h.
func (s *Scheduler) mover(h Hint) toolscache.ResourceEventHandler {
	move := func() { s.queue.Move(h, s.opts.Now()) }
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { move() },
		UpdateFunc: func(any, any) { move() },
	}
}

// listerObjects serves Objects from informer listers.
type listerObjects struct {
	pvcs       corelisters.PersistentVolumeClaimLister
	pvs        corelisters.PersistentVolumeLister
	classes    storagelisters.StorageClassLister
	namespaces corelisters.NamespaceLister
}

func (o *listerObjects) PersistentVolumeClaim(namespace, name string) *corev1.PersistentVolumeClaim {
	v, err := o.pvcs.PersistentVolumeClaims(namespace).Get(name)
	return found(v, err)
}

func (o *listerObjects) PersistentVolume(name string) *corev1.PersistentVolume {
	v, err := o.pvs.Get(name)
	return found(v, err)
}

func (o *listerObjects) StorageClass(name string) *storagev1.StorageClass {
	v, err := o.classes.Get(name)
	return found(v, err)
}

func (o *listerObjects) Namespace(name string) *corev1.Namespace {
	v, err := o.namespaces.Get(name)
	return found(v, err)
}

func found[T any](v *T, err error) *T {
	if err != nil {
		if !apierrors.IsNotFound(err) {
			slog.Default().Warn("scheduler: lister", "err", fmt.Errorf("lookup: %w", err))
		}
		return nil
	}
	return v
}
