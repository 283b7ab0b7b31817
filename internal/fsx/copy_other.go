//go:build !linux

package fsx

import (
	"context"
	"fmt"
)

func copyTree(ctx context.Context, dst, src string) error {
	return fmt.Errorf("copy %s: %w", src, ErrNotSupported)
}
