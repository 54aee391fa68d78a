// Package leader runs work on exactly one of several replicas at a time,
// holding leadership through a coordination.k8s.io/v1 Lease with client-go's
// leaderelection package.
//
// # Why the leader stops before another starts
//
// A candidate takes the Lease only when the holder has not renewed it for
// LeaseDuration, measured on the candidate's own clock from the moment it
// first saw the holder's last renewal (so it is never earlier than that
// renewal). The holder, for its part, tries to renew every RetryPeriod,
// and gives each attempt at most RenewDeadline; when an attempt fails,
// leadership is lost and lead's context is cancelled at once. So the
// holder gives up at most RetryPeriod + RenewDeadline after its last good
// renewal, and a rival can take over no sooner than LeaseDuration after
// it. Options requires RetryPeriod + RenewDeadline < LeaseDuration; the
// difference (3s with the defaults 2s + 10s < 15s) is the margin for the
// lead function to notice its cancelled context and stop writing.
//
// What no lease can prevent: a process frozen (stopped, swapped out) for
// longer than LeaseDuration wakes with its old belief for the instant
// before its timers fire, and a write already on the wire may land after
// the handover. Work done under lead should therefore check its context
// before each write and stay idempotent, as Skiff's reconcilers are.
//
// # Life of Run
//
//	campaign ──acquired──> leading: lead(ctx) runs
//	   ^                      │
//	   │   renewal failed:    │ ctx of lead cancelled,
//	   └── wait for lead ─────┘ Run waits for lead to return
//
// When Run's own context ends, lead's context is cancelled, Run waits for
// lead to return and only then releases the Lease (so a successor never
// overlaps with a lead still winding down), and returns nil. If lead
// returns on its own while still leading (its work failed), Run releases
// the Lease, stays out of the campaign for one LeaseDuration so that a
// healthy rival can take over, and then campaigns again.
package leader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// Options shape an election. Name and Identity are required.
type Options struct {
	// Name is the Lease's name; every candidate for the same work uses it.
	Name string
	// Namespace holds the Lease; default kube-system.
	Namespace string
	// Identity names this candidate in the Lease's holderIdentity; it must
	// be unique among candidates (a hostname plus a random suffix).
	Identity string
	// LeaseDuration is how long a rival waits after the last renewal it saw
	// before taking over; default 15s.
	LeaseDuration time.Duration
	// RenewDeadline is how long the leader keeps trying to renew before it
	// gives up leadership; default 10s.
	RenewDeadline time.Duration
	// RetryPeriod is the pause between attempts to acquire or renew;
	// default 2s.
	RetryPeriod time.Duration
	// Log receives leadership transitions; default slog.Default().
	Log *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Namespace == "" {
		o.Namespace = metav1.NamespaceSystem
	}
	if o.LeaseDuration == 0 {
		o.LeaseDuration = 15 * time.Second
	}
	if o.RenewDeadline == 0 {
		o.RenewDeadline = 10 * time.Second
	}
	if o.RetryPeriod == 0 {
		o.RetryPeriod = 2 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return o
}

// Validate checks the options after defaults, including the timing rule
// the package comment explains.
func (o Options) Validate() error {
	o = o.withDefaults()
	switch {
	case o.Name == "":
		return errors.New("leader: lease name is required")
	case o.Identity == "":
		return errors.New("leader: identity is required")
	case o.LeaseDuration < 0 || o.RenewDeadline < 0 || o.RetryPeriod < 0:
		return errors.New("leader: durations must be positive")
	case o.RenewDeadline <= time.Duration(leaderelection.JitterFactor*float64(o.RetryPeriod)):
		return fmt.Errorf("leader: renew deadline %v must exceed %.1f retry periods (%v)", o.RenewDeadline, leaderelection.JitterFactor, o.RetryPeriod)
	case o.RetryPeriod+o.RenewDeadline >= o.LeaseDuration:
		return fmt.Errorf("leader: retry period %v plus renew deadline %v must be shorter than the lease duration %v", o.RetryPeriod, o.RenewDeadline, o.LeaseDuration)
	}
	return nil
}

// Run campaigns for the Lease and calls lead while this candidate holds it,
// with a context that is cancelled the moment leadership is lost or Run's
// context ends. After a loss it waits for lead to return and campaigns
// again, so lead may be called several times, never concurrently; lead
// must therefore start from scratch each time (fresh informers, fresh
// queues). Run returns nil once ctx ends, after releasing a held Lease; it
// returns an error only for invalid options.
func Run(ctx context.Context, client kubernetes.Interface, opts Options, lead func(ctx context.Context)) error {
	if err := opts.Validate(); err != nil {
		return err
	}
	opts = opts.withDefaults()
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: opts.Namespace, Name: opts.Name},
		Client:     client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: opts.Identity},
	}
	log := opts.Log.With("lease", opts.Namespace+"/"+opts.Name, "identity", opts.Identity)
	for ctx.Err() == nil {
		gaveUp, err := term(ctx, lock, opts, log, lead)
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			break
		}
		if gaveUp {
			log.Info("lead returned while leading; lease released, standing aside", "for", opts.LeaseDuration)
			select {
			case <-ctx.Done():
			case <-time.After(opts.LeaseDuration):
			}
			continue
		}
		log.Info("lost leadership; campaigning again")
	}
	return nil
}

// term is one campaign and, if it wins, one term of leadership. It reports
// gaveUp when lead returned on its own while still leading.
func term(ctx context.Context, lock *resourcelock.LeaseLock, opts Options, log *slog.Logger, lead func(context.Context)) (gaveUp bool, err error) {
	// The elector gets a context of its own, ended only once lead has
	// returned, so that its release of the Lease never precedes the end of
	// the work the Lease guards.
	electCtx, stopElecting := context.WithCancel(context.WithoutCancel(ctx))
	defer stopElecting()

	var (
		mu          sync.Mutex
		stopping    bool // no new lead may start
		leading     bool // lead was started in this term
		leadDone    = make(chan struct{})
		ownAccord   bool // lead returned while still leading
		electorDone = make(chan struct{})
	)
	cfg := leaderelection.LeaderElectionConfig{
		Lock:          lock,
		LeaseDuration: opts.LeaseDuration,
		RenewDeadline: opts.RenewDeadline,
		RetryPeriod:   opts.RetryPeriod,
		Name:          opts.Name,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(termCtx context.Context) {
				mu.Lock()
				if stopping {
					mu.Unlock()
					return
				}
				leading = true
				mu.Unlock()
				defer close(leadDone)
				leadCtx, cancel := context.WithCancel(termCtx)
				defer cancel()
				unhook := context.AfterFunc(ctx, cancel)
				defer unhook()
				log.Info("leading")
				lead(leadCtx)
				if termCtx.Err() == nil && ctx.Err() == nil {
					mu.Lock()
					ownAccord = true
					mu.Unlock()
					stopElecting()
				}
			},
			OnStoppedLeading: func() {},
		},
	}
	elector, err := leaderelection.NewLeaderElector(cfg)
	if err != nil {
		return false, fmt.Errorf("leader: %w", err)
	}

	// When ctx ends: no new term starts, lead's context is already
	// cancelled (AfterFunc above); wait for lead, then stop the elector.
	watcherDone := make(chan struct{})
	go func() {
		defer close(watcherDone)
		select {
		case <-ctx.Done():
		case <-electorDone:
			return
		}
		mu.Lock()
		stopping = true
		wasLeading := leading
		mu.Unlock()
		if wasLeading {
			<-leadDone
		}
		stopElecting()
	}()

	elector.Run(electCtx)
	close(electorDone)
	<-watcherDone

	mu.Lock()
	stopping = true
	wasLeading := leading
	mu.Unlock()
	if wasLeading {
		<-leadDone // leadership lost: lead's context is cancelled; wait for it
		if err := release(lock, opts); err != nil {
			log.Info("releasing the lease", "err", err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	return ownAccord, nil
}

// release gives the Lease up if this candidate still holds it, so a rival
// need not wait out LeaseDuration. It is the ReleaseOnCancel behaviour of
// client-go's elector, moved after lead has returned (the elector's own
// release would run before lead's context is cancelled).
func release(lock *resourcelock.LeaseLock, opts Options) error {
	ctx, cancel := context.WithTimeout(context.Background(), opts.RenewDeadline)
	defer cancel()
	// A renewal the elector sent just before it stopped may still land
	// (its client gave up on it, the server did not): a conflict means
	// that happened, so read the Lease again and retry.
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		var rec *resourcelock.LeaderElectionRecord
		rec, _, err = lock.Get(ctx)
		if err != nil {
			return fmt.Errorf("reading lease: %w", err)
		}
		if rec.HolderIdentity != opts.Identity {
			return nil
		}
		now := metav1.Now()
		err = lock.Update(ctx, resourcelock.LeaderElectionRecord{
			LeaseDurationSeconds: 1,
			LeaderTransitions:    rec.LeaderTransitions,
			RenewTime:            now,
			AcquireTime:          now,
		})
		if !apierrors.IsConflict(err) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("updating lease: %w", err)
	}
	return nil
}
