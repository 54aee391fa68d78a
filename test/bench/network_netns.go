package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"time"

	"sigs.k8s.io/knftables"

	"github.com/skiff-sh/skiff/internal/netnstest"
)

// The proxy measurement programs nftables for real, but never the host's
// own ruleset: its rules live in a network namespace of the benchmark's
// own, entered by a netnstest.Thread. The namespace has no name and nothing
// else in it: it disappears with the thread, which ends when Close is
// called, or with the process, however that ends (Ctrl-C, a crash,
// SIGKILL), so nothing can be left behind on the host.

// newNetnsThread starts a thread in a new, empty network namespace.
func newNetnsThread() (*netnstest.Thread, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("needs root for a network namespace and nftables")
	}
	if _, err := exec.LookPath("nft"); err != nil {
		return nil, fmt.Errorf("needs the nft binary: %w", err)
	}
	return netnstest.Unshare()
}

// newNSNFT is a knftables.Interface for table ip table whose nft runs
// happen on th. After every successful Run it hands committed (when set)
// the transaction, the time the kernel had committed it and how long the
// nft run took, so the benchmark can tell when a change became live.
func newNSNFT(th *netnstest.Thread, table string, committed func(*knftables.Transaction, time.Time, time.Duration)) (*netnstest.NFT, error) {
	n, err := netnstest.OpenNFT(th, table)
	if err != nil {
		return nil, fmt.Errorf("nftables in the benchmark's namespace: %w", err)
	}
	n.Committed = committed
	return n, nil
}
