package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	"sigs.k8s.io/knftables"
)

// The proxy measurement programs nftables for real, but never the host's
// own ruleset: its rules live in a network namespace of the benchmark's
// own. netnsThread is a goroutine locked to an OS thread that unshared its
// network namespace; the nft processes knftables starts from that thread
// inherit the namespace, since a child starts in the namespaces of the
// thread that forked it. The namespace has no name and nothing else in it:
// it disappears with the thread, which ends when close is called, or with
// the process, however that ends (Ctrl-C, a crash, SIGKILL), so nothing can
// be left behind on the host.
type netnsThread struct {
	calls chan func()
	done  chan struct{}
}

// newNetnsThread starts a thread in a new, empty network namespace.
func newNetnsThread() (*netnsThread, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("needs root for a network namespace and nftables")
	}
	if _, err := exec.LookPath("nft"); err != nil {
		return nil, fmt.Errorf("needs the nft binary: %w", err)
	}
	th := &netnsThread{calls: make(chan func()), done: make(chan struct{})}
	errc := make(chan error, 1)
	go func() {
		defer close(th.done)
		// Never unlocked: when this goroutine returns, the runtime ends
		// the thread instead of handing it, still in the namespace, to
		// other goroutines.
		runtime.LockOSThread()
		var before, after unix.Stat_t
		if err := unix.Stat("/proc/thread-self/ns/net", &before); err != nil {
			errc <- fmt.Errorf("stat network namespace: %w", err)
			return
		}
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare network namespace: %w", err)
			return
		}
		if err := unix.Stat("/proc/thread-self/ns/net", &after); err != nil {
			errc <- fmt.Errorf("stat network namespace: %w", err)
			return
		}
		if before.Ino == after.Ino && before.Dev == after.Dev {
			errc <- errors.New("thread still in the host's network namespace after unshare")
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

// do runs fn on the namespace's thread and waits for it.
func (th *netnsThread) do(fn func()) {
	done := make(chan struct{})
	th.calls <- func() { defer close(done); fn() }
	<-done
}

// close ends the thread, and with it the namespace and its tables.
func (th *netnsThread) close() {
	close(th.calls)
	<-th.done
}

// output runs a command inside the namespace and returns its stdout.
func (th *netnsThread) output(ctx context.Context, name string, args ...string) (out []byte, err error) {
	th.do(func() {
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

// nsNFT is a knftables.Interface whose nft runs happen on a netnsThread.
// After every successful Run it hands committed (when set) the
// transaction, the time the kernel had committed it and how long the nft
// run took, so the benchmark can tell when a change became live.
type nsNFT struct {
	th        *netnsThread
	inner     knftables.Interface
	committed func(tx *knftables.Transaction, at time.Time, took time.Duration)
}

func newNSNFT(th *netnsThread, table string, committed func(*knftables.Transaction, time.Time, time.Duration)) (*nsNFT, error) {
	n := &nsNFT{th: th, committed: committed}
	var err error
	th.do(func() { n.inner, err = knftables.New(knftables.IPv4Family, table) })
	if err != nil {
		return nil, fmt.Errorf("nftables in the benchmark's namespace: %w", err)
	}
	return n, nil
}

func (n *nsNFT) NewTransaction() *knftables.Transaction { return n.inner.NewTransaction() }

func (n *nsNFT) Run(ctx context.Context, tx *knftables.Transaction) (err error) {
	var start, at time.Time
	n.th.do(func() {
		start = time.Now()
		err = n.inner.Run(ctx, tx)
		at = time.Now()
	})
	if err == nil && n.committed != nil {
		n.committed(tx, at, at.Sub(start))
	}
	return err
}

func (n *nsNFT) Check(ctx context.Context, tx *knftables.Transaction) (err error) {
	n.th.do(func() { err = n.inner.Check(ctx, tx) })
	return err
}

func (n *nsNFT) ListAll(ctx context.Context) (m map[string][]string, err error) {
	n.th.do(func() { m, err = n.inner.ListAll(ctx) })
	return m, err
}

func (n *nsNFT) List(ctx context.Context, typ string) (l []string, err error) {
	n.th.do(func() { l, err = n.inner.List(ctx, typ) })
	return l, err
}

func (n *nsNFT) ListRules(ctx context.Context, chain string) (r []*knftables.Rule, err error) {
	n.th.do(func() { r, err = n.inner.ListRules(ctx, chain) })
	return r, err
}

func (n *nsNFT) ListElements(ctx context.Context, typ, name string) (e []*knftables.Element, err error) {
	n.th.do(func() { e, err = n.inner.ListElements(ctx, typ, name) })
	return e, err
}

func (n *nsNFT) ListCounters(ctx context.Context) (c []*knftables.Counter, err error) {
	n.th.do(func() { c, err = n.inner.ListCounters(ctx) })
	return c, err
}

// hostHasTable reports whether the host's own ruleset has table ip name:
// the proxy measurement checks it never does.
func hostHasTable(ctx context.Context, name string) (bool, error) {
	out, err := exec.CommandContext(ctx, "nft", "list", "tables").Output()
	if err != nil {
		return false, fmt.Errorf("nft list tables: %w", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.TrimSpace(line) == "table ip "+name {
			return true, nil
		}
	}
	return false, nil
}
