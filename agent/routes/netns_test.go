package routes

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/skiff-sh/skiff/internal/netnstest"
)

// Helpers for the tests that build "machines" out of network namespaces
// (see internal/netnstest). The namespaces are named after the test process
// so that parallel runs do not collide, and are deleted when the test ends.
// Commands reach a namespace through nsenter, as the package's own runner
// would run them; Go sockets through a thread that entered it.

// newNetns makes a network namespace with loopback up and returns its
// name (prefixed with the process id).
func newNetns(t *testing.T, role string) string {
	t.Helper()
	name := fmt.Sprintf("skrt%d-%s", os.Getpid(), role)
	netnstest.Create(t, name)
	return name
}

// nsRunner runs commands inside the named namespace.
func nsRunner(ns string) runner {
	return func(ctx context.Context, name string, args ...string) ([]byte, error) {
		return execRun(ctx, "nsenter", append([]string{"--net=/run/netns/" + ns, name}, args...)...)
	}
}

// inNS runs a command inside the namespace, failing the test on error.
func inNS(t *testing.T, ns string, args ...string) string {
	t.Helper()
	out, err := nsRunner(ns)(context.Background(), args[0], args[1:]...)
	if err != nil {
		t.Fatalf("in %s: %v", ns, err)
	}
	return string(out)
}

// serveWho listens on TCP port 7777 in the thread's namespace and answers
// every connection with the name and the peer address it saw.
func serveWho(t *testing.T, th *netnstest.Thread, name string) {
	t.Helper()
	var ln net.Listener
	var err error
	th.Do(func() { ln, err = net.Listen("tcp4", ":7777") })
	if err != nil {
		t.Fatalf("listen in %s: %v", name, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
			fmt.Fprintf(c, "%s saw %s\n", name, host)
			c.Close()
		}
	}()
}

// ask connects from the thread's namespace to ip:7777 and returns the
// answer line.
func ask(th *netnstest.Thread, ip string) (string, error) {
	var c net.Conn
	var err error
	th.Do(func() { c, err = net.DialTimeout("tcp4", net.JoinHostPort(ip, "7777"), time.Second) })
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", err
	}
	return strings.TrimSpace(line), nil
}

// eventually polls cond until it returns nil or the time is up.
func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// testLogger writes to the test log; callers must stop logging before the
// test ends.
func testLogger(t *testing.T, prefix string) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t, prefix}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct {
	t      *testing.T
	prefix string
}

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(w.prefix + ": " + strings.TrimSpace(string(p)))
	return len(p), nil
}
