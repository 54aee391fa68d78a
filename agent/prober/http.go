package prober

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
)

// maxRedirects is how many same-host redirects a probe follows; the
// next one ends the probe with a warning.
const maxRedirects = 10

// probeHTTP sends a GET and passes on a status from 200 to 399. A redirect
// it does not follow (to another host, or past maxRedirects) leaves a 3xx
// response, which passes with a warning.
func probeHTTP(ctx context.Context, g *v1.HTTPGetAction, t Target, timeout time.Duration) outcome {
	req, err := newHTTPRequest(ctx, g, t, "kube-probe/"+KubeletVersion)
	if err != nil {
		return errored(err)
	}
	client, done := newHTTPClient(timeout)
	defer done()
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return errored(fmt.Errorf("http probe abandoned: %w", ctx.Err()))
		}
		return failed(err.Error())
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxOutput))
	if err != nil {
		if ctx.Err() != nil {
			return errored(fmt.Errorf("http probe abandoned: %w", ctx.Err()))
		}
		return failed(err.Error())
	}
	switch {
	case resp.StatusCode >= http.StatusOK && resp.StatusCode < http.StatusMultipleChoices:
		return succeeded()
	case resp.StatusCode >= http.StatusMultipleChoices && resp.StatusCode < http.StatusBadRequest:
		return warned(fmt.Sprintf("Probe terminated redirects, Response body: %s", body))
	}
	return failed(fmt.Sprintf("HTTP probe failed with statuscode: %d", resp.StatusCode))
}

// newHTTPClient is a client for one probe or hook: no proxy, no
// keep-alive, TLS without verification, redirects only to the same host.
// timeout 0 leaves the deadline to the request's context. done releases
// the transport.
func newHTTPClient(timeout time.Duration) (*http.Client, func()) {
	tr := &http.Transport{
		Proxy:             nil,
		DialContext:       (&net.Dialer{}).DialContext,
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // probes skip verification, as documented
		DisableKeepAlives: true,
	}
	c := &http.Client{Transport: tr, Timeout: timeout, CheckRedirect: sameHostRedirects}
	return c, tr.CloseIdleConnections
}

// sameHostRedirects follows a redirect only when it stays on the host of
// the first request; otherwise the redirect response itself is the
// result.
func sameHostRedirects(req *http.Request, via []*http.Request) error {
	if len(via) == 0 {
		return nil
	}
	if req.URL.Hostname() != via[0].URL.Hostname() {
		return http.ErrUseLastResponse
	}
	if len(via) > maxRedirects {
		return http.ErrUseLastResponse
	}
	return nil
}

// newHTTPRequest builds the GET of an httpGet action. The headers of the
// action are sent as given; a Host header sets the request's host;
// User-Agent defaults to userAgent and Accept to */*, and either is
// dropped when the action sets it to an empty value.
func newHTTPRequest(ctx context.Context, g *v1.HTTPGetAction, t Target, userAgent string) (*http.Request, error) {
	addr, err := hostPort(g.Host, g.Port, t)
	if err != nil {
		return nil, err
	}
	scheme := strings.ToLower(string(g.Scheme))
	if scheme == "" {
		scheme = "http"
	}
	if scheme != "http" && scheme != "https" {
		return nil, fmt.Errorf("unsupported scheme %q", g.Scheme)
	}
	u, err := url.Parse(g.Path)
	if err != nil {
		u = &url.URL{Path: g.Path}
	}
	u.Scheme, u.Host = scheme, addr
	if u.Path == "" && u.RawPath == "" {
		u.Path = "/"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("build request for %s: %w", u, err)
	}
	h := http.Header{}
	for _, hd := range g.HTTPHeaders {
		h.Add(hd.Name, hd.Value)
	}
	if vs, ok := h["Host"]; ok {
		if len(vs) > 0 && vs[0] != "" {
			req.Host = vs[0]
		}
		delete(h, "Host")
	}
	if _, ok := h["User-Agent"]; !ok {
		h.Set("User-Agent", userAgent)
	} else if allEmpty(h["User-Agent"]) {
		// An empty User-Agent makes net/http send none at all.
		h["User-Agent"] = []string{""}
	}
	if vs, ok := h["Accept"]; !ok {
		h.Set("Accept", "*/*")
	} else if allEmpty(vs) {
		delete(h, "Accept")
	}
	req.Header = h
	return req, nil
}

func allEmpty(vs []string) bool {
	for _, v := range vs {
		if v != "" {
			return false
		}
	}
	return true
}
