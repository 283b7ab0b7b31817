package vfs

import (
	"context"
	"fmt"
	"io"

	"github.com/stowage/stowage/archive"
	"github.com/stowage/stowage/driver"
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
// DiffDir returns the directory holding layer id's files (driver.DiffDirGetter).
func (d *Driver) DiffDir(id string) (string, error) { return d.lookup(id) }

func (d *Driver) OpenFile(id, path string) (io.ReadCloser, error) {
	layerDir, err := d.lookup(id)
	if err != nil {
		return nil, err
	}
	f, err := driver.OpenRegularInRoot(layerDir, path, true)
	if err != nil {
		return nil, fmt.Errorf("vfs open %q in layer %s: %w", path, id, err)
	}
	return f, nil
}
