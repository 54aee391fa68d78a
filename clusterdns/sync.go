package clusterdns

import (
	"context"
	"fmt"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// sliceByServiceIndex indexes EndpointSlices by "<ns>/<service>".
const sliceByServiceIndex = "skiff.clusterdns/service"

// syncer keeps the zone in step with the Services and EndpointSlices
// informers: events enqueue the Service they concern and a single worker
// rebuilds that Service's entry from the listers, so updates for one
// Service never race.
type syncer struct {
	log          *slog.Logger
	zone         *zone
	factory      informers.SharedInformerFactory
	services     corelisters.ServiceLister
	slices       discoverylisters.EndpointSliceLister
	sliceIndexer toolscache.Indexer
	indexed      bool
	synced       []toolscache.InformerSynced
	queue        workqueue.TypedInterface[serviceKey]
}

func newSyncer(factory informers.SharedInformerFactory, z *zone, log *slog.Logger) (*syncer, error) {
	svcInf := factory.Core().V1().Services()
	sliceInf := factory.Discovery().V1().EndpointSlices()
	s := &syncer{
		log:          log,
		zone:         z,
		factory:      factory,
		services:     svcInf.Lister(),
		slices:       sliceInf.Lister(),
		sliceIndexer: sliceInf.Informer().GetIndexer(),
		queue:        workqueue.NewTyped[serviceKey](),
	}
	if err := sliceInf.Informer().AddIndexers(toolscache.Indexers{sliceByServiceIndex: sliceServiceIndex}); err != nil {
		// Another server on the same factory added it, or the informer
		// already runs without it: fall back to label selection.
		log.Debug("cluster DNS: EndpointSlice index unavailable", "err", err)
	} else {
		s.indexed = true
	}
	if _, ok := s.sliceIndexer.GetIndexers()[sliceByServiceIndex]; ok {
		s.indexed = true
	}

	svcReg, err := svcInf.Informer().AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    s.onService,
		UpdateFunc: func(_, obj any) { s.onService(obj) },
		DeleteFunc: s.onService,
	})
	if err != nil {
		return nil, fmt.Errorf("watching services: %w", err)
	}
	sliceReg, err := sliceInf.Informer().AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: s.onSlice,
		UpdateFunc: func(old, obj any) {
			s.onSlice(old)
			s.onSlice(obj)
		},
		DeleteFunc: s.onSlice,
	})
	if err != nil {
		return nil, fmt.Errorf("watching endpointslices: %w", err)
	}
	s.synced = []toolscache.InformerSynced{
		svcInf.Informer().HasSynced, sliceInf.Informer().HasSynced,
		svcReg.HasSynced, sliceReg.HasSynced,
	}
	return s, nil
}

func sliceServiceIndex(obj any) ([]string, error) {
	sl, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return nil, nil
	}
	name := sl.Labels[discoveryv1.LabelServiceName]
	if name == "" {
		return nil, nil
	}
	return []string{sl.Namespace + "/" + name}, nil
}

func unwrapTombstone(obj any) any {
	if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		return t.Obj
	}
	return obj
}

func (s *syncer) onService(obj any) {
	if svc, ok := unwrapTombstone(obj).(*corev1.Service); ok {
		s.queue.Add(serviceKey{namespace: svc.Namespace, name: svc.Name})
	}
}

func (s *syncer) onSlice(obj any) {
	sl, ok := unwrapTombstone(obj).(*discoveryv1.EndpointSlice)
	if !ok {
		return
	}
	if name := sl.Labels[discoveryv1.LabelServiceName]; name != "" {
		s.queue.Add(serviceKey{namespace: sl.Namespace, name: name})
	}
}

// run starts the informers, loads the whole zone once the caches have
// synced, calls ready, and then applies queued changes until ctx ends.
func (s *syncer) run(ctx context.Context, ready func()) {
	go func() {
		<-ctx.Done()
		s.queue.ShutDown()
	}()
	s.factory.Start(ctx.Done())
	if !toolscache.WaitForCacheSync(ctx.Done(), s.synced...) {
		return
	}
	if err := s.loadAll(); err != nil {
		s.log.Error("cluster DNS: initial load", "err", err)
	}
	ready()
	for {
		k, quit := s.queue.Get()
		if quit {
			return
		}
		s.reconcile(k)
		s.queue.Done(k)
	}
}

// loadAll rebuilds the zone from every Service in the cache.
func (s *syncer) loadAll() error {
	svcs, err := s.services.List(labels.Everything())
	if err != nil {
		return fmt.Errorf("listing services: %w", err)
	}
	entries := make(map[serviceKey]*serviceEntry, len(svcs))
	for _, svc := range svcs {
		k := serviceKey{namespace: svc.Namespace, name: svc.Name}
		if e, ok := s.entryFor(svc); ok {
			entries[k] = e
		}
	}
	s.zone.replaceAll(entries)
	return nil
}

// reconcile rebuilds the entry of one Service.
func (s *syncer) reconcile(k serviceKey) {
	svc, err := s.services.Services(k.namespace).Get(k.name)
	if apierrors.IsNotFound(err) {
		s.zone.set(k, nil)
		return
	}
	if err != nil {
		s.log.Error("cluster DNS: reading service", "service", k.namespace+"/"+k.name, "err", err)
		return
	}
	e, ok := s.entryFor(svc)
	if !ok {
		e = nil
	}
	s.zone.set(k, e)
}

func (s *syncer) entryFor(svc *corev1.Service) (*serviceEntry, bool) {
	var slices []*discoveryv1.EndpointSlice
	if svc.Spec.ClusterIP == corev1.ClusterIPNone && svc.Spec.Type != corev1.ServiceTypeExternalName {
		slices = s.slicesOf(svc.Namespace, svc.Name)
	}
	return buildServiceEntry(svc, slices)
}

// slicesOf returns the EndpointSlices of a Service.
func (s *syncer) slicesOf(namespace, name string) []*discoveryv1.EndpointSlice {
	var out []*discoveryv1.EndpointSlice
	if s.indexed {
		objs, err := s.sliceIndexer.ByIndex(sliceByServiceIndex, namespace+"/"+name)
		if err == nil {
			for _, o := range objs {
				if sl, ok := o.(*discoveryv1.EndpointSlice); ok {
					out = append(out, sl)
				}
			}
			return out
		}
	}
	sel := labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: name})
	out, err := s.slices.EndpointSlices(namespace).List(sel)
	if err != nil {
		s.log.Error("cluster DNS: listing endpointslices", "service", namespace+"/"+name, "err", err)
	}
	return out
}
