// Package statefulset is the StatefulSet controller: it runs pods with
// stable identities (<set>-0, <set>-1, ...; hostname = pod name, subdomain
// = spec.serviceName; labels statefulset.kubernetes.io/pod-name and
// apps.kubernetes.io/pod-index), each with its own PersistentVolumeClaims
// made from the set's volumeClaimTemplates (<claim>-<set>-<ordinal>) that
// outlive the pods, and rolls them over to new templates in order.
//
// # Ordering
//
// With podManagementPolicy OrderedReady (the default) the controller takes
// one step at a time and waits for its result:
//
//	scale up:    create N only once 0..N-1 are Running and Ready
//	scale down:  delete the highest ordinal, wait until it is gone, then the next,
//	             and only while every remaining lower pod is healthy
//	update:      delete the highest outdated ordinal >= partition; it comes
//	             back from the new template; wait for it to be Ready; go on down
//
// With Parallel, pods are created and scaled down all at once; updates
// still go one pod at a time (or maxUnavailable at a time when set).
// OnDelete never deletes pods for an update: a pod takes the new template
// when someone deletes it.
//
// # Revisions
//
// Each template is a ControllerRevision (package history). The status
// names the current revision (the one the set ran before) and the update
// revision (the template now); pods carry the name of theirs in the
// controller-revision-hash label, and a recreated pod below the partition
// gets the current revision's template. When every pod is updated and
// ready, the update revision becomes current.
//
// # Claims
//
// The claim retention policy (whenDeleted, whenScaled) is carried out with
// owner references on the claims, for the garbage collector to act on:
// the set owns its claims when whenDeleted is Delete, and a scaled-down
// pod owns its claims when whenScaled is Delete (claims.go).
//
// The decision is the pure function decide (plan.go); the Controller
// reads listers, claims pods and revisions, performs the plan's steps in
// order through the API, and writes status.
package statefulset
