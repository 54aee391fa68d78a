package reconcile

import (
	"context"
	"errors"
	"time"
)

// Reconciler converges the object named by key towards its desired state.
// It must be idempotent: it is called again after every event for the key,
// after errors, and on request (Result.RequeueAfter), and it must give the
// same answer for the same observed state.
type Reconciler interface {
	Reconcile(ctx context.Context, key string) (Result, error)
}

// Func adapts a function to a Reconciler.
type Func func(ctx context.Context, key string) (Result, error)

// Reconcile calls f.
func (f Func) Reconcile(ctx context.Context, key string) (Result, error) { return f(ctx, key) }

// Result is what a successful reconcile asks of the queue.
type Result struct {
	// RequeueAfter, when positive, reconciles the key again after this long
	// even if nothing changes (for deadlines, timeouts, periodic work).
	// It is ignored when the reconcile returns an error: errors follow the
	// backoff policy instead.
	RequeueAfter time.Duration
}

// terminalError marks an error that retrying cannot fix.
type terminalError struct{ err error }

func (t terminalError) Error() string { return "terminal: " + t.err.Error() }
func (t terminalError) Unwrap() error { return t.err }

// Terminal marks err as not worth retrying: the controller logs it and
// drops the key until the next event for it. Terminal(nil) is nil.
func Terminal(err error) error {
	if err == nil {
		return nil
	}
	return terminalError{err: err}
}

// IsTerminal says whether err, or any error it wraps, was made by Terminal.
func IsTerminal(err error) bool {
	var t terminalError
	return errors.As(err, &t)
}
