package overlay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/stowage/stowage/archive"
	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/internal/fsx"
)

// opaqueXattr is the xattr marking an opaque directory.
func (d *Driver) opaqueXattr() string {
	if d.rootless {
		return "user.overlay.opaque"
	}
	return "trusted.overlay.opaque"
}

// unpackOptions turns apply options into archive options: overlay
// whiteouts (char 0/0 devices, opaque xattrs) and the layer's maps.
func (d *Driver) unpackOptions(opts driver.ApplyOptions) archive.UnpackOptions {
	return driver.UnpackOptionsFor(opts, archive.WhiteoutOverlay, d.opaqueXattr(), d.ignoreChownErrors)
}

// StageDiff extracts blob, without store locks, into a staged diff dir
// under <base>/tempdirs (base: where the layer will live), created with
// the final mode and owner of the layer's diff (the parent's diff's, else
// 0555 owned by the mapped root), with overlay whiteouts, then flushes
// the file system. A missing parent wraps driver.ErrLayerUnknown. On any
// error, including a cancelled ctx, the temp dir is removed.
func (d *Driver) StageDiff(ctx context.Context, parent string, blob io.Reader, opts driver.ApplyOptions, create driver.CreateOptions) (*driver.Staged, error) {
	uidMap, gidMap := driver.StageMaps(opts, create)
	mode, uid, gid, err := d.diffAttrs(parent, uidMap, gidMap)
	if err != nil {
		return nil, err
	}
	// Over a parent owned in other maps, the root starts as the parent's
	// re-owned, as reown leaves the layer's diff1.
	shift := driver.ShiftFor(create)
	shift.ToUID, shift.ToGID = uidMap, gidMap
	if parent != "" && !shift.Identity() {
		if uid, gid, err = shift.Remap(uid, gid); err != nil {
			if uid, gid, err = rootPair(uidMap, gidMap); err != nil {
				return nil, err
			}
		}
	}
	base := d.homes.BaseFor(create.ReadWrite)
	if err := d.makeHome(base); err != nil {
		return nil, err
	}
	return driver.StageTree(ctx, tempRoot(base), Name, blob, d.unpackOptions(opts), d.syncFor(create), opts.DeferFlush, func(dir string) error {
		if err := driver.MkdirOwned(dir, mode, uid, gid); err != nil {
			return fmt.Errorf("overlay stage: %w", err)
		}
		return nil
	})
}

// CommitStaged makes s layer id on parent: Create's layout without diff
// (with diff1 when the parent's view is re-owned, see Create), then the
// staged dir renamed to H/<id>/diff (never replacing), then the layout
// flushed (syncLayout). opts must be StageDiff's CreateOptions (ReadWrite
// picks the home that holds the staging dir). On error nothing of id
// remains.
//
// Locking: layers.lock held for writing (by the store).
func (d *Driver) CommitStaged(ctx context.Context, id, parent string, s *driver.Staged, opts driver.CreateOptions) error {
	flush, err := d.CommitStagedDeferSync(ctx, id, parent, s, opts)
	if err == nil && flush != nil {
		if err = flush(ctx); err != nil {
			_ = d.removeIn(d.homes.BaseFor(opts.ReadWrite), id) // the flush error is what the caller needs
		}
	}
	return err
}

// CommitStagedDeferSync is CommitStaged returning the layout's flushes as
// flush instead of running them (driver.DeferredCommitter): the link,
// lower and lower-layers files are written unflushed, and flush
// fdatasyncs them and fsyncs H/<id>, H/l and H, all at once (none of them
// is reachable through a record before flush returns, so they need no
// order among themselves). flush is nil for a volatile layer. On error
// nothing of id remains; if flush fails the caller removes the layer.
//
// Locking: layers.lock held for writing (by the store); flush needs none.
func (d *Driver) CommitStagedDeferSync(ctx context.Context, id, parent string, s *driver.Staged, opts driver.CreateOptions) (func(context.Context) error, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	if s == nil || s.Dir == "" {
		return nil, errors.New("overlay commit: no staged layer")
	}
	base := d.homes.BaseFor(opts.ReadWrite)
	if _, err := os.Lstat(filepath.Join(base, id)); err == nil {
		return nil, fmt.Errorf("overlay commit %s: %w", id, os.ErrExist)
	}
	reown := needsReown(parent, opts)
	files, err := d.create(ctx, id, parent, opts, reown, false)
	if err != nil {
		return nil, fmt.Errorf("overlay commit %s: %w", id, err)
	}
	diff := filepath.Join(base, id, diffName)
	if reown {
		// The parent's view, re-owned, goes to diff1 under the staged diff.
		err := d.reownIfNeeded(ctx, base, id, parent, opts)
		if err == nil {
			err = os.Remove(diff)
		}
		if err != nil {
			_ = d.removeIn(base, id) // err is what the caller needs
			return nil, fmt.Errorf("overlay commit %s: %w", id, err)
		}
	}
	if err := driver.RenameNoReplace(s.Dir, diff); err != nil {
		_ = d.removeIn(base, id) // the error below is what the caller needs
		return nil, fmt.Errorf("overlay commit %s: %w", id, err)
	}
	// Commit point: the layer's files are in place for other processes.
	if s.Cleanup != nil {
		_ = s.Cleanup() // only an empty temp dir is left; stale recovery reclaims it
	}
	if opts.Volatile {
		return nil, nil
	}
	return func(ctx context.Context) error {
		if err := fsx.SyncConcurrently(ctx, files, layoutDirs(base, id)); err != nil {
			return fmt.Errorf("overlay commit %s: the layer may not survive a crash: %w", id, err)
		}
		return nil
	}, nil
}

// ApplyDiff unpacks blob into the diff of the existing layer id in place
// (overlay whiteouts). Only layers of the read-write homes are written. On
// error the diff holds a partial tree; the store removes the layer.
func (d *Driver) ApplyDiff(ctx context.Context, id, parent string, blob io.Reader, opts driver.ApplyOptions) (archive.UnpackResult, error) {
	dir, writable, err := d.lookup(id)
	if err != nil {
		return archive.UnpackResult{}, err
	}
	if !writable {
		return archive.UnpackResult{}, fmt.Errorf("overlay apply diff to %s: layer of a read-only store: %w", id, driver.ErrNotSupported)
	}
	res, err := archive.Unpack(ctx, filepath.Join(dir, diffName), blob, d.unpackOptions(opts))
	if err != nil {
		return res, fmt.Errorf("overlay apply diff to %s: %w", id, err)
	}
	if err := driver.FlushLayer(ctx, filepath.Join(dir, diffName), d.sync, false); err != nil {
		return res, fmt.Errorf("overlay apply diff to %s: flushing: %w", id, err)
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

// layoutDirs lists the directories whose entries make a layer's layout
// durable: H/<id> (diff, link, lower files), H/l (its link) and H (the
// layer directory itself).
func layoutDirs(base, id string) []string {
	return []string{filepath.Join(base, id), filepath.Join(base, linkDir), base}
}

// syncLayout fsyncs H/<id>, H/l and H, in that order: the entries of the
// layer's layout, its l/ link and the layer directory itself. The small
// files of the layout were flushed when written (writeFileOwned).
func syncLayout(base, id string) error {
	for _, dir := range layoutDirs(base, id) {
		if err := fsx.SyncDir(dir); err != nil {
			return err
		}
	}
	return nil
}
