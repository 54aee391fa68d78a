package proxy

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/skiff-sh/skiff/internal/netnstest"
)

// Real nftables tests run in network namespaces made for the test (see
// internal/netnstest): the proxy's nft runs and the test's sockets happen
// on threads inside them.

// serveHTTP listens on addr inside th's namespace; the handler answers
// "<local address> <client address>".
func serveHTTP(t testing.TB, th *netnstest.Thread, addr string) {
	t.Helper()
	var l net.Listener
	var err error
	th.Do(func() { l, err = net.Listen("tcp4", addr) })
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
func get(th *netnstest.Thread, laddr, target string, timeout time.Duration) (server, client string, err error) {
	d := &net.Dialer{Timeout: timeout}
	if laddr != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(laddr)}
	}
	c := &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DisableKeepAlives: true,
			DialContext: func(ctx context.Context, network, addr string) (conn net.Conn, err error) {
				th.Do(func() { conn, err = d.DialContext(ctx, network, addr) })
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
	nodeT, podT, extT, cliT *netnstest.Thread
}

func newTopology(t *testing.T) *topology {
	t.Helper()
	id := fmt.Sprintf("skp%d", os.Getpid()%100000)
	tp := &topology{node: id + "-node", pod: id + "-pod", ext: id + "-ext", cli: id + "-cli"}
	for _, n := range []string{tp.node, tp.pod, tp.ext, tp.cli} {
		netnstest.Create(t, n)
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
		netnstest.Run(t, c...)
	}
	tp.nodeT, tp.podT, tp.extT, tp.cliT = netnstest.Enter(t, tp.node), netnstest.Enter(t, tp.pod), netnstest.Enter(t, tp.ext), netnstest.Enter(t, tp.cli)
	serveHTTP(t, tp.podT, "10.42.1.2:8080")
	serveHTTP(t, tp.podT, "10.42.1.3:8080")
	return tp
}
