package netpol

import (
	"context"
	"fmt"

	"sigs.k8s.io/knftables"
)

// Cleanup removes the enforcer's table (family ip, tableName, default
// "skiff-netpol") with everything in it; pods are then unpoliced. It
// succeeds when there is no such table.
func Cleanup(ctx context.Context, tableName string) error {
	if tableName == "" {
		tableName = DefaultTableName
	}
	nft, err := knftables.New(knftables.IPv4Family, tableName)
	if err != nil {
		return fmt.Errorf("netpol cleanup: nftables unavailable: %w", err)
	}
	return cleanup(ctx, nft, tableName)
}

func cleanup(ctx context.Context, nft knftables.Interface, tableName string) error {
	// "add" then "delete" in one transaction works whether or not the table
	// exists (nft's "destroy" needs nft 1.0.8 and kernel 6.3).
	tx := nft.NewTransaction()
	tx.Add(&knftables.Table{})
	tx.Delete(&knftables.Table{})
	if err := nft.Run(ctx, tx); err != nil {
		return fmt.Errorf("netpol cleanup: deleting table ip %s: %w", tableName, err)
	}
	return nil
}
