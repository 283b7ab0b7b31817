//go:build !linux

package fsx

import (
	"context"
	"fmt"
)

func shiftOwners(ctx context.Context, root string, remap Remap, perName bool) error {
	return fmt.Errorf("shift owners of %s: %w", root, ErrNotSupported)
}
