package overlay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

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

// StageDiff extracts blob, without store locks, into a staged layer
// directory under <base>/tempdirs (base: where the layer will live): the
// whole of what Create makes in H/<id> except the l/ symlink (owner and
// mode of H/<id>, link, work, merged, and empty or lower and lower-layers
// for parent), with diff/ created with the final mode and owner of the
// layer's diff (the parent's diff's, else 0555 owned by the mapped root)
// and holding the extracted files, with overlay whiteouts. Staged.Dir is
// the diff; the flush (here, or Staged.Flush when deferred) covers the
// whole staged directory, so CommitStaged is one rename and the l/ link.
// A missing parent wraps driver.ErrLayerUnknown. On any error, including
// a cancelled ctx, the temp dir is removed.
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
	in, err := d.layoutFor(parent)
	if err != nil {
		return nil, err
	}
	if in.Link, err = newLink(); err != nil {
		return nil, err
	}
	ruid, rgid, err := rootPair(create.UIDMap, create.GIDMap)
	if err != nil {
		return nil, err
	}
	base := d.homes.BaseFor(create.ReadWrite)
	if err := d.makeHome(base); err != nil {
		return nil, err
	}
	return driver.StageTreeIn(ctx, tempRoot(base), Name, blob, d.unpackOptions(opts), d.syncFor(create), opts.DeferFlush, func(dir string) (string, error) {
		diff := filepath.Join(dir, diffName)
		err := unix.Mkdir(dir, 0o700)
		if err != nil {
			err = &os.PathError{Op: "mkdir", Path: dir, Err: err}
		}
		if err == nil {
			err = driver.LchownIfNeeded(dir, ruid, rgid)
		}
		if err == nil {
			err = driver.MkdirOwned(diff, mode, uid, gid)
		}
		if err == nil {
			_, err = writeLayout(dir, planLayout(in), ruid, rgid, false) // flushed with the tree
		}
		if err != nil {
			return "", fmt.Errorf("overlay stage: %w", err)
		}
		return diff, nil
	})
}

// CommitStaged makes s layer id on parent (see CommitStagedDeferSync),
// then flushes what the commit changed. opts must be StageDiff's
// CreateOptions (ReadWrite picks the home that holds the staging dir). On
// error nothing of id remains.
//
// Locking: the store holds layers.lock for writing, or the layer's
// commit marker (layer.Store.LockCommit) and no store lock.
func (d *Driver) CommitStaged(ctx context.Context, id, parent string, s *driver.Staged, opts driver.CreateOptions) error {
	flush, err := d.CommitStagedDeferSync(ctx, id, parent, s, opts)
	if err == nil && flush != nil {
		if err = flush(ctx); err != nil {
			_ = d.removeIn(d.homes.BaseFor(opts.ReadWrite), id) // the flush error is what the caller needs
		}
	}
	return err
}

// CommitStagedDeferSync is CommitStaged returning the commit's flushes as
// flush instead of running them (driver.DeferredCommitter). The staged
// layer directory (StageDiff) is renamed to H/<id> (never replacing),
// then the l/ symlink is made: flush fsyncs H and H/l. When the layer was
// staged on another parent than parent (a pull names it at Commit, see
// ReparentStaged), the staged empty or lower and lower-layers are first
// rewritten for parent, unflushed, and flush also fdatasyncs them and
// fsyncs H/<id>. When the parent's files must be re-owned (see Create) the
// layout is made in H/<id> as Create does and the staged diff renamed
// into it, with the same flushes as Create's. None of these is reachable
// through a record before flush returns, so they need no order among
// themselves. flush is nil for a volatile layer. On error nothing of id
// remains; if flush fails the caller removes the layer.
//
// Locking: the store holds the layer's commit marker (layer.Store.LockCommit)
// and no store lock, or layers.lock for writing; flush needs none.
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
	var files, dirs []string
	var err error
	if needsReown(parent, opts) {
		files, err = d.commitInPlace(ctx, base, id, parent, s, opts)
		dirs = layoutDirs(base, id)
	} else {
		files, dirs, err = d.commitLayout(base, id, parent, s, opts)
	}
	if err != nil {
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
		if err := fsx.SyncConcurrently(ctx, files, dirs); err != nil {
			return fmt.Errorf("overlay commit %s: the layer may not survive a crash: %w", id, err)
		}
		return nil
	}, nil
}

// commitLayout renames the layer directory StageDiff staged around s.Dir
// to base/<id>, after rewriting its lowers when it was staged on another
// parent, then makes its l/ symlink. It returns the files and directories
// to flush. On error nothing of id remains.
func (d *Driver) commitLayout(base, id, parent string, s *driver.Staged, opts driver.CreateOptions) (files, dirs []string, err error) {
	staged := filepath.Dir(s.Dir)
	if filepath.Base(s.Dir) != diffName {
		return nil, nil, fmt.Errorf("staged diff %s is not in a staged layer directory: %w", s.Dir, ErrBadLayout)
	}
	b, err := os.ReadFile(filepath.Join(staged, linkFile))
	if err != nil {
		return nil, nil, fmt.Errorf("staged layer: %w", err)
	}
	link := strings.TrimSpace(string(b))
	if !validLinkName(link) {
		return nil, nil, fmt.Errorf("staged layer: link %q: %w", link, ErrBadLayout)
	}
	dir := filepath.Join(base, id)
	dirs = []string{filepath.Join(base, linkDir), base}
	if files, err = d.reparentLayout(staged, parent, opts); err != nil {
		return nil, nil, err
	}
	if len(files) > 0 {
		dirs = append(dirs, dir)
	}
	if err := driver.RenameNoReplace(staged, dir); err != nil {
		return nil, nil, err
	}
	// The l/ symlink comes after the link file that names it is in place,
	// so that a process killed at any point leaves nothing removeIn cannot
	// find. It is not made at staging: a l/ entry whose target has no
	// layer directory yet would be an error to containers-storage 1.43,
	// whose link repair (recreateSymlinks) writes the target's link file
	// for every l/ entry it reads and fails the mount when it cannot.
	for i := range files {
		files[i] = filepath.Join(dir, filepath.Base(files[i]))
	}
	if err := os.Symlink(linkTarget(id), filepath.Join(base, linkDir, link)); err != nil {
		_ = d.removeIn(base, id) // err is what the caller needs
		return nil, nil, err
	}
	return files, dirs, nil
}

// reparentLayout rewrites the parent-dependent entries (empty, or lower
// and lower-layers) of the staged layer directory staged when it was
// staged on another parent than parent, unflushed, and returns the files
// written (none when the staged ones already name parent).
func (d *Driver) reparentLayout(staged, parent string, opts driver.CreateOptions) ([]string, error) {
	var was string
	b, err := os.ReadFile(filepath.Join(staged, lowerLayersFile))
	switch {
	case err == nil:
		ids, err := parseLowerLayers(string(b))
		if err != nil {
			return nil, fmt.Errorf("staged layer: %w", err)
		}
		if len(ids) > 0 {
			was = ids[0]
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("staged layer: %w", err)
	}
	if was == parent {
		return nil, nil
	}
	in, err := d.layoutFor(parent)
	if err != nil {
		return nil, err
	}
	var keep []entry
	for _, e := range planLayout(in) {
		switch e.Name {
		case linkFile, workName, mergedName:
		default:
			keep = append(keep, e)
		}
	}
	for _, name := range []string{emptyName, lowerFile, lowerLayersFile} {
		if err := os.Remove(filepath.Join(staged, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	ruid, rgid, err := rootPair(opts.UIDMap, opts.GIDMap)
	if err != nil {
		return nil, err
	}
	return writeLayout(staged, keep, ruid, rgid, false)
}

// commitInPlace is the commit of a layer whose parent's view is re-owned:
// Create's layout without diff in base/<id>, the parent's view re-owned
// into diff1, then the staged diff renamed to base/<id>/diff. It returns
// the layout's files, unflushed. On error nothing of id remains.
func (d *Driver) commitInPlace(ctx context.Context, base, id, parent string, s *driver.Staged, opts driver.CreateOptions) ([]string, error) {
	files, err := d.create(ctx, id, parent, opts, true, false)
	if err != nil {
		return nil, err
	}
	diff := filepath.Join(base, id, diffName)
	err = d.reownIfNeeded(ctx, base, id, parent, opts)
	if err == nil {
		err = os.Remove(diff)
	}
	if err == nil {
		err = driver.RenameNoReplace(s.Dir, diff)
	}
	if err != nil {
		_ = d.removeIn(base, id) // err is what the caller needs
		return nil, err
	}
	return files, nil
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
