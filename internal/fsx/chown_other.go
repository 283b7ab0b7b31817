//go:build !linux

package fsx

import (
	"context"
	"fmt"
)

func shiftOwners(ctx context.Context, root string, m ShiftMaps) error {
	return fmt.Errorf("shift owners of %s: %w", root, ErrNotSupported)
}
