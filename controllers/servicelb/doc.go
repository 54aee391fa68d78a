// Package servicelb is Skiff's built-in LoadBalancer, in the spirit of
// k3s's ServiceLB: it needs no cloud and no extra pods, because every node
// agent's service proxy already serves the ports of Skiff's LoadBalancer
// Services on the node's own addresses. What is left is to tell users (and
// tools that wait for an external address) where that is.
//
// # What a Service gets
//
// A Service is Skiff's when proxy.ServesLoadBalancer says so: type
// LoadBalancer and no spec.loadBalancerClass. Its status.loadBalancer.ingress
// is proxy.LoadBalancerIngress over all nodes: one IP entry (ipMode VIP) per
// address of each Ready node that is not being deleted and does not carry
// node.kubernetes.io/exclude-from-external-load-balancers (external
// addresses, or internal ones for a node without any). The list follows the
// nodes: a node going NotReady, changing address or getting the exclude
// label rewrites the status of every such Service.
//
// When a Service stops being Skiff's (its type changes, or it names a
// loadBalancerClass) the controller clears the ingress it wrote. It
// recognises its own entries by their shape: bare IP entries whose
// addresses belong to nodes (or that it wrote itself since it started).
// Anything else belongs to whichever implementation the class names and is
// left alone.
//
// The status is written through services/status only when it differs, and
// each change is recorded as an Event on the Service, with the reasons
// Kubernetes' service controller uses: UpdatedLoadBalancer (Normal) with
// the old and new addresses, UnAvailableLoadBalancer (Warning) when no node
// can serve it, DeletedLoadBalancer (Normal) when the status is cleared.
//
// # Shape
//
//	service event ─────────────┐
//	node event that changes  ──┴─> service key ──> Reconcile: decide (pure) ──> UpdateStatus + Event
//	what a node contributes
//	(readiness, addresses, exclude label)
//
// decide.go holds the decision; controller.go the informers and writes.
package servicelb
