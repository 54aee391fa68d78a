// Package apiserver serves the Kubernetes API over a storage.Interface.
//
// It is the only component that touches the store. Everything else in
// Skiff (scheduler, controllers, node agents, kubectl) is a client of the
// HTTP API it serves, exactly as with kube-apiserver.
//
// A request goes through one chain:
//
//	TLS (client certificate) -> authenticate -> metrics -> route
//	route: /healthz /livez /readyz /version /metrics /openapi/* discovery
//	       or a resource request, parsed into requestInfo, then by verb:
//	       get list watch create update patch delete deletecollection,
//	       and the subresources status, scale, binding, eviction, finalize.
//
// Generic object semantics (metadata, resourceVersion from the store
// revision, generation, status/spec separation, graceful deletion,
// finalizers, dry run, field validation) live here, in one place for every
// resource. Per-resource behaviour comes from package registry and the pure
// packages it names (defaults, validation, printers).
package apiserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/apimachinery/pkg/version"

	"github.com/skiff-sh/skiff/apiserver/registry"
	"github.com/skiff-sh/skiff/storage"
)

// Config is what the API server needs; zero values get defaults in New.
type Config struct {
	Store     storage.Interface
	Encrypter Transformer
	Catalog   *registry.Catalog
	// ServiceCIDR is where ClusterIPs come from; the first address is the
	// kubernetes service's. Default 10.43.0.0/16.
	ServiceCIDR netip.Prefix
	// NodePortMin and NodePortMax bound NodePorts. Default 30000-32767.
	NodePortMin, NodePortMax int
	// Version answers /version.
	Version version.Info
	// OpenAPI serves /openapi/*; nil answers 404.
	OpenAPI http.Handler
	// TypeConverter types objects for managed fields and server-side
	// apply (from the OpenAPI schemas); nil leaves both off.
	TypeConverter managedfields.TypeConverter
	// CACertPEM is the cluster CA bundle, served to anyone at /cacerts so a
	// joining node can check it against its join token's hash.
	CACertPEM []byte
	// Authenticator identifies the caller of a request; nil lets everyone in
	// (tests of pure handlers only).
	Authenticator Authenticator
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Log receives the server's own messages. Default slog.Default().
	Log *slog.Logger
	// AdvertiseAddress is the address:port other components reach the API
	// on; it becomes the endpoint of the kubernetes service.
	AdvertiseAddress netip.AddrPort
	// KubeletClient is the TLS client configuration for node agents: the
	// API server's kubelet-client certificate and the cluster CA as
	// RootCAs. Nil answers the proxied subresources (pods/log, exec,
	// attach, portforward, nodes/proxy) with 503.
	KubeletClient *tls.Config
}

// Server is the API server.
type Server struct {
	cfg      Config
	objects  *objects
	catalog  *registry.Catalog
	alloc    *allocators
	managers *fieldManagers
	events   *eventCache
	metrics  *metrics
	log      *slog.Logger
	now      func() time.Time
	ready    atomic.Bool
	handler  http.Handler
	// nodeMetrics keeps the agents' samples for metrics.k8s.io.
	nodeMetrics nodeMetricsCache
}

// New builds a server; Bootstrap and then serving make it useful.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("apiserver: no store")
	}
	if cfg.Catalog == nil {
		cfg.Catalog = registry.Default()
	}
	if !cfg.ServiceCIDR.IsValid() {
		cfg.ServiceCIDR = netip.MustParsePrefix("10.43.0.0/16")
	}
	if cfg.NodePortMin == 0 {
		cfg.NodePortMin, cfg.NodePortMax = 30000, 32767
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	s := &Server{
		cfg:     cfg,
		objects: &objects{kv: cfg.Store, encrypter: cfg.Encrypter},
		catalog: cfg.Catalog,
		metrics: newMetrics(),
		events:  newEventCache(),
		log:     cfg.Log,
		now:     cfg.Now,
	}
	alloc, err := newAllocators(cfg.Store, cfg.ServiceCIDR, cfg.NodePortMin, cfg.NodePortMax)
	if err != nil {
		return nil, err
	}
	s.alloc = alloc
	if cfg.TypeConverter != nil {
		s.managers = &fieldManagers{converter: cfg.TypeConverter, byKey: map[string]*managedfields.FieldManager{}}
	}
	s.handler = s.buildChain()
	return s, nil
}

// Handler is the server's whole HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// SetReady flips /readyz; the assembly marks the server ready once its
// bootstrap objects exist.
func (s *Server) SetReady(ready bool) { s.ready.Store(ready) }

// Serve serves HTTPS on l until ctx ends, then shuts down, giving in-flight
// requests a few seconds. Long-running watches are cut.
func (s *Server) Serve(ctx context.Context, l net.Listener, tlsConfig *tls.Config) error {
	srv := &http.Server{
		Handler:           s.handler,
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 1)
	go func() {
		if tlsConfig != nil {
			errc <- srv.ServeTLS(l, "", "")
		} else {
			errc <- srv.Serve(l)
		}
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("apiserver: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdownCtx)
	_ = srv.Close()
	<-errc
	return nil
}

// buildChain assembles the handler chain, outermost first.
func (s *Server) buildChain() http.Handler {
	var h http.Handler = http.HandlerFunc(s.route)
	h = s.withNodeJoining(h)
	h = s.withMetrics(h)
	h = s.withAuthentication(h)
	h = s.withRecovery(h)
	return h
}

// withRecovery turns a panic in a handler into a 500 and keeps serving.
func (s *Server) withRecovery(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("handler panic", "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
				writeError(w, output{media: mediaJSON}, apierrors.NewInternalError(fmt.Errorf("internal error while serving %s %s", r.Method, r.URL.Path)))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// route sends a request to the handler for its path.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case p == "/healthz" || p == "/livez" || strings.HasPrefix(p, "/healthz/") || strings.HasPrefix(p, "/livez/"):
		s.serveHealth(w, r, true)
		return
	case p == "/readyz" || strings.HasPrefix(p, "/readyz/"):
		s.serveHealth(w, r, s.ready.Load())
		return
	case p == "/version" || p == "/version/":
		writeJSON(w, http.StatusOK, s.cfg.Version)
		return
	case p == "/cacerts":
		s.serveCACerts(w, r, s.cfg.CACertPEM)
		return
	case p == "/metrics":
		s.metrics.handler.ServeHTTP(w, r)
		return
	case strings.HasPrefix(p, "/openapi/"):
		if s.cfg.OpenAPI != nil {
			s.cfg.OpenAPI.ServeHTTP(w, r)
			return
		}
	case p == "/" || p == "":
		s.serveRootPaths(w)
		return
	case isMetricsPath(p):
		s.serveMetrics(w, r)
		return
	}
	if s.serveDiscovery(w, r) {
		return
	}
	info, ok := parseRequest(r)
	if !ok {
		writeError(w, output{media: mediaJSON}, apierrors.NewNotFound(schema.GroupResource{}, ""))
		return
	}
	s.serveResource(w, r, info)
}

func (s *Server) serveHealth(w http.ResponseWriter, r *http.Request, ok bool) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = fmt.Fprintln(w, "[-]bootstrap failed: not finished\nreadyz check failed")
		return
	}
	if _, ok := s.checkStore(r.Context()); !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = fmt.Fprintln(w, "[-]etcd failed: the store does not answer")
		return
	}
	if r.URL.Query().Has("verbose") {
		_, _ = fmt.Fprintln(w, "[+]ping ok\n[+]etcd ok\n[+]bootstrap ok\ncheck passed")
		return
	}
	_, _ = w.Write([]byte("ok"))
}

// checkStore asks the store for its revision with a short deadline.
func (s *Server) checkStore(ctx context.Context) (int64, bool) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	rev, err := s.cfg.Store.Revision(ctx)
	return rev, err == nil
}

// serveResource handles /api/v1/... and /apis/G/V/... resource requests.
func (s *Server) serveResource(w http.ResponseWriter, r *http.Request, info requestInfo) {
	out, err := negotiate(r)
	if err != nil {
		writeError(w, output{media: mediaJSON}, err)
		return
	}
	res, ok := s.catalog.Lookup(info.GV.WithResource(info.Resource))
	if !ok {
		writeError(w, out, apierrors.NewNotFound(schema.GroupResource{Group: info.GV.Group, Resource: info.Resource}, ""))
		return
	}
	if info.Namespace != "" && !res.Namespaced {
		writeError(w, out, apierrors.NewNotFound(res.GroupResource(), info.Name))
		return
	}
	if res.Namespaced && info.Namespace == "" {
		switch info.Verb {
		case "list", "watch":
		default:
			writeError(w, out, apierrors.NewBadRequest("the request must name a namespace: /api[s]/.../namespaces/NAMESPACE/"+res.Resource))
			return
		}
	}
	r = r.WithContext(context.WithValue(r.Context(), managerKey{}, managerName(r)))
	rc := &reqContext{srv: s, w: w, r: r, info: info, res: res, out: out}
	if info.Subresource != "" {
		s.serveSubresource(rc)
		return
	}
	switch info.Verb {
	case "get":
		s.serveGet(rc)
	case "list":
		s.serveList(rc)
	case "watch":
		s.serveWatch(rc)
	case "create":
		s.serveCreate(rc)
	case "update":
		s.serveUpdate(rc)
	case "patch":
		s.servePatch(rc)
	case "delete":
		s.serveDelete(rc)
	case "deletecollection":
		s.serveDeleteCollection(rc)
	default:
		writeError(w, out, apierrors.NewMethodNotSupported(res.GroupResource(), info.Verb))
	}
}

// reqContext carries one resource request through its handler.
type reqContext struct {
	srv  *Server
	w    http.ResponseWriter
	r    *http.Request
	info requestInfo
	res  *registry.Resource
	out  output
	// warnings are sent as Warning headers before the response.
	warnings []string
}

func (rc *reqContext) ctx() context.Context { return rc.r.Context() }

func (rc *reqContext) fail(err error) {
	rc.flushWarnings()
	writeError(rc.w, rc.out, err)
}

func (rc *reqContext) flushWarnings() {
	for _, w := range rc.warnings {
		rc.w.Header().Add("Warning", fmt.Sprintf("299 - %q", w))
	}
	rc.warnings = nil
}
