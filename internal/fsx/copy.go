package fsx

import "context"

// CopyTree copies the tree at src into the existing empty directory dst.
//
// Every entry is copied: regular files are reflinked where the file system
// can (FICLONE), else copied with copy_file_range, else with read/write;
// hard links inside the tree stay hard links; symlinks are recreated;
// character and block devices and fifos are made with mknod (devices are
// skipped where mknod is not permitted, as in a user namespace); sockets
// are skipped. Owners (lchown), permission bits, the xattrs
// security.capability, user.* and (as root) trusted.overlay.opaque, and
// access/modification times are copied; src's own metadata is applied to
// dst. Directory metadata is applied after the directory's children, so
// their creation does not disturb the directory's times.
//
// ctx is checked between entries. On error or cancellation dst holds a
// partial copy that the caller owns removing. Sparse files are preserved
// only as far as the kernel's clone or copy_file_range keeps holes.
func CopyTree(ctx context.Context, dst, src string) error {
	return copyTree(ctx, dst, src)
}
