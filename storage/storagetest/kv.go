package storagetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/skiff-sh/skiff/storage"
)

var kvCases = []testCase{
	{"CreateGet", testCreateGet},
	{"Update", testUpdate},
	{"Delete", testDelete},
	{"ConcurrentUpdate", testConcurrentUpdate},
	{"ConcurrentCreate", testConcurrentCreate},
}

func testCreateGet(t *testing.T, s storage.Interface, p string) {
	ctx := testContext(t)
	before := mustRevision(ctx, t, s)
	rev := mustCreate(ctx, t, s, p+"a", "one")
	if rev <= before {
		t.Fatalf("Create returned revision %d, not after the store's %d", rev, before)
	}
	kv, err := s.Get(ctx, p+"a")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	checkKV(t, "Get after Create", kv, kvWant{p + "a", "one", rev, rev})

	_, err = s.Create(ctx, p+"a", []byte("two"))
	wantErr(t, "second Create", err, storage.ErrExists)
	kv, err = s.Get(ctx, p+"a")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	checkKV(t, "Get after failed Create", kv, kvWant{p + "a", "one", rev, rev})

	_, err = s.Get(ctx, p+"missing")
	wantErr(t, "Get of a missing key", err, storage.ErrNotFound)
	_, err = s.Get(ctx, p)
	wantErr(t, "Get of the bare prefix", err, storage.ErrNotFound)

	if cur := mustRevision(ctx, t, s); cur < rev {
		t.Fatalf("Revision %d is before the write at %d", cur, rev)
	}
	rev2 := mustCreate(ctx, t, s, p+"b", "")
	if rev2 <= rev {
		t.Fatalf("second Create got revision %d, not after %d", rev2, rev)
	}
	kv, err = s.Get(ctx, p+"b")
	if err != nil {
		t.Fatalf("Get of an empty value: %v", err)
	}
	checkKV(t, "Get of an empty value", kv, kvWant{p + "b", "", rev2, rev2})

	value := make([]byte, 256)
	for i := range value {
		value[i] = byte(i)
	}
	mustCreate(ctx, t, s, p+"binary", string(value))
	kv, err = s.Get(ctx, p+"binary")
	if err != nil {
		t.Fatalf("Get of a binary value: %v", err)
	}
	if string(kv.Value) != string(value) {
		t.Fatalf("binary value came back as %q", kv.Value)
	}
}

func testUpdate(t *testing.T, s storage.Interface, p string) {
	ctx := testContext(t)
	created := mustCreate(ctx, t, s, p+"a", "one")
	rev := mustUpdate(ctx, t, s, p+"a", "two", created)
	kv, err := s.Get(ctx, p+"a")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	checkKV(t, "Get after Update", kv, kvWant{p + "a", "two", rev, created})

	_, err = s.Update(ctx, p+"a", []byte("stale"), created)
	wantErr(t, "Update with a stale revision", err, storage.ErrConflict)
	_, err = s.Update(ctx, p+"a", []byte("future"), rev+1000)
	wantErr(t, "Update with a later revision", err, storage.ErrConflict)
	kv, err = s.Get(ctx, p+"a")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	checkKV(t, "Get after failed Updates", kv, kvWant{p + "a", "two", rev, created})

	_, err = s.Update(ctx, p+"missing", []byte("x"), rev)
	wantErr(t, "Update of a missing key", err, storage.ErrNotFound)
	if _, err := s.Get(ctx, p+"missing"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Update of a missing key created it (Get: %v)", err)
	}

	rev3 := mustUpdate(ctx, t, s, p+"a", "three", rev)
	kv, err = s.Get(ctx, p+"a")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	checkKV(t, "Get after second Update", kv, kvWant{p + "a", "three", rev3, created})
}

func testDelete(t *testing.T, s storage.Interface, p string) {
	ctx := testContext(t)
	created := mustCreate(ctx, t, s, p+"a", "one")
	rev := mustUpdate(ctx, t, s, p+"a", "two", created)

	_, _, err := s.Delete(ctx, p+"a", created)
	wantErr(t, "Delete with a stale revision", err, storage.ErrConflict)
	if _, err := s.Get(ctx, p+"a"); err != nil {
		t.Fatalf("failed Delete removed the key: %v", err)
	}

	kv, delRev := mustDelete(ctx, t, s, p+"a", rev)
	checkKV(t, "guarded Delete's last value", kv, kvWant{p + "a", "two", rev, created})
	if delRev <= rev {
		t.Fatalf("Delete at revision %d, not after %d", delRev, rev)
	}
	_, err = s.Get(ctx, p+"a")
	wantErr(t, "Get after Delete", err, storage.ErrNotFound)
	_, _, err = s.Delete(ctx, p+"a", rev)
	wantErr(t, "guarded Delete of a deleted key", err, storage.ErrNotFound)
	_, _, err = s.Delete(ctx, p+"a", 0)
	wantErr(t, "unguarded Delete of a deleted key", err, storage.ErrNotFound)

	bRev := mustCreate(ctx, t, s, p+"b", "bee")
	kv, delRev = mustDelete(ctx, t, s, p+"b", 0)
	checkKV(t, "unguarded Delete's last value", kv, kvWant{p + "b", "bee", bRev, bRev})
	if delRev <= bRev {
		t.Fatalf("unguarded Delete at revision %d, not after %d", delRev, bRev)
	}
	if cur := mustRevision(ctx, t, s); cur < delRev {
		t.Fatalf("Revision %d is before the delete at %d", cur, delRev)
	}

	// A key can be created again after a delete, with a new create
	// revision.
	again := mustCreate(ctx, t, s, p+"a", "again")
	kv, err = s.Get(ctx, p+"a")
	if err != nil {
		t.Fatalf("Get of a recreated key: %v", err)
	}
	checkKV(t, "recreated key", kv, kvWant{p + "a", "again", again, again})
}

func testConcurrentUpdate(t *testing.T, s storage.Interface, p string) {
	ctx := testContext(t)
	rev := mustCreate(ctx, t, s, p+"a", "start")
	const writers = 8
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners []string
		errs    []error
	)
	start := make(chan struct{})
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			value := fmt.Sprintf("writer-%d", i)
			_, err := s.Update(ctx, p+"a", []byte(value), rev)
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				winners = append(winners, value)
			} else {
				errs = append(errs, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if len(winners) != 1 {
		t.Fatalf("%d updates with the same revision succeeded (%q), want exactly 1", len(winners), winners)
	}
	for _, err := range errs {
		wantErr(t, "losing concurrent Update", err, storage.ErrConflict)
	}
	kv, err := s.Get(ctx, p+"a")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if string(kv.Value) != winners[0] {
		t.Fatalf("value is %q, want the winner's %q", kv.Value, winners[0])
	}
}

func testConcurrentCreate(t *testing.T, s storage.Interface, p string) {
	ctx := testContext(t)
	const writers = 8
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins int
		errs []error
	)
	start := make(chan struct{})
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, err := s.Create(ctx, p+"a", []byte(fmt.Sprint(i)))
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				wins++
			} else {
				errs = append(errs, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d concurrent Creates of one key succeeded, want exactly 1", wins)
	}
	for _, err := range errs {
		wantErr(t, "losing concurrent Create", err, storage.ErrExists)
	}
}
