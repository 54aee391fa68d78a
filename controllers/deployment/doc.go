// Package deployment runs the Deployment controller: it rolls a
// Deployment's pod template out through ReplicaSets, one per template,
// named "<deployment>-<pod-template-hash>", and reports the rollout in the
// Deployment's status the way kubectl rollout status, history and undo
// read it. It is an ordinary API client; the ReplicaSet controller
// (package replicaset) turns the ReplicaSets' replicas into pods.
//
// # One reconcile
//
//	claim ReplicaSets (adopt matching orphans, release non-matching ones)
//	    │
//	    v
//	Decide (pure): Snapshot{Deployment, ReplicaSets, their pods, now} -> Plan
//	    │   selector selects everything ──> warn (SelectingAll), do nothing
//	    │   being deleted                ──> recount status only
//	    │   paused, or replicas changed  ──> scale (proportionally during a
//	    │                                    rolling update), no rollout step
//	    │   RollingUpdate                ──> rolling.go
//	    │   Recreate                     ──> recreate.go
//	    v
//	carry out: create / update / delete ReplicaSets (each guarded by the
//	resourceVersion it was decided from), events (ScalingReplicaSet),
//	status (UpdateStatus), revision annotation (a patch)
//
// # Vocabulary
//
//   - new ReplicaSet: the oldest ReplicaSet whose template equals the
//     Deployment's (ignoring the pod-template-hash label); all others are
//     old. Rolling back (kubectl rollout undo copies an old ReplicaSet's
//     template into the Deployment) makes that old ReplicaSet new again; it
//     gets the next revision and remembers its earlier ones in
//     deployment.kubernetes.io/revision-history.
//   - revision: deployment.kubernetes.io/revision, one more than the
//     highest among the old ReplicaSets whenever a ReplicaSet becomes new.
//   - surge and unavailable: maxSurge and maxUnavailable resolved against
//     replicas (percentages round up for the surge, down for unavailable).
//   - footprint of a ReplicaSet: its terminating pods plus the larger of
//     its replicas and its active pods, the most pods it can have at once.
//   - floor of a ReplicaSet at size n: the available pods it surely keeps,
//     min(available, n), since the ReplicaSet controller deletes pods that
//     are not available first.
//
// A rolling update never lets the footprints exceed replicas + surge nor
// the floors fall below replicas - unavailable; the property tests drive
// Decide against a simulated ReplicaSet controller and check both at every
// step. The Progressing condition's state machine is drawn in status.go.
package deployment
