// Package netpol enforces networking.k8s.io/v1 NetworkPolicies for the
// pods of one node with one nftables table of its own (family ip, default
// name "skiff-netpol").
//
// Semantics follow Kubernetes: a pod selected by no policy of a type
// (Ingress, Egress; policyTypes defaulted as the API does) is unrestricted
// in that direction; once selected, only traffic some selecting policy
// allows passes, policies adding up. Rules match peers by podSelector (in
// the policy's namespace), namespaceSelector, both combined, or ipBlock
// minus its exceptions, and ports by protocol, number, range (endPort) or
// name (resolved per destination pod from its containerPorts). Packets of
// established connections and related ones (replies, ICMP errors) always
// pass, as does a pod reaching itself (through a Service) and any traffic
// between a pod and its own node: the node's processes (probes, the DNS
// server on the bridge address) reach their pods, and pods reach them,
// whatever the policies.
//
// Where it hooks: a node polices only its own pods, ingress for local
// destinations and egress for local sources. Their traffic leaves or
// enters through the pod bridge, either bridged (pod to pod on this node)
// or routed (to and from other nodes, and Service traffic DNATed by the
// proxy in prerouting, so policies see pod addresses as Kubernetes
// requires). Both cases are caught by two filter chains on the ip family's
// forward hook, one matching oifname <bridge> (ingress) and one matching
// iifname <bridge> (egress). Bridged frames reach that hook through
// br_netfilter with net.bridge.bridge-nf-call-iptables=1, which Run turns
// on in its network namespace. A table of family bridge cannot do the job
// on the kernel Skiff is developed on (6.18, br_netfilter built in):
// stateful matching there needs nf_conntrack_bridge, which it lacks
// (CONFIG_NF_CONNTRACK_BRIDGE unset), and without conntrack replies could
// not be told from new connections. The bridge plugin's hairpinMode (which
// Skiff's CNI config sets) lets a pod reach itself through a Service.
// Traffic to or from the node itself uses the input and output hooks and is
// never policed.
//
// Table layout, in outline:
//
//	policy-ingress (forward): established/related, not into the bridge,
//	    destination not isolated, self traffic: accept;
//	    ip daddr @sel-<policy> jump ing-<policy> (each Ingress policy);
//	    drop
//	policy-egress (forward): the same from the bridge with ip saddr and
//	    egr-<policy>
//	ing-/egr-<policy>: one accepting rule per rule and port of the policy,
//	    peers in an interval set (peer-...), named ports as a set of
//	    address . protocol . port (nport-...)
//
// Policies that select no local pod cost nothing. Pod churn changes set
// elements; chains change only with policies. Updates are batched
// (MinSyncInterval) and applied as one atomic nft transaction carrying the
// difference to the last one; the first sync, every SyncPeriod and after a
// failure, the table is rewritten whole (also atomically). Connections
// established before a policy change keep flowing. Only IPv4 is policed.
package netpol
