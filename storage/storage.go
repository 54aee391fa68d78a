// Package storage is the contract between the API server and the database
// behind it, and nothing more.
//
// The contract is deliberately small, in the spirit of kine: a flat
// key-value space ordered by key, where every write is stamped with a
// cluster-wide, strictly increasing revision. The API server builds every
// Kubernetes semantic (resourceVersion, optimistic concurrency, list
// pagination, watch resume) out of these few calls:
//
//	Get          one key, with its revision
//	List         keys under a prefix, in key order, paged, at a revision
//	Count        keys under a prefix
//	Create       a key that must not exist yet
//	Update       a key whose revision is still the one the caller read
//	Delete       a key, optionally guarded by revision
//	Watch        every change under a prefix after a revision
//
// Values are opaque bytes: encoding, encryption at rest and the meaning of
// keys belong to the caller. The etcd implementation lives in storage/etcd;
// every implementation must pass storage/storagetest.
package storage

import (
	"context"
	"errors"
)

// Errors every implementation returns, checked with errors.Is.
var (
	// ErrNotFound: the key does not exist (or did not at the revision asked).
	ErrNotFound = errors.New("storage: key not found")
	// ErrExists: Create of a key that exists.
	ErrExists = errors.New("storage: key already exists")
	// ErrConflict: the revision guard of Update or Delete did not hold.
	ErrConflict = errors.New("storage: revision conflict")
	// ErrCompacted: the revision asked for has been compacted away. The API
	// server answers 410 Gone.
	ErrCompacted = errors.New("storage: revision compacted")
	// ErrFutureRevision: the revision asked for is newer than the store's.
	ErrFutureRevision = errors.New("storage: revision is in the future")
)

// KV is one stored key at one revision.
type KV struct {
	Key   string
	Value []byte
	// Revision is the revision of the last write to this key (etcd's
	// ModRevision). It is the object's resourceVersion.
	Revision int64
	// CreateRevision is the revision that created this key.
	CreateRevision int64
}

// ListOptions narrows a List.
type ListOptions struct {
	// StartKey, if set, is where the listing begins (inclusive); it must lie
	// under the prefix. Pagination passes the last key returned plus "\x00".
	StartKey string
	// Limit caps the number of keys returned; 0 means no cap.
	Limit int64
	// Revision, if non-zero, lists the state as of that revision. A
	// compacted revision gives ErrCompacted.
	Revision int64
}

// ListResult is one page of a List.
type ListResult struct {
	KVs []KV
	// Revision is the revision the page was read at. Further pages of the
	// same listing pass it back as ListOptions.Revision.
	Revision int64
	// More is true when keys under the prefix remain after this page.
	More bool
	// Remaining counts the keys after this page, when More is true.
	Remaining int64
}

// EventType says what a watch event did to its key.
type EventType int

const (
	// Added: the key was created.
	Added EventType = iota
	// Modified: an existing key got a new value.
	Modified
	// Deleted: the key was removed. KV.Value is empty; Prev holds the last value.
	Deleted
)

func (t EventType) String() string {
	switch t {
	case Added:
		return "ADDED"
	case Modified:
		return "MODIFIED"
	case Deleted:
		return "DELETED"
	}
	return "UNKNOWN"
}

// Event is one change seen by a watch.
type Event struct {
	Type EventType
	// KV is the key after the change; for Deleted its Revision is the
	// revision of the delete and its Value is empty.
	KV KV
	// Prev is the key before the change (nil for Added).
	Prev *KV
	// Progress marks an event carrying no change: only KV.Revision is set,
	// and it says that the watch has seen everything up to that revision.
	Progress bool
	// Err, when set, ends the watch: ErrCompacted when the start revision was
	// compacted, or another failure. The channel closes right after.
	Err error
}

// Interface is the store. All methods are safe for concurrent use.
type Interface interface {
	// Get returns the key's current value, or ErrNotFound.
	Get(ctx context.Context, key string) (KV, error)
	// List returns keys with the given prefix in key order.
	List(ctx context.Context, prefix string, opts ListOptions) (ListResult, error)
	// Count returns how many keys have the given prefix.
	Count(ctx context.Context, prefix string) (int64, error)
	// Create writes a new key; ErrExists if it is there. It returns the
	// revision of the write.
	Create(ctx context.Context, key string, value []byte) (int64, error)
	// Update replaces the value of key if its revision is still
	// expectedRevision: ErrConflict if it moved on, ErrNotFound if it is
	// gone. It returns the revision of the write.
	Update(ctx context.Context, key string, value []byte, expectedRevision int64) (int64, error)
	// Delete removes the key. With expectedRevision > 0 it is guarded like
	// Update. It returns the deleted KV (its last value) and the revision of
	// the delete.
	Delete(ctx context.Context, key string, expectedRevision int64) (KV, int64, error)
	// Watch streams changes to keys under prefix made after revision
	// fromRevision (0: from now). The channel closes when ctx ends or after
	// an event with Err set. With progress set, the watch also sends
	// Progress events when idle, so callers can send bookmarks.
	Watch(ctx context.Context, prefix string, fromRevision int64, progress bool) <-chan Event
	// Revision returns the store's current revision.
	Revision(ctx context.Context) (int64, error)
	// Compact discards history older than revision.
	Compact(ctx context.Context, revision int64) error
	// Close releases the store's connections.
	Close() error
}
