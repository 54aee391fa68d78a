package netpol

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"sigs.k8s.io/knftables"
)

// Real nftables tests run in network namespaces the test makes and
// removes. Go code enters a namespace on a goroutine locked to its OS
// thread (setns affects only that thread); sockets it opens belong to the
// namespace, and so do the nft processes knftables forks from it.

func requireNetAdmin(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces and nftables")
	}
	for _, bin := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s: %v", bin, err)
		}
	}
}

func run(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// addNetns makes a named network namespace, deleted when the test ends.
func addNetns(t testing.TB, name string) {
	t.Helper()
	_ = exec.Command("ip", "netns", "del", name).Run() // left by a killed run
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	run(t, "ip", "-n", name, "link", "set", "lo", "up")
}

// setns moves the calling thread, which must be locked, into a namespace.
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
	if err := unix.Stat("/proc/thread-self/ns/net", &got); err != nil {
		return err
	}
	if want.Ino != got.Ino || want.Dev != got.Dev {
		return fmt.Errorf("thread is not in namespace %s after setns", name)
	}
	return nil
}

// inNetns runs fn on a new thread inside the namespace. The thread is
// never unlocked, so the runtime ends it instead of reusing it elsewhere.
func inNetns(name string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := setns(name); err != nil {
			errc <- err
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// nsThread is a long-lived thread inside a namespace that runs calls.
type nsThread struct{ calls chan func() }

func enterNetns(t testing.TB, name string) *nsThread {
	t.Helper()
	th := &nsThread{calls: make(chan func())}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := setns(name); err != nil {
			errc <- err
			return
		}
		errc <- nil
		for fn := range th.calls {
			fn()
		}
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { close(th.calls) })
	return th
}

func (th *nsThread) do(fn func()) {
	done := make(chan struct{})
	th.calls <- func() { defer close(done); fn() }
	<-done
}

// nsNFT is a knftables.Interface whose nft runs happen in a namespace.
type nsNFT struct {
	th    *nsThread
	inner knftables.Interface
}

func newNSNFT(t testing.TB, th *nsThread, table string) *nsNFT {
	t.Helper()
	n := &nsNFT{th: th}
	var err error
	th.do(func() { n.inner, err = knftables.New(knftables.IPv4Family, table) })
	if err != nil {
		t.Fatalf("knftables in namespace: %v", err)
	}
	return n
}

func (n *nsNFT) NewTransaction() *knftables.Transaction { return n.inner.NewTransaction() }
func (n *nsNFT) Run(ctx context.Context, tx *knftables.Transaction) (err error) {
	n.th.do(func() { err = n.inner.Run(ctx, tx) })
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

// serveEcho listens on addr inside a namespace and echoes what it reads.
func serveEcho(t testing.TB, ns, addr string) {
	t.Helper()
	var l net.Listener
	err := inNetns(ns, func() (err error) {
		l, err = net.Listen("tcp4", addr)
		return err
	})
	if err != nil {
		t.Fatalf("listen %s in %s: %v", addr, ns, err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
}

// dial opens a TCP connection from a namespace (from laddr when set).
func dial(ns, laddr, target string, timeout time.Duration) (c net.Conn, err error) {
	err = inNetns(ns, func() error {
		d := &net.Dialer{Timeout: timeout}
		if laddr != "" {
			d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(laddr)}
		}
		c, err = d.Dial("tcp4", target)
		return err
	})
	return c, err
}

// echo sends a line over c and expects it back.
func echo(c net.Conn, timeout time.Duration) error {
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return err
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if string(buf) != "ping\n" {
		return fmt.Errorf("echo returned %q", buf)
	}
	return nil
}

// hostHasTable guards against ever programming the machine's own ruleset.
func hostHasTable(t testing.TB, table string) bool {
	t.Helper()
	return strings.Contains(run(t, "nft", "list", "tables"), "table ip "+table+"\n")
}
