// Package netnstest gives tests and benchmarks network namespaces of their
// own, so that they can program routes, links and nftables for real without
// touching the machine's network. It is meant only for test code and the
// benchmark binary, never for Skiff itself.
//
// Go code reaches a namespace through a Thread: a goroutine locked to an OS
// thread that entered the namespace and then runs the funcs handed to it.
// setns affects only the calling thread, so sockets opened from a Thread
// belong to its namespace, and so do the processes started from it (nft
// run by knftables, say), since a child starts in the namespaces of the
// thread that forked it.
package netnstest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// threadNetns is the calling thread's network namespace.
const threadNetns = "/proc/thread-self/ns/net"

// Thread is a goroutine locked to an OS thread inside a network namespace.
// It runs the funcs handed to Do, one at a time, until Close.
type Thread struct {
	calls chan func()
	done  chan struct{}
}

// Open starts a Thread inside the named namespace (/run/netns/name, as
// made by "ip netns add"), and checks that the thread really is in it.
func Open(name string) (*Thread, error) {
	return start(func() error { return setns(name) })
}

// Unshare starts a Thread in a new, empty network namespace of its own. The
// namespace has no name: it lives as long as the thread, which ends at
// Close (Go parks the process's main thread instead, should the Thread be
// on it), and never longer than the process, however that ends (a crash,
// SIGKILL), so it can leave nothing behind on the machine.
func Unshare() (*Thread, error) {
	return start(func() error {
		var before, after unix.Stat_t
		if err := unix.Stat(threadNetns, &before); err != nil {
			return fmt.Errorf("stat network namespace: %w", err)
		}
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("unshare network namespace: %w", err)
		}
		if err := unix.Stat(threadNetns, &after); err != nil {
			return fmt.Errorf("stat network namespace: %w", err)
		}
		if before.Ino == after.Ino && before.Dev == after.Dev {
			return errors.New("thread still in its old network namespace after unshare")
		}
		return nil
	})
}

// start runs enter on a new locked thread and, when it succeeds, serves
// calls there.
func start(enter func() error) (*Thread, error) {
	th := &Thread{calls: make(chan func()), done: make(chan struct{})}
	errc := make(chan error, 1)
	go func() {
		defer close(th.done)
		// Never unlocked: when this goroutine returns, the runtime ends the
		// thread instead of handing it, still in the namespace, to other
		// goroutines.
		runtime.LockOSThread()
		if err := enter(); err != nil {
			errc <- err
			return
		}
		errc <- nil
		for fn := range th.calls {
			fn()
		}
	}()
	if err := <-errc; err != nil {
		<-th.done
		return nil, err
	}
	return th, nil
}

// setns moves the calling thread, which must be locked, into the named
// namespace.
func setns(name string) error {
	f, err := os.Open("/run/netns/" + name)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("setns %s: %w", name, err)
	}
	var want, got unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &want); err != nil {
		return err
	}
	if err := unix.Stat(threadNetns, &got); err != nil {
		return err
	}
	if want.Ino != got.Ino || want.Dev != got.Dev {
		return fmt.Errorf("thread is not in namespace %s after setns", name)
	}
	return nil
}

// Do runs fn on the thread, inside the namespace, and waits for it.
func (th *Thread) Do(fn func()) {
	done := make(chan struct{})
	th.calls <- func() { defer close(done); fn() }
	<-done
}

// Close ends the thread's goroutine, and with the thread a namespace made
// by Unshare (and the nftables tables in it). It waits for the goroutine
// to end.
func (th *Thread) Close() {
	close(th.calls)
	<-th.done
}

// Output runs a command inside the namespace and returns its stdout; the
// error carries the command line and its stderr.
func (th *Thread) Output(ctx context.Context, name string, args ...string) (out []byte, err error) {
	th.Do(func() {
		var stderr strings.Builder
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Stderr = &stderr
		out, err = cmd.Output()
		if err != nil {
			err = fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
		}
	})
	return out, err
}

// In runs fn on a new thread inside the named namespace; the thread ends
// when fn returns.
func In(name string, fn func() error) error {
	th, err := Open(name)
	if err != nil {
		return err
	}
	defer th.Close()
	th.Do(func() { err = fn() })
	return err
}
