package garbagecollector

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"

	"github.com/skiff-sh/skiff/controllers/reconcile"
)

// Cache indexes every monitor keeps.
const (
	byUID   = "uid"   // an object's own UID
	byOwner = "owner" // the UIDs its owner references name
)

// apiResource is one served resource as the collector sees it.
type apiResource struct {
	GVR        schema.GroupVersionResource
	Kind       string
	Namespaced bool
}

// catalog is what discovery told the collector: how to find an owner of
// a given kind, and which resources to watch.
type catalog struct {
	// byKind resolves owner references (preferred version per group).
	byKind map[schema.GroupKind]apiResource
	// watched are the resources whose objects can be dependents: those
	// that can be listed, watched and deleted, less the ignored ones.
	watched []apiResource
}

// buildCatalog reads discovery's preferred resources.
func buildCatalog(lists []*metav1.APIResourceList, ignored []schema.GroupResource) catalog {
	c := catalog{byKind: map[schema.GroupKind]apiResource{}}
	for _, l := range lists {
		if l == nil {
			continue
		}
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			continue
		}
		for _, r := range l.APIResources {
			if strings.Contains(r.Name, "/") {
				continue // a subresource
			}
			ar := apiResource{GVR: gv.WithResource(r.Name), Kind: r.Kind, Namespaced: r.Namespaced}
			gk := gv.WithKind(r.Kind).GroupKind()
			if _, ok := c.byKind[gk]; !ok {
				c.byKind[gk] = ar
			}
			if slices.Contains(ignored, ar.GVR.GroupResource()) {
				continue
			}
			if slices.Contains(r.Verbs, "list") && slices.Contains(r.Verbs, "watch") && slices.Contains(r.Verbs, "delete") {
				c.watched = append(c.watched, ar)
			}
		}
	}
	slices.SortFunc(c.watched, func(a, b apiResource) int { return strings.Compare(a.GVR.String(), b.GVR.String()) })
	return c
}

// monitor watches the metadata of one resource.
type monitor struct {
	res      apiResource
	informer cache.SharedIndexInformer
	synced   cache.InformerSynced // our handler has seen the initial list
	cancel   context.CancelFunc
}

// indexers of a monitor's cache.
var indexers = cache.Indexers{
	byUID: func(obj any) ([]string, error) {
		m, ok := obj.(*metav1.PartialObjectMetadata)
		if !ok {
			return nil, nil
		}
		return []string{string(m.UID)}, nil
	},
	byOwner: func(obj any) ([]string, error) {
		m, ok := obj.(*metav1.PartialObjectMetadata)
		if !ok || len(m.OwnerReferences) == 0 {
			return nil, nil
		}
		out := make([]string, len(m.OwnerReferences))
		for i, r := range m.OwnerReferences {
			out[i] = string(r.UID)
		}
		return out, nil
	},
}

// trim keeps only the metadata the collector reads, to keep the caches
// small: identity, owners, finalizers and deletion state.
func trim(obj any) (any, error) {
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return obj, nil
	}
	return &metav1.PartialObjectMetadata{
		TypeMeta: m.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion,
			DeletionTimestamp: m.DeletionTimestamp, DeletionGracePeriodSeconds: m.DeletionGracePeriodSeconds,
			OwnerReferences: m.OwnerReferences, Finalizers: m.Finalizers,
		},
	}, nil
}

// monitors is the set of running monitors, keyed by resource.
type monitors struct {
	mu sync.RWMutex
	m  map[schema.GroupVersionResource]*monitor
	wg sync.WaitGroup
}

// refresh runs discovery and brings the monitors in line with it: new
// resources get a monitor, resources no longer served lose theirs. When
// some groups cannot be discovered, what was found is added and nothing
// is taken away.
func (c *Controller) refresh(ctx context.Context) error {
	lists, derr := discovery.ServerPreferredResources(c.client.Discovery())
	partial := derr != nil
	if partial && !discovery.IsGroupDiscoveryFailedError(derr) {
		return fmt.Errorf("garbage collector: discovery: %w", derr)
	}
	if partial {
		c.opts.Log.Warn("garbage collector: discovery incomplete", "err", derr)
	}
	cat := buildCatalog(lists, c.opts.Ignored)

	c.catMu.Lock()
	if partial {
		for gk, r := range cat.byKind {
			c.cat.byKind[gk] = r
		}
	} else {
		c.cat = cat
	}
	c.catMu.Unlock()

	c.mons.mu.Lock()
	defer c.mons.mu.Unlock()
	want := map[schema.GroupVersionResource]bool{}
	for _, r := range cat.watched {
		want[r.GVR] = true
		if _, ok := c.mons.m[r.GVR]; ok {
			continue
		}
		mon, err := c.startMonitor(ctx, r)
		if err != nil {
			return err
		}
		c.mons.m[r.GVR] = mon
	}
	if !partial {
		for gvr, mon := range c.mons.m {
			if !want[gvr] {
				mon.cancel()
				delete(c.mons.m, gvr)
			}
		}
	}
	return nil
}

// startMonitor starts a metadata informer for one resource.
func (c *Controller) startMonitor(ctx context.Context, r apiResource) (*monitor, error) {
	inf := metadatainformer.NewFilteredMetadataInformer(c.meta, r.GVR, metav1.NamespaceAll, 0, indexers, nil).Informer()
	if err := inf.SetTransform(trim); err != nil {
		return nil, fmt.Errorf("garbage collector: monitor %s: %w", r.GVR, err)
	}
	mon := &monitor{res: r, informer: inf}
	reg, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.changed(nil, asMeta(obj)) },
		UpdateFunc: func(o, n any) { c.changed(asMeta(o), asMeta(n)) },
		DeleteFunc: func(obj any) { c.changed(asMeta(reconcile.Untombstone(obj)), nil) },
	})
	if err != nil {
		return nil, fmt.Errorf("garbage collector: monitor %s: %w", r.GVR, err)
	}
	mon.synced = reg.HasSynced
	mctx, cancel := context.WithCancel(ctx)
	mon.cancel = cancel
	c.mons.wg.Add(1)
	go func() {
		defer c.mons.wg.Done()
		inf.RunWithContext(mctx)
	}()
	return mon, nil
}

func asMeta(obj any) *metav1.PartialObjectMetadata {
	m, _ := obj.(*metav1.PartialObjectMetadata)
	return m
}

// synced says whether every monitor has delivered its initial list.
func (c *Controller) synced() bool {
	c.mons.mu.RLock()
	defer c.mons.mu.RUnlock()
	for _, m := range c.mons.m {
		if !m.synced() {
			return false
		}
	}
	return true
}

// caughtUp says whether every monitor's view has reached resourceVersion
// rv. Skiff's resourceVersions are one cluster-wide revision, so a view at
// rv or later holds every object written before rv; idle resources reach
// it through the watch bookmarks the API server sends. A version that is
// not a number (another server) counts as reached.
func (c *Controller) caughtUp(rv string) bool {
	want, err := strconv.ParseInt(rv, 10, 64)
	if err != nil {
		return true
	}
	c.mons.mu.RLock()
	defer c.mons.mu.RUnlock()
	for _, m := range c.mons.m {
		have, err := strconv.ParseInt(m.informer.LastSyncResourceVersion(), 10, 64)
		if err == nil && have < want {
			return false
		}
	}
	return true
}

// syncedFuncs lists the monitors' sync checks.
func (c *Controller) syncedFuncs() []cache.InformerSynced {
	c.mons.mu.RLock()
	defer c.mons.mu.RUnlock()
	out := make([]cache.InformerSynced, 0, len(c.mons.m))
	for _, m := range c.mons.m {
		out = append(out, m.synced)
	}
	return out
}

// node is an object in the collector's view, with the resource it is of.
type node struct {
	obj *metav1.PartialObjectMetadata
	res apiResource
}

// lookup finds an object by UID in any monitor.
func (c *Controller) lookup(uid types.UID) (node, bool) {
	c.mons.mu.RLock()
	defer c.mons.mu.RUnlock()
	for _, m := range c.mons.m {
		objs, _ := m.informer.GetIndexer().ByIndex(byUID, string(uid))
		for _, o := range objs {
			if pm, ok := o.(*metav1.PartialObjectMetadata); ok {
				return node{obj: pm, res: m.res}, true
			}
		}
	}
	return node{}, false
}

// lookupIn finds an object by UID in one resource's monitor.
func (c *Controller) lookupIn(gvr schema.GroupVersionResource, uid types.UID) (*metav1.PartialObjectMetadata, bool) {
	c.mons.mu.RLock()
	m, ok := c.mons.m[gvr]
	c.mons.mu.RUnlock()
	if !ok {
		return nil, false
	}
	objs, _ := m.informer.GetIndexer().ByIndex(byUID, string(uid))
	for _, o := range objs {
		if pm, ok := o.(*metav1.PartialObjectMetadata); ok {
			return pm, true
		}
	}
	return nil, false
}

// dependentsOf finds the objects whose owner references name uid.
func (c *Controller) dependentsOf(uid types.UID) []node {
	c.mons.mu.RLock()
	defer c.mons.mu.RUnlock()
	var out []node
	for _, m := range c.mons.m {
		objs, _ := m.informer.GetIndexer().ByIndex(byOwner, string(uid))
		for _, o := range objs {
			if pm, ok := o.(*metav1.PartialObjectMetadata); ok {
				out = append(out, node{obj: pm, res: m.res})
			}
		}
	}
	return out
}

// resourceFor resolves an owner reference's kind.
func (c *Controller) resourceFor(ref metav1.OwnerReference) (apiResource, bool) {
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return apiResource{}, false
	}
	c.catMu.RLock()
	defer c.catMu.RUnlock()
	r, ok := c.cat.byKind[schema.GroupKind{Group: gv.Group, Kind: ref.Kind}]
	return r, ok
}
