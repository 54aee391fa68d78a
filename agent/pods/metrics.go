package pods

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// metrics are the agent's Prometheus metrics, named as the kubelet names
// them so that existing dashboards read them.
type metrics struct {
	registry          *prometheus.Registry
	runningPods       prometheus.Gauge
	runningContainers *prometheus.GaugeVec
	podStart          prometheus.Histogram
	syncDuration      *prometheus.HistogramVec
	startedContainers prometheus.Counter
	startErrors       *prometheus.CounterVec
	restarts          prometheus.Counter
}

func newMetrics(node string) *metrics {
	m := &metrics{registry: prometheus.NewRegistry()}
	m.runningPods = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "kubelet_running_pods", Help: "Pods with a running sandbox on this node.",
	})
	m.runningContainers = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kubelet_running_containers", Help: "Containers on this node, by state.",
	}, []string{"container_state"})
	m.podStart = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "kubelet_pod_start_duration_seconds",
		Help:    "Time from the agent first seeing a pod to the pod running.",
		Buckets: []float64{0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120},
	})
	m.syncDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "kubelet_pod_worker_duration_seconds",
		Help:    "Time one pod sync takes, by operation (sync, terminate, remove).",
		Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
	}, []string{"operation"})
	m.startedContainers = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "kubelet_started_containers_total", Help: "Containers started.",
	})
	m.startErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kubelet_started_containers_errors_total", Help: "Containers that failed to start, by reason.",
	}, []string{"code"})
	m.restarts = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "skiff_agent_container_restarts_total", Help: "Containers restarted by their restart policy.",
	})
	nodeName := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kubelet_node_name", Help: "The node's name; the value is always 1.",
	}, []string{"node"})
	nodeName.WithLabelValues(node).Set(1)
	for _, st := range []string{"running", "exited", "created", "unknown"} {
		m.runningContainers.WithLabelValues(st).Set(0) // present before the first relist
	}
	m.registry.MustRegister(m.runningPods, m.runningContainers, m.podStart, m.syncDuration,
		m.startedContainers, m.startErrors, m.restarts, nodeName,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// observeSnapshot sets the running gauges from a relist.
func (m *metrics) observeSnapshot(snap map[string]*podRuntime) {
	pods := 0
	states := map[string]float64{"running": 0, "exited": 0, "created": 0, "unknown": 0}
	for _, r := range snap {
		if r.readySandbox() != nil {
			pods++
		}
		for _, list := range r.containers {
			for _, c := range list {
				switch c.State {
				case runtimeapi.ContainerState_CONTAINER_RUNNING:
					states["running"]++
				case runtimeapi.ContainerState_CONTAINER_EXITED:
					states["exited"]++
				case runtimeapi.ContainerState_CONTAINER_CREATED:
					states["created"]++
				default:
					states["unknown"]++
				}
			}
		}
	}
	m.runningPods.Set(float64(pods))
	for s, n := range states {
		m.runningContainers.WithLabelValues(s).Set(n)
	}
}

func (m *metrics) since(op string, start time.Time) {
	m.syncDuration.WithLabelValues(op).Observe(time.Since(start).Seconds())
}

// MetricsHandler serves the agent's metrics in Prometheus' text format.
func (m *Manager) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(m.metrics.registry, promhttp.HandlerOpts{})
}
