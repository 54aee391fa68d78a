package proxy

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"sigs.k8s.io/knftables"
)

// Real nftables tests run in network namespaces made for the test. Go code
// reaches a namespace through nsThread: a goroutine locked to an OS thread
// that entered the namespace. Sockets it opens belong to the namespace, and
// the nft processes knftables starts from it inherit the namespace, since a
// child process starts with the namespaces of the thread that forked it.

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

// addNetns creates a named network namespace, deleted when the test ends.
func addNetns(t testing.TB, name string) {
	t.Helper()
	_ = exec.Command("ip", "netns", "del", name).Run() // left over by a killed run
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	run(t, "ip", "-n", name, "link", "set", "lo", "up")
}

type nsThread struct{ calls chan func() }

// enterNetns starts a thread inside the named namespace.
func enterNetns(t testing.TB, name string) *nsThread {
	t.Helper()
	th := &nsThread{calls: make(chan func())}
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: when this goroutine returns, the runtime ends the
		// thread instead of reusing it outside the namespace.
		runtime.LockOSThread()
		f, err := os.Open("/run/netns/" + name)
		if err != nil {
			errc <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", name, err)
			return
		}
		var want, got unix.Stat_t
		if err := unix.Fstat(int(f.Fd()), &want); err != nil {
			errc <- err
			return
		}
		if err := unix.Stat("/proc/thread-self/ns/net", &got); err != nil {
			errc <- err
			return
		}
		if want.Ino != got.Ino || want.Dev != got.Dev {
			errc <- fmt.Errorf("thread is not in namespace %s after setns", name)
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

// nsNFT is a knftables.Interface whose nft runs happen inside a namespace.
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

// serveHTTP listens on addr inside th's namespace; the handler answers
// "<local address> <client address>".
func serveHTTP(t testing.TB, th *nsThread, addr string) {
	t.Helper()
	var l net.Listener
	var err error
	th.do(func() { l, err = net.Listen("tcp4", addr) })
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			local := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
			fmt.Fprintf(w, "%s %s", local, r.RemoteAddr)
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
}

// get makes one HTTP request on a new connection opened inside th's
// namespace (from laddr when set) and returns the server's local and
// remote addresses.
func get(th *nsThread, laddr, target string, timeout time.Duration) (server, client string, err error) {
	d := &net.Dialer{Timeout: timeout}
	if laddr != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(laddr)}
	}
	c := &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DisableKeepAlives: true,
			DialContext: func(ctx context.Context, network, addr string) (conn net.Conn, err error) {
				th.do(func() { conn, err = d.DialContext(ctx, network, addr) })
				return conn, err
			},
		},
	}
	resp, err := c.Get("http://" + target + "/")
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", "", err
	}
	server, client, _ = strings.Cut(string(body), " ")
	return server, client, nil
}

// hostOf strips the port.
func hostOf(addr string) string {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return h
}

// topology is three namespaces:
//
//	ext (192.0.2.20) --veth-- node (192.0.2.10, 10.42.1.1) --veth-- pod (10.42.1.2, 10.42.1.3)
//	                          node (10.42.2.1)             --veth-- cli (10.42.2.5)
//
// The proxy's rules live in node; the "endpoints" are HTTP servers on
// :8080 of both pod addresses; ext is a client outside the cluster and cli
// a client pod (the two endpoint addresses share a namespace, so one cannot
// be the other's client).
type topology struct {
	node, pod, ext, cli     string
	nodeT, podT, extT, cliT *nsThread
}

func newTopology(t *testing.T) *topology {
	t.Helper()
	id := fmt.Sprintf("skp%d", os.Getpid()%100000)
	tp := &topology{node: id + "-node", pod: id + "-pod", ext: id + "-ext", cli: id + "-cli"}
	for _, n := range []string{tp.node, tp.pod, tp.ext, tp.cli} {
		addNetns(t, n)
	}
	for _, c := range [][]string{
		{"ip", "-n", tp.node, "link", "add", "vh", "type", "veth", "peer", "name", "vp", "netns", tp.pod},
		{"ip", "-n", tp.node, "link", "add", "ve", "type", "veth", "peer", "name", "vx", "netns", tp.ext},
		{"ip", "-n", tp.node, "link", "add", "vc", "type", "veth", "peer", "name", "vq", "netns", tp.cli},
		{"ip", "-n", tp.node, "addr", "add", "10.42.1.1/24", "dev", "vh"},
		{"ip", "-n", tp.node, "addr", "add", "10.42.2.1/24", "dev", "vc"},
		{"ip", "-n", tp.node, "link", "set", "vc", "up"},
		{"ip", "-n", tp.node, "addr", "add", "192.0.2.10/24", "dev", "ve"},
		{"ip", "-n", tp.node, "link", "set", "vh", "up"},
		{"ip", "-n", tp.node, "link", "set", "ve", "up"},
		{"ip", "-n", tp.node, "route", "add", "default", "via", "192.0.2.20"},
		{"ip", "netns", "exec", tp.node, "sysctl", "-qw", "net.ipv4.ip_forward=1"},
		{"ip", "netns", "exec", tp.node, "sysctl", "-qw", "net.ipv4.conf.all.send_redirects=0"},
		{"ip", "netns", "exec", tp.node, "sysctl", "-qw", "net.ipv4.conf.vh.send_redirects=0"},
		{"ip", "-n", tp.pod, "addr", "add", "10.42.1.2/24", "dev", "vp"},
		{"ip", "-n", tp.pod, "addr", "add", "10.42.1.3/24", "dev", "vp"},
		{"ip", "-n", tp.pod, "link", "set", "vp", "up"},
		{"ip", "-n", tp.pod, "route", "add", "default", "via", "10.42.1.1"},
		{"ip", "-n", tp.ext, "addr", "add", "192.0.2.20/24", "dev", "vx"},
		{"ip", "-n", tp.ext, "link", "set", "vx", "up"},
		{"ip", "-n", tp.cli, "addr", "add", "10.42.2.5/24", "dev", "vq"},
		{"ip", "-n", tp.cli, "link", "set", "vq", "up"},
		{"ip", "-n", tp.cli, "route", "add", "default", "via", "10.42.2.1"},
	} {
		run(t, c...)
	}
	tp.nodeT, tp.podT, tp.extT, tp.cliT = enterNetns(t, tp.node), enterNetns(t, tp.pod), enterNetns(t, tp.ext), enterNetns(t, tp.cli)
	serveHTTP(t, tp.podT, "10.42.1.2:8080")
	serveHTTP(t, tp.podT, "10.42.1.3:8080")
	return tp
}

// hostHasTable guards against the test ever programming the machine's own
// ruleset.
func hostHasTable(t testing.TB, table string) bool {
	t.Helper()
	return strings.Contains(run(t, "nft", "list", "tables"), "table ip "+table+"\n")
}
