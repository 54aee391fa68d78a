// Package replicaset runs the ReplicaSet and the ReplicationController
// controllers: one pure core that keeps a set's number of pods at its
// spec.replicas, and two thin adapters that read and write the two kinds.
// Both are ordinary API clients (informers for reads, the API for writes).
//
// # What a reconcile does
//
//	read the set from the cache ──gone──> forget its expectations, done
//	    │
//	    v
//	claim pods: keep the pods it controls that still match its selector,
//	adopt matching orphans, release controlled pods that no longer match
//	    │
//	    v
//	expectations satisfied? ──no──> (an informer event will come) ─┐
//	    │ yes                                                      │
//	    v                                                          │
//	decide (pure): too few active pods -> create the missing ones  │
//	               in slow-start batches of 1, 2, 4, ... stopping  │
//	               at the first error                              │
//	               too many -> delete the least valuable ones      │
//	    │                                                          │
//	    v                                                          v
//	status: replicas, fullyLabeledReplicas, readyReplicas, availableReplicas,
//	terminatingReplicas (ReplicaSet only), observedGeneration, and the
//	ReplicaFailure condition while creating or deleting fails
//
// # Vocabulary
//
//   - active pod: not being deleted (no deletionTimestamp) and not finished
//     (phase neither Succeeded nor Failed). Only active pods count
//     towards replicas; a set replaces a pod as soon as it is terminating.
//   - available pod: Ready for at least minReadySeconds.
//   - expectations: the creations and deletions a set has asked for and
//     not yet seen in its pod cache (reconcile.Expectations). While any are
//     outstanding the set does not act, so a lagging cache never makes it
//     create or delete twice.
//   - related pods: the active pods of the set and of its siblings (sets
//     controlled by the same owner, such as a Deployment's ReplicaSets);
//     they decide which pods are "doubled up" on a node.
//
// # Which pods go first
//
// When a set has too many pods, RankForDeletion orders them from least to
// most valuable, as Kubernetes does: unassigned before assigned; Pending
// before Unknown before Running; not ready before ready (and, Skiff's
// refinement, ready for less than minReadySeconds before available); lower
// controller.kubernetes.io/pod-deletion-cost before higher; more related
// pods on the same node before fewer; ready for less time before more;
// more container restarts before fewer; newer before older.
//
// The ReplicationController adapter maps the core/v1 kind onto the same
// core: its map selector becomes a label selector and its status the same
// counts, so the two kinds behave identically.
package replicaset
