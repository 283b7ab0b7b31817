// Package register owns the mapping from driver names to constructors.
package register

import (
	"context"
	"fmt"

	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/driver/vfs"
)

// Names lists the drivers this build knows, in auto-detection order.
func Names() []string { return []string{"vfs"} }

// New constructs the named driver ("overlay2" means "overlay").
func New(ctx context.Context, name string, opts driver.Options) (driver.Driver, error) {
	switch name {
	case "vfs":
		return vfs.New(ctx, opts)
	}
	return nil, fmt.Errorf("%s: %w", name, driver.ErrDriverUnknown)
}
