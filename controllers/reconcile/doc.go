// Package reconcile is the machinery every Skiff controller runs on: a
// queue of keys, a pool of workers that hand each key to a Reconciler, and
// the one place where retry policy lives.
//
// # Vocabulary
//
//   - key: a string naming the object to converge, "namespace/name" for
//     namespaced objects and "name" for cluster-scoped ones. The queue holds
//     keys, never events: ten events for one object become one reconcile.
//   - Reconciler: reads the state it needs (usually from informer caches),
//     compares desired with observed, and acts. It never asks whether the
//     object was created, updated or deleted; a missing object is just
//     another state to converge from.
//   - Result and errors: a nil error with a zero Result means "converged";
//     RequeueAfter asks to look again later (a timeout, a lease); an error is
//     retried with per-key exponential backoff (5ms doubling up to 1000s)
//     under an overall token bucket (10/s, burst 100), as Kubernetes'
//     controllers do; Terminal(err) is logged and not retried until the next
//     event for that key.
//
// # Lifecycle
//
//	c, err := reconcile.New(reconcile.Options{Name: "replicaset", Reconciler: r, Workers: 5})
//	...
//	err = c.Watch(rsInformer, reconcile.ObjectKeys)
//	err = c.Watch(podInformer, reconcile.MapToOwner(schema.GroupKind{Group: "apps", Kind: "ReplicaSet"}))
//	factory.Start(ctx.Done())
//	err = c.Start(ctx) // waits for the caches, runs the workers, returns once ctx ends
//
// Start blocks until ctx ends, then shuts the queue down and waits for every
// worker; a Controller runs once. Watch must be called before Start.
//
// The package also holds the small helpers controllers share: owner-key
// mapping (OwnerKeys, MapToOwner), Expectations (creations and deletions in
// flight, so a controller does not act twice while its cache lags) and an
// EventRecorder that writes core/v1 Events through the API.
package reconcile
