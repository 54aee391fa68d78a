package etcd

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/metadata"

	"github.com/skiff-sh/skiff/storage"
)

// watchContext gives every watch of the store, and the progress requester,
// the same outgoing metadata. The etcd client multiplexes watches whose
// contexts carry equal metadata onto one gRPC stream, and a progress request
// reaches exactly the watches of the stream it is sent on. Requiring a
// leader makes a watch on a member cut off from its cluster fail instead
// of going silent.
func watchContext(ctx context.Context) context.Context {
	return metadata.NewOutgoingContext(ctx,
		metadata.Pairs(rpctypes.MetadataRequireLeaderKey, rpctypes.MetadataHasLeader))
}

// Watch streams changes under prefix made after fromRevision.
//
// Ordering and exactly-once delivery come from etcd itself: one etcd watch
// delivers the events of a key range in revision order, and the client
// resumes a broken stream from the revision after the last one it saw.
func (s *store) Watch(ctx context.Context, prefix string, fromRevision int64, progress bool) <-chan storage.Event {
	out := make(chan storage.Event, 16)
	if fromRevision < 0 {
		out <- storage.Event{Err: fmt.Errorf("etcd watch %q: negative revision %d", prefix, fromRevision)}
		close(out)
		return out
	}
	key, end, err := rangeOf(prefix, "")
	if err != nil {
		out <- storage.Event{Err: fmt.Errorf("etcd watch %q: %w", prefix, err)}
		close(out)
		return out
	}
	ops := []clientv3.OpOption{
		clientv3.WithRange(end),
		clientv3.WithPrevKV(),
		clientv3.WithCreatedNotify(),
	}
	if fromRevision > 0 {
		ops = append(ops, clientv3.WithRev(fromRevision+1))
	}
	release := func() {}
	if progress {
		ops = append(ops, clientv3.WithProgressNotify())
		release = s.progress.add()
	}
	wctx, cancel := context.WithCancel(watchContext(ctx))
	// The client returns once etcd has registered the watch, so a watch
	// from "now" covers every write that starts after Watch returns.
	wch := s.client.Watch(wctx, key, ops...)
	w := &watchPump{
		ctx:      ctx,
		out:      out,
		prefix:   prefix,
		from:     fromRevision,
		last:     fromRevision,
		want:     progress,
		interval: s.progress.interval,
		quiet:    true,
	}
	go func() {
		defer close(out)
		defer cancel()
		defer release()
		w.run(wch)
	}()
	return out
}

// watchPump turns one etcd watch channel into storage events.
type watchPump struct {
	ctx    context.Context
	out    chan<- storage.Event
	prefix string
	from   int64
	// last is the revision up to which the watch has delivered
	// everything: the start, the newest event or etcd's progress.
	last int64
	// want says the caller asked for Progress events, one at least every
	// interval.
	want     bool
	interval time.Duration
	// created is set once etcd has registered the watch; until then a
	// watch from "now" does not know its start.
	created bool
	// quiet says nothing was sent since the last tick: it is cleared by
	// every event sent and set by every tick.
	quiet bool
}

func (w *watchPump) send(ev storage.Event) bool {
	select {
	case w.out <- ev:
		return true
	case <-w.ctx.Done():
		return false
	}
}

func (w *watchPump) fail(err error) {
	w.send(storage.Event{Err: mapErr(err, "etcd watch %q from revision %d", w.prefix, w.from)})
}

// progressTick sends a Progress event at the last revision if nothing was
// sent since the previous tick. etcd only answers progress requests once
// the store's revision has reached every watch's start, so an idle store
// would otherwise leave a fresh watch without any.
func (w *watchPump) progressTick() bool {
	quiet := w.quiet
	w.quiet = true
	if !quiet || !w.created {
		return true
	}
	return w.send(storage.Event{Progress: true, KV: storage.KV{Revision: w.last}})
}

func (w *watchPump) run(wch clientv3.WatchChan) {
	var tick <-chan time.Time
	if w.want {
		t := time.NewTicker(w.interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		var (
			wr clientv3.WatchResponse
			ok bool
		)
		select {
		case <-w.ctx.Done():
			return
		case <-tick:
			if !w.progressTick() {
				return
			}
			continue
		case wr, ok = <-wch:
		}
		if !ok {
			if w.ctx.Err() == nil {
				w.fail(errors.New("watch channel closed by the etcd client"))
			}
			return
		}
		if err := wr.Err(); err != nil {
			if w.ctx.Err() == nil {
				w.fail(err)
			}
			return
		}
		if wr.Created {
			// The creation answer carries the store's revision at
			// that moment: a start beyond it is in the future.
			if w.from > 0 && wr.Header.Revision < w.from {
				w.fail(fmt.Errorf("store is at revision %d: %w", wr.Header.Revision, rpctypes.ErrFutureRev))
				return
			}
			if w.from == 0 {
				// The watch starts after the store's revision now.
				w.last = wr.Header.Revision
			}
			w.created = true
			continue
		}
		if wr.IsProgressNotify() {
			rev := wr.Header.Revision
			if w.want && rev >= w.last {
				w.last = rev
				w.quiet = false
				if !w.send(storage.Event{Progress: true, KV: storage.KV{Revision: rev}}) {
					return
				}
			}
			continue
		}
		for _, ev := range wr.Events {
			e := convertEvent(ev)
			if e.KV.Revision > w.last {
				w.last = e.KV.Revision
			}
			w.quiet = false
			if !w.send(e) {
				return
			}
		}
	}
}

// convertEvent maps an etcd event onto a storage event.
func convertEvent(ev *clientv3.Event) storage.Event {
	var e storage.Event
	switch {
	case ev.Type == mvccpb.DELETE:
		e.Type = storage.Deleted
		// etcd's tombstone carries the key and the delete's revision.
		e.KV = storage.KV{Key: string(ev.Kv.Key), Revision: ev.Kv.ModRevision}
	case ev.IsCreate():
		e.Type = storage.Added
		e.KV = toKV(ev.Kv)
		return e
	default:
		e.Type = storage.Modified
		e.KV = toKV(ev.Kv)
	}
	if ev.PrevKv != nil {
		prev := toKV(ev.PrevKv)
		e.Prev = &prev
	}
	return e
}
