// Package nodelifecycle watches node health and acts on it, as Kubernetes'
// node lifecycle controller and taint-based eviction do together.
//
// # Node health
//
// A node shows it is alive by renewing its Lease in kube-node-lease or by
// posting status (the Ready condition's heartbeat). The controller notes,
// on its own clock, when either last moved; after GracePeriod (40s) of
// silence (StartupGracePeriod, 60s, for a node that never reported Ready)
// the node's Ready, MemoryPressure, DiskPressure and PIDPressure
// conditions become Unknown ("Kubelet stopped posting node status."), and
// the Ready condition of its pods turns False: nobody is left to report it.
//
//	alive ──(grace passes in silence)──> Ready=Unknown ──(kubelet reports)──> alive
//
// # Taints
//
// Conditions become taints. NoSchedule, at once: not-ready (Ready=False),
// unreachable (Ready=Unknown), memory-, disk-, pid-pressure, network-
// unavailable (condition True), unschedulable (spec.unschedulable).
// NoExecute: not-ready for Ready=False, unreachable for Ready=Unknown,
// stamped with timeAdded. Adding a NoExecute taint is rate limited per
// zone by a token bucket (EvictionRate nodes a second, 0.1); a zone with
// at least UnhealthyZoneThreshold (55%) of 3+ nodes not ready slows to
// SecondaryEvictionRate (0.01), or stops if it is small (at most 50
// nodes); when every zone is fully down, NoExecute taints are removed and
// none are added, since the likelier fault is the controller's own view.
// Swapping not-ready for unreachable and removing taints are not limited.
//
// # Taint-based eviction
//
// A pod on a node with NoExecute taints is deleted (after being given the
// DisruptionTarget condition) at once when it does not tolerate one of
// them, and when the shortest tolerationSeconds it relies on runs out
// otherwise, counted from the taint's timeAdded or the pod's creation,
// whichever is later. (The API server gives pods 300s not-ready and
// unreachable tolerations by default.)
//
// Two reconcile loops, both keyed by node name: health (conditions,
// taints, pod readiness; lease and node events) and evictions (node and
// pod events). The decisions are pure functions: observe/assess
// (health.go), planTaints (taints.go), zoneRates and the bucket
// (zones.go), judge (eviction.go).
package nodelifecycle
