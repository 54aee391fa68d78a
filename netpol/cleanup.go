package netpol

import (
	"cmp"
	"context"
	"fmt"

	"github.com/skiff-sh/skiff/internal/nftables"
)

// Cleanup removes the enforcer's table (family ip, tableName, default
// "skiff-netpol") with everything in it; pods are then unpoliced. It
// succeeds when there is no such table.
func Cleanup(ctx context.Context, tableName string) error {
	if err := nftables.DeleteIPv4Table(ctx, cmp.Or(tableName, DefaultTableName)); err != nil {
		return fmt.Errorf("netpol cleanup: %w", err)
	}
	return nil
}
