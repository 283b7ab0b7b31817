package vfs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/internal/fsx"
	"github.com/stowage/stowage/internal/idmap"
)

// Name is the driver name recorded on disk.
const Name = "vfs"

// defaultPerms is the mode of a layer root without a parent.
const defaultPerms = 0o555

// Driver is the vfs driver. Its fields are fixed at construction, so one
// value is safe for concurrent use; the store serialises calls per layer.
type Driver struct {
	homes             driver.Homes // G, I and A homes
	uidMap, gidMap    []idmap.IDMap
	ignoreChownErrors bool
	sync              fsx.SyncMode // the "sync" option: how layer content is flushed
}

var (
	_ driver.Driver           = (*Driver)(nil)
	_ driver.TempDirRecoverer = (*Driver)(nil)
)

// New constructs the vfs driver, creating its home (0700, owned by the
// mapped root) if needed. Driver options: "imagestore=" (already turned
// into opts.ImageStores by the store, ignored here) and
// "ignore_chown_errors=<bool>"; any other key is an error, with the
// reference's message.
func New(ctx context.Context, opts driver.Options) (driver.Driver, error) {
	if opts.Root == "" {
		return nil, errors.New("vfs: driver home (Options.Root) is empty")
	}
	d := &Driver{homes: driver.NewHomes(opts, Name), uidMap: opts.UIDMap, gidMap: opts.GIDMap}
	for _, o := range opts.DriverOptions {
		if err := d.parseOption(o); err != nil {
			return nil, err
		}
	}
	uid, gid, err := rootPair(d.uidMap, d.gidMap)
	if err != nil {
		return nil, err
	}
	if err := mkdirAllOwned(d.homes.Home, 0o700, uid, gid); err != nil {
		return nil, fmt.Errorf("vfs: %w", err)
	}
	return d, nil
}

// parseOption applies one "key=value" option (prefix already stripped).
func (d *Driver) parseOption(o string) error {
	key, val, err := driver.SplitOption(o)
	if err != nil {
		return err
	}
	switch key {
	case "imagestore":
		// The store already parsed these into Options.ImageStores.
	case "mountopt":
		return errors.New("vfs driver does not support mount options")
	case "ignore_chown_errors":
		b, err := strconv.ParseBool(val)
		if err != nil {
			return err
		}
		d.ignoreChownErrors = b
	case "sync":
		// Upstream documents vfs.sync but its parser rejects it; we take it.
		m, err := driver.SyncOption(val)
		if err != nil {
			return fmt.Errorf("vfs: %w", err)
		}
		d.sync = m
	default:
		// The reference prints the key with its "vfs." prefix.
		return fmt.Errorf("vfs driver does not support vfs.%s options", key)
	}
	return nil
}

// Home returns the driver home, G/vfs.
func (d *Driver) Home() string { return d.homes.Home }

// Name returns "vfs".
func (d *Driver) Name() string { return Name }

// layersDir is <base>/dir.
func layersDir(base string) string { return filepath.Join(base, "dir") }

// layerDir is <base>/dir/<id>.
func layerDir(base, id string) string { return filepath.Join(base, "dir", id) }

// writableDir returns the directory of layer id in a read-write home, or
// an error wrapping driver.ErrLayerUnknown.
func (d *Driver) writableDir(id string) (string, error) {
	for _, b := range d.homes.Writable() {
		p := layerDir(b, id)
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("vfs layer %s: %w", id, driver.ErrLayerUnknown)
}

// checkID rejects IDs that are not a single path component.
func checkID(id string) error {
	if id == "" || id == "." || id == ".." || strings.ContainsAny(id, "/\x00") {
		return fmt.Errorf("vfs: invalid layer ID %q", id)
	}
	return nil
}

// lookup returns the directory of layer id: the home first, then the split
// image store, then each read-only image store. A missing layer wraps
// driver.ErrLayerUnknown.
func (d *Driver) lookup(id string) (string, error) {
	if err := checkID(id); err != nil {
		return "", err
	}
	homes := d.homes.Search()
	for _, h := range homes {
		p := layerDir(h, id)
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("vfs layer %s: %w", id, driver.ErrLayerUnknown)
}

// rootAttrs returns the mode and owner a new layer root gets: those of the
// parent's root, else 0555 owned by the root of maps (or the driver's).
func (d *Driver) rootAttrs(parent string, uidMap, gidMap []idmap.IDMap) (parentDir string, mode uint32, uid, gid int, err error) {
	if parent != "" {
		if parentDir, err = d.lookup(parent); err != nil {
			return "", 0, 0, 0, err
		}
		var st unix.Stat_t
		if err := unix.Stat(parentDir, &st); err != nil {
			if errors.Is(err, unix.ENOENT) {
				return "", 0, 0, 0, fmt.Errorf("vfs layer %s: %w", parent, driver.ErrLayerUnknown)
			}
			return "", 0, 0, 0, &os.PathError{Op: "stat", Path: parentDir, Err: err}
		}
		return parentDir, st.Mode & 0o7777, int(st.Uid), int(st.Gid), nil
	}
	if len(uidMap) == 0 && len(gidMap) == 0 {
		uidMap, gidMap = d.uidMap, d.gidMap
	}
	uid, gid, err = rootPair(uidMap, gidMap)
	if err != nil {
		return "", 0, 0, 0, err
	}
	return "", defaultPerms, uid, gid, nil
}

// remapFor returns how a copy of the parent is re-owned into the new
// layer's maps, or nil when they are the same.
func remapFor(shift driver.IDShift) fsx.Remap {
	if shift.Identity() {
		return nil
	}
	return shift.Remap
}

// makeLayerRoot creates dir with exactly mode and owner, then fills it with a
// copy of parentDir when there is a parent and re-owns the copy (root
// included) through shift. It fails if dir exists; on any later error it
// removes what it created.
func makeLayerRoot(ctx context.Context, dir, parentDir string, mode uint32, uid, gid int, shift driver.IDShift) (retErr error) {
	if err := driver.MkdirExact(dir, mode, uid, gid); err != nil {
		var pe *os.PathError
		if !errors.As(err, &pe) || pe.Op != "mkdir" {
			_ = fsx.RemoveAll(dir) // made but not owned: err is what the caller needs
		}
		return err
	}
	defer func() {
		if retErr != nil {
			_ = fsx.RemoveAll(dir) // retErr is what the caller needs
		}
	}()
	if parentDir == "" {
		return nil
	}
	if err := fsx.CopyTree(ctx, dir, parentDir); err != nil {
		if _, serr := os.Stat(parentDir); errors.Is(serr, fs.ErrNotExist) {
			return fmt.Errorf("parent %s vanished: %w: %w", parentDir, driver.ErrLayerUnknown, err)
		}
		return err
	}
	if err := fsx.ShiftOwners(ctx, dir, remapFor(shift)); err != nil {
		return fmt.Errorf("re-owning the copy of %s: %w", parentDir, err)
	}
	return nil
}

// rootPair is driver.RootOwner with the driver's prefix on errors.
func rootPair(uidMap, gidMap []idmap.IDMap) (uid, gid int, err error) {
	uid, gid, err = driver.RootOwner(uidMap, gidMap)
	if err != nil {
		return -1, -1, fmt.Errorf("vfs: %w", err)
	}
	return uid, gid, nil
}

// mkdirAllOwned makes path and its missing parents with mode (less the
// umask, as upstream's vfs), owning the ones it creates to uid:gid.
func mkdirAllOwned(path string, mode os.FileMode, uid, gid int) error {
	return driver.MkdirAllFunc(path, func(dir string) error {
		if err := os.Mkdir(dir, mode); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		return driver.LchownIfNeeded(dir, uid, gid)
	})
}

// Create makes layer id: a directory with the parent's root mode and owner
// (else 0555 owned by the mapped root) holding a copy of the parent's tree
// (re-owned from opts.ParentUIDMap/GIDMap to opts.UIDMap/GIDMap when they
// differ), in the split image store for image layers (ReadWrite false) if there is
// one, else in the home.
// It fails if the layer directory already exists. On error, including a
// cancelled ctx, nothing of the new layer remains. MountLabel is ignored
// (no SELinux labelling).
func (d *Driver) Create(ctx context.Context, id, parent string, opts driver.CreateOptions) error {
	if err := checkID(id); err != nil {
		return err
	}
	parentDir, mode, uid, gid, err := d.rootAttrs(parent, opts.UIDMap, opts.GIDMap)
	if err != nil {
		return err
	}
	base := d.homes.BaseFor(opts.ReadWrite)
	if err := d.ensureLayersDir(base); err != nil {
		return err
	}
	if err := makeLayerRoot(ctx, layerDir(base, id), parentDir, mode, uid, gid, driver.ShiftFor(opts)); err != nil {
		return fmt.Errorf("vfs create %s: %w", id, err)
	}
	if err := driver.FlushLayer(ctx, layerDir(base, id), d.sync, opts.Volatile); err != nil {
		_ = removeLayerDir(base, id) // the flush error is what the caller needs
		return fmt.Errorf("vfs create %s: flushing: %w", id, err)
	}
	return nil
}

// ensureLayersDir makes <base>/dir (0700, owned by the mapped root, as
// are <base> and any parents it has to create); a new one is made durable
// (its parent fsynced).
func (d *Driver) ensureLayersDir(base string) error {
	if fi, err := os.Stat(layersDir(base)); err == nil && fi.IsDir() {
		return nil
	}
	uid, gid, err := rootPair(d.uidMap, d.gidMap)
	if err != nil {
		return err
	}
	if err := mkdirAllOwned(layersDir(base), 0o700, uid, gid); err != nil {
		return err
	}
	return fsx.SyncDir(base)
}

// Remove deletes layer id from the read-write homes; a missing layer is
// not an error. Layers of read-only image stores are never touched. The
// directory is first renamed into a staging temp dir (so it disappears
// atomically and a crash mid-removal leaves only a temp dir that stale
// recovery reclaims), then removed; where staging is impossible it is
// removed in place.
func (d *Driver) Remove(ctx context.Context, id string) error {
	if err := checkID(id); err != nil {
		return err
	}
	for _, base := range d.homes.Writable() {
		if err := removeLayerDir(base, id); err != nil {
			return fmt.Errorf("vfs remove %s: %w", id, err)
		}
	}
	return nil
}

// removeLayerDir removes <base>/dir/<id> through <base>/tempdirs.
func removeLayerDir(base, id string) error {
	return driver.RemoveViaStaging(tempRoot(base), layerDir(base, id))
}

// Exists reports whether layer id has a directory in the home or in a
// read-only image store.
func (d *Driver) Exists(id string) bool {
	_, err := d.lookup(id)
	return err == nil
}

// Get returns the layer's directory. The only accepted mount option is
// "ro" (which vfs does not enforce); others fail wrapping ErrBadMountOpt.
func (d *Driver) Get(ctx context.Context, id string, opts driver.MountOptions) (string, error) {
	for _, o := range opts.Options {
		if o != "ro" {
			return "", fmt.Errorf("vfs driver does not support mount options (%q): %w", o, driver.ErrBadMountOpt)
		}
	}
	return d.lookup(id)
}

// Put undoes Get; vfs has nothing to undo.
func (d *Driver) Put(ctx context.Context, id string) error { return nil }

// ListLayers lists every directory under G/vfs/dir and, with a split
// image store, I/vfs/dir (not the read-only image stores').
func (d *Driver) ListLayers() ([]string, error) {
	var dirs []string
	for _, base := range d.homes.Writable() {
		dirs = append(dirs, layersDir(base))
	}
	ids, err := driver.ListSubdirs(dirs, nil)
	if err != nil {
		return nil, fmt.Errorf("vfs list layers: %w", err)
	}
	return ids, nil
}

// Status returns no pairs: vfs has no status to report.
func (d *Driver) Status() [][2]string { return nil }

// Cleanup releases nothing: vfs keeps no mounts or process state.
func (d *Driver) Cleanup(ctx context.Context) error { return nil }

// tempRoot is where staged layers and deferred deletions of base live.
func tempRoot(base string) string { return filepath.Join(base, "tempdirs") }

// RecoverStaleTempDirs removes temp dirs under G/vfs/tempdirs (and
// I/vfs/tempdirs) whose owner died (their lock is free); live owners' dirs
// are left alone.
func (d *Driver) RecoverStaleTempDirs(ctx context.Context) error {
	var roots []string
	for _, base := range d.homes.Writable() {
		roots = append(roots, tempRoot(base))
	}
	if err := driver.RecoverStaleTempRoots(roots...); err != nil {
		return fmt.Errorf("vfs: %w", err)
	}
	return nil
}
