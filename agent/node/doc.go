// Package node keeps the agent's Node object: it registers the node with
// its capacity, addresses and system info, renews the node's Lease every
// 10 seconds (the heartbeat the node lifecycle controller watches), and
// reports the Ready, MemoryPressure, DiskPressure and PIDPressure
// conditions, writing the status when it changes and at least every five
// minutes, as the kubelet does.
package node
