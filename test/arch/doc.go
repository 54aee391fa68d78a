// Package arch holds tests that keep Skiff's architecture honest: every
// package says what it is, and only the API server and the assembly touch
// the store; everything else is an API client.
package arch
