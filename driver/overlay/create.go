//go:build linux

package overlay

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/internal/fsx"
	"github.com/stowage/stowage/internal/idmap"
)

// diffAttrs returns the mode and owner a new layer's diff gets: those of
// the parent's diff, else 0555 owned by the root of maps (or the driver's).
func (d *Driver) diffAttrs(parent string, uidMap, gidMap []idmap.IDMap) (mode uint32, uid, gid int, err error) {
	if parent != "" {
		pdir, _, err := d.lookup(parent)
		if err != nil {
			return 0, 0, 0, err
		}
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join(pdir, diffName), &st); err != nil {
			if errors.Is(err, unix.ENOENT) {
				return 0, 0, 0, fmt.Errorf("overlay layer %s has no diff: %w", parent, driver.ErrLayerUnknown)
			}
			return 0, 0, 0, &os.PathError{Op: "stat", Path: filepath.Join(pdir, diffName), Err: err}
		}
		return st.Mode & 0o7777, int(st.Uid), int(st.Gid), nil
	}
	if len(uidMap) == 0 && len(gidMap) == 0 {
		uidMap, gidMap = d.uidMap, d.gidMap
	}
	uid, gid, err = rootPair(uidMap, gidMap)
	return defaultPerms, uid, gid, err
}

// Create makes layer id on parent: H/<id> (0700) with diff (the parent's
// diff mode and owner, else 0555 owned by the mapped root), the link file
// and l/ symlink, work and merged, and empty (base layer) or lower and
// lower-layers (child). When the parent's files are owned in other maps
// (opts.ParentUIDMap/GIDMap differ from opts.UIDMap/GIDMap) the parent's
// view is re-owned into diff1 (see reown). A leftover directory of the
// same ID (a layer whose record was lost) is removed first, as upstream
// does. On error nothing of the new layer remains. MountLabel is ignored.
func (d *Driver) Create(ctx context.Context, id, parent string, opts driver.CreateOptions) error {
	if err := checkID(id); err != nil {
		return err
	}
	base := d.homes.BaseFor(opts.ReadWrite)
	if err := d.removeIn(base, id); err != nil {
		return fmt.Errorf("overlay create %s: removing a leftover directory: %w", id, err)
	}
	if _, err := d.create(ctx, id, parent, opts, true, true); err != nil {
		return fmt.Errorf("overlay create %s: %w", id, err)
	}
	if err := d.reownIfNeeded(ctx, base, id, parent, opts); err != nil {
		_ = d.removeIn(base, id) // err is what the caller needs
		return fmt.Errorf("overlay create %s: %w", id, err)
	}
	if !opts.Volatile {
		if err := syncLayout(base, id); err != nil {
			_ = d.removeIn(base, id) // the flush error is what the caller needs
			return fmt.Errorf("overlay create %s: flushing: %w", id, err)
		}
	}
	return nil
}

// needsReown reports whether a child of parent created with opts must
// re-own the parent's view.
func needsReown(parent string, opts driver.CreateOptions) bool {
	return parent != "" && !driver.ShiftFor(opts).Identity()
}

// reownIfNeeded re-owns the new layer base/<id> (see reown) when its maps
// differ from its parent's, and flushes the copy unless volatile.
func (d *Driver) reownIfNeeded(ctx context.Context, base, id, parent string, opts driver.CreateOptions) error {
	if !needsReown(parent, opts) {
		return nil
	}
	dir := filepath.Join(base, id)
	if err := d.reown(ctx, dir, driver.ShiftFor(opts)); err != nil {
		return err
	}
	return driver.FlushLayer(ctx, filepath.Join(dir, numberedDiff(1)), d.syncFor(opts), opts.Volatile)
}

// create makes the layout of id; withDiff false leaves diff/ out (the
// staged diff is renamed into place instead). With flush the small files
// (link, lower, lower-layers) are fdatasynced as they are written (not for
// a volatile layer); without, the caller flushes the files returned.
func (d *Driver) create(ctx context.Context, id, parent string, opts driver.CreateOptions, withDiff, flush bool) (files []string, retErr error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	mode, duid, dgid, err := d.diffAttrs(parent, opts.UIDMap, opts.GIDMap)
	if err != nil {
		return nil, err
	}
	in, err := d.layoutFor(parent)
	if err != nil {
		return nil, err
	}
	if in.Link, err = newLink(); err != nil {
		return nil, err
	}
	base := d.homes.BaseFor(opts.ReadWrite)
	if err := d.makeHome(base); err != nil {
		return nil, err
	}
	ruid, rgid, err := rootPair(opts.UIDMap, opts.GIDMap)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(base, id)
	if err := unix.Mkdir(dir, 0o700); err != nil {
		return nil, &os.PathError{Op: "mkdir", Path: dir, Err: err}
	}
	defer func() {
		if retErr != nil {
			_ = d.removeIn(base, id) // retErr is what the caller needs
		}
	}()
	if err := driver.LchownIfNeeded(dir, ruid, rgid); err != nil {
		return nil, err
	}
	if withDiff {
		if err := driver.MkdirOwned(filepath.Join(dir, diffName), mode, duid, dgid); err != nil {
			return nil, err
		}
	}
	if files, err = writeLayout(dir, planLayout(in), ruid, rgid, flush && !opts.Volatile); err != nil {
		return nil, err
	}
	// The l/ symlink comes after the link file that names it, so that a
	// process killed at any point leaves nothing removeIn cannot find.
	if err := os.Symlink(linkTarget(id), filepath.Join(base, linkDir, in.Link)); err != nil {
		return nil, err
	}
	return files, nil
}

// writeLayout makes the entries of a layer directory dir (planLayout's),
// owned by uid:gid, and returns the files written; flush as for
// writeFileOwned.
func writeLayout(dir string, entries []entry, uid, gid int, flush bool) (files []string, err error) {
	for _, e := range entries {
		p := filepath.Join(dir, e.Name)
		if e.Dir {
			err = driver.MkdirOwned(p, e.Mode, uid, gid)
		} else {
			err = writeFileOwned(p, e.Content, e.Mode, uid, gid, flush)
			files = append(files, p)
		}
		if err != nil {
			return nil, err
		}
	}
	return files, nil
}

// writeFileOwned writes a new small file with mode, owned by uid:gid,
// flushed (fdatasync) when flush is set: link, lower and lower-layers are
// what older tools read to mount the layer, and an empty one after a
// crash breaks every child.
func writeFileOwned(path, content string, mode uint32, uid, gid int, flush bool) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, os.FileMode(mode))
	if err != nil {
		return err
	}
	_, err = f.WriteString(content)
	if err == nil && flush {
		err = fsx.SyncFile(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return driver.LchownIfNeeded(path, uid, gid)
}

// layoutFor gathers what a child of parent records about it: the parent's
// link, its lower IDs and their link names (nearest first). A lower
// without a link file fails: older tools could not mount the child.
func (d *Driver) layoutFor(parent string) (layoutInput, error) {
	if parent == "" {
		return layoutInput{}, nil
	}
	in := layoutInput{Parent: parent}
	var err error
	if in.ParentLink, err = d.readLink(parent); err != nil {
		return layoutInput{}, err
	}
	if in.ParentLowers, err = d.lowerIDs(parent); err != nil {
		return layoutInput{}, err
	}
	if len(in.ParentLowers)+1 > maxDepth {
		return layoutInput{}, fmt.Errorf("parent %s has %d lowers: %w", parent, len(in.ParentLowers), ErrMaxDepth)
	}
	if links, ok := d.parentLowerLinks(parent, len(in.ParentLowers)); ok {
		in.ParentLowerLinks = links
		return in, nil
	}
	for _, l := range in.ParentLowers {
		link, err := d.readLink(l)
		if err != nil {
			return layoutInput{}, err
		}
		in.ParentLowerLinks = append(in.ParentLowerLinks, link)
	}
	return in, nil
}

// parentLowerLinks returns the link names of parent's lower file when it
// lists n entries (it then agrees with lower-layers, which is written with
// it), so a deep chain does not read every lower's link file.
func (d *Driver) parentLowerLinks(parent string, n int) ([]string, bool) {
	dir, _, err := d.lookup(parent)
	if err != nil {
		return nil, false
	}
	b, err := os.ReadFile(filepath.Join(dir, lowerFile))
	if err != nil {
		return nil, n == 0 && errors.Is(err, fs.ErrNotExist)
	}
	links, err := parseLower(string(b))
	if err != nil || len(links) != n {
		return nil, false
	}
	return links, true
}

// readLink returns the link name of layer id.
func (d *Driver) readLink(id string) (string, error) {
	dir, _, err := d.lookup(id)
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(filepath.Join(dir, linkFile))
	if err != nil {
		return "", fmt.Errorf("overlay layer %s: %w", id, err)
	}
	link := strings.TrimSpace(string(b))
	if !validLinkName(link) {
		return "", fmt.Errorf("overlay layer %s: link %q: %w", id, link, ErrBadLayout)
	}
	return link, nil
}

// lowerIDs returns the lower layer IDs of id, nearest first: from
// lower-layers, else from lower through the l/ symlinks of the layer's
// home; none if neither file exists.
func (d *Driver) lowerIDs(id string) ([]string, error) {
	dir, _, err := d.lookup(id)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(dir, lowerLayersFile))
	if err == nil {
		ids, err := parseLowerLayers(string(b))
		if err != nil {
			return nil, fmt.Errorf("overlay layer %s: %w", id, err)
		}
		return ids, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	b, err = os.ReadFile(filepath.Join(dir, lowerFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	links, err := parseLower(string(b))
	if err != nil {
		return nil, fmt.Errorf("overlay layer %s: %w", id, err)
	}
	base := filepath.Dir(dir)
	ids := make([]string, 0, len(links))
	for _, l := range links {
		target, err := os.Readlink(filepath.Join(base, linkDir, l))
		if err != nil {
			return nil, fmt.Errorf("overlay layer %s: lower %s: %w", id, l, err)
		}
		lid, err := idFromLinkTarget(target)
		if err != nil {
			return nil, fmt.Errorf("overlay layer %s: %w", id, err)
		}
		ids = append(ids, lid)
	}
	return ids, nil
}

// lowerDirs returns the diff dirs of id's lowers, nearest first, each
// followed by its diff1, diff2... (ID-remapped copies, see reown); a
// missing lower is an error.
func (d *Driver) lowerDirs(id string) ([]string, error) {
	ids, err := d.lowerIDs(id)
	if err != nil {
		return nil, err
	}
	dirs := make([]string, 0, len(ids))
	for _, l := range ids {
		ldir, _, err := d.lookup(l)
		if err != nil {
			return nil, fmt.Errorf("lower of %s: %w", id, err)
		}
		extra, err := ownExtraDiffs(ldir)
		if err != nil {
			return nil, fmt.Errorf("lower of %s: %w", id, err)
		}
		dirs = append(append(dirs, filepath.Join(ldir, diffName)), extra...)
	}
	return dirs, nil
}

// mountLowers returns what a mount of the layer in dir stacks under its
// diff: its own diff1, diff2..., then lowerDirs.
func (d *Driver) mountLowers(dir, id string) ([]string, error) {
	extra, err := ownExtraDiffs(dir)
	if err != nil {
		return nil, err
	}
	lowers, err := d.lowerDirs(id)
	if err != nil {
		return nil, err
	}
	return append(extra, lowers...), nil
}

// Remove deletes layer id from the read-write homes: its l/ symlink, then
// the directory (unmounting merged first). A missing layer is not an error.
func (d *Driver) Remove(ctx context.Context, id string) error {
	if err := checkID(id); err != nil {
		return err
	}
	for _, base := range d.homes.Writable() {
		if err := d.removeIn(base, id); err != nil {
			return fmt.Errorf("overlay remove %s: %w", id, err)
		}
	}
	d.mu.Lock()
	delete(d.counts, id)
	d.mu.Unlock()
	return nil
}

// removeIn removes base/<id> and its l/ link.
func (d *Driver) removeIn(base, id string) error {
	dir := filepath.Join(base, id)
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if b, err := os.ReadFile(filepath.Join(dir, linkFile)); err == nil {
		if link := strings.TrimSpace(string(b)); validLinkName(link) {
			if err := os.Remove(filepath.Join(base, linkDir, link)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	_ = unmount(filepath.Join(dir, mergedName)) // usually not mounted
	// Idmapped mounts left by a crash show other layers: never remove
	// through them.
	if err := removeMapped(filepath.Join(dir, mappedName)); err != nil {
		return fmt.Errorf("idmapped mounts under %s: %w", dir, err)
	}
	return removeTree(base, dir)
}
