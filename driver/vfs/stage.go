package vfs

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/stowage/stowage/archive"
	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/internal/fsx"
)

// unpackOptions turns the driver-level apply options into archive options:
// naive whiteouts (deletions) and the ID maps of the layer.
func (d *Driver) unpackOptions(opts driver.ApplyOptions) archive.UnpackOptions {
	return driver.UnpackOptionsFor(opts, archive.WhiteoutDelete, "", d.ignoreChownErrors)
}

// StageDiff builds a new layer on parent in a staging temp dir under
// <base>/tempdirs (base: the home the layer will live in, see Create),
// without store locks: a root with the parent's mode and
// owner (else 0555 owned by the root of create's maps, else of the
// driver's), a copy of the parent's tree re-owned from create's parent
// maps to its maps when they differ (before the diff, whose entries are
// extracted in opts' maps), then blob unpacked into it with whiteouts
// applied as deletions.
//
// A parent that does not exist, or vanishes during the copy, is reported
// wrapping driver.ErrLayerUnknown. On any error, including a cancelled ctx,
// the temp dir is removed. On success the caller owns the Staged value and
// must either CommitStaged it or call its Cleanup.
func (d *Driver) StageDiff(ctx context.Context, parent string, blob io.Reader, opts driver.ApplyOptions, create driver.CreateOptions) (*driver.Staged, error) {
	uidMap, gidMap := driver.StageMaps(opts, create)
	parentDir, mode, uid, gid, err := d.rootAttrs(parent, uidMap, gidMap)
	if err != nil {
		return nil, err
	}
	base := d.homes.BaseFor(create.ReadWrite)
	shift := driver.ShiftFor(create)
	shift.ToUID, shift.ToGID = uidMap, gidMap
	return driver.StageTree(ctx, tempRoot(base), Name, blob, d.unpackOptions(opts), d.syncFor(create), opts.DeferFlush, func(dir string) error {
		if err := makeLayerRoot(ctx, dir, parentDir, mode, uid, gid, shift); err != nil {
			return fmt.Errorf("vfs stage on %q: %w", parent, err)
		}
		return nil
	})
}

// CommitStaged makes the staged tree s (already flushed by StageDiff) the
// layer id: it renames it to <base>/dir/<id> (failing if that exists), fsyncs
// <base>/dir and removes the staging temp dir. opts must be the
// CreateOptions given to StageDiff (ReadWrite picks the base, which must
// hold the staging dir: rename does not cross file systems). parent is
// unused: the staged tree already is the parent's copy with the diff applied.
//
// Locking: the store holds layers.lock for writing, or the layer's
// commit marker (layer.Store.LockCommit) and no store lock.
func (d *Driver) CommitStaged(ctx context.Context, id, parent string, s *driver.Staged, opts driver.CreateOptions) error {
	flush, err := d.CommitStagedDeferSync(ctx, id, parent, s, opts)
	if err == nil && flush != nil {
		err = flush(ctx)
	}
	return err
}

// CommitStagedDeferSync is CommitStaged returning the fsync of <base>/dir
// as flush instead of running it (driver.DeferredCommitter); flush is nil
// for a volatile layer, whose directory entry need not survive a crash.
//
// Locking: the store holds the layer's commit marker (layer.Store.LockCommit)
// and no store lock, or layers.lock for writing; flush needs none.
func (d *Driver) CommitStagedDeferSync(ctx context.Context, id, parent string, s *driver.Staged, opts driver.CreateOptions) (func(context.Context) error, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	if s == nil || s.Dir == "" {
		return nil, errors.New("vfs commit: no staged layer")
	}
	base := d.homes.BaseFor(opts.ReadWrite)
	if err := d.ensureLayersDir(base); err != nil {
		return nil, fmt.Errorf("vfs commit %s: %w", id, err)
	}
	target := layerDir(base, id)
	if err := driver.RenameNoReplace(s.Dir, target); err != nil {
		return nil, fmt.Errorf("vfs commit %s: %w", id, err)
	}
	// Commit point: the layer directory is visible to other processes.
	if s.Cleanup != nil {
		_ = s.Cleanup() // only an empty temp dir is left; stale recovery reclaims it
	}
	if opts.Volatile {
		return nil, nil
	}
	return func(ctx context.Context) error {
		if err := fsx.SyncDir(layersDir(base)); err != nil {
			return fmt.Errorf("vfs commit %s: the layer directory may not survive a crash: %w", id, err)
		}
		return nil
	}, nil
}

// ApplyDiff unpacks blob into the existing layer id in place (whiteouts as
// deletions). Only layers in the read-write homes can be written. On error
// the layer holds a partial diff; the store removes the layer.
func (d *Driver) ApplyDiff(ctx context.Context, id, parent string, blob io.Reader, opts driver.ApplyOptions) (archive.UnpackResult, error) {
	if err := checkID(id); err != nil {
		return archive.UnpackResult{}, err
	}
	dir, err := d.writableDir(id)
	if err != nil {
		return archive.UnpackResult{}, err
	}
	res, err := archive.Unpack(ctx, dir, blob, d.unpackOptions(opts))
	if err != nil {
		return res, fmt.Errorf("vfs apply diff to %s: %w", id, err)
	}
	if err := driver.FlushLayer(ctx, dir, d.sync, false); err != nil {
		return res, fmt.Errorf("vfs apply diff to %s: flushing: %w", id, err)
	}
	return res, nil
}

// syncFor is the sync mode for a new layer: none for volatile ones.
func (d *Driver) syncFor(create driver.CreateOptions) fsx.SyncMode {
	if create.Volatile {
		return fsx.SyncNone
	}
	return d.sync
}
