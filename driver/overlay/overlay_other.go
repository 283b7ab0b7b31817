//go:build !linux

package overlay

import (
	"context"
	"fmt"

	"github.com/stowage/stowage/driver"
)

// Name is the driver name recorded on disk.
const Name = "overlay"

// New fails: the overlay driver is Linux-only.
func New(ctx context.Context, opts driver.Options) (driver.Driver, error) {
	return nil, fmt.Errorf("overlay: %w", driver.ErrNotSupported)
}
