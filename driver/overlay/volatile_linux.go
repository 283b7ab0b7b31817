package overlay

import (
	"os"
	"path/filepath"
	"strconv"

	"github.com/stowage/stowage/staging"
)

// volatileFeature names the cached probe result in R/overlay
// ("volatile-true" / "volatile-false"), the file containers/storage uses.
const volatileFeature = "volatile"

// supportsVolatile reports whether the kernel accepts overlay's "volatile"
// option. It is probed once per driver (a test mount in a temp dir of the
// home) and the result cached in R/overlay, like SupportsShifting.
func (d *Driver) supportsVolatile() bool {
	d.volatileOnce.Do(func() { d.volatileOK = d.probeVolatile() })
	return d.volatileOK
}

// probeVolatile reads the cached probe result, else probes and caches it.
func (d *Driver) probeVolatile() bool {
	cache := func(ok bool) string {
		return filepath.Join(d.runHome, volatileFeature+"-"+strconv.FormatBool(ok))
	}
	if d.runHome != "" {
		for _, ok := range []bool{true, false} {
			if _, err := os.Stat(cache(ok)); err == nil {
				return ok
			}
		}
	}
	err := d.tryVolatile()
	ok := err == nil
	if d.runHome != "" && os.MkdirAll(d.runHome, 0o700) == nil {
		text := ""
		if err != nil {
			text = err.Error()
		}
		_ = os.WriteFile(cache(ok), []byte(text), 0o600) // only a cache: the probe runs again next time
	}
	return ok
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
