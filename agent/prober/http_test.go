package prober

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// probeServer is a loopback HTTP server whose paths answer as the tests
// need, and which records the requests it got.
type probeServer struct {
	*httptest.Server
	port int

	mu   sync.Mutex
	reqs []*http.Request
}

func newProbeServer(t *testing.T, tls bool) *probeServer {
	t.Helper()
	s := &probeServer{}
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.HandleFunc("/status/", func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/status/"))
		w.WriteHeader(code)
	})
	mux.HandleFunc("/same", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ok", http.StatusFound)
	})
	mux.HandleFunc("/same-to-fail", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/status/503", http.StatusMovedPermanently)
	})
	mux.HandleFunc("/other", func(w http.ResponseWriter, r *http.Request) {
		// Same server, other host name: must not be followed.
		w.Header().Set("Location", fmt.Sprintf("http://localhost:%d/status/500", s.port))
		w.WriteHeader(http.StatusFound)
		_, _ = w.Write([]byte("moved"))
	})
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/loop", http.StatusFound)
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(strings.Repeat("b", 1<<20)))
	})
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.reqs = append(s.reqs, r.Clone(context.Background()))
		s.mu.Unlock()
		mux.ServeHTTP(w, r)
	})
	s.Server = httptest.NewUnstartedServer(handler)
	// Quiet the TLS handshake errors the plain-HTTP test provokes.
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	if tls {
		s.StartTLS()
	} else {
		s.Start()
	}
	t.Cleanup(s.Close)
	s.port = s.Listener.Addr().(*net.TCPAddr).Port
	return s
}

func (s *probeServer) requests() []*http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*http.Request(nil), s.reqs...)
}

func httpProbe(path string, port intstr.IntOrString, headers ...v1.HTTPHeader) *v1.Probe {
	return &v1.Probe{ProbeHandler: v1.ProbeHandler{HTTPGet: &v1.HTTPGetAction{
		Path: path, Port: port, HTTPHeaders: headers,
	}}}
}

func TestRunHTTP(t *testing.T) {
	s := newProbeServer(t, false)
	port := intstr.FromInt32(int32(s.port))
	tests := []struct {
		name     string
		path     string
		want     Result
		wantMsg  string
		wantReqs []string
	}{
		{"200", "/ok", Success, "", []string{"/ok"}},
		{"204", "/status/204", Success, "", []string{"/status/204"}},
		{"399", "/status/399", Success, "Liveness probe warning: Probe terminated redirects, Response body: ", []string{"/status/399"}},
		{"400", "/status/400", Failure, "Liveness probe failed: HTTP probe failed with statuscode: 400", []string{"/status/400"}},
		{"500", "/status/500", Failure, "Liveness probe failed: HTTP probe failed with statuscode: 500", []string{"/status/500"}},
		{"same-host redirect followed", "/same", Success, "", []string{"/same", "/ok"}},
		{"same-host redirect to a failure", "/same-to-fail", Failure,
			"Liveness probe failed: HTTP probe failed with statuscode: 503", []string{"/same-to-fail", "/status/503"}},
		{"other-host redirect not followed", "/other", Success,
			"Liveness probe warning: Probe terminated redirects, Response body: moved", []string{"/other"}},
		{"redirect loop stops", "/loop", Success, "Liveness probe warning: Probe terminated redirects, Response body: ",
			[]string{"/loop", "/loop", "/loop", "/loop", "/loop", "/loop", "/loop", "/loop", "/loop", "/loop", "/loop"}},
		{"path with query", "/ok?x=1", Success, "", []string{"/ok"}},
		{"big body", "/big", Success, "", []string{"/big"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(s.requests())
			got, msg := Run(context.Background(), Liveness, httpProbe(tt.path, port), Target{PodIP: "127.0.0.1"})
			if tt.name == "redirect loop stops" {
				// The body of the last redirect is Go's short HTML link.
				msg = strings.SplitAfter(msg, "Response body: ")[0]
			}
			if got != tt.want || msg != tt.wantMsg {
				t.Fatalf("Run = %v, %q; want %v, %q", got, msg, tt.want, tt.wantMsg)
			}
			var paths []string
			for _, r := range s.requests()[before:] {
				paths = append(paths, r.URL.Path)
			}
			if strings.Join(paths, " ") != strings.Join(tt.wantReqs, " ") {
				t.Fatalf("server saw %v, want %v", paths, tt.wantReqs)
			}
		})
	}
}

func TestRunHTTPBodyIsBounded(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusMovedPermanently)
		_, _ = w.Write([]byte(strings.Repeat("z", 3*maxOutput)))
	})
	s := httptest.NewServer(mux)
	defer s.Close()
	port := s.Listener.Addr().(*net.TCPAddr).Port
	_, msg := Run(context.Background(), Readiness, httpProbe("/", intstr.FromInt32(int32(port))), Target{PodIP: "127.0.0.1"})
	want := "Readiness probe warning: Probe terminated redirects, Response body: " + strings.Repeat("z", maxOutput)
	if msg != want {
		t.Fatalf("message has %d bytes, want %d", len(msg), len(want))
	}
}

func TestRunHTTPHeaders(t *testing.T) {
	s := newProbeServer(t, false)
	c := &v1.Container{Name: "web", Ports: []v1.ContainerPort{{Name: "http", ContainerPort: int32(s.port)}}}
	tests := []struct {
		name    string
		headers []v1.HTTPHeader
		check   func(r *http.Request) string
	}{
		{"defaults", nil, func(r *http.Request) string {
			if ua := r.Header.Get("User-Agent"); ua != "kube-probe/1.37" {
				return "User-Agent " + ua
			}
			if a := r.Header.Get("Accept"); a != "*/*" {
				return "Accept " + a
			}
			if r.Host != fmt.Sprintf("127.0.0.1:%d", s.port) {
				return "Host " + r.Host
			}
			return ""
		}},
		{"overrides and repeats", []v1.HTTPHeader{
			{Name: "Host", Value: "example.com"},
			{Name: "user-agent", Value: "MyAgent"},
			{Name: "Accept", Value: "application/json"},
			{Name: "X-Custom", Value: "a"},
			{Name: "X-Custom", Value: "b"},
		}, func(r *http.Request) string {
			switch {
			case r.Host != "example.com":
				return "Host " + r.Host
			case r.Header.Get("User-Agent") != "MyAgent":
				return "User-Agent " + r.Header.Get("User-Agent")
			case r.Header.Get("Accept") != "application/json":
				return "Accept " + r.Header.Get("Accept")
			case strings.Join(r.Header.Values("X-Custom"), ",") != "a,b":
				return "X-Custom " + strings.Join(r.Header.Values("X-Custom"), ",")
			}
			return ""
		}},
		{"empty values remove defaults", []v1.HTTPHeader{
			{Name: "User-Agent", Value: ""},
			{Name: "Accept", Value: ""},
		}, func(r *http.Request) string {
			if _, ok := r.Header["User-Agent"]; ok {
				return "User-Agent sent: " + r.Header.Get("User-Agent")
			}
			if _, ok := r.Header["Accept"]; ok {
				return "Accept sent: " + r.Header.Get("Accept")
			}
			return ""
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(s.requests())
			p := httpProbe("/ok", intstr.FromString("http"), tt.headers...)
			got, msg := Run(context.Background(), Readiness, p, Target{PodIP: "127.0.0.1", Container: c})
			if got != Success {
				t.Fatalf("Run = %v, %q", got, msg)
			}
			reqs := s.requests()[before:]
			if len(reqs) != 1 {
				t.Fatalf("server saw %d requests", len(reqs))
			}
			if problem := tt.check(reqs[0]); problem != "" {
				t.Fatalf("request: %s", problem)
			}
		})
	}
}

func TestRunHTTPS(t *testing.T) {
	s := newProbeServer(t, true)
	p := httpProbe("/ok", intstr.FromInt32(int32(s.port)))
	p.HTTPGet.Scheme = v1.URISchemeHTTPS
	if got, msg := Run(context.Background(), Startup, p, Target{PodIP: "127.0.0.1"}); got != Success {
		t.Fatalf("HTTPS with a self-signed certificate: %v, %q", got, msg)
	}
	p.HTTPGet.Scheme = v1.URISchemeHTTP
	if got, _ := Run(context.Background(), Startup, p, Target{PodIP: "127.0.0.1"}); got != Failure {
		t.Fatalf("plain HTTP to a TLS port: %v, want Failure", got)
	}
}

func TestRunHTTPHostField(t *testing.T) {
	s := newProbeServer(t, false)
	p := httpProbe("/ok", intstr.FromInt32(int32(s.port)))
	p.HTTPGet.Host = "127.0.0.1"
	if got, msg := Run(context.Background(), Liveness, p, Target{PodIP: "192.0.2.1"}); got != Success {
		t.Fatalf("host field: %v, %q", got, msg)
	}
}

func TestRunHTTPConnectionRefused(t *testing.T) {
	port := closedTCPPort(t)
	got, msg := Run(context.Background(), Readiness, httpProbe("/healthz", intstr.FromInt32(int32(port))), Target{PodIP: "127.0.0.1"})
	want := fmt.Sprintf(`Readiness probe failed: Get "http://127.0.0.1:%d/healthz": dial tcp 127.0.0.1:%d: connect: connection refused`, port, port)
	if got != Failure || msg != want {
		t.Fatalf("Run = %v, %q; want Failure, %q", got, msg, want)
	}
}

func TestRunHTTPCancelledIsUnknown(t *testing.T) {
	arrived := make(chan struct{})
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-r.Context().Done()
	}))
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-arrived
		cancel()
	}()
	p := httpProbe("/", intstr.FromInt32(int32(s.Listener.Addr().(*net.TCPAddr).Port)))
	p.TimeoutSeconds = 30
	got, msg := Run(ctx, Liveness, p, Target{PodIP: "127.0.0.1"})
	if got != Unknown || !strings.HasPrefix(msg, "Liveness probe errored: ") {
		t.Fatalf("Run = %v, %q; want Unknown", got, msg)
	}
}
