// Package routes is Skiff's multi-node pod network: it makes every other
// node's podCIDR reachable from this node, in the manner of flannel's
// host-gw backend, with a VXLAN overlay for nodes that are not on a shared
// subnet.
//
// A Syncer watches Nodes. For each other Node with an IPv4 podCIDR (spec
// podCIDRs, else podCIDR) inside the cluster CIDR and an IPv4 InternalIP:
//
//   - host-gw: when the Node's InternalIP lies in the prefix of an address
//     on one of this node's interfaces (the two share a link), the route
//     "<podCIDR> via <InternalIP> dev <that interface>" is installed, and
//     pod traffic crosses the LAN unencapsulated.
//   - VXLAN: otherwise the traffic is encapsulated. The node keeps one vxlan
//     device (Config.VXLAN: VNI, UDP port, local address = NodeIP, learning
//     off). Each node's overlay gateway is the network address of its
//     podCIDR (e.g. 10.42.3.0), which its device carries as a /32, and the
//     device's MAC address is derived from that gateway (see vxlanMAC), so
//     every node knows every peer's device address from the Node objects
//     alone. Per peer, a permanent neighbour entry maps the peer's gateway
//     to the peer's MAC, a permanent forwarding entry sends that MAC to the
//     peer's InternalIP, and the route "<podCIDR> via <gateway> dev <vxlan>
//     onlink" points at it. Traffic the node itself sends into the overlay
//     takes the gateway /32 as its source address. The device exists only while some peer
//     needs it, and its MTU is that of the interface holding NodeIP less the
//     50 bytes of encapsulation.
//
// Nodes whose InternalIP is an address of this machine, or whose podCIDR
// holds an address of a local interface (several agents in one network
// namespace), are skipped: they are reached directly. So are nodes whose
// podCIDR overlaps this node's own or that of a node earlier by name.
//
// Routes made here carry the route protocol number RouteProtocol (221) and
// are only ever made for destinations inside Config.ClusterCIDR; the two
// together identify them, so removal of stale routes and Cleanup never touch
// routes made by anyone else, including other Syncers sharing the network
// namespace with another cluster CIDR. Routes of deleted Nodes, or Nodes that
// lost their podCIDR, are removed; changed ones are replaced. A periodic
// resync repairs routes, neighbour and forwarding entries someone removed.
// Routes stay in place when the Syncer stops, so pods keep reaching each
// other across an agent restart; Cleanup removes them and the vxlan device.
//
// All kernel state is read and written with the iproute2 "ip" and "bridge"
// commands (JSON output), so the package needs no netlink library.
package routes
