// Package storagetest is the conformance suite for storage.Interface: every
// implementation runs Run from its own tests and must pass it unchanged.
//
// Beyond what storage.Interface's comments say, the suite holds an
// implementation to these readings of the contract:
//
//   - A Watch from revision 0 covers every write that starts after Watch
//     returns.
//   - A Watch or List at a revision newer than the store's gives
//     storage.ErrFutureRevision (the watch as its first and only event).
//   - Compact of a future revision gives storage.ErrFutureRevision.
//   - After Compact(c), List at any revision below c and Watch from any
//     revision below c-1 give storage.ErrCompacted; List at c and Watch
//     from c still work.
//   - A watch that asked for progress gets a Progress event within
//     ProgressWait when idle, and never one whose revision is below an
//     event it already delivered; a watch that did not ask gets none.
//   - Update and Delete take expectedRevision > 0 when guarded; Delete
//     with 0 is unguarded.
package storagetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/skiff-sh/skiff/storage"
)

// ProgressWait is how long the suite waits for a Progress event; stores
// under test should be configured to send them well within it.
const ProgressWait = 10 * time.Second

// eventWait bounds the wait for any expected watch event.
const eventWait = 10 * time.Second

// testTimeout bounds each subtest's store calls.
const testTimeout = 60 * time.Second

type testCase struct {
	name string
	fn   func(t *testing.T, s storage.Interface, prefix string)
}

// Run runs every conformance subtest. newStore is called once per subtest
// with that subtest's t and arranges the store's cleanup itself (for
// example with t.Cleanup(s.Close)); it may hand out one shared store, as
// every subtest works under its own key prefix. Subtests run one after
// another because some compact the store's history.
func Run(t *testing.T, newStore func(t *testing.T) storage.Interface) {
	base := fmt.Sprintf("/storagetest/%x-%x/", time.Now().UnixNano(), rand.Uint64())
	var cases []testCase
	cases = append(cases, kvCases...)
	cases = append(cases, listCases...)
	cases = append(cases, watchCases...)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			tc.fn(t, s, base+tc.name+"/")
		})
	}
}

// testContext is the subtest's context, bounded by testTimeout.
func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func mustCreate(ctx context.Context, t *testing.T, s storage.Interface, key, value string) int64 {
	t.Helper()
	rev, err := s.Create(ctx, key, []byte(value))
	if err != nil {
		t.Fatalf("Create(%q): %v", key, err)
	}
	if rev <= 0 {
		t.Fatalf("Create(%q) returned revision %d", key, rev)
	}
	return rev
}

func mustUpdate(ctx context.Context, t *testing.T, s storage.Interface, key, value string, expected int64) int64 {
	t.Helper()
	rev, err := s.Update(ctx, key, []byte(value), expected)
	if err != nil {
		t.Fatalf("Update(%q, rev %d): %v", key, expected, err)
	}
	if rev <= expected {
		t.Fatalf("Update(%q, rev %d) returned revision %d, want a later one", key, expected, rev)
	}
	return rev
}

func mustDelete(ctx context.Context, t *testing.T, s storage.Interface, key string, expected int64) (storage.KV, int64) {
	t.Helper()
	kv, rev, err := s.Delete(ctx, key, expected)
	if err != nil {
		t.Fatalf("Delete(%q, rev %d): %v", key, expected, err)
	}
	return kv, rev
}

func mustRevision(ctx context.Context, t *testing.T, s storage.Interface) int64 {
	t.Helper()
	rev, err := s.Revision(ctx)
	if err != nil {
		t.Fatalf("Revision: %v", err)
	}
	return rev
}

func mustList(ctx context.Context, t *testing.T, s storage.Interface, prefix string, opts storage.ListOptions) storage.ListResult {
	t.Helper()
	res, err := s.List(ctx, prefix, opts)
	if err != nil {
		t.Fatalf("List(%q, %+v): %v", prefix, opts, err)
	}
	return res
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

// kvWant is what a test expects of one KV; zero revisions are not checked.
type kvWant struct {
	key, value     string
	rev, createRev int64
}

func checkKV(t *testing.T, what string, got storage.KV, want kvWant) {
	t.Helper()
	if got.Key != want.key || string(got.Value) != want.value {
		t.Errorf("%s: got %q=%q, want %q=%q", what, got.Key, got.Value, want.key, want.value)
	}
	if want.rev != 0 && got.Revision != want.rev {
		t.Errorf("%s: %q has revision %d, want %d", what, got.Key, got.Revision, want.rev)
	}
	if want.createRev != 0 && got.CreateRevision != want.createRev {
		t.Errorf("%s: %q has create revision %d, want %d", what, got.Key, got.CreateRevision, want.createRev)
	}
}

func checkKVs(t *testing.T, what string, got []storage.KV, want []kvWant) {
	t.Helper()
	if len(got) != len(want) {
		keys := make([]string, len(got))
		for i, kv := range got {
			keys[i] = kv.Key
		}
		t.Fatalf("%s: got %d keys %q, want %d", what, len(got), keys, len(want))
	}
	for i := range want {
		checkKV(t, fmt.Sprintf("%s[%d]", what, i), got[i], want[i])
	}
}
