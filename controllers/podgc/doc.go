// Package podgc is Skiff's pod garbage collector. It deletes the pods
// nothing else will ever delete:
//
//   - pods bound to a node that no longer exists: once the node has been
//     missing from the cache for a quarantine (40s by default) and the API
//     confirms it is gone, each pod is marked Failed with a DisruptionTarget
//     condition (reason DeletionByPodGC) and deleted with no grace period;
//   - terminating pods on a node that is not Ready and carries the
//     node.kubernetes.io/out-of-service taint (non-graceful node
//     shutdown): force-deleted;
//   - terminating pods that were never scheduled: force-deleted;
//   - terminated pods (Succeeded or Failed) beyond a threshold (12500 by
//     default): the evicted ones first, then the oldest.
//
// Work is keyed: "node:<name>" (a node's pods, on node events and events of
// pods bound to an unknown node or terminating), "pod:<ns>/<name>" (an
// unscheduled terminating pod) and "sweep", which runs every Period,
// counts terminated pods and re-queues anything an event may have missed.
// The decisions (which pods, in which order, how long to wait) are pure
// functions in decide.go; the quarantine start times are the only memory,
// and a restart merely starts the quarantines again.
//
// Like Kubernetes' collector it records no Events; it logs what it
// deletes.
package podgc
