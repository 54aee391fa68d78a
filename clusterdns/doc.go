// Package clusterdns is Skiff's cluster DNS server: the resolver pods reach
// through the kube-dns Service (10.43.0.10:53).
//
// It answers, authoritatively, the names of the Kubernetes DNS-based service
// discovery schema under the cluster domain (default cluster.local), built
// from Services and discovery.k8s.io/v1 EndpointSlices:
//
//   - <svc>.<ns>.svc.<zone> A/AAAA: the ClusterIPs of a ClusterIP, NodePort
//     or LoadBalancer Service; for a headless Service the addresses of its
//     ready endpoints (every endpoint when publishNotReadyAddresses or the
//     legacy tolerate-unready-endpoints annotation is set). A headless Service
//     without such endpoints does not exist (NXDOMAIN), as the schema says.
//   - _<port>._<proto>.<svc>.<ns>.svc.<zone> SRV for named ports. A ClusterIP
//     Service gives one record targeting the Service name; a headless Service
//     one record per endpoint, targeting <host>.<svc>.<ns>.svc.<zone>, with the
//     port number taken from the EndpointSlice (the port the endpoint really
//     listens on). A query for SRV on the bare Service name returns the
//     records of every named port. The additional section carries the
//     targets' addresses.
//   - <host>.<svc>.<ns>.svc.<zone> A/AAAA for the endpoints of a headless
//     Service. <host> is the endpoint's hostname field (StatefulSet pods and
//     pods with hostname+subdomain) or, when unset, its address with dots
//     (IPv4) or colons (IPv6) replaced by dashes, e.g. 10-42-0-7.
//   - ExternalName Services: a CNAME to the external name. For any query type
//     other than CNAME the server then chases the target itself (inside the
//     cluster zone or through the upstreams, with the cache) and appends the
//     target's records, as the schema's example answer shows; the response
//     code is that of the last name in the chain. A failed chase is SERVFAIL.
//   - PTR in in-addr.arpa / ip6.arpa for Service ClusterIPs and headless
//     endpoint addresses. Reverse names of addresses the cluster does not know
//     are forwarded upstream.
//   - <a-b-c-d>.<ns>.pod.<zone> A (and dashed IPv6 AAAA), the "pods insecure"
//     mode: any well-formed address is answered without checking a pod owns it.
//   - dns-version.<zone> TXT with the schema version, and the zone SOA.
//
// Any other name under the zone is NXDOMAIN, an existing name asked for a
// type it lacks is NODATA; both carry the zone SOA in the authority section
// so resolvers cache them negatively. Names compare case-insensitively and
// answers echo the question's spelling.
//
// Names outside the zone are forwarded to the upstream resolvers (by default
// the nameservers of /etc/resolv.conf, minus any that would send the query
// back to this server): over UDP, retried over TCP when the answer is
// truncated, trying the next upstream on errors, SERVFAIL or REFUSED.
// Answers are cached in an LRU keyed by name, type, class and DO/CD bits;
// positive entries live for the smallest TTL in the answer, negative ones
// (NXDOMAIN, NODATA) for the SOA's negative TTL (RFC 2308), both capped by
// Config.CacheTTL; TTLs handed out from the cache count down. Identical
// concurrent misses share one upstream exchange.
//
// The server speaks UDP and TCP on every listen address, honours EDNS0 buffer
// sizes (truncating UDP answers to the client's size, 512 bytes without
// EDNS0), and answers BADVERS to EDNS versions other than 0. Until the
// informer caches have synced it answers cluster names with SERVFAIL (so
// clients retry instead of caching a false NXDOMAIN) while forwarding works.
package clusterdns
