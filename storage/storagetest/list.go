package storagetest

import (
	"testing"

	"github.com/skiff-sh/skiff/storage"
)

var listCases = []testCase{
	{"ListOrder", testListOrder},
	{"ListPagination", testListPagination},
	{"Count", testCount},
	{"ListOldRevision", testListOldRevision},
	{"ListStartKeyOutsidePrefix", testListStartKeyOutsidePrefix},
	{"Compaction", testCompaction},
	{"FutureRevision", testFutureRevision},
}

func testListOrder(t *testing.T, s storage.Interface, p string) {
	ctx := testContext(t)
	pp := p + "items/"
	revs := map[string]int64{}
	for _, k := range []string{"c", "a", "e", "b", "d"} {
		revs[k] = mustCreate(ctx, t, s, pp+k, "v-"+k)
	}
	// Keys that share the prefix's characters but lie outside it.
	mustCreate(ctx, t, s, p+"items", "no")
	mustCreate(ctx, t, s, p+"items-other", "no")
	last := mustCreate(ctx, t, s, p+"itemsX/z", "no")

	res := mustList(ctx, t, s, pp, storage.ListOptions{})
	var want []kvWant
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		want = append(want, kvWant{pp + k, "v-" + k, revs[k], revs[k]})
	}
	checkKVs(t, "List", res.KVs, want)
	if res.More || res.Remaining != 0 {
		t.Errorf("List of everything: More=%v Remaining=%d, want false 0", res.More, res.Remaining)
	}
	if res.Revision < last {
		t.Errorf("List read at revision %d, before the last write at %d", res.Revision, last)
	}

	res = mustList(ctx, t, s, p+"nothing/", storage.ListOptions{})
	if len(res.KVs) != 0 || res.More {
		t.Errorf("List of an empty prefix: %d keys, More=%v", len(res.KVs), res.More)
	}
	if res.Revision < last {
		t.Errorf("empty List read at revision %d, before the last write at %d", res.Revision, last)
	}

	// A limit larger than the listing is no limit.
	res = mustList(ctx, t, s, pp, storage.ListOptions{Limit: 10})
	checkKVs(t, "List with a large limit", res.KVs, want)
	if res.More || res.Remaining != 0 {
		t.Errorf("List with a large limit: More=%v Remaining=%d, want false 0", res.More, res.Remaining)
	}
}

func testListPagination(t *testing.T, s storage.Interface, p string) {
	ctx := testContext(t)
	pp := p + "items/"
	revs := map[string]int64{}
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		revs[k] = mustCreate(ctx, t, s, pp+k, "v-"+k)
	}
	page1 := mustList(ctx, t, s, pp, storage.ListOptions{Limit: 2})
	checkKVs(t, "page 1", page1.KVs, []kvWant{
		{pp + "a", "v-a", revs["a"], revs["a"]},
		{pp + "b", "v-b", revs["b"], revs["b"]},
	})
	if !page1.More || page1.Remaining != 3 {
		t.Fatalf("page 1: More=%v Remaining=%d, want true 3", page1.More, page1.Remaining)
	}
	at := page1.Revision
	if at < revs["e"] {
		t.Fatalf("page 1 read at revision %d, before the last write at %d", at, revs["e"])
	}

	// Writes between pages must not show in later pages of the listing.
	mustCreate(ctx, t, s, pp+"bb", "new")
	mustUpdate(ctx, t, s, pp+"c", "changed", revs["c"])
	mustDelete(ctx, t, s, pp+"d", revs["d"])
	mustCreate(ctx, t, s, pp+"f", "new")

	page2 := mustList(ctx, t, s, pp, storage.ListOptions{StartKey: pp + "b\x00", Limit: 2, Revision: at})
	checkKVs(t, "page 2", page2.KVs, []kvWant{
		{pp + "c", "v-c", revs["c"], revs["c"]},
		{pp + "d", "v-d", revs["d"], revs["d"]},
	})
	if !page2.More || page2.Remaining != 1 {
		t.Fatalf("page 2: More=%v Remaining=%d, want true 1", page2.More, page2.Remaining)
	}
	if page2.Revision != at {
		t.Fatalf("page 2 read at revision %d, want %d", page2.Revision, at)
	}
	page3 := mustList(ctx, t, s, pp, storage.ListOptions{StartKey: pp + "d\x00", Limit: 2, Revision: at})
	checkKVs(t, "page 3", page3.KVs, []kvWant{{pp + "e", "v-e", revs["e"], revs["e"]}})
	if page3.More || page3.Remaining != 0 {
		t.Fatalf("page 3: More=%v Remaining=%d, want false 0", page3.More, page3.Remaining)
	}

	// The listing as it is now.
	now := mustList(ctx, t, s, pp, storage.ListOptions{})
	checkKVs(t, "current listing", now.KVs, []kvWant{
		{key: pp + "a", value: "v-a"},
		{key: pp + "b", value: "v-b"},
		{key: pp + "bb", value: "new"},
		{key: pp + "c", value: "changed"},
		{key: pp + "e", value: "v-e"},
		{key: pp + "f", value: "new"},
	})
	// Paging the current state with Limit 1 walks every key once.
	var walked []string
	start := ""
	var rev int64
	for range 10 {
		res := mustList(ctx, t, s, pp, storage.ListOptions{StartKey: start, Limit: 1, Revision: rev})
		for _, kv := range res.KVs {
			walked = append(walked, kv.Key)
			start = kv.Key + "\x00"
		}
		rev = res.Revision
		if want := int64(6 - len(walked)); res.More != (want > 0) || res.Remaining != want {
			t.Fatalf("after %d keys: More=%v Remaining=%d, want %d remaining", len(walked), res.More, res.Remaining, want)
		}
		if !res.More {
			break
		}
	}
	if len(walked) != 6 {
		t.Fatalf("paging one by one walked %q", walked)
	}
}

func testCount(t *testing.T, s storage.Interface, p string) {
	ctx := testContext(t)
	pp := p + "items/"
	count := func(want int64) {
		t.Helper()
		n, err := s.Count(ctx, pp)
		if err != nil {
			t.Fatalf("Count: %v", err)
		}
		if n != want {
			t.Fatalf("Count = %d, want %d", n, want)
		}
	}
	count(0)
	var revs []int64
	for _, k := range []string{"a", "b", "c"} {
		revs = append(revs, mustCreate(ctx, t, s, pp+k, "v"))
	}
	mustCreate(ctx, t, s, p+"items-other", "v")
	count(3)
	mustUpdate(ctx, t, s, pp+"a", "w", revs[0])
	count(3)
	mustDelete(ctx, t, s, pp+"b", 0)
	count(2)
}

func testListOldRevision(t *testing.T, s storage.Interface, p string) {
	ctx := testContext(t)
	r1 := mustCreate(ctx, t, s, p+"a", "a1")
	r2 := mustCreate(ctx, t, s, p+"b", "b1")
	r3 := mustUpdate(ctx, t, s, p+"a", "a2", r1)
	_, r4 := mustDelete(ctx, t, s, p+"b", r2)
	r5 := mustCreate(ctx, t, s, p+"c", "c1")

	cases := []struct {
		at   int64
		want []kvWant
	}{
		{r1, []kvWant{{p + "a", "a1", r1, r1}}},
		{r2, []kvWant{{p + "a", "a1", r1, r1}, {p + "b", "b1", r2, r2}}},
		{r3, []kvWant{{p + "a", "a2", r3, r1}, {p + "b", "b1", r2, r2}}},
		{r4, []kvWant{{p + "a", "a2", r3, r1}}},
		{r5, []kvWant{{p + "a", "a2", r3, r1}, {p + "c", "c1", r5, r5}}},
		{0, []kvWant{{p + "a", "a2", r3, r1}, {p + "c", "c1", r5, r5}}},
	}
	for _, tc := range cases {
		res := mustList(ctx, t, s, p, storage.ListOptions{Revision: tc.at})
		checkKVs(t, "List at an old revision", res.KVs, tc.want)
		if tc.at != 0 && res.Revision != tc.at {
			t.Errorf("List at revision %d says it read at %d", tc.at, res.Revision)
		}
	}
	// Before anything was written under the prefix, it was empty.
	res := mustList(ctx, t, s, p, storage.ListOptions{Revision: r1 - 1})
	if len(res.KVs) != 0 {
		t.Errorf("List before the first write found %d keys", len(res.KVs))
	}
}

func testListStartKeyOutsidePrefix(t *testing.T, s storage.Interface, p string) {
	ctx := testContext(t)
	mustCreate(ctx, t, s, p+"in/a", "v")
	if _, err := s.List(ctx, p+"in/", storage.ListOptions{StartKey: p + "out/a"}); err == nil {
		t.Fatal("List with a start key outside the prefix succeeded")
	}
}

func testCompaction(t *testing.T, s storage.Interface, p string) {
	ctx := testContext(t)
	r1 := mustCreate(ctx, t, s, p+"a", "1")
	r2 := mustUpdate(ctx, t, s, p+"a", "2", r1)
	r3 := mustUpdate(ctx, t, s, p+"a", "3", r2)
	r4 := mustUpdate(ctx, t, s, p+"a", "4", r3)
	if err := s.Compact(ctx, r3); err != nil {
		t.Fatalf("Compact(%d): %v", r3, err)
	}
	_, err := s.List(ctx, p, storage.ListOptions{Revision: r2})
	wantErr(t, "List below the compacted revision", err, storage.ErrCompacted)
	_, err = s.List(ctx, p, storage.ListOptions{Revision: r1, Limit: 1})
	wantErr(t, "paged List below the compacted revision", err, storage.ErrCompacted)

	res := mustList(ctx, t, s, p, storage.ListOptions{Revision: r3})
	checkKVs(t, "List at the compacted revision", res.KVs, []kvWant{{p + "a", "3", r3, r1}})
	res = mustList(ctx, t, s, p, storage.ListOptions{})
	checkKVs(t, "List after compaction", res.KVs, []kvWant{{p + "a", "4", r4, r1}})
	kv, err := s.Get(ctx, p+"a")
	if err != nil {
		t.Fatalf("Get after compaction: %v", err)
	}
	checkKV(t, "Get after compaction", kv, kvWant{p + "a", "4", r4, r1})

	cur := mustRevision(ctx, t, s)
	err = s.Compact(ctx, cur+1_000_000)
	wantErr(t, "Compact of a future revision", err, storage.ErrFutureRevision)
}

func testFutureRevision(t *testing.T, s storage.Interface, p string) {
	ctx := testContext(t)
	mustCreate(ctx, t, s, p+"a", "v")
	future := mustRevision(ctx, t, s) + 1_000_000
	_, err := s.List(ctx, p, storage.ListOptions{Revision: future})
	wantErr(t, "List at a future revision", err, storage.ErrFutureRevision)
	_, err = s.List(ctx, p, storage.ListOptions{Revision: future, Limit: 1})
	wantErr(t, "paged List at a future revision", err, storage.ErrFutureRevision)

	ch := s.Watch(ctx, p, future, false)
	ev := nextEvent(t, ch)
	wantErr(t, "Watch from a future revision", ev.Err, storage.ErrFutureRevision)
	expectClosed(t, ch)
}
