package apiserver

import (
	"bytes"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiff-sh/skiff/apiserver/registry"
	"github.com/skiff-sh/skiff/storage"
)

func storedConfigMap(t *testing.T, o *objects, res *registry.Resource, name string, rev int64) storage.KV {
	t.Helper()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"}, Data: map[string]string{"k": "v"}}
	key := objectKey(res, "ns", name)
	data, err := o.encode(res, key, cm)
	if err != nil {
		t.Fatal(err)
	}
	return storage.KV{Key: key, Value: data, Revision: rev}
}

// Watchers of the same event share one decoded object and one encoding
// per media type; other revisions are other entries.
func TestEventCacheSharesDecodesAndEncodings(t *testing.T) {
	res, _ := registry.Default().Lookup(schema.GroupVersionResource{Version: "v1", Resource: "configmaps"})
	o := &objects{}
	c := newEventCache()
	kv := storedConfigMap(t, o, res, "a", 7)

	var wg sync.WaitGroup
	got := make([]any, 8)
	enc := make([][]byte, 8)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			obj, cv, err := c.decode(o, res, kv)
			if err != nil {
				t.Error(err)
				return
			}
			got[i] = obj
			enc[i], err = cv.encoded(mediaJSON)
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for i := range got {
		if got[i] != got[0] || !bytes.Equal(enc[i], enc[0]) || &enc[i][0] != &enc[0][0] {
			t.Fatalf("watcher %d got its own decode or encoding", i)
		}
	}
	if cm := got[0].(*corev1.ConfigMap); cm.ResourceVersion != "7" || cm.Data["k"] != "v" {
		t.Fatalf("decoded %+v", cm)
	}
	if !bytes.Contains(enc[0], []byte(`"resourceVersion":"7"`)) || bytes.HasSuffix(enc[0], []byte("\n")) {
		t.Fatalf("encoding %s", enc[0])
	}
	other, _, _ := c.decode(o, res, storedConfigMap(t, o, res, "a", 8))
	if other == got[0] {
		t.Fatal("a later revision reused the earlier object")
	}
}

// The cache forgets the oldest values once full.
func TestEventCacheEvicts(t *testing.T) {
	res, _ := registry.Default().Lookup(schema.GroupVersionResource{Version: "v1", Resource: "configmaps"})
	o := &objects{}
	c := newEventCache()
	first := storedConfigMap(t, o, res, "first", 1)
	a, _, _ := c.decode(o, res, first)
	for i := 0; i < eventCacheSize; i++ {
		c.decode(o, res, storedConfigMap(t, o, res, "x", int64(100+i)))
	}
	if len(c.items) != eventCacheSize {
		t.Fatalf("%d entries, want %d", len(c.items), eventCacheSize)
	}
	b, _, _ := c.decode(o, res, first)
	if a == b {
		t.Fatal("the oldest entry was not evicted")
	}
}
