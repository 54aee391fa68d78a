package netnstest

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/knftables"
)

// NFT is a knftables.Interface for one table of family ip whose nft runs
// happen on a Thread, so inside its namespace.
type NFT struct {
	th    *Thread
	inner knftables.Interface

	// Committed, when set, is called after every successful Run with the
	// transaction, the time nft returned (the kernel had committed it by
	// then) and how long the nft run took.
	Committed func(tx *knftables.Transaction, at time.Time, took time.Duration)
}

var _ knftables.Interface = (*NFT)(nil)

// OpenNFT makes an NFT for table ip table inside th's namespace.
func OpenNFT(th *Thread, table string) (*NFT, error) {
	n := &NFT{th: th}
	var err error
	th.Do(func() { n.inner, err = knftables.New(knftables.IPv4Family, table) })
	if err != nil {
		return nil, err
	}
	return n, nil
}

// NewNFT is OpenNFT that fails the test on error.
func NewNFT(t testing.TB, th *Thread, table string) *NFT {
	t.Helper()
	n, err := OpenNFT(th, table)
	if err != nil {
		t.Fatalf("knftables in namespace: %v", err)
	}
	return n
}

// NewTransaction implements knftables.Interface.
func (n *NFT) NewTransaction() *knftables.Transaction { return n.inner.NewTransaction() }

// Run implements knftables.Interface.
func (n *NFT) Run(ctx context.Context, tx *knftables.Transaction) (err error) {
	var start, at time.Time
	n.th.Do(func() {
		start = time.Now()
		err = n.inner.Run(ctx, tx)
		at = time.Now()
	})
	if err == nil && n.Committed != nil {
		n.Committed(tx, at, at.Sub(start))
	}
	return err
}

// Check implements knftables.Interface.
func (n *NFT) Check(ctx context.Context, tx *knftables.Transaction) (err error) {
	n.th.Do(func() { err = n.inner.Check(ctx, tx) })
	return err
}

// ListAll implements knftables.Interface.
func (n *NFT) ListAll(ctx context.Context) (m map[string][]string, err error) {
	n.th.Do(func() { m, err = n.inner.ListAll(ctx) })
	return m, err
}

// List implements knftables.Interface.
func (n *NFT) List(ctx context.Context, typ string) (l []string, err error) {
	n.th.Do(func() { l, err = n.inner.List(ctx, typ) })
	return l, err
}

// ListRules implements knftables.Interface.
func (n *NFT) ListRules(ctx context.Context, chain string) (r []*knftables.Rule, err error) {
	n.th.Do(func() { r, err = n.inner.ListRules(ctx, chain) })
	return r, err
}

// ListElements implements knftables.Interface.
func (n *NFT) ListElements(ctx context.Context, typ, name string) (e []*knftables.Element, err error) {
	n.th.Do(func() { e, err = n.inner.ListElements(ctx, typ, name) })
	return e, err
}

// ListCounters implements knftables.Interface.
func (n *NFT) ListCounters(ctx context.Context) (c []*knftables.Counter, err error) {
	n.th.Do(func() { c, err = n.inner.ListCounters(ctx) })
	return c, err
}

// HostHasTableContext reports whether the ruleset of the caller's own
// namespace (the machine's, outside a Thread) has table ip table: code
// under test must program its namespace, never the machine.
func HostHasTableContext(ctx context.Context, table string) (bool, error) {
	var stderr strings.Builder
	cmd := exec.CommandContext(ctx, "nft", "list", "tables")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return false, fmt.Errorf("nft list tables: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.TrimSpace(line) == "table ip "+table {
			return true, nil
		}
	}
	return false, nil
}

// HostHasTable is HostHasTableContext that fails the test on error.
func HostHasTable(t testing.TB, table string) bool {
	t.Helper()
	on, err := HostHasTableContext(context.Background(), table)
	if err != nil {
		t.Fatal(err)
	}
	return on
}
