package etcd

import (
	"testing"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/skiff-sh/skiff/storage"
)

func TestRangeOf(t *testing.T) {
	cases := []struct {
		prefix, start string
		key, end      string
		err           bool
	}{
		{"/a/", "", "/a/", "/a0", false},
		{"/a/", "/a/b\x00", "/a/b\x00", "/a0", false},
		{"/a/", "/b/", "", "", true},
		{"/a/", "/", "", "", true},
		{"", "", "\x00", "\x00", false},
		{"", "/x", "/x", "\x00", false},
		{"a\xff", "", "a\xff", "b", false},
	}
	for _, tc := range cases {
		key, end, err := rangeOf(tc.prefix, tc.start)
		if (err != nil) != tc.err {
			t.Errorf("rangeOf(%q, %q) error %v, want error %v", tc.prefix, tc.start, err, tc.err)
			continue
		}
		if err == nil && (key != tc.key || end != tc.end) {
			t.Errorf("rangeOf(%q, %q) = %q, %q; want %q, %q", tc.prefix, tc.start, key, end, tc.key, tc.end)
		}
	}
}

func TestConvertEvent(t *testing.T) {
	kv := func(v string, create, mod int64) *mvccpb.KeyValue {
		return &mvccpb.KeyValue{Key: []byte("/k"), Value: []byte(v), CreateRevision: create, ModRevision: mod}
	}
	cases := []struct {
		name string
		ev   *clientv3.Event
		typ  storage.EventType
		kv   storage.KV
		prev *storage.KV
	}{
		{
			name: "create",
			ev:   &clientv3.Event{Type: mvccpb.PUT, Kv: kv("a", 5, 5)},
			typ:  storage.Added,
			kv:   storage.KV{Key: "/k", Value: []byte("a"), Revision: 5, CreateRevision: 5},
		},
		{
			name: "update",
			ev:   &clientv3.Event{Type: mvccpb.PUT, Kv: kv("b", 5, 7), PrevKv: kv("a", 5, 5)},
			typ:  storage.Modified,
			kv:   storage.KV{Key: "/k", Value: []byte("b"), Revision: 7, CreateRevision: 5},
			prev: &storage.KV{Key: "/k", Value: []byte("a"), Revision: 5, CreateRevision: 5},
		},
		{
			name: "update whose previous value was compacted",
			ev:   &clientv3.Event{Type: mvccpb.PUT, Kv: kv("b", 5, 7)},
			typ:  storage.Modified,
			kv:   storage.KV{Key: "/k", Value: []byte("b"), Revision: 7, CreateRevision: 5},
		},
		{
			name: "delete",
			ev:   &clientv3.Event{Type: mvccpb.DELETE, Kv: &mvccpb.KeyValue{Key: []byte("/k"), ModRevision: 9}, PrevKv: kv("b", 5, 7)},
			typ:  storage.Deleted,
			kv:   storage.KV{Key: "/k", Revision: 9},
			prev: &storage.KV{Key: "/k", Value: []byte("b"), Revision: 7, CreateRevision: 5},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := convertEvent(tc.ev)
			if got.Type != tc.typ || got.Progress || got.Err != nil {
				t.Fatalf("got %+v, want a %s event", got, tc.typ)
			}
			if !sameKV(got.KV, tc.kv) {
				t.Errorf("KV = %+v, want %+v", got.KV, tc.kv)
			}
			switch {
			case (got.Prev == nil) != (tc.prev == nil):
				t.Errorf("Prev = %+v, want %+v", got.Prev, tc.prev)
			case got.Prev != nil && !sameKV(*got.Prev, *tc.prev):
				t.Errorf("Prev = %+v, want %+v", *got.Prev, *tc.prev)
			}
		})
	}
}

func sameKV(a, b storage.KV) bool {
	return a.Key == b.Key && string(a.Value) == string(b.Value) &&
		a.Revision == b.Revision && a.CreateRevision == b.CreateRevision
}
