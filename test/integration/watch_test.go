package integration

import (
	"context"
	"net/http"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
)

// TestWatchSemantics runs on an external etcd so that the test can compact
// history under the server.
func TestWatchSemantics(t *testing.T) {
	t.Parallel()
	srv, endpoints := startExternal(t)
	cs := newClient(t, srv)

	t.Run("resume from a resourceVersion", func(t *testing.T) { testWatchResume(t, cs) })
	t.Run("initial events end with a bookmark", func(t *testing.T) { testWatchInitialEvents(t, cs) })
	t.Run("label selector", func(t *testing.T) { testWatchLabelSelector(t, cs) })
	t.Run("timeoutSeconds", func(t *testing.T) { testWatchTimeout(t, cs) })
	t.Run("compacted revision", func(t *testing.T) { testWatchCompacted(t, cs, endpoints) })
}

func testWatchResume(t *testing.T, cs kubernetes.Interface) {
	ctx := testCtx(t)
	ns := makeNamespace(t, cs, "watch-resume")
	cms := cs.CoreV1().ConfigMaps(ns)
	a, err := cms.Create(ctx, configMap("a", map[string]string{"v": "0"}, nil), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	start := a.ResourceVersion
	b, err := cms.Create(ctx, configMap("b", nil, nil), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a.Data["v"] = "1"
	a2, err := cms.Update(ctx, a, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := cms.Delete(ctx, "b", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	w, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: start})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	ev := expectEvent(t, w, watch.Added, "b")
	if got := ev.Object.(*corev1.ConfigMap).ResourceVersion; got != b.ResourceVersion {
		t.Fatalf("ADDED b at %s, want %s", got, b.ResourceVersion)
	}
	ev = expectEvent(t, w, watch.Modified, "a")
	if got := ev.Object.(*corev1.ConfigMap); got.ResourceVersion != a2.ResourceVersion || got.Data["v"] != "1" {
		t.Fatalf("MODIFIED a is rv=%s data=%v, want rv=%s v=1", got.ResourceVersion, got.Data, a2.ResourceVersion)
	}
	ev = expectEvent(t, w, watch.Deleted, "b")
	del := ev.Object.(*corev1.ConfigMap).ResourceVersion
	if rv(t, del) <= rv(t, a2.ResourceVersion) {
		t.Fatalf("DELETED b carries rv %s, not after the update at %s", del, a2.ResourceVersion)
	}
	noEvent(t, w, 500*time.Millisecond)

	// From the update's revision only the delete follows.
	w2, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: a2.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Stop()
	expectEvent(t, w2, watch.Deleted, "b")
	noEvent(t, w2, 300*time.Millisecond)

	// From the delete's revision nothing at all, until the next change.
	w3, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: del})
	if err != nil {
		t.Fatal(err)
	}
	defer w3.Stop()
	noEvent(t, w3, 300*time.Millisecond)
	if _, err := cms.Create(ctx, configMap("c", nil, nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, w3, watch.Added, "c")
}

func testWatchInitialEvents(t *testing.T, cs kubernetes.Interface) {
	ctx := testCtx(t)
	ns := makeNamespace(t, cs, "watch-initial")
	cms := cs.CoreV1().ConfigMaps(ns)
	want := map[string]bool{}
	var last string
	for _, n := range []string{"one", "two", "three"} {
		cm, err := cms.Create(ctx, configMap(n, nil, nil), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want[n] = true
		last = cm.ResourceVersion
	}
	yes := true
	w, err := cms.Watch(ctx, metav1.ListOptions{
		SendInitialEvents:    &yes,
		ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan,
		AllowWatchBookmarks:  true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for range len(want) {
		ev := nextEvent(t, w)
		if ev.Type != watch.Added {
			t.Fatalf("want ADDED for an existing object first, got %s %s", ev.Type, describe(ev.Object))
		}
		n := eventName(t, ev)
		if !want[n] {
			t.Fatalf("unexpected or repeated initial ADDED for %q", n)
		}
		delete(want, n)
	}
	ev := nextEvent(t, w)
	if ev.Type != watch.Bookmark {
		t.Fatalf("want a BOOKMARK after the initial events, got %s %s", ev.Type, describe(ev.Object))
	}
	bm := ev.Object.(*corev1.ConfigMap)
	if bm.Annotations[metav1.InitialEventsAnnotationKey] != "true" {
		t.Fatalf("initial-events bookmark lacks %s=true: %v", metav1.InitialEventsAnnotationKey, bm.Annotations)
	}
	if rv(t, bm.ResourceVersion) < rv(t, last) {
		t.Fatalf("bookmark at %s is older than the last create at %s", bm.ResourceVersion, last)
	}
	if _, err := cms.Create(ctx, configMap("four", nil, nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for {
		ev := nextEvent(t, w)
		if ev.Type == watch.Bookmark {
			continue // progress bookmarks may come at any time
		}
		if ev.Type != watch.Added || eventName(t, ev) != "four" {
			t.Fatalf("want ADDED four after the bookmark, got %s %s", ev.Type, describe(ev.Object))
		}
		break
	}

	// sendInitialEvents without bookmarks is refused, as in Kubernetes.
	_, err = cms.Watch(ctx, metav1.ListOptions{SendInitialEvents: &yes, ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan})
	if !apierrors.IsBadRequest(err) {
		t.Fatalf("sendInitialEvents without allowWatchBookmarks: want 400, got %v", err)
	}
}

func testWatchLabelSelector(t *testing.T, cs kubernetes.Interface) {
	ctx := testCtx(t)
	ns := makeNamespace(t, cs, "watch-labels")
	cms := cs.CoreV1().ConfigMaps(ns)
	w, err := cms.Watch(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	relabel := func(name, app string) {
		t.Helper()
		cm, err := cms.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cm.Labels = map[string]string{"app": app}
		if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cms.Create(ctx, configMap("other", nil, map[string]string{"app": "db"}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Create(ctx, configMap("web", nil, map[string]string{"app": "web"}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, w, watch.Added, "web")

	relabel("web", "db") // stops matching
	expectEvent(t, w, watch.Deleted, "web")
	relabel("other", "cache") // never matched: nothing
	noEvent(t, w, 300*time.Millisecond)
	relabel("web", "web") // starts matching again
	expectEvent(t, w, watch.Added, "web")
	relabel("other", "web")
	expectEvent(t, w, watch.Added, "other")
	if err := cms.Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, w, watch.Deleted, "web")
	noEvent(t, w, 300*time.Millisecond)
}

func testWatchTimeout(t *testing.T, cs kubernetes.Interface) {
	ctx := testCtx(t)
	ns := makeNamespace(t, cs, "watch-timeout")
	timeout := int64(1)
	began := time.Now()
	w, err := cs.CoreV1().ConfigMaps(ns).Watch(ctx, metav1.ListOptions{TimeoutSeconds: &timeout, ResourceVersion: "0"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				if d := time.Since(began); d < 900*time.Millisecond || d > 10*time.Second {
					t.Fatalf("watch with timeoutSeconds=1 ended after %v", d)
				}
				return
			}
			if ev.Type != watch.Bookmark {
				t.Fatalf("unexpected event %s %s in an empty namespace", ev.Type, describe(ev.Object))
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("watch with timeoutSeconds=1 still open after 15s")
		}
	}
}

func testWatchCompacted(t *testing.T, cs kubernetes.Interface, endpoints []string) {
	ctx := testCtx(t)
	ns := makeNamespace(t, cs, "watch-compact")
	cms := cs.CoreV1().ConfigMaps(ns)
	cm, err := cms.Create(ctx, configMap("old", map[string]string{"v": "0"}, nil), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	old := cm.ResourceVersion
	for _, v := range []string{"1", "2"} {
		cm.Data["v"] = v
		if cm, err = cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []string{"page-a", "page-b"} {
		if _, err := cms.Create(ctx, configMap(n, nil, nil), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	page, err := cms.List(ctx, metav1.ListOptions{Limit: 1})
	if err != nil || page.Continue == "" {
		t.Fatalf("first page: %v (continue %q)", err, page.Continue)
	}
	cm.Data["v"] = "3"
	if cm, err = cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	current := cm.ResourceVersion

	ec, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer ec.Close()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := ec.Compact(cctx, rv(t, current), clientv3.WithCompactPhysical()); err != nil {
		t.Fatalf("compact etcd at %s: %v", current, err)
	}

	w, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: old})
	if err != nil {
		// Kubernetes may also refuse the watch outright with 410.
		if !apierrors.IsResourceExpired(err) && !apierrors.IsGone(err) {
			t.Fatalf("watch from compacted %s: want 410, got %v", old, err)
		}
	} else {
		defer w.Stop()
		ev := nextEvent(t, w)
		st, ok := ev.Object.(*metav1.Status)
		if ev.Type != watch.Error || !ok {
			t.Fatalf("watch from compacted %s: want an ERROR event with a Status, got %s %s", old, ev.Type, describe(ev.Object))
		}
		if st.Code != http.StatusGone {
			t.Errorf("watch from compacted %s: ERROR carries code %d (%s), want 410", old, st.Code, st.Message)
		}
	}

	_, err = cms.List(ctx, metav1.ListOptions{ResourceVersion: old, ResourceVersionMatch: metav1.ResourceVersionMatchExact})
	if !apierrors.IsResourceExpired(err) && !apierrors.IsGone(err) {
		t.Fatalf("list at compacted %s with Exact: want 410, got %v", old, err)
	}
	if se, ok := err.(apierrors.APIStatus); !ok || se.Status().Code != http.StatusGone {
		t.Fatalf("list at compacted %s with Exact: want code 410, got %v", old, err)
	}
	// A continue token from before the compaction has expired.
	_, err = cms.List(ctx, metav1.ListOptions{Limit: 1, Continue: page.Continue})
	if !apierrors.IsResourceExpired(err) && !apierrors.IsGone(err) {
		t.Fatalf("continue from before the compaction: want 410, got %v", err)
	}
	list, err := cms.List(ctx, metav1.ListOptions{ResourceVersion: current, ResourceVersionMatch: metav1.ResourceVersionMatchExact,
		FieldSelector: "metadata.name=old"})
	if err != nil {
		t.Fatalf("list at the compaction revision %s: %v", current, err)
	}
	if len(list.Items) != 1 || list.Items[0].Data["v"] != "3" || list.ResourceVersion != current {
		t.Fatalf("list at %s: got %d items, rv %s", current, len(list.Items), list.ResourceVersion)
	}
	// Watching from the compaction revision itself still works.
	w2, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: current})
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Stop()
	if err := cms.Delete(ctx, "old", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, w2, watch.Deleted, "old")
}
