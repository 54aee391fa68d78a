// Command skiff-demo is the small web app in Skiff's skiff.local/demo
// image, used by examples and end-to-end tests. It reports which pod
// answered, has a health endpoint that can be told to fail (for probe
// tests), a WebSocket echo and an environment dump (for Service
// environment variable tests). It listens on $PORT (default 8080) and
// logs every request to stdout; on the same UDP port it answers every
// datagram with "pod NAME" (for UDP Service tests).
package main

import (
	"context"
	"errors"
	"fmt"
	"html"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

// version is reported by / and can be set at build time with
// -ldflags "-X main.version=...".
var version = "1"

// app holds the server's state.
type app struct {
	pod, namespace, ip string
	requests           atomic.Int64
	failing            atomic.Bool
	exit               func(code int)
}

func main() {
	log.SetOutput(os.Stdout)
	log.SetFlags(log.LstdFlags | log.LUTC)
	a := newApp()
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	srv := &http.Server{Addr: ":" + port, Handler: a.routes(), ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		log.Printf("signal received, shutting down")
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if pc, err := net.ListenPacket("udp", ":"+port); err != nil {
		log.Printf("udp: %v", err)
	} else {
		go a.serveUDP(pc)
	}
	log.Printf("skiff-demo %s: pod %s in %s at %s, listening on :%s", version, a.pod, a.namespace, a.ip, port)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Printf("serve: %v", err)
		os.Exit(1)
	}
}

func newApp() *app {
	a := &app{exit: os.Exit}
	a.pod = os.Getenv("POD_NAME")
	if a.pod == "" {
		a.pod, _ = os.Hostname()
	}
	a.namespace = os.Getenv("POD_NAMESPACE")
	if a.namespace == "" {
		if b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil {
			a.namespace = strings.TrimSpace(string(b))
		}
	}
	if a.namespace == "" {
		a.namespace = "unknown"
	}
	a.ip = os.Getenv("POD_IP")
	if a.ip == "" {
		a.ip = firstIP()
	}
	return a
}

// firstIP returns the first non-loopback IPv4 address, or "unknown".
func firstIP() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "unknown"
	}
	for _, ad := range addrs {
		if n, ok := ad.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	return "unknown"
}

func (a *app) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", a.root)
	mux.HandleFunc("/healthz", a.healthz)
	mux.HandleFunc("/fail", func(w http.ResponseWriter, _ *http.Request) {
		a.failing.Store(true)
		fmt.Fprintln(w, "healthz will now fail")
	})
	mux.HandleFunc("/recover", func(w http.ResponseWriter, _ *http.Request) {
		a.failing.Store(false)
		fmt.Fprintln(w, "healthz is ok again")
	})
	mux.HandleFunc("/env", a.env)
	mux.HandleFunc("/ws", a.echo)
	mux.HandleFunc("/exit", a.exitHandler)
	return logRequests(mux)
}

func (a *app) root(w http.ResponseWriter, r *http.Request) {
	// Every path answers, naming itself, so ingress path rules can be seen.
	n := a.requests.Add(1)
	line := fmt.Sprintf("skiff-demo %s: pod %s, namespace %s, IP %s, request %d", version, a.pod, a.namespace, a.ip, n)
	if r.URL.Path != "/" {
		line += ", path " + r.URL.Path
	}
	if strings.Contains(r.Header.Get("Accept"), "text/html") {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<!DOCTYPE html><title>skiff-demo</title><p>%s</p>\n", html.EscapeString(line))
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, line)
}

func (a *app) healthz(w http.ResponseWriter, _ *http.Request) {
	if a.failing.Load() {
		http.Error(w, "failing (GET /recover to heal)", http.StatusInternalServerError)
		return
	}
	fmt.Fprintln(w, "ok")
}

func (a *app) env(w http.ResponseWriter, _ *http.Request) {
	env := os.Environ()
	sort.Strings(env)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, strings.Join(env, "\n"))
}

// exitHandler ends the process with ?code=N (default 1), for restart tests.
func (a *app) exitHandler(w http.ResponseWriter, r *http.Request) {
	code := 1
	if c := r.URL.Query().Get("code"); c != "" {
		v, err := strconv.Atoi(c)
		if err != nil || v < 0 || v > 255 {
			http.Error(w, "code must be 0..255", http.StatusBadRequest)
			return
		}
		code = v
	}
	fmt.Fprintf(w, "exiting with code %d\n", code)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	log.Printf("exiting with code %d as asked", code)
	go func() {
		time.Sleep(100 * time.Millisecond) // let the answer go out
		a.exit(code)
	}()
}

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

// echo sends every WebSocket message back unchanged.
func (a *app) echo(w http.ResponseWriter, r *http.Request) {
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade has answered the client
	}
	defer conn.Close()
	for {
		typ, msg, err := conn.ReadMessage()
		if err != nil {
			return
		}
		if err := conn.WriteMessage(typ, msg); err != nil {
			return
		}
	}
}

// statusWriter remembers the status code for the access log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController (and the WebSocket upgrade) reach
// the underlying connection.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		began := time.Now()
		next.ServeHTTP(sw, r)
		log.Printf("%s %s %s %d %s", r.RemoteAddr, r.Method, r.URL.RequestURI(), sw.status, time.Since(began).Round(time.Microsecond))
	})
}

// serveUDP answers each datagram with the pod's name.
func (a *app) serveUDP(pc net.PacketConn) {
	buf := make([]byte, 2048)
	for {
		_, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		_, _ = pc.WriteTo([]byte("pod "+a.pod+"\n"), from)
	}
}
