// Package e2e holds end-to-end tests of kubectl flows against a real Skiff
// server. Every flow runs once per kubectl client: the kubectl embedded in
// the skiff binary (skiff kubectl) and stock kubectl 1.27 and 1.33 binaries.
// Each test function starts its own server, and each client works in its
// own namespace with a private HOME and discovery cache. The package has no
// non-test code; this file only documents it.
package e2e
