// Package ingress is Skiff's built-in ingress controller: an HTTP and HTTPS
// reverse proxy, run by every node agent, that serves the
// networking.k8s.io/v1 Ingresses of class "skiff" (the default class).
//
// The package splits into a pure part and a thin loop around it:
//
//	informers ──> Snapshot ──Build──> *Table + []Problem
//	                                    │          │
//	             atomic.Pointer[Table] <┘          └─> Warning events, logs
//	                    │
//	 :80 / :443 ──> handler: Lookup(host, path) ─> Route.Pick ─> Backend.Next
//	                    └─> httputil.ReverseProxy ─> pod IP:port
//
// Build turns Ingresses, IngressClasses, Services, EndpointSlices and TLS
// certificates into an immutable routing Table and a list of Problems
// (a missing Service, a bad TLS Secret, a host and path claimed by two
// Ingresses). A Problem never stops the rest of the table from working: the
// oldest Ingress keeps a contested path, a route to a Service without ready
// endpoints answers 503. The Controller rebuilds the table whenever an input
// changes and swaps it in atomically, so a request costs a couple of map
// lookups and no locks.
//
// One more copy runs in the controller manager (StatusWriter, StatusOnly):
// it serves nothing, and is the cluster's one writer of Ingress status
// (the Ready nodes' addresses) and of the Warning events about Problems.
//
// Traffic goes straight to the ready endpoints of the EndpointSlices,
// round-robin, not through ClusterIPs. Canary Ingresses follow
// ingress-nginx's annotations (nginx.ingress.kubernetes.io/canary,
// canary-weight, canary-weight-total, canary-by-header,
// canary-by-header-value, canary-by-cookie); the same keys under the
// skiff.sh/ prefix are accepted too and win when both are set.
//
// Matching follows the Kubernetes Ingress documentation:
//   - hosts: an exact host beats a wildcard (*.example.com matches exactly
//     one extra label), which beats rules without a host. When the most
//     specific host has no matching path, the next one is tried.
//   - paths: Exact, Prefix (element-wise, a trailing slash is ignored) and
//     ImplementationSpecific (treated as Prefix); the longest match wins and
//     Exact wins a tie.
//   - default backends: an Ingress's spec.defaultBackend serves the hosts of
//     that Ingress when no path matches; the oldest Ingress with a
//     defaultBackend is the default for everything else; otherwise 404.
package ingress
