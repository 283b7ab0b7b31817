package vfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/stowage/stowage/archive"
)

// dirs returns the directories of id and of parent ("" for no parent).
func (d *Driver) dirs(id, parent string) (layerDir, parentDir string, err error) {
	if layerDir, err = d.lookup(id); err != nil {
		return "", "", err
	}
	if parent != "" {
		if parentDir, err = d.lookup(parent); err != nil {
			return "", "", err
		}
	}
	return layerDir, parentDir, nil
}

// Changes compares the tree of id with its parent's (naively).
func (d *Driver) Changes(ctx context.Context, id, parent string) ([]archive.Change, error) {
	layerDir, parentDir, err := d.dirs(id, parent)
	if err != nil {
		return nil, err
	}
	changes, err := archive.ChangesDirs(ctx, layerDir, parentDir)
	if err != nil {
		return nil, fmt.Errorf("vfs changes of %s: %w", id, err)
	}
	return changes, nil
}

// Diff writes an uncompressed tar of the changes of id against parent:
// the naive diff (ChangesDirs then ExportChanges). It is a correct diff but
// not the original tar (the store reassembles that from tar-split).
func (d *Driver) Diff(ctx context.Context, w io.Writer, id, parent string, opts archive.ExportOptions) error {
	layerDir, parentDir, err := d.dirs(id, parent)
	if err != nil {
		return err
	}
	changes, err := archive.ChangesDirs(ctx, layerDir, parentDir)
	if err != nil {
		return fmt.Errorf("vfs diff of %s: %w", id, err)
	}
	if err := archive.ExportChanges(ctx, w, layerDir, changes, opts); err != nil {
		return fmt.Errorf("vfs diff of %s: %w", id, err)
	}
	return nil
}

// DiffSize sums the sizes of the non-directory paths id adds or modifies
// relative to parent (hard links counted once).
func (d *Driver) DiffSize(ctx context.Context, id, parent string) (int64, error) {
	layerDir, parentDir, err := d.dirs(id, parent)
	if err != nil {
		return 0, err
	}
	changes, err := archive.ChangesDirs(ctx, layerDir, parentDir)
	if err != nil {
		return 0, fmt.Errorf("vfs diff size of %s: %w", id, err)
	}
	n, err := archive.ChangesSize(layerDir, changes)
	if err != nil {
		return 0, fmt.Errorf("vfs diff size of %s: %w", id, err)
	}
	return n, nil
}

// OpenFile opens the regular file at path (a tar name such as
// "./etc/passwd" or "etc/passwd") inside layer id. Resolution is confined
// to the layer directory: ".." and symlinks, absolute ones included, cannot
// leave it. Anything but a regular file is refused.
func (d *Driver) OpenFile(id, path string) (io.ReadCloser, error) {
	layerDir, err := d.lookup(id)
	if err != nil {
		return nil, err
	}
	rel := strings.TrimPrefix(filepath.Clean("/"+path), "/")
	if rel == "" {
		return nil, fmt.Errorf("vfs open %q in layer %s: not a regular file", path, id)
	}
	f, err := openInRoot(layerDir, rel)
	if err != nil {
		return nil, fmt.Errorf("vfs open %q in layer %s: %w", path, id, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("vfs open %q in layer %s: not a regular file", path, id)
	}
	return f, nil
}

// openInRoot opens rel (clean, relative) for reading with every path
// component resolved inside root. O_NONBLOCK keeps a fifo from blocking the
// open; it has no effect on regular files.
func openInRoot(root, rel string) (*os.File, error) {
	rootFd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: root, Err: err}
	}
	defer unix.Close(rootFd)
	const flags = unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOCTTY | unix.O_NONBLOCK
	how := unix.OpenHow{Flags: flags, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV}
	fd, err := unix.Openat2(rootFd, rel, &how)
	if errors.Is(err, unix.ENOSYS) {
		fd, err = openNoFollow(rootFd, rel, flags)
	}
	if err != nil {
		return nil, &os.PathError{Op: "openat2", Path: rel, Err: err}
	}
	return os.NewFile(uintptr(fd), filepath.Join(root, rel)), nil
}

// openNoFollow is the fallback for kernels without openat2: it walks rel
// one component at a time refusing every symlink, which is stricter than
// RESOLVE_IN_ROOT but never escapes.
func openNoFollow(rootFd int, rel string, flags int) (int, error) {
	parts := strings.Split(rel, "/")
	cur := rootFd
	for i, p := range parts {
		last := i == len(parts)-1
		fl := unix.O_PATH | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
		if last {
			fl = flags | unix.O_NOFOLLOW
		}
		fd, err := unix.Openat(cur, p, fl, 0)
		if cur != rootFd {
			unix.Close(cur)
		}
		if err != nil {
			return -1, err
		}
		cur = fd
	}
	return cur, nil
}
