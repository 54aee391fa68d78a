// Package nftables holds what Skiff's owners of an nftables table (the
// service proxy and the network policy enforcer, each with a table of its
// own) do the same way: naming the chains and sets made for API objects,
// and deleting the whole table.
package nftables

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"strings"

	"sigs.k8s.io/knftables"
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// maxReadable bounds the readable part of an object name, which keeps names
// within what nft accepts.
const maxReadable = 160

// ObjectName builds a chain or set name: prefix, a hash of the full
// identity (so names never collide, even once shortened) and the readable
// identity itself, shortened if need be.
func ObjectName(prefix, identity string) string {
	sum := sha256.Sum256([]byte(identity))
	h := strings.ToLower(b32.EncodeToString(sum[:])[:10])
	if len(identity) > maxReadable {
		identity = identity[:maxReadable]
	}
	return prefix + h + "-" + identity
}

// DestroyTable adds to tx the deletion of its table with everything in it,
// whether or not the table exists: an "add" then a "delete" in the one
// transaction, which needs neither nft's "destroy" (nft 1.0.8) nor a
// kernel that knows it (6.3). Whatever tx does afterwards starts from no
// table.
func DestroyTable(tx *knftables.Transaction) {
	tx.Add(&knftables.Table{})
	tx.Delete(&knftables.Table{})
}

// DeleteTable deletes nft's table, table ip name, with everything in it;
// it succeeds when there is no such table.
func DeleteTable(ctx context.Context, nft knftables.Interface, name string) error {
	tx := nft.NewTransaction()
	DestroyTable(tx)
	if err := nft.Run(ctx, tx); err != nil {
		return fmt.Errorf("deleting table ip %s: %w", name, err)
	}
	return nil
}

// DeleteIPv4Table deletes table ip name from the ruleset of the calling
// thread's network namespace, as DeleteTable does.
func DeleteIPv4Table(ctx context.Context, name string) error {
	nft, err := knftables.New(knftables.IPv4Family, name)
	if err != nil {
		return fmt.Errorf("nftables unavailable: %w", err)
	}
	return DeleteTable(ctx, nft, name)
}
