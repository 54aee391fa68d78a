// Package integration tests Skiff's API server end to end: real servers
// started by test/framework (on embedded etcd, or on an external etcd the
// test runs), reached over HTTPS with client-go and with raw HTTP, and the
// state of the world checked after each request — in the API, and where it
// matters straight in etcd.
//
// The package holds no production code; everything lives in its _test.go
// files, grouped by concept: informers across a restart, watch semantics,
// list pagination and selectors, object semantics, deletion, services,
// secrets at rest, table output, bad input, health and metrics, and the two
// etcd modes.
package integration
