package proxy

import (
	"cmp"
	"context"
	"fmt"

	"github.com/skiff-sh/skiff/internal/nftables"
)

// Cleanup removes everything the proxy programmed: its table (family ip,
// tableName, default "skiff-proxy"), with all chains, maps and sets in it.
// It succeeds when there is no such table.
func Cleanup(ctx context.Context, tableName string) error {
	if err := nftables.DeleteIPv4Table(ctx, cmp.Or(tableName, DefaultTableName)); err != nil {
		return fmt.Errorf("proxy cleanup: %w", err)
	}
	return nil
}
