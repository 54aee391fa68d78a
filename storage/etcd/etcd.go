// Package etcd implements storage.Interface on etcd v3.
//
// Every call maps onto one etcd request: Create is a transaction that puts
// the key only if its CreateRevision is 0, Update and guarded Delete are
// transactions on the key's ModRevision, List is a range read (optionally at
// a fixed revision) and Watch is an etcd watch with previous values. etcd's
// errors for compacted and future revisions come back as storage.ErrCompacted
// and storage.ErrFutureRevision.
//
// The package also runs etcd in-process (StartEmbedded) and carries the
// periodic history compactor the API server runs against any store
// (RunCompactor).
package etcd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/skiff-sh/skiff/storage"
)

// DefaultProgressInterval is how often a store asks etcd for watch progress
// while at least one of its watches wants Progress events.
const DefaultProgressInterval = 5 * time.Second

// Option tunes a store made by New.
type Option func(*options)

type options struct {
	progressInterval time.Duration
}

// WithProgressInterval sets how often idle watches that asked for progress
// get a Progress event. Non-positive values keep the default.
func WithProgressInterval(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.progressInterval = d
		}
	}
}

// store is the etcd-backed storage.Interface.
type store struct {
	client   *clientv3.Client
	progress *progressRequester

	closeOnce sync.Once
	closeErr  error
}

// New returns a store that talks to etcd through c. The store takes
// ownership of c: Close closes it.
func New(c *clientv3.Client, opts ...Option) storage.Interface {
	o := options{progressInterval: DefaultProgressInterval}
	for _, opt := range opts {
		opt(&o)
	}
	return &store{
		client:   c,
		progress: newProgressRequester(c, o.progressInterval),
	}
}

// mapErr turns etcd's revision errors into the storage package's and wraps
// everything with what was being done.
func mapErr(err error, format string, args ...any) error {
	what := fmt.Sprintf(format, args...)
	switch {
	case errors.Is(err, rpctypes.ErrCompacted), errors.Is(err, rpctypes.ErrGRPCCompacted):
		return fmt.Errorf("%s: %w", what, storage.ErrCompacted)
	case errors.Is(err, rpctypes.ErrFutureRev), errors.Is(err, rpctypes.ErrGRPCFutureRev):
		return fmt.Errorf("%s: %w", what, storage.ErrFutureRevision)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func toKV(kv *mvccpb.KeyValue) storage.KV {
	return storage.KV{
		Key:            string(kv.Key),
		Value:          kv.Value,
		Revision:       kv.ModRevision,
		CreateRevision: kv.CreateRevision,
	}
}

// Get returns the key's current value, or storage.ErrNotFound.
func (s *store) Get(ctx context.Context, key string) (storage.KV, error) {
	resp, err := s.client.Get(ctx, key)
	if err != nil {
		return storage.KV{}, mapErr(err, "etcd get %q", key)
	}
	if len(resp.Kvs) == 0 {
		return storage.KV{}, fmt.Errorf("etcd get %q: %w", key, storage.ErrNotFound)
	}
	return toKV(resp.Kvs[0]), nil
}

// rangeOf returns the first key and the range end that cover every key
// under prefix, starting at startKey when it is set.
func rangeOf(prefix, startKey string) (key, end string, err error) {
	key = prefix
	if startKey != "" {
		if !strings.HasPrefix(startKey, prefix) {
			return "", "", fmt.Errorf("start key %q is not under prefix %q", startKey, prefix)
		}
		key = startKey
	}
	end = clientv3.GetPrefixRangeEnd(prefix)
	if key == "" {
		// The empty prefix means every key; etcd spells "from the
		// smallest key" as "\x00".
		key = "\x00"
	}
	return key, end, nil
}

// List returns keys with the given prefix in key order.
func (s *store) List(ctx context.Context, prefix string, opts storage.ListOptions) (storage.ListResult, error) {
	key, end, err := rangeOf(prefix, opts.StartKey)
	if err != nil {
		return storage.ListResult{}, fmt.Errorf("etcd list %q: %w", prefix, err)
	}
	if opts.Limit < 0 || opts.Revision < 0 {
		return storage.ListResult{}, fmt.Errorf("etcd list %q: negative limit %d or revision %d", prefix, opts.Limit, opts.Revision)
	}
	ops := []clientv3.OpOption{clientv3.WithRange(end)}
	if opts.Limit > 0 {
		ops = append(ops, clientv3.WithLimit(opts.Limit))
	}
	if opts.Revision > 0 {
		ops = append(ops, clientv3.WithRev(opts.Revision))
	}
	resp, err := s.client.Get(ctx, key, ops...)
	if err != nil {
		return storage.ListResult{}, mapErr(err, "etcd list %q at revision %d", prefix, opts.Revision)
	}
	res := storage.ListResult{
		KVs:      make([]storage.KV, 0, len(resp.Kvs)),
		Revision: resp.Header.Revision,
		More:     resp.More,
	}
	if opts.Revision > 0 {
		res.Revision = opts.Revision
	}
	for _, kv := range resp.Kvs {
		res.KVs = append(res.KVs, toKV(kv))
	}
	if res.More {
		// Count is every key in [key, end) at the revision, the page
		// included.
		res.Remaining = resp.Count - int64(len(resp.Kvs))
	}
	return res, nil
}

// Count returns how many keys have the given prefix.
func (s *store) Count(ctx context.Context, prefix string) (int64, error) {
	key, end, err := rangeOf(prefix, "")
	if err != nil {
		return 0, fmt.Errorf("etcd count %q: %w", prefix, err)
	}
	resp, err := s.client.Get(ctx, key, clientv3.WithRange(end), clientv3.WithCountOnly())
	if err != nil {
		return 0, mapErr(err, "etcd count %q", prefix)
	}
	return resp.Count, nil
}

// Create writes a new key; storage.ErrExists if it is there.
func (s *store) Create(ctx context.Context, key string, value []byte) (int64, error) {
	resp, err := s.client.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(value))).
		Commit()
	if err != nil {
		return 0, mapErr(err, "etcd create %q", key)
	}
	if !resp.Succeeded {
		return 0, fmt.Errorf("etcd create %q: %w", key, storage.ErrExists)
	}
	return resp.Header.Revision, nil
}

// guardFailure explains why a transaction guarded by ModRevision did not
// run, from the Get in its Else branch.
func guardFailure(resp *clientv3.TxnResponse, op, key string, expected int64) error {
	if len(resp.Responses) == 1 {
		if r := resp.Responses[0].GetResponseRange(); r != nil && len(r.Kvs) == 0 {
			return fmt.Errorf("etcd %s %q: %w", op, key, storage.ErrNotFound)
		} else if r != nil {
			return fmt.Errorf("etcd %s %q: expected revision %d, found %d: %w",
				op, key, expected, r.Kvs[0].ModRevision, storage.ErrConflict)
		}
	}
	return fmt.Errorf("etcd %s %q: expected revision %d: %w", op, key, expected, storage.ErrConflict)
}

// Update replaces the value of key if its revision is still
// expectedRevision.
func (s *store) Update(ctx context.Context, key string, value []byte, expectedRevision int64) (int64, error) {
	if expectedRevision <= 0 {
		return 0, fmt.Errorf("etcd update %q: expected revision must be positive, got %d", key, expectedRevision)
	}
	resp, err := s.client.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", expectedRevision)).
		Then(clientv3.OpPut(key, string(value))).
		Else(clientv3.OpGet(key, clientv3.WithKeysOnly())).
		Commit()
	if err != nil {
		return 0, mapErr(err, "etcd update %q", key)
	}
	if !resp.Succeeded {
		return 0, guardFailure(resp, "update", key, expectedRevision)
	}
	return resp.Header.Revision, nil
}

// Delete removes the key, guarded by expectedRevision when it is positive.
func (s *store) Delete(ctx context.Context, key string, expectedRevision int64) (storage.KV, int64, error) {
	if expectedRevision <= 0 {
		resp, err := s.client.Delete(ctx, key, clientv3.WithPrevKV())
		if err != nil {
			return storage.KV{}, 0, mapErr(err, "etcd delete %q", key)
		}
		if resp.Deleted == 0 || len(resp.PrevKvs) == 0 {
			return storage.KV{}, 0, fmt.Errorf("etcd delete %q: %w", key, storage.ErrNotFound)
		}
		return toKV(resp.PrevKvs[0]), resp.Header.Revision, nil
	}
	resp, err := s.client.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", expectedRevision)).
		Then(clientv3.OpDelete(key, clientv3.WithPrevKV())).
		Else(clientv3.OpGet(key, clientv3.WithKeysOnly())).
		Commit()
	if err != nil {
		return storage.KV{}, 0, mapErr(err, "etcd delete %q", key)
	}
	if !resp.Succeeded {
		return storage.KV{}, 0, guardFailure(resp, "delete", key, expectedRevision)
	}
	if len(resp.Responses) != 1 {
		return storage.KV{}, 0, fmt.Errorf("etcd delete %q: transaction returned %d responses", key, len(resp.Responses))
	}
	del := resp.Responses[0].GetResponseDeleteRange()
	if del == nil || len(del.PrevKvs) == 0 {
		return storage.KV{}, 0, fmt.Errorf("etcd delete %q: %w", key, storage.ErrNotFound)
	}
	return toKV(del.PrevKvs[0]), resp.Header.Revision, nil
}

// Revision returns etcd's current revision.
func (s *store) Revision(ctx context.Context) (int64, error) {
	// A count-only read of one key is the cheapest linearizable read that
	// carries the header revision.
	resp, err := s.client.Get(ctx, "\x00", clientv3.WithCountOnly())
	if err != nil {
		return 0, mapErr(err, "etcd revision")
	}
	return resp.Header.Revision, nil
}

// Compact discards history older than revision.
func (s *store) Compact(ctx context.Context, revision int64) error {
	if _, err := s.client.Compact(ctx, revision); err != nil {
		return mapErr(err, "etcd compact to %d", revision)
	}
	return nil
}

// Close stops the store's background work and closes its client.
func (s *store) Close() error {
	s.closeOnce.Do(func() {
		s.progress.close()
		if err := s.client.Close(); err != nil && !errors.Is(err, context.Canceled) {
			s.closeErr = fmt.Errorf("etcd close client: %w", err)
		}
	})
	return s.closeErr
}
