package ingress

import (
	"crypto/tls"
	"net"
	"net/http"
	"path"
	"strings"
	"sync/atomic"

	"k8s.io/apimachinery/pkg/types"
)

// Table is an immutable routing table made by Build. Its methods are safe
// for concurrent use; the only state that changes after Build is each
// Backend's round-robin counter.
type Table struct {
	hosts     map[string]*hostRoutes // exact hosts, lower case
	wildcards map[string]*hostRoutes // "*.example.com" is stored as "example.com"
	anyHost   *hostRoutes            // rules without a host; may be nil
	fallback  *Route                 // the cluster-wide default backend; may be nil

	tlsHosts     map[string]bool // exact hosts with a tls entry
	tlsWildcards map[string]bool // wildcard hosts with a tls entry, as in wildcards
	certs        map[string]*tls.Certificate
	wildCerts    map[string]*tls.Certificate
	defaultCert  *tls.Certificate // from a tls entry without hosts; may be nil

	// served lists the Ingresses the table was built from, oldest first.
	served []*servedIngress
}

// servedIngress is an Ingress of a served class, as Build saw it.
type servedIngress struct {
	Key types.NamespacedName
	UID types.UID
}

// hostRoutes are the paths of one host (or of all hosts).
type hostRoutes struct {
	exact  map[string]*Route
	prefix map[string]*Route // keyed by the path without trailing slashes; "/" is ""
	// fallback is the defaultBackend of the oldest Ingress with rules for
	// this host; used when no path of any host group matches.
	fallback *Route
}

// Route is where requests for one host and path go.
type Route struct {
	// Ingress owns the route.
	Ingress types.NamespacedName
	// Backend takes the requests that the canary does not.
	Backend *Backend
	// Canary, when set, takes a share of the requests.
	Canary *Canary
	// SSLRedirect sends plain HTTP to HTTPS when the host has TLS.
	SSLRedirect bool
	// ForceSSLRedirect sends plain HTTP to HTTPS even without TLS.
	ForceSSLRedirect bool
}

// Canary is a second backend for a route, from a canary Ingress.
type Canary struct {
	Ingress types.NamespacedName
	Backend *Backend
	// Weight out of Total requests go to the canary.
	Weight, Total int
	// Header, when the request carries it with value "always", sends the
	// request to the canary and with "never" to the main backend. With
	// HeaderValue set, only that value selects the canary.
	Header, HeaderValue string
	// Cookie works as Header does, with the cookie's value.
	Cookie string
}

// Backend is one Service port: the addresses of its ready endpoints.
type Backend struct {
	// Name is "namespace/service:port", for logs.
	Name string
	// Scheme is "http" or "https", how the proxy talks to the endpoints.
	Scheme string
	// Targets are "ip:port" (or "host:port" for ExternalName Services).
	Targets []string
	next    atomic.Uint64
}

// Next returns the next target, round-robin, and false when there is none.
func (b *Backend) Next() (string, bool) {
	if b == nil || len(b.Targets) == 0 {
		return "", false
	}
	i := b.next.Add(1) - 1
	return b.Targets[i%uint64(len(b.Targets))], true
}

// Pick chooses the backend of a request: the canary's when the request asks
// for it by header or cookie, or when roll(Total) falls under the weight;
// the main one otherwise. roll(n) returns a number in [0, n).
func (r *Route) Pick(req *http.Request, roll func(n int) int) *Backend {
	c := r.Canary
	if c == nil {
		return r.Backend
	}
	if c.Header != "" {
		if v := req.Header.Get(c.Header); v != "" {
			switch {
			case c.HeaderValue != "" && v == c.HeaderValue:
				return c.Backend
			case c.HeaderValue == "" && v == "always":
				return c.Backend
			case c.HeaderValue == "" && v == "never":
				return r.Backend
			}
		}
	}
	if c.Cookie != "" {
		if ck, err := req.Cookie(c.Cookie); err == nil {
			switch ck.Value {
			case "always":
				return c.Backend
			case "never":
				return r.Backend
			}
		}
	}
	if c.Weight <= 0 || c.Total <= 0 {
		return r.Backend
	}
	if c.Weight >= c.Total || roll(c.Total) < c.Weight {
		return c.Backend
	}
	return r.Backend
}

// Lookup finds the route for a request to host and path, nil when none
// (404). host must be normalized (NormalizeHost) and path cleaned
// (CleanPath).
func (t *Table) Lookup(host, path string) *Route {
	var exact, wild *hostRoutes
	if host != "" {
		exact = t.hosts[host]
		if i := strings.IndexByte(host, '.'); i > 0 {
			wild = t.wildcards[host[i+1:]]
		}
	}
	for _, g := range [...]*hostRoutes{exact, wild, t.anyHost} {
		if r := g.match(path); r != nil {
			return r
		}
	}
	for _, g := range [...]*hostRoutes{exact, wild} {
		if g != nil && g.fallback != nil {
			return g.fallback
		}
	}
	return t.fallback
}

// match finds the longest path of g matching p; Exact beats Prefix on a tie.
func (g *hostRoutes) match(p string) *Route {
	if g == nil {
		return nil
	}
	if r := g.exact[p]; r != nil {
		return r
	}
	if len(g.prefix) == 0 {
		return nil
	}
	p = strings.TrimRight(p, "/")
	for {
		if r := g.prefix[p]; r != nil {
			return r
		}
		if p == "" {
			return nil
		}
		i := strings.LastIndexByte(p, '/')
		if i < 0 {
			i = 0
		}
		p = p[:i]
	}
}

// HasTLS reports whether an Ingress lists host (or a wildcard covering it)
// under tls.
func (t *Table) HasTLS(host string) bool {
	if t.tlsHosts[host] {
		return true
	}
	if i := strings.IndexByte(host, '.'); i > 0 {
		return t.tlsWildcards[host[i+1:]]
	}
	return false
}

// Certificate returns the certificate for a TLS server name, nil when no
// Ingress has one (the caller then uses its self-signed one).
func (t *Table) Certificate(serverName string) *tls.Certificate {
	if c := t.certs[serverName]; c != nil {
		return c
	}
	if i := strings.IndexByte(serverName, '.'); i > 0 {
		if c := t.wildCerts[serverName[i+1:]]; c != nil {
			return c
		}
	}
	return t.defaultCert
}

// NormalizeHost turns a Host header or TLS server name into the form the
// table is keyed by: lower case, without port and trailing dot.
func NormalizeHost(h string) string {
	if h == "" {
		return ""
	}
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	} else if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
	}
	h = strings.TrimSuffix(h, ".")
	for i := 0; i < len(h); i++ {
		if c := h[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(h)
		}
	}
	return h
}

// CleanPath gives the path that routes are matched against: rooted, with
// "." and ".." elements and repeated slashes resolved as a server would, and
// a trailing slash kept. The request itself is forwarded unchanged.
func CleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	if !strings.Contains(p, "//") && !strings.Contains(p, "/.") {
		return p
	}
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}
