// Package agent is Skiff's node agent (`skiff agent`, and the agent that
// `skiff server` runs for its own machine): it joins the cluster, starts
// and supervises containerd, imports the local images, registers the Node
// and keeps its Lease, sets up the pod network (CNI on the node's podCIDR),
// serves the streaming API the API server proxies logs, exec, attach and
// port-forward to, and runs the node's pods (package agent/pods).
//
// Its parts live in subpackages: runtime (containerd), images, volumes,
// envvars, prober, pods, node and server; this package wires them.
package agent
