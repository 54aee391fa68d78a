// Package nodeipam gives each node its slice of the cluster's pod network:
// a podCIDR (by default a /24 of 10.42.0.0/16) written to spec.podCIDR and
// spec.podCIDRs when the node first appears, from which the node's agent
// assigns pod IPs. A node keeps its podCIDR for life; the range is free
// again once the node is deleted. Allocation state is nothing but the
// nodes themselves, so a new leader rebuilds it from its node informer.
package nodeipam
