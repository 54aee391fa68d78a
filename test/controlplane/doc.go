// Package controlplane tests Skiff's control plane as a user meets it: a
// real server running its scheduler and controllers, simulated nodes from
// package sim, and the outcomes in the API.
package controlplane
