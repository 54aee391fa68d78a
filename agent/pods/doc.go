// Package pods is the heart of the node agent: it turns the pods bound to
// its node into sandboxes and containers through CRI, and reports back.
//
// Each pod has a worker goroutine that reconciles, idempotently, what the
// runtime has with what the pod asks for: volumes, the sandbox, init
// containers in order, the main containers with their restart policy and
// back-off, probes and lifecycle hooks, and graceful termination. The
// runtime is the source of truth for containers (they carry the labels of
// package agent/labels), so an agent that restarts adopts what is running
// instead of restarting it. A relist of the runtime every second notices
// containers that exited (containerd 1.6 has no CRI event stream) and wakes
// their pods' workers. After every pass a worker computes the pod's status
// as Kubernetes reports it and writes it when it changed.
package pods
