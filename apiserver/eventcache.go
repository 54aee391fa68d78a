package apiserver

import (
	"bytes"
	"sync"

	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiff-sh/skiff/apiserver/registry"
	"github.com/skiff-sh/skiff/storage"
)

// eventCache shares work among the watches of one resource. Every watcher
// receives every change under its prefix (the scheduler, the controller
// manager, the garbage collector and each node all watch pods); without
// sharing, each would decode the same stored value and encode the same
// object again. The cache keeps, for the most recent stored values, the
// decoded object and its encodings, keyed by served resource, key and
// revision, so each is made once.
//
// Cached objects are shared between goroutines and must not be changed:
// code that needs to change one deep-copies it first.
type eventCache struct {
	mu    sync.Mutex
	items map[eventKey]*cachedValue
	ring  []eventKey // insertion order, for eviction
	next  int
}

// eventCacheSize bounds the cached values: enough for the events of a
// burst to be shared by all watchers, small enough not to matter at idle.
const eventCacheSize = 512

type eventKey struct {
	resource *registry.Resource
	key      string
	revision int64
}

type cachedValue struct {
	once sync.Once
	obj  runtime.Object
	err  error

	mu       sync.Mutex
	encoding map[string][]byte // by media type
}

func newEventCache() *eventCache {
	return &eventCache{items: map[eventKey]*cachedValue{}, ring: make([]eventKey, eventCacheSize)}
}

// entry returns the shared entry for a stored value, making it if needed.
func (c *eventCache) entry(res *registry.Resource, kv storage.KV) *cachedValue {
	k := eventKey{resource: res, key: kv.Key, revision: kv.Revision}
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.items[k]; ok {
		return v
	}
	if old := c.ring[c.next]; old.resource != nil {
		delete(c.items, old)
	}
	v := &cachedValue{}
	c.items[k] = v
	c.ring[c.next] = k
	c.next = (c.next + 1) % len(c.ring)
	return v
}

// decode returns the shared, read-only object for a stored value.
func (c *eventCache) decode(o *objects, res *registry.Resource, kv storage.KV) (runtime.Object, *cachedValue, error) {
	v := c.entry(res, kv)
	v.once.Do(func() { v.obj, v.err = o.decode(res, kv) })
	return v.obj, v, v.err
}

// encoded returns v's object encoded in media, encoding it once.
func (v *cachedValue) encoded(media string) ([]byte, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if b, ok := v.encoding[media]; ok {
		return b, nil
	}
	var buf bytes.Buffer
	var err error
	if media == mediaProtobuf {
		err = protoCodec.Encode(v.obj, &buf)
	} else {
		err = jsonCodec.Encode(v.obj, &buf)
	}
	if err != nil {
		return nil, err
	}
	b := bytes.TrimRight(buf.Bytes(), "\n")
	if v.encoding == nil {
		v.encoding = map[string][]byte{}
	}
	v.encoding[media] = b
	return b, nil
}
