// Package node holds the end-to-end tests of the node agent: a real
// server with its control plane and a real agent with its own containerd
// on this machine (as root), driven with client-go and the stock kubectl
// binaries. One cluster is shared by the subtests of each top-level test.
package node
