// Package vfs owns the vfs driver: every layer a full copy of its parent
// under G/vfs/dir/<id>, reflinked where the file system can.
//
// On-disk layout (see ../../../shared/spec/layers-and-drivers.md §3 and
// store-format.md §1.4), the same as containers/storage's vfs driver:
//
//	G/vfs/                home, mode 0700, owned by the mapped root
//	G/vfs/dir/<id>/       the complete root file system of layer <id>
//	G/vfs/tempdirs/       staging temp dirs (lock-<n>, temp-dir-<n>)
//	I/vfs/dir/<id>/       image (not ReadWrite) layers when a split image
//	                      store I is configured; I/vfs/tempdirs stages them
//	A/vfs/dir/<id>/       layers of a read-only additional image store A;
//	                      searched after G and I, never written
//
// Diffs, changes and diff sizes are computed naively by comparing a layer's
// tree with its parent's. The "mount point" of a layer is its directory;
// the only mount option accepted is "ro", and it is not enforced.
package vfs
