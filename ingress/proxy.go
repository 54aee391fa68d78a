package ingress

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync/atomic"
	"time"
)

// handler serves both listeners: it looks the request up in the current
// table, redirects to HTTPS where the route asks for it, and proxies the
// rest to a backend endpoint.
type handler struct {
	table *atomic.Pointer[Table]
	proxy *httputil.ReverseProxy
	// httpsPort is added to redirect locations; "" for 443.
	httpsPort string
	// roll picks canary requests: a number in [0, n).
	roll func(n int) int
}

// target is the endpoint chosen for a request, handed to the proxy's
// Rewrite through the request context.
type target struct{ scheme, addr string }

type targetKey struct{}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t := h.table.Load()
	if t == nil {
		http.Error(w, "ingress: routes not loaded yet", http.StatusServiceUnavailable)
		return
	}
	host := NormalizeHost(r.Host)
	route := t.Lookup(host, CleanPath(r.URL.Path))
	if r.TLS == nil && host != "" && wantsHTTPS(t, host, route) {
		h.redirect(w, r, host)
		return
	}
	if route == nil {
		http.Error(w, "ingress: no route for this host and path", http.StatusNotFound)
		return
	}
	be := route.Pick(r, h.roll)
	addr, ok := be.Next()
	if !ok {
		http.Error(w, "ingress: no ready endpoints for "+be.Name, http.StatusServiceUnavailable)
		return
	}
	ctx := context.WithValue(r.Context(), targetKey{}, target{scheme: be.Scheme, addr: addr})
	h.proxy.ServeHTTP(w, r.WithContext(ctx))
}

// wantsHTTPS decides the HTTP to HTTPS redirect: by the route's
// annotations when a route matched, by the host having TLS otherwise.
func wantsHTTPS(t *Table, host string, route *Route) bool {
	if route == nil {
		return t.HasTLS(host)
	}
	return route.ForceSSLRedirect || route.SSLRedirect && t.HasTLS(host)
}

// redirect answers 308 to the same URL over HTTPS.
func (h *handler) redirect(w http.ResponseWriter, r *http.Request, host string) {
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if h.httpsPort != "" {
		host += ":" + h.httpsPort
	}
	http.Redirect(w, r, "https://"+host+r.URL.RequestURI(), http.StatusPermanentRedirect)
}

// newReverseProxy makes the proxy to backend endpoints. Requests keep their
// Host; X-Forwarded-For carries the client's address only (headers from
// clients are not trusted), with X-Forwarded-Host, -Proto, -Port and
// X-Real-IP beside it.
func newReverseProxy(log *slog.Logger) (*httputil.ReverseProxy, *http.Transport) {
	tr := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   128,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		// Endpoints speaking HTTPS (backend-protocol: HTTPS) are pods
		// with certificates nobody here can verify, as with ingress-nginx.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // see above
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			t, _ := pr.In.Context().Value(targetKey{}).(target)
			pr.Out.URL.Scheme = t.scheme
			pr.Out.URL.Host = t.addr
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
			if la, ok := pr.In.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
				if _, port, err := net.SplitHostPort(la.String()); err == nil {
					pr.Out.Header.Set("X-Forwarded-Port", port)
				}
			}
			if ip, _, err := net.SplitHostPort(pr.In.RemoteAddr); err == nil {
				pr.Out.Header.Set("X-Real-Ip", ip)
			}
		},
		Transport: tr,
		ErrorLog:  slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, context.Canceled) {
				return // the client went away
			}
			t, _ := r.Context().Value(targetKey{}).(target)
			log.Debug("ingress: backend request failed", "host", r.Host, "path", r.URL.Path, "endpoint", t.addr, "err", err)
			http.Error(w, "ingress: bad gateway", http.StatusBadGateway)
		},
	}
	return rp, tr
}
