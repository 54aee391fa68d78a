package etcd_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/skiff-sh/skiff/storage"
	"github.com/skiff-sh/skiff/storage/etcd"
)

func startEmbedded(t *testing.T, cfg etcd.EmbeddedConfig) *etcd.Embedded {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	e, err := etcd.StartEmbedded(ctx, cfg)
	if err != nil {
		t.Fatalf("StartEmbedded: %v", err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func newStore(t *testing.T, e *etcd.Embedded) storage.Interface {
	t.Helper()
	c := e.Client()
	if c == nil {
		t.Fatal("Client returned nil")
	}
	return closing(t, etcd.New(c))
}

func TestEmbeddedServersDoNotCollide(t *testing.T) {
	ctx := t.Context()
	a := startEmbedded(t, etcd.EmbeddedConfig{Dir: t.TempDir()})
	b := startEmbedded(t, etcd.EmbeddedConfig{Dir: t.TempDir()})
	if a.Endpoints()[0] == b.Endpoints()[0] {
		t.Fatalf("both servers at %q", a.Endpoints()[0])
	}
	for _, e := range []*etcd.Embedded{a, b} {
		if ep := e.Endpoints()[0]; !strings.HasPrefix(ep, "unix:///") {
			t.Errorf("default endpoint %q is not a unix socket", ep)
		}
	}
	sa, sb := newStore(t, a), newStore(t, b)
	if _, err := sa.Create(ctx, "/k", []byte("a")); err != nil {
		t.Fatal(err)
	}
	if _, err := sb.Get(ctx, "/k"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("second server sees the first's key: %v", err)
	}
}

func TestEmbeddedRestartKeepsData(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	e := startEmbedded(t, etcd.EmbeddedConfig{Dir: dir})
	s := etcd.New(e.Client())
	rev, err := s.Create(ctx, "/k", []byte("kept"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("store Close: %v", err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if c := e.Client(); c != nil {
		t.Fatal("Client after Close returned a client")
	}

	e = startEmbedded(t, etcd.EmbeddedConfig{Dir: dir})
	s = newStore(t, e)
	kv, err := s.Get(ctx, "/k")
	if err != nil {
		t.Fatalf("Get after restart: %v", err)
	}
	if string(kv.Value) != "kept" || kv.Revision != rev {
		t.Fatalf("after restart got %q at %d, want %q at %d", kv.Value, kv.Revision, "kept", rev)
	}
}

func TestEmbeddedLongDirUsesLoopback(t *testing.T) {
	dir := filepath.Join(t.TempDir(), strings.Repeat("d", 100))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := etcd.StartEmbedded(ctx, etcd.EmbeddedConfig{Dir: dir, ClientURL: "unix"}); err == nil {
		t.Fatal("a unix socket with a path too long was accepted")
	}
	e := startEmbedded(t, etcd.EmbeddedConfig{Dir: dir})
	if ep := e.Endpoints()[0]; !strings.HasPrefix(ep, "http://127.0.0.1:") {
		t.Fatalf("endpoint %q, want a loopback port", ep)
	}
	s := newStore(t, e)
	if _, err := s.Create(t.Context(), "/k", []byte("v")); err != nil {
		t.Fatal(err)
	}
}

func freeURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return "http://" + l.Addr().String()
}

func TestEmbeddedExplicitURLs(t *testing.T) {
	client, peer := freeURL(t), freeURL(t)
	e := startEmbedded(t, etcd.EmbeddedConfig{Dir: t.TempDir(), ClientURL: client, PeerURL: peer})
	if got := e.Endpoints(); len(got) != 1 || got[0] != client {
		t.Fatalf("Endpoints() = %q, want [%q]", got, client)
	}
	if _, err := newStore(t, e).Create(t.Context(), "/k", []byte("v")); err != nil {
		t.Fatalf("write through %s: %v", client, err)
	}
	conn, err := net.Dial("tcp", strings.TrimPrefix(peer, "http://"))
	if err != nil {
		t.Fatalf("peer URL %s not listening: %v", peer, err)
	}
	conn.Close()
}

func TestEmbeddedRejectsNoDir(t *testing.T) {
	if _, err := etcd.StartEmbedded(context.Background(), etcd.EmbeddedConfig{}); err == nil {
		t.Fatal("StartEmbedded without a directory succeeded")
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := etcd.StartEmbedded(context.Background(), etcd.EmbeddedConfig{Dir: file}); err == nil {
		t.Fatal("StartEmbedded in a regular file succeeded")
	}
}

func TestEmbeddedCloseEndsClientsAndWatches(t *testing.T) {
	before := runtime.NumGoroutine()
	ctx := t.Context()
	e, err := etcd.StartEmbedded(ctx, etcd.EmbeddedConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	s := etcd.New(e.Client(), etcd.WithProgressInterval(10*time.Millisecond))
	ch := s.Watch(ctx, "/", 0, true)
	if _, err := s.Create(ctx, "/k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := e.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Close with an open watch took %v", d)
	}
	// The store's client was closed by the server's Close: its watch ends.
	deadline := time.After(10 * time.Second)
	for open := true; open; {
		select {
		case _, open = <-ch:
		case <-deadline:
			t.Fatal("watch still open after the server closed")
		}
	}
	_ = s.Close()
	// Everything started above is gone, give or take a few goroutines
	// that etcd and gRPC keep for the process.
	var now int
	for range 50 {
		if now = runtime.NumGoroutine(); now <= before+5 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	buf := make([]byte, 1<<20)
	t.Fatalf("%d goroutines before, %d after Close:\n%s", before, now, buf[:runtime.Stack(buf, true)])
}

func TestRunCompactorAgainstEtcd(t *testing.T) {
	ctx := t.Context()
	s := newStore(t, startEmbedded(t, etcd.EmbeddedConfig{Dir: t.TempDir()}))
	first, err := s.Create(ctx, "/k", []byte("0"))
	if err != nil {
		t.Fatal(err)
	}
	rev := first
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		etcd.RunCompactor(cctx, s, 20*time.Millisecond, 0, t.Logf)
	}()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if rev, err = s.Update(ctx, "/k", []byte("x"), rev); err != nil {
			t.Fatal(err)
		}
		_, err := s.List(ctx, "/", storage.ListOptions{Revision: first})
		if errors.Is(err, storage.ErrCompacted) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("history was never compacted")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The newest revision is never compacted away.
	if _, err := s.List(ctx, "/", storage.ListOptions{Revision: rev}); err != nil {
		t.Fatalf("List at the newest revision: %v", err)
	}
}
