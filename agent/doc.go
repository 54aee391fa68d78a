// Package agent is Skiff's node agent (`skiff agent`, and the agent that
// `skiff server` runs for its own machine): it joins the cluster, starts
// and supervises containerd, imports the local images, registers the Node
// and keeps its Lease, sets up the pod network (CNI on the node's podCIDR),
// serves the streaming API the API server proxies logs, exec, attach and
// port-forward to, and runs the node's pods (package agent/pods).
//
// It also runs the node's service networking (network.go): the service
// proxy (package proxy), the cluster DNS server on the pod bridge's gateway
// with its kube-dns endpoint (dns.go, package clusterdns), routes to the
// other nodes' pods (agent/routes), NetworkPolicy (package netpol) and the
// ingress controller (package ingress).
//
// Its parts live in subpackages: runtime (containerd), images, volumes,
// envvars, prober, pods, node, server and routes; this package wires them.
package agent
