package netpol

import (
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/skiff-sh/skiff/internal/netnstest"
)

// Real nftables tests run in network namespaces the test makes and
// removes (see internal/netnstest): the enforcer's nft runs and the test's
// sockets happen on threads inside them.

// serveEcho listens on addr inside a namespace and echoes what it reads.
func serveEcho(t testing.TB, ns, addr string) {
	t.Helper()
	var l net.Listener
	err := netnstest.In(ns, func() (err error) {
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
	err = netnstest.In(ns, func() error {
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
