// Package server is the node agent's HTTPS API, the one a kubelet serves on
// port 10250 and the API server proxies pods/log, pods/exec, pods/attach,
// pods/portforward and nodes/proxy to.
//
// Endpoints, on the kubelet's paths:
//
//	GET  /healthz
//	GET  /containerLogs/{namespace}/{pod}/{container}   CRI log file, optionally followed
//	     /exec/{namespace}/{pod}[/{uid}]/{container}     CRI Exec, upgraded stream proxied
//	     /attach/{namespace}/{pod}[/{uid}]/{container}   CRI Attach, likewise
//	     /portForward/{namespace}/{pod}[/{uid}]          CRI PortForward, likewise
//	POST /run/{namespace}/{pod}[/{uid}]/{container}      CRI ExecSync, output in the body
//
// Exec, attach and port-forward ask the container runtime for a URL on its
// own streaming server and splice the client's upgraded connection (SPDY,
// or the runtime's WebSocket protocols) onto it.
//
// Only the API server may call: clients present a certificate of the
// cluster CA (the TLS configuration requires it) whose common name is one
// of Config.AllowedUsers; other callers get 403. /healthz only needs the
// certificate.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Config is what the agent's API server needs.
type Config struct {
	// Listener is where to serve; the caller listens (port 10250 by default).
	Listener net.Listener
	// TLS holds the node's serving certificate. It should set ClientCAs to
	// the cluster CA and ClientAuth to RequireAndVerifyClientCert.
	TLS *tls.Config
	// AllowedUsers are the client certificate common names allowed to use
	// the API (the API server's kubelet-client identity).
	AllowedUsers []string
	// Runtime is the CRI runtime service.
	Runtime runtimeapi.RuntimeServiceClient
	// NodeName, when set, restricts lookups to containers and sandboxes
	// labelled as this node's (labels.ManagedBy), for agents that share a
	// container runtime.
	NodeName string
	// Log receives the server's messages. Nil is slog.Default().
	Log *slog.Logger
	// Extra mounts more handlers on the same server, keyed by
	// http.ServeMux pattern (e.g. "GET /metrics"). They sit behind the
	// same client check.
	Extra map[string]http.Handler
}

// server holds a running API's state.
type server struct {
	cfg Config
	log *slog.Logger
}

// Serve serves the API on cfg.Listener until ctx ends, then shuts down,
// giving requests in flight a few seconds.
func Serve(ctx context.Context, cfg Config) error {
	if cfg.Listener == nil {
		return errors.New("agent server: no listener")
	}
	if cfg.TLS == nil {
		return errors.New("agent server: no TLS configuration")
	}
	h, err := newHandler(cfg)
	if err != nil {
		return err
	}
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	srv := &http.Server{
		Handler:           h,
		TLSConfig:         cfg.TLS.Clone(),
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(cfg.Listener, "", "") }()
	select {
	case err := <-errc:
		return fmt.Errorf("agent server: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdownCtx)
	_ = srv.Close()
	<-errc
	return nil
}

// newHandler builds the API's handler: the client check, then the routes.
func newHandler(cfg Config) (http.Handler, error) {
	if cfg.Runtime == nil {
		return nil, errors.New("agent server: no CRI runtime client")
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	s := &server{cfg: cfg, log: cfg.Log}
	mux := http.NewServeMux()
	routes := map[string]http.HandlerFunc{
		"GET /healthz": func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = w.Write([]byte("ok"))
		},
		"GET /containerLogs/{ns}/{pod}/{container}": s.serveContainerLogs,
		"/exec/{ns}/{pod}/{container}":              s.serveExec,
		"/exec/{ns}/{pod}/{uid}/{container}":        s.serveExec,
		"/attach/{ns}/{pod}/{container}":            s.serveAttach,
		"/attach/{ns}/{pod}/{uid}/{container}":      s.serveAttach,
		"/portForward/{ns}/{pod}":                   s.servePortForward,
		"/portForward/{ns}/{pod}/{uid}":             s.servePortForward,
		"POST /run/{ns}/{pod}/{container}":          s.serveRun,
		"POST /run/{ns}/{pod}/{uid}/{container}":    s.serveRun,
	}
	for pattern, h := range routes {
		mux.Handle(pattern, h)
	}
	for pattern, h := range cfg.Extra {
		if err := handleSafely(mux, pattern, h); err != nil {
			return nil, err
		}
	}
	return s.authorize(mux), nil
}

// handleSafely registers an extra handler, turning the mux's complaint
// about a bad or conflicting pattern into an error.
func handleSafely(mux *http.ServeMux, pattern string, h http.Handler) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("agent server: extra handler %q: %v", pattern, v)
		}
	}()
	if h == nil {
		return fmt.Errorf("agent server: extra handler %q is nil", pattern)
	}
	mux.Handle(pattern, h)
	return nil
}

// authorize lets through callers whose verified client certificate names
// an allowed user; /healthz only needs a verified certificate.
func (s *server) authorize(next http.Handler) http.Handler {
	allowed := make(map[string]bool, len(s.cfg.AllowedUsers))
	for _, u := range s.cfg.AllowedUsers {
		allowed[u] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, ok := clientUser(r)
		if !ok {
			writeError(w, httpErrorf(http.StatusUnauthorized, "Unauthorized: a client certificate of the cluster CA is required"))
			return
		}
		if r.URL.Path != "/healthz" && !allowed[user] {
			s.log.Debug("agent API call refused", "user", user, "method", r.Method, "path", r.URL.Path)
			writeError(w, httpErrorf(http.StatusForbidden, "Forbidden (user=%s, verb=%s, path=%s)", user, r.Method, r.URL.Path))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// clientUser is the common name of the request's verified client
// certificate.
func clientUser(r *http.Request) (string, bool) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return "", false
	}
	return r.TLS.VerifiedChains[0][0].Subject.CommonName, true
}

// httpError is an error with the HTTP status it is answered with.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func httpErrorf(code int, format string, args ...any) error {
	return &httpError{code: code, msg: fmt.Sprintf(format, args...)}
}

// criError wraps a CRI call's error with the HTTP status its gRPC code
// maps to.
func criError(what string, err error) error {
	code := http.StatusInternalServerError
	if st, ok := grpcstatus.FromError(err); ok {
		switch st.Code() {
		case codes.NotFound:
			code = http.StatusNotFound
		case codes.InvalidArgument, codes.FailedPrecondition, codes.OutOfRange:
			code = http.StatusBadRequest
		case codes.Unavailable:
			code = http.StatusServiceUnavailable
		case codes.DeadlineExceeded:
			code = http.StatusGatewayTimeout
		case codes.ResourceExhausted:
			code = http.StatusTooManyRequests
		}
		return httpErrorf(code, "%s: %s", what, st.Message())
	}
	return httpErrorf(code, "%s: %v", what, err)
}

// writeError answers with err's status (500 unless it is an httpError)
// and its text, as the kubelet does; the API server turns the text into
// a Status for its client.
func writeError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	var he *httpError
	if errors.As(err, &he) {
		code = he.code
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(err.Error()))
}
