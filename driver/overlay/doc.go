// Package overlay is the overlay storage driver: per-layer directories
// under the driver home H (G/overlay) in the on-disk format of
// containers/storage (v1.43 and upstream main), mounted with the kernel's
// overlay file system.
//
// Per-layer layout (H/<id>/, see layers-and-drivers.md §1.2-1.4):
//
//	diff/         the layer's files (overlay upper or lower); mode and owner
//	              are the parent's diff's, else 0555 owned by the mapped root
//	work/ 0700    overlay workdir
//	merged/ 0700  mountpoint
//	link          26-character short name, no newline; H/l/<link> is a
//	              symlink to ../<id>/diff
//	empty/ 0700   base layers only: the lowerdir when there are no lowers
//	lower         parents as l/<link> joined by ':', nearest first (what
//	              v1.43 and podman 4.3 read)
//	lower-layers  parent IDs joined by ':', nearest first (what upstream
//	              reads first)
//	diff1/ ...    only in a layer whose maps differ from its parent's: the
//	              parent's view re-owned into the layer's maps (v1.43's
//	              UpdateLayerIDMap layout), stacked under diff
//	mapped/<n>/   idmapped clones of the homes, mounted only while a
//	              container's overlay is being made (then detached)
//
// New layers always get both lower files, and they always agree. Lowers
// are read from lower-layers, else from lower through the l/ symlinks, so
// layers written by v1.43 work.
//
// Mounts go through the new mount API (fsopen, one "lowerdir+" per lower,
// fsmount, move_mount), so chains up to the kernel's 500 lowers mount
// without the page-size limit of mount(2) option strings; without fsopen a
// classic mount(2) is used. The home is bind-mounted onto itself and made
// private at construction (unless skip_mount_home=true) and unmounted by
// Cleanup.
//
// ID mappings (idmap_linux.go): with idmapped lowers (SupportsShifting:
// root, the kernel can, _CONTAINERS_OVERLAY_DISABLE_IDMAP is not "yes")
// a container's lowers are shown through its maps at mount time and
// layers stay unmapped on disk; otherwise a child whose maps differ from
// its parent's re-owns the parent's view into diff1.
//
// Whiteouts are stored the overlay way (char 0/0 devices, the opaque xattr
// trusted.overlay.opaque, or user.overlay.opaque when rootless) and turned
// back into AUFS ".wh." entries by Diff.
package overlay
