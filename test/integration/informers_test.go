package integration

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/skiff-sh/skiff/test/framework"
)

// seen is one notification an informer delivered.
type seen struct {
	typ  string // add, update, delete
	rv   string
	step string // the object's "step" label
}

func (s seen) String() string { return s.typ + "(" + s.step + ")@" + s.rv }

// recorder keeps, per kind/name, what the informers delivered in order.
type recorder struct {
	mu     sync.Mutex
	events map[string][]seen
}

func newRecorder() *recorder { return &recorder{events: map[string][]seen{}} }

func (r *recorder) record(kind, typ string, obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	m, ok := obj.(metav1.Object)
	if !ok {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	key := kind + "/" + m.GetName()
	r.events[key] = append(r.events[key], seen{typ: typ, rv: m.GetResourceVersion(), step: m.GetLabels()["step"]})
}

func (r *recorder) handler(kind string) cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { r.record(kind, "add", obj) },
		UpdateFunc: func(_, obj any) { r.record(kind, "update", obj) },
		DeleteFunc: func(obj any) { r.record(kind, "delete", obj) },
	}
}

// history is what was delivered for one object, without the no-change
// updates a relist legitimately produces (same resourceVersion as before).
func (r *recorder) history(key string) []seen {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []seen
	for _, e := range r.events[key] {
		if n := len(out); n > 0 && e.typ == "update" && out[n-1].rv == e.rv {
			continue
		}
		out = append(out, e)
	}
	return out
}

// kindOps creates, relabels and deletes one kind of object.
type kindOps struct {
	kind    string
	create  func(name, step string) string // returns the resourceVersion
	relabel func(name, step string) string
	del     func(name string) error
	get     func(name string) (metav1.Object, error)
}

func opsFor(t *testing.T, cs kubernetes.Interface, ns string) []kindOps {
	ctx := testCtx(t)
	rvOf := func(obj runtime.Object, err error) string {
		t.Helper()
		if err != nil {
			t.Fatalf("write: %v", err)
		}
		return obj.(metav1.Object).GetResourceVersion()
	}
	lbl := func(step string) map[string]string { return map[string]string{"step": step} }
	return []kindOps{
		{
			kind: "configmaps",
			create: func(name, step string) string {
				return rvOf(cs.CoreV1().ConfigMaps(ns).Create(ctx, configMap(name, map[string]string{"k": "v"}, lbl(step)), metav1.CreateOptions{}))
			},
			relabel: func(name, step string) string {
				o, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					t.Fatalf("get %s: %v", name, err)
				}
				o.Labels["step"] = step
				return rvOf(cs.CoreV1().ConfigMaps(ns).Update(ctx, o, metav1.UpdateOptions{}))
			},
			del: func(name string) error { return cs.CoreV1().ConfigMaps(ns).Delete(ctx, name, metav1.DeleteOptions{}) },
			get: func(name string) (metav1.Object, error) {
				return cs.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
			},
		},
		{
			kind: "pods",
			create: func(name, step string) string {
				return rvOf(cs.CoreV1().Pods(ns).Create(ctx, pod(name, lbl(step)), metav1.CreateOptions{}))
			},
			relabel: func(name, step string) string {
				o, err := cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					t.Fatalf("get %s: %v", name, err)
				}
				o.Labels["step"] = step
				return rvOf(cs.CoreV1().Pods(ns).Update(ctx, o, metav1.UpdateOptions{}))
			},
			// Unbound pods leave at once, without a grace period.
			del: func(name string) error { return cs.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{}) },
			get: func(name string) (metav1.Object, error) {
				return cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
			},
		},
		{
			kind: "deployments",
			create: func(name, step string) string {
				d := deployment(name, 1)
				d.Labels = lbl(step)
				return rvOf(cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}))
			},
			relabel: func(name, step string) string {
				o, err := cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					t.Fatalf("get %s: %v", name, err)
				}
				o.Labels["step"] = step
				return rvOf(cs.AppsV1().Deployments(ns).Update(ctx, o, metav1.UpdateOptions{}))
			},
			del: func(name string) error { return cs.AppsV1().Deployments(ns).Delete(ctx, name, metav1.DeleteOptions{}) },
			get: func(name string) (metav1.Object, error) {
				return cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
			},
		},
		{
			kind: "services",
			create: func(name, step string) string {
				s := clusterIPService(name)
				s.Labels = lbl(step)
				return rvOf(cs.CoreV1().Services(ns).Create(ctx, s, metav1.CreateOptions{}))
			},
			relabel: func(name, step string) string {
				o, err := cs.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					t.Fatalf("get %s: %v", name, err)
				}
				o.Labels["step"] = step
				return rvOf(cs.CoreV1().Services(ns).Update(ctx, o, metav1.UpdateOptions{}))
			},
			del: func(name string) error { return cs.CoreV1().Services(ns).Delete(ctx, name, metav1.DeleteOptions{}) },
			get: func(name string) (metav1.Object, error) {
				return cs.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
			},
		},
	}
}

// want is an expected history entry: type, step, and the resourceVersion
// the write returned.
type want struct{ typ, step, rv string }

// expectHistory waits until the object's history is exactly wants.
func expectHistory(t *testing.T, rec *recorder, key string, wants []want) {
	t.Helper()
	format := func(ws []want) string {
		var parts []string
		for _, w := range ws {
			parts = append(parts, w.typ+"("+w.step+")@"+w.rv)
		}
		return strings.Join(parts, " ")
	}
	eventually(t, "informer history of "+key, func() (bool, string) {
		got := rec.history(key)
		msg := fmt.Sprintf("got %v, want %s", got, format(wants))
		if len(got) != len(wants) {
			return false, msg
		}
		for i, w := range wants {
			g := got[i]
			// A delete carries the last state the informer knew.
			if g.typ != w.typ || g.step != w.step || (w.rv != "" && g.rv != w.rv) {
				return false, msg
			}
		}
		return true, ""
	})
}

// TestInformersAcrossRestart drives typed clientsets and a shared informer
// factory over four kinds, restarts the server under them, and checks that
// every change is delivered once, in order, before and after the restart.
func TestInformersAcrossRestart(t *testing.T) {
	t.Parallel()
	srv := framework.StartServer(t, framework.Options{})
	cs := newClient(t, srv)
	ns := makeNamespace(t, cs, "informers")

	rec := newRecorder()
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(ns))
	handlers := map[string]cache.SharedIndexInformer{
		"configmaps":  factory.Core().V1().ConfigMaps().Informer(),
		"pods":        factory.Core().V1().Pods().Informer(),
		"deployments": factory.Apps().V1().Deployments().Informer(),
		"services":    factory.Core().V1().Services().Informer(),
	}
	for kind, inf := range handlers {
		if _, err := inf.AddEventHandler(rec.handler(kind)); err != nil {
			t.Fatalf("add handler for %s: %v", kind, err)
		}
	}
	stop := make(chan struct{})
	t.Cleanup(func() {
		close(stop)
		factory.Shutdown()
	})
	factory.Start(stop)
	for typ, ok := range factory.WaitForCacheSync(stop) {
		if !ok {
			t.Fatalf("informer for %v did not sync", typ)
		}
	}

	ops := opsFor(t, cs, ns)
	// Before the restart: "gone" is created, changed twice and deleted;
	// "kept" is created and changed once and lives on.
	wantGone := map[string][]want{}
	wantKept := map[string][]want{}
	var maxRV int64
	note := func(v string) string {
		maxRV = max(maxRV, rv(t, v))
		return v
	}
	for _, o := range ops {
		g := []want{{"add", "0", note(o.create("gone", "0"))}}
		g = append(g, want{"update", "1", note(o.relabel("gone", "1"))})
		g = append(g, want{"update", "2", note(o.relabel("gone", "2"))})
		if err := o.del("gone"); err != nil {
			t.Fatalf("delete %s/gone: %v", o.kind, err)
		}
		wantGone[o.kind] = append(g, want{"delete", "2", ""})
		k := []want{{"add", "0", note(o.create("kept", "0"))}}
		wantKept[o.kind] = append(k, want{"update", "1", note(o.relabel("kept", "1"))})
	}
	for _, o := range ops {
		expectHistory(t, rec, o.kind+"/gone", wantGone[o.kind])
		expectHistory(t, rec, o.kind+"/kept", wantKept[o.kind])
	}
	before := map[string]metav1.Object{}
	for _, o := range ops {
		obj, err := o.get("kept")
		if err != nil {
			t.Fatalf("get %s/kept: %v", o.kind, err)
		}
		before[o.kind] = obj
	}

	srv.Restart()

	// Objects survive the restart unchanged.
	for _, o := range ops {
		obj, err := o.get("kept")
		if err != nil {
			t.Fatalf("after restart, get %s/kept: %v", o.kind, err)
		}
		b := before[o.kind]
		if obj.GetUID() != b.GetUID() || obj.GetResourceVersion() != b.GetResourceVersion() || obj.GetLabels()["step"] != "1" {
			t.Fatalf("after restart %s/kept is uid=%s rv=%s step=%s, before uid=%s rv=%s",
				o.kind, obj.GetUID(), obj.GetResourceVersion(), obj.GetLabels()["step"], b.GetUID(), b.GetResourceVersion())
		}
		if _, err := o.get("gone"); err == nil {
			t.Fatalf("after restart %s/gone exists again", o.kind)
		}
	}

	// The informers reconnect on their own. A client-go reflector whose
	// watch broke relists after a back-off, and a relist folds the changes
	// made meanwhile into one; so wait for each informer to see a marker
	// before checking that later changes arrive one by one.
	for _, o := range ops {
		v := o.create("marker", "0")
		expectHistory(t, rec, o.kind+"/marker", []want{{"add", "0", v}})
		if err := o.del("marker"); err != nil {
			t.Fatalf("delete %s/marker: %v", o.kind, err)
		}
		expectHistory(t, rec, o.kind+"/marker", []want{{"add", "0", v}, {"delete", "0", ""}})
	}

	// After the restart: further changes reach the informers, with
	// resourceVersions above every one before.
	for _, o := range ops {
		v := o.relabel("kept", "2")
		if rv(t, v) <= maxRV {
			t.Fatalf("after restart %s/kept got resourceVersion %s, not above %d from before", o.kind, v, maxRV)
		}
		wantKept[o.kind] = append(wantKept[o.kind], want{"update", "2", v})
		v = o.create("fresh", "0")
		if rv(t, v) <= maxRV {
			t.Fatalf("after restart %s/fresh got resourceVersion %s, not above %d from before", o.kind, v, maxRV)
		}
		if err := o.del("kept"); err != nil {
			t.Fatalf("delete %s/kept: %v", o.kind, err)
		}
		wantKept[o.kind] = append(wantKept[o.kind], want{"delete", "2", ""})
		expectHistory(t, rec, o.kind+"/fresh", []want{{"add", "0", v}})
	}
	for _, o := range ops {
		expectHistory(t, rec, o.kind+"/kept", wantKept[o.kind])
		expectHistory(t, rec, o.kind+"/gone", wantGone[o.kind])
	}

	// The caches agree with the server.
	eventually(t, "informer caches to match the server", func() (bool, string) {
		for kind, inf := range handlers {
			var names []string
			for _, obj := range inf.GetStore().List() {
				names = append(names, obj.(metav1.Object).GetName())
			}
			slices.Sort(names)
			if !slices.Equal(names, []string{"fresh"}) {
				return false, fmt.Sprintf("%s cache holds %v, want [fresh]", kind, names)
			}
		}
		return true, ""
	})
}
