// Package disruption is the disruption controller: it keeps the status of
// every PodDisruptionBudget current, which is what the eviction API
// (apiserver's eviction subresource) reads and spends.
//
// For a budget it counts the pods its selector matches:
//
//	expectedPods    the pods there should be: for an integer minAvailable, the
//	                pods that exist; for maxUnavailable or a percentage, the
//	                sum of the scales (spec.replicas) of the pods' controllers
//	                (ReplicationController, ReplicaSet, or the Deployment over
//	                it, StatefulSet), each counted once
//	desiredHealthy  minAvailable (a percentage of expectedPods rounded up), or
//	                expectedPods - maxUnavailable (rounded up), at least 0
//	currentHealthy  matching pods that are Ready, not being deleted, and not
//	                recently evicted (in disruptedPods)
//	disruptionsAllowed = max(currentHealthy - desiredHealthy, 0), and 0 while
//	                expectedPods is 0
//
// disruptedPods is written by the eviction API; the controller drops an
// entry once the pod is deleted or is gone, or when two minutes (the
// deletion timeout) have passed without the deletion, and looks at the
// budget again when the next entry would expire. The DisruptionAllowed
// condition is True (SufficientPods) when a disruption is allowed, False
// (InsufficientPods) when not, and False (SyncFailed) when the expected
// count cannot be worked out (a pod's controller is missing or has no
// known scale); then nothing may be disrupted.
//
// The arithmetic is the pure pair expect/computeStatus (budget.go); the
// Controller reads listers and writes status.
package disruption
