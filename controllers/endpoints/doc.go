// Package endpoints publishes where each Service's pods can be reached, as
// Kubernetes' endpoint and endpointslice controllers do, in one controller:
// for every Service with a selector it keeps the EndpointSlices the service
// proxy and DNS read, and the older Endpoints object of the same name.
//
// # What a Service gets
//
// Its pods are those its selector matches that have an address and have
// not finished. Each Service port's targetPort is resolved per pod: a
// number as is, a name through the pod's container (or sidecar) port of
// that name and protocol; a pod without it is left out of that port.
//
//   - EndpointSlices (discovery.k8s.io/v1), labelled
//     kubernetes.io/service-name and endpointslice.kubernetes.io/managed-by
//     = endpointslice-controller.k8s.io (the value Kubernetes uses, so
//     tools that look for it find these), owned by the Service, at most
//     100 endpoints each, one set per address family of the Service.
//     Every pod is listed, terminating ones too, with the conditions
//     Kubernetes sets: serving = Ready, terminating = being deleted,
//     ready = serving and not terminating (always, with
//     publishNotReadyAddresses). Endpoints carry the pod as targetRef,
//     its node, its node's zone and, for a pod whose subdomain is the
//     Service's name, its hostname. A Service without endpoints keeps one
//     empty placeholder slice.
//   - Endpoints: ready pods in addresses, the others in
//     notReadyAddresses, terminating pods left out (unless
//     publishNotReadyAddresses, which lists every pod as ready), trimmed
//     at 1000 addresses with the endpoints.kubernetes.io/over-capacity
//     annotation.
//
// Services without a selector and ExternalName Services are left alone:
// their Endpoints and slices are their users' (the API server's
// default/kubernetes is one). When a Service is deleted its slices and
// Endpoints are deleted.
//
// # Keeping it cheap
//
//	pod/service/slice event ──> service key ──> Reconcile:
//	   list the Service's pods (cache) ──> members ──┬─> planSlices  ──> create/update/delete slices
//	                                                 └─> subsets     ──> create/update Endpoints
//
// Pod updates that change nothing endpoints show (restart counts, other
// conditions) queue nothing. planSlices rewrites only the slices whose
// endpoints changed, so one pod's readiness flip is one slice update.
// The controller remembers its own writes until its informers show them
// (writes.go), so it never acts on a cache that predates them.
package endpoints
