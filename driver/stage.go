package driver

import (
	"github.com/stowage/stowage/archive"
	"github.com/stowage/stowage/internal/idmap"
)

// StageMaps returns the mappings a staged layer's root is owned in:
// create's, else (when create has none) the apply options'.
func StageMaps(opts ApplyOptions, create CreateOptions) (uidMap, gidMap []idmap.IDMap) {
	if len(create.UIDMap) == 0 && len(create.GIDMap) == 0 {
		return opts.UIDMap, opts.GIDMap
	}
	return create.UIDMap, create.GIDMap
}

// UnpackOptionsFor turns driver-level apply options into archive options:
// opts.Unpack with the layer's ID maps, the driver's whiteout format and
// opaque-directory xattr ("" for none), and chown errors ignored when
// opts or the driver (driverIgnoresChown) says so.
func UnpackOptionsFor(opts ApplyOptions, whiteouts archive.WhiteoutFormat, opaqueXattr string, driverIgnoresChown bool) archive.UnpackOptions {
	u := opts.Unpack
	u.UIDMap, u.GIDMap = opts.UIDMap, opts.GIDMap
	u.Whiteouts = whiteouts
	u.OpaqueXattr = opaqueXattr
	u.IgnoreChownErrors = opts.IgnoreChownErrors || driverIgnoresChown
	return u
}
