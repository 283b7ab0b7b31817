package register

import (
	"context"
	"fmt"

	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/driver/vfs"
)

// Names lists the drivers this build knows, in auto-detection order.
func Names() []string { return []string{"vfs"} }

// New constructs the named driver ("overlay2" means "overlay"). A name this
// build has no driver for fails wrapping driver.ErrDriverUnknown.
func New(ctx context.Context, name string, opts driver.Options) (driver.Driver, error) {
	if name == "overlay2" {
		name = "overlay"
	}
	switch name {
	case "vfs":
		return vfs.New(ctx, opts)
	}
	// TODO(overlay issue): register driver/overlay here.
	return nil, fmt.Errorf("%s: %w", name, driver.ErrDriverUnknown)
}
