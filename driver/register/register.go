package register

import (
	"context"
	"fmt"

	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/driver/overlay"
	"github.com/stowage/stowage/driver/vfs"
)

// Names lists the drivers this build knows, in auto-detection order:
// overlay first, as upstream prefers it, then vfs, which works anywhere.
func Names() []string { return []string{"overlay", "vfs"} }

// New constructs the named driver ("overlay2" means "overlay"). A name this
// build has no driver for fails wrapping driver.ErrDriverUnknown.
func New(ctx context.Context, name string, opts driver.Options) (driver.Driver, error) {
	if name == "overlay2" {
		name = "overlay"
	}
	switch name {
	case "vfs":
		return vfs.New(ctx, opts)
	case "overlay":
		return overlay.New(ctx, opts)
	}
	return nil, fmt.Errorf("%s: %w", name, driver.ErrDriverUnknown)
}
