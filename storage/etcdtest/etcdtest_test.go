package etcdtest

import (
	"net"
	"net/url"
	"testing"
	"time"
)

func TestStartExternalStopsAtCleanup(t *testing.T) {
	var endpoints []string
	t.Run("server", func(t *testing.T) {
		endpoints = StartExternal(t)
		second := StartExternal(t)
		if len(endpoints) != 1 || len(second) != 1 || endpoints[0] == second[0] {
			t.Fatalf("endpoints %q and %q, want one each, different", endpoints, second)
		}
	})
	if len(endpoints) != 1 {
		t.Fatal("subtest returned no endpoint")
	}
	u, err := url.Parse(endpoints[0])
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, time.Second)
	if err == nil {
		conn.Close()
		t.Fatalf("etcd at %s still accepts connections after the test ended", u.Host)
	}
}

func TestStartEmbeddedServes(t *testing.T) {
	e := StartEmbedded(t)
	c := e.Client()
	if c == nil {
		t.Fatal("no client")
	}
	if _, err := c.Put(t.Context(), "k", "v"); err != nil {
		t.Fatalf("put: %v", err)
	}
}
