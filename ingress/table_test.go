package ingress

import (
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"
)

// routingTable is the table most lookup tests run against.
func routingTable(t *testing.T) *Table {
	t.Helper()
	w := newWorld()
	for _, s := range []string{"root", "api", "api-exact", "v1", "static", "wild", "only-wild", "any", "bar-exact", "bar-default", "global"} {
		w.addService("ns", s)
	}
	tab, problems := Build(w.snapshot(
		mkIngress("ns", "global", 0, withDefault("global", 80)),
		mkIngress("ns", "foo", 1, withRule("foo.example.com",
			prefix("/", "root"),
			prefix("/api", "api"),
			exact("/api", "api-exact"),
			prefix("/api/v1/", "v1"),
			implSpecific("/static", "static"),
		)),
		mkIngress("ns", "wild", 2, withRule("*.example.com", prefix("/w", "wild"), prefix("/only-wild", "only-wild"))),
		mkIngress("ns", "any", 3, withRule("", prefix("/any", "any"))),
		mkIngress("ns", "bar", 4, withDefault("bar-default", 80), withRule("bar.example.com", exact("/exact", "bar-exact"))),
	))
	if len(problems) != 0 {
		t.Fatalf("unexpected problems: %+v", problems)
	}
	return tab
}

func TestLookup(t *testing.T) {
	tab := routingTable(t)
	tests := []struct {
		host, path string
		want       string // service name; "" for no route
	}{
		{"foo.example.com", "/", "root"},
		{"foo.example.com", "/anything/else", "root"},
		{"foo.example.com", "/api", "api-exact"}, // Exact wins a tie
		{"foo.example.com", "/api/", "api"},
		{"foo.example.com", "/apix", "root"}, // element-wise: /api does not match /apix
		{"foo.example.com", "/api/v1", "v1"}, // the trailing slash of the rule is ignored
		{"foo.example.com", "/api/v1/", "v1"},
		{"foo.example.com", "/api/v1/users", "v1"},
		{"foo.example.com", "/api/v2", "api"},
		{"foo.example.com", "/static/app.css", "static"}, // ImplementationSpecific is Prefix
		{"foo.example.com", "/staticx", "root"},
		{"a.example.com", "/w", "wild"},
		{"a.example.com", "/w/x", "wild"},
		{"a.b.example.com", "/w", "global"}, // a wildcard covers one label only
		{"example.com", "/w", "global"},
		{"bar.example.com", "/exact", "bar-exact"},
		{"bar.example.com", "/exact/", "bar-default"},    // Exact is exact
		{"bar.example.com", "/only-wild/x", "only-wild"}, // falls through to the wildcard
		{"bar.example.com", "/any/thing", "any"},         // and to the host-less rules
		{"bar.example.com", "/nothing", "bar-default"},   // the Ingress's own default
		{"foo.example.com", "/any", "root"},              // the exact host's "/" comes first
		{"other.test", "/any", "any"},
		{"other.test", "/nothing", "global"},
		{"", "/any", "any"},
	}
	for _, tc := range tests {
		r := tab.Lookup(tc.host, tc.path)
		got := ""
		if r != nil {
			got = r.Backend.Name
		}
		want := ""
		if tc.want != "" {
			want = "ns/" + tc.want + ":80"
		}
		if got != want {
			t.Errorf("Lookup(%q, %q) = %q, want %q", tc.host, tc.path, got, want)
		}
	}
}

func TestLookupWithoutDefault(t *testing.T) {
	w := newWorld()
	w.addService("ns", "a")
	tab, _ := Build(w.snapshot(mkIngress("ns", "a", 0, withRule("a.test", prefix("/a", "a")))))
	for _, tc := range []struct {
		host, path string
		found      bool
	}{
		{"a.test", "/a/b", true},
		{"a.test", "/b", false},
		{"b.test", "/a", false},
	} {
		if got := tab.Lookup(tc.host, tc.path) != nil; got != tc.found {
			t.Errorf("Lookup(%q, %q) found = %v, want %v", tc.host, tc.path, got, tc.found)
		}
	}
	if r := (&Table{}).Lookup("x", "/"); r != nil {
		t.Errorf("empty table routed to %v", r.Backend.Name)
	}
}

func TestNormalizeHost(t *testing.T) {
	for in, want := range map[string]string{
		"":                 "",
		"Foo.Example.COM":  "foo.example.com",
		"foo.example.com.": "foo.example.com",
		"foo.test:8080":    "foo.test",
		"[::1]:443":        "::1",
		"[::1]":            "::1",
		"10.0.0.1:80":      "10.0.0.1",
	} {
		if got := NormalizeHost(in); got != want {
			t.Errorf("NormalizeHost(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCleanPath(t *testing.T) {
	for in, want := range map[string]string{
		"":                "/",
		"/":               "/",
		"a/b":             "/a/b",
		"/a/b/":           "/a/b/",
		"//a//b":          "/a/b",
		"/a/./b/":         "/a/b/",
		"/public/../api":  "/api",
		"/../../etc":      "/etc",
		"/a/.hidden/file": "/a/.hidden/file",
	} {
		if got := CleanPath(in); got != want {
			t.Errorf("CleanPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPickWeights(t *testing.T) {
	main, canary := &Backend{Name: "main"}, &Backend{Name: "canary"}
	const n = 20000
	for _, tc := range []struct{ weight, total int }{
		{0, 100}, {1, 100}, {30, 100}, {50, 100}, {99, 100}, {100, 100}, {1, 3}, {250, 1000},
	} {
		r := &Route{Backend: main, Canary: &Canary{Backend: canary, Weight: tc.weight, Total: tc.total}}
		rng := rand.New(rand.NewPCG(1, uint64(tc.weight)))
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		hits := 0
		for range n {
			if r.Pick(req, rng.IntN) == canary {
				hits++
			}
		}
		want := float64(tc.weight) / float64(tc.total)
		got := float64(hits) / n
		if got < want-0.02 || got > want+0.02 {
			t.Errorf("weight %d/%d: canary share %.3f, want %.3f±0.02", tc.weight, tc.total, got, want)
		}
		if (tc.weight == 0 && hits != 0) || (tc.weight == tc.total && hits != n) {
			t.Errorf("weight %d/%d: %d of %d to the canary", tc.weight, tc.total, hits, n)
		}
	}
}

func TestPickHeaderAndCookie(t *testing.T) {
	main, canary := &Backend{Name: "main"}, &Backend{Name: "canary"}
	never := func(int) int { return 99 } // never under a weight below 100
	always := func(int) int { return 0 }
	tests := []struct {
		name   string
		c      Canary
		header string
		cookie string
		roll   func(int) int
		want   *Backend
	}{
		{"header always", Canary{Header: "X-Canary"}, "always", "", never, canary},
		{"header never beats weight", Canary{Header: "X-Canary", Weight: 100}, "never", "", always, main},
		{"header other value falls to weight", Canary{Header: "X-Canary", Weight: 50}, "maybe", "", always, canary},
		{"header value match", Canary{Header: "X-Canary", HeaderValue: "blue"}, "blue", "", never, canary},
		{"header value mismatch", Canary{Header: "X-Canary", HeaderValue: "blue"}, "always", "", never, main},
		{"cookie always", Canary{Cookie: "canary"}, "", "always", never, canary},
		{"cookie never", Canary{Cookie: "canary", Weight: 100}, "", "never", always, main},
		{"header wins over cookie", Canary{Header: "X-Canary", Cookie: "canary"}, "never", "always", never, main},
		{"no header no cookie, weight 0", Canary{Header: "X-Canary", Cookie: "canary"}, "", "", always, main},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.c
			c.Backend, c.Total = canary, 100
			r := &Route{Backend: main, Canary: &c}
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			if tc.header != "" {
				req.Header.Set("X-Canary", tc.header)
			}
			if tc.cookie != "" {
				req.AddCookie(&http.Cookie{Name: "canary", Value: tc.cookie})
			}
			if got := r.Pick(req, tc.roll); got != tc.want {
				t.Errorf("Pick = %s, want %s", got.Name, tc.want.Name)
			}
		})
	}
}

func TestBackendRoundRobin(t *testing.T) {
	b := &Backend{Targets: []string{"a", "b", "c"}}
	var got []string
	for range 7 {
		addr, ok := b.Next()
		if !ok {
			t.Fatal("Next: no target")
		}
		got = append(got, addr)
	}
	want := []string{"a", "b", "c", "a", "b", "c", "a"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("round robin = %v, want %v", got, want)
		}
	}
	if _, ok := (&Backend{}).Next(); ok {
		t.Error("empty backend gave a target")
	}
	var nilBackend *Backend
	if _, ok := nilBackend.Next(); ok {
		t.Error("nil backend gave a target")
	}
}
