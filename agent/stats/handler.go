package stats

import (
	"encoding/json"
	"log/slog"
	"net/http"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Handler serves a fresh sample of the node's usage as JSON (a Summary)
// on GET Path; it is meant to be mounted on the agent's API, behind its
// client check.
func Handler(rt runtimeapi.RuntimeServiceClient, nodeName string, log *slog.Logger) http.Handler {
	return CollectorHandler(&Collector{Runtime: rt, NodeName: nodeName}, log)
}

// CollectorHandler is Handler for a given collector.
func CollectorHandler(c *Collector, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.Default()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != Path {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "only GET is allowed", http.StatusMethodNotAllowed)
			return
		}
		s, err := c.Collect(r.Context())
		if err != nil {
			log.Warn("resource stats", "err", err)
			http.Error(w, "collect resource stats: "+err.Error(), http.StatusInternalServerError)
			return
		}
		body, err := json.Marshal(s)
		if err != nil {
			http.Error(w, "encode resource stats: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(append(body, '\n'))
	})
}
