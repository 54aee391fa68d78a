package etcd

import (
	"context"
	"errors"
	"time"

	"github.com/skiff-sh/skiff/storage"
)

// compactTarget decides how far a compaction tick may compact.
//
// previous is the revision seen at the tick before (0 if none), current the
// revision now, keep how many revisions to keep regardless (0 for none) and
// compacted the last revision compacted to. History after previous is
// always kept, so a client that read a revision up to one interval ago can
// still watch from it, and with keep > 0 so are the last keep revisions.
// It returns false when there is nothing new to compact.
func compactTarget(previous, current, keep, compacted int64) (int64, bool) {
	target := previous
	if keep > 0 && current-keep < target {
		target = current - keep
	}
	if target > current {
		target = current
	}
	if target <= 0 || target <= compacted {
		return 0, false
	}
	return target, true
}

// RunCompactor compacts s every interval until ctx ends. Each tick
// compacts to the revision seen at the previous tick, so at least one
// interval of history survives, and never past the newest keep revisions
// when keep > 0. log, if not nil, is told about each compaction and
// failure. A compaction someone else already did counts as done.
func RunCompactor(ctx context.Context, s storage.Interface, interval time.Duration, keep int64, log func(string, ...any)) {
	if log == nil {
		log = func(string, ...any) {}
	}
	if interval <= 0 {
		log("etcd compactor: interval %v is not positive; not compacting", interval)
		<-ctx.Done()
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	var previous, compacted int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		current, err := s.Revision(ctx)
		if err != nil {
			if ctx.Err() == nil {
				log("etcd compactor: read revision: %v", err)
			}
			continue
		}
		if target, ok := compactTarget(previous, current, keep, compacted); ok {
			switch err := s.Compact(ctx, target); {
			case err == nil:
				compacted = target
				log("etcd compactor: compacted to revision %d (current %d)", target, current)
			case errors.Is(err, storage.ErrCompacted):
				compacted = target
			case ctx.Err() != nil:
				return
			default:
				log("etcd compactor: compact to revision %d: %v", target, err)
			}
		}
		previous = current
	}
}
