// Package scheduler places pending pods on nodes, as kube-scheduler does,
// while being an ordinary API client that could run as its own process.
//
// It is split the way the rest of Skiff is: a pure core decides, a thin
// loop acts. The core is Schedule (a Snapshot and a pod in, a Decision
// out: a node, or per-node reasons and Kubernetes' FailedScheduling
// message) and Preempt (which lower-priority pods to evict, and where),
// built from small Filter and Scorer types composed in one place,
// DefaultProfile. The loop, Scheduler, keeps a Cache of nodes and
// assigned pods from informers, a priority Queue of pending pods with
// backoff, and binds, reports and preempts through the API on worker
// goroutines. README.md has the pipeline diagram and vocabulary.
package scheduler
