package etcd

import (
	"context"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// progressRequester asks etcd for a progress notification on the store's
// watch stream every interval, while at least one watch wants them.
//
// etcd's own periodic notification is a server setting (ten minutes by
// default), so the store asks for progress itself: one request per interval
// answers every watch on the stream, however many there are. Watches that
// did not ask for progress drop the notifications.
//
// etcd servers before 3.4.24 and 3.5.8 answer a progress request at once,
// even while a watch is still replaying old history; such a notification
// can claim a revision whose events that watch has not delivered yet.
// Servers from those releases on wait until every watch on the stream has
// caught up.
type progressRequester struct {
	client   *clientv3.Client
	interval time.Duration

	mu       sync.Mutex
	watchers int
	stop     chan struct{}
	closed   bool
	wg       sync.WaitGroup
}

func newProgressRequester(c *clientv3.Client, interval time.Duration) *progressRequester {
	return &progressRequester{client: c, interval: interval}
}

// add registers a watch that wants progress; the returned func unregisters
// it and may be called more than once.
func (p *progressRequester) add() (release func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return func() {}
	}
	p.watchers++
	if p.watchers == 1 {
		p.stop = make(chan struct{})
		p.wg.Add(1)
		go p.run(p.stop)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			p.mu.Lock()
			defer p.mu.Unlock()
			p.watchers--
			if p.watchers == 0 && p.stop != nil {
				close(p.stop)
				p.stop = nil
			}
		})
	}
}

func (p *progressRequester) run(stop <-chan struct{}) {
	defer p.wg.Done()
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(watchContext(context.Background()), p.interval)
		// A failed request only costs one notification; the next tick
		// asks again.
		_ = p.client.RequestProgress(ctx)
		cancel()
	}
}

// close stops the requester for good and waits for it.
func (p *progressRequester) close() {
	p.mu.Lock()
	p.closed = true
	if p.stop != nil {
		close(p.stop)
		p.stop = nil
	}
	p.mu.Unlock()
	p.wg.Wait()
}
