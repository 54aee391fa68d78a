package apiserver

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the API server's Prometheus metrics, named as
// kube-apiserver names them so existing dashboards read them.
type metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	watches  *prometheus.GaugeVec
	handler  http.Handler
}

func newMetrics() *metrics {
	m := &metrics{registry: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "apiserver_request_total",
		Help: "Requests served, by verb, group, resource, subresource and HTTP code.",
	}, []string{"verb", "group", "resource", "subresource", "code"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "apiserver_request_duration_seconds",
		Help:    "Time to serve a request (watches excluded), by verb, group and resource.",
		Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
	}, []string{"verb", "group", "resource"})
	m.watches = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "apiserver_registered_watchers",
		Help: "Open watches, by resource.",
	}, []string{"resource"})
	m.registry.MustRegister(m.requests, m.latency, m.watches,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.handler = promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
	return m
}

func (m *metrics) watchStarted(resource string) { m.watches.WithLabelValues(resource).Inc() }
func (m *metrics) watchEnded(resource string)   { m.watches.WithLabelValues(resource).Dec() }

// codeRecorder remembers the status code and passes flushes through, which
// watches need.
type codeRecorder struct {
	http.ResponseWriter
	code int
}

func (c *codeRecorder) WriteHeader(code int) {
	if c.code == 0 {
		c.code = code
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *codeRecorder) Write(b []byte) (int, error) {
	if c.code == 0 {
		c.code = http.StatusOK
	}
	return c.ResponseWriter.Write(b)
}

func (c *codeRecorder) Flush() {
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (c *codeRecorder) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// withMetrics counts and times resource requests.
func (s *Server) withMetrics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, ok := parseRequest(r)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		rec := &codeRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		s.metrics.requests.WithLabelValues(info.Verb, info.GV.Group, info.Resource, info.Subresource, strconv.Itoa(rec.code)).Inc()
		if info.Verb != "watch" {
			s.metrics.latency.WithLabelValues(info.Verb, info.GV.Group, info.Resource).Observe(time.Since(start).Seconds())
		}
	})
}
