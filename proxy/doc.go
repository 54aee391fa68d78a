// Package proxy is Skiff's service proxy data plane: it turns Services and
// discovery.k8s.io/v1 EndpointSlices into one nftables table of its own
// (family ip, default name "skiff-proxy") so that ClusterIPs, NodePorts,
// LoadBalancer ports and externalIPs reach the Service's endpoints, following
// the behaviour Kubernetes documents for its service proxies.
//
// Packets are classified with verdict maps keyed by (destination address,
// protocol, destination port) or (protocol, node port), so the per-packet cost
// does not grow with the number of Services. Each service port has a chain
// that picks an endpoint uniformly at random (a cascade of "numgen random
// mod k == 0" rules, walked by a connection's first packet only) and one
// chain per endpoint that DNATs to it. In outline:
//
//	nat-prerouting / nat-output  -> services
//	services:   ip daddr . meta l4proto . th dport vmap @service-ips
//	            <node address> meta l4proto . th dport vmap @service-nodeports
//	svc-...:    cluster traffic (ClusterIP); marks sources outside the pod
//	            network for masquerade; session affinity; random choice
//	ext-...:    NodePort / LoadBalancer / externalIP traffic; masquerades
//	            unless externalTrafficPolicy is Local
//	ep-...:     hairpin mark, affinity update, dnat to the endpoint
//	nat-postrouting -> masquerading: masquerade marked connections
//	filter-input/forward/output: reject new connections to service ports
//	            that have no usable endpoint, and to unknown ports of a
//	            ClusterIP
//
// Only IPv4 is programmed. Endpoints are the ready ones; when a port has no
// ready endpoint the serving-and-terminating ones are used instead, and
// publishNotReadyAddresses makes every endpoint eligible. Traffic policies
// Local restrict the endpoints to those on this node (external traffic then
// keeps its source address). Session affinity ClientIP uses one dynamic
// nftables set with timeouts per endpoint.
//
// Updates are batched (MinSyncInterval) and applied as a single atomic nft
// transaction that touches only the chains, map elements and sets that
// changed since the last successful sync. Every SyncPeriod (30s) the proxy
// also syncs unasked and checks that its table is intact; when it is not,
// every FullSyncPeriod (1h), and after a failure, a full resync rewrites
// the whole table (again atomically, and without dropping session-affinity
// state).
package proxy
