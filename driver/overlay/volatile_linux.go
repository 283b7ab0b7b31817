package overlay

import (
	"os"
	"path/filepath"

	"github.com/stowage/stowage/staging"
)

// volatileFeature names the cached probe result in R/overlay
// ("volatile-true" / "volatile-false"), the file containers/storage uses.
const volatileFeature = "volatile"

// supportsVolatile reports whether the kernel accepts overlay's "volatile"
// option. It is probed once per driver (a test mount in a temp dir of the
// home) and the result cached in R/overlay, like SupportsShifting.
func (d *Driver) supportsVolatile() bool {
	d.volatileOnce.Do(func() { d.volatileOK = d.probeCached(volatileFeature, d.tryVolatile) })
	return d.volatileOK
}

// tryVolatile mounts, in a temp dir of the home, an overlay with the
// "volatile" option.
func (d *Driver) tryVolatile() error {
	tmp, err := staging.New(tempRoot(d.homes.Home))
	if err != nil {
		return err
	}
	defer tmp.Cleanup()
	dir := tmp.Addition()
	for _, n := range []string{"", "lower", "upper", "work", "merged"} {
		if err := os.Mkdir(filepath.Join(dir, n), 0o700); err != nil {
			return err
		}
	}
	merged := filepath.Join(dir, "merged")
	plan := mountPlan{Lowers: []string{filepath.Join(dir, "lower")}, Upper: filepath.Join(dir, "upper"), Work: filepath.Join(dir, "work"), Data: []string{"index=off", "volatile"}}
	if err := d.mount(plan, merged); err != nil {
		return err
	}
	return unmount(merged)
}
