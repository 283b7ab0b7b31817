//go:build linux

package overlay

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/internal/fsx"
	"github.com/stowage/stowage/internal/idmap"
)

// Name is the driver name recorded on disk.
const Name = "overlay"

// defaultPerms is the mode of a base layer's diff.
const defaultPerms = 0o555

// Driver is the overlay driver. Its configuration is fixed at
// construction; the mount counts are guarded by mu.
type Driver struct {
	// Fixed at construction; safe without locks.
	homes             driver.Homes // G, I and A homes
	runHome           string       // R/overlay: mountpoints of read-only stores' layers
	uidMap, gidMap    []idmap.IDMap
	mountOpt          string
	skipMountHome     bool
	ignoreChownErrors bool
	rootless          bool
	metacopy          bool // mountopt asks for metacopy and the kernel has it
	naiveDiff         bool // the kernel follows redirects: native diff unsafe
	useFsopen         bool
	backingFs         string
	homeMounted       bool         // New bind-mounted the home (Cleanup undoes it)
	sync              fsx.SyncMode // the "sync" option: how layer content is flushed

	mu     sync.Mutex
	counts map[string]int // guarded by mu: in-process Get count per layer

	idmapOnce sync.Once // guards idmapOK: the idmapped-lower probe runs once
	idmapOK   bool

	volatileOnce sync.Once // guards volatileOK: the volatile probe runs once
	volatileOK   bool
}

var (
	_ driver.Driver           = (*Driver)(nil)
	_ driver.TempDirRecoverer = (*Driver)(nil)
	_ driver.Shifter          = (*Driver)(nil)
	_ driver.MountPather      = (*Driver)(nil)
	_ driver.MountChecker     = (*Driver)(nil)
)

// New constructs the overlay driver: it checks that the kernel has overlay
// and the home's file system can be a lower or upper, creates the home
// (0700, as v1.43), l/ (0755) and .has-mount-program ("false"), recovers
// stale temp dirs and bind-mounts the home privately onto itself unless
// skip_mount_home=true. Options: mountopt, skip_mount_home,
// ignore_chown_errors, imagestore (handled by the store); mount_program,
// force_mask, size and inodes are refused (not implemented); other keys
// fail with upstream's "unknown option" message.
func New(ctx context.Context, opts driver.Options) (driver.Driver, error) {
	if opts.Root == "" {
		return nil, errors.New("overlay: driver home (Options.Root) is empty")
	}
	d := &Driver{homes: driver.NewHomes(opts, Name), uidMap: opts.UIDMap, gidMap: opts.GIDMap, counts: map[string]int{}}
	if opts.RunRoot != "" {
		d.runHome = opts.RunRoot
	}
	for _, o := range opts.DriverOptions {
		if err := d.parseOption(o); err != nil {
			return nil, err
		}
	}
	d.rootless = os.Geteuid() != 0
	if err := d.probe(); err != nil {
		return nil, err
	}
	for _, base := range d.homes.Writable() {
		if err := d.makeHome(base); err != nil {
			return nil, err
		}
	}
	if err := d.RecoverStaleTempDirs(ctx); err != nil {
		return nil, err
	}
	if !d.skipMountHome {
		if err := mountHomePrivate(d.homes.Home); err != nil {
			return nil, fmt.Errorf("overlay: making %s a private mount: %w", d.homes.Home, err)
		}
		d.homeMounted = true
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
	case "imagestore", "additionalimagestore":
		// The store already parsed these into Options.ImageStores.
	case "mountopt":
		d.mountOpt = val
	case "skip_mount_home", "ignore_chown_errors":
		b, err := strconv.ParseBool(val)
		if err != nil {
			return fmt.Errorf("overlay: option %s: %w", key, err)
		}
		if key == "skip_mount_home" {
			d.skipMountHome = b
		} else {
			d.ignoreChownErrors = b
		}
	case "mount_program", "force_mask", "size", "inodes":
		if val == "" {
			return nil
		}
		return fmt.Errorf("overlay: option %s is not supported by stowage: %w", key, driver.ErrNotSupported)
	case "sync":
		m, err := driver.SyncOption(val)
		if err != nil {
			return fmt.Errorf("overlay: %w", err)
		}
		d.sync = m
	case "use_composefs", "metacopy":
		// Accepted and ignored: no composefs.
	default:
		return fmt.Errorf("overlay: unknown option %s", key)
	}
	return nil
}

// probe checks kernel support and records features on d.
func (d *Driver) probe() error {
	b, err := os.ReadFile("/proc/filesystems")
	if err != nil {
		return fmt.Errorf("overlay: %w", err)
	}
	if !strings.Contains(string(b), "\toverlay\n") {
		return fmt.Errorf("overlay: the kernel does not support overlay (not in /proc/filesystems): %w", driver.ErrNotSupported)
	}
	probeDir := d.homes.Home
	for {
		if _, err := os.Stat(probeDir); err == nil {
			break
		}
		probeDir = filepath.Dir(probeDir)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(probeDir, &st); err != nil {
		return fmt.Errorf("overlay: statfs %s: %w", probeDir, err)
	}
	d.backingFs = fsName(st.Type)
	switch d.backingFs {
	case "overlayfs", "aufs", "ecryptfs":
		return fmt.Errorf("overlay: %s on %s needs a mount program, which stowage does not support: %w", d.homes.Home, d.backingFs, driver.ErrNotSupported)
	}
	d.metacopy = hasMetacopy(splitOpts(d.mountOpt)) && sysParamExists("metacopy")
	d.naiveDiff = sysParam("redirect_dir") == "Y"
	d.useFsopen = true
	return nil
}

// sysParam reads an overlay module parameter ("" if absent).
func sysParam(name string) string {
	b, err := os.ReadFile("/sys/module/overlay/parameters/" + name)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func sysParamExists(name string) bool {
	_, err := os.Stat("/sys/module/overlay/parameters/" + name)
	return err == nil
}

// fsName names a file system magic the way upstream's status does.
func fsName(magic int64) string {
	switch uint32(magic) {
	case 0xEF53:
		return "extfs"
	case 0x58465342:
		return "xfs"
	case 0x9123683E:
		return "btrfs"
	case 0x01021994:
		return "tmpfs"
	case 0x794C7630:
		return "overlayfs"
	case 0x61756673:
		return "aufs"
	case 0xF15F:
		return "ecryptfs"
	case 0x2FC12FC1:
		return "zfs"
	}
	return fmt.Sprintf("<unknown %#x>", magic)
}

// makeHome creates base (0700), base/l (0755) and .has-mount-program.
func (d *Driver) makeHome(base string) error {
	uid, gid, err := rootPair(d.uidMap, d.gidMap)
	if err != nil {
		return err
	}
	if err := mkdirAllOwned(base, 0o700, uid, gid); err != nil {
		return fmt.Errorf("overlay: %w", err)
	}
	if err := driver.MkdirOwned(filepath.Join(base, linkDir), 0o755, uid, gid); err != nil {
		return fmt.Errorf("overlay: %w", err)
	}
	mp := filepath.Join(base, mountProgFile)
	if _, err := os.Stat(mp); errors.Is(err, fs.ErrNotExist) {
		if err := os.WriteFile(mp, []byte("false"), 0o600); err != nil {
			return fmt.Errorf("overlay: %w", err)
		}
	}
	return nil
}

// mountHomePrivate bind-mounts home onto itself (unless it already is a
// mount point, e.g. left by a process that did not shut down) and makes
// it a private mount so layer mounts do not propagate.
func mountHomePrivate(home string) error {
	mounted, err := mountinfo.Mounted(home)
	if err != nil {
		return err
	}
	if !mounted {
		if err := unix.Mount(home, home, "", unix.MS_BIND, ""); err != nil {
			return &os.PathError{Op: "bind mount", Path: home, Err: err}
		}
	}
	if err := unix.Mount("", home, "", unix.MS_PRIVATE, ""); err != nil {
		return &os.PathError{Op: "make private", Path: home, Err: err}
	}
	return nil
}

// Home returns the driver home, G/overlay.
func (d *Driver) Home() string { return d.homes.Home }

// Name returns "overlay".
func (d *Driver) Name() string { return Name }

// checkID rejects IDs that cannot name a layer directory.
func checkID(id string) error {
	if !validID(id) {
		return fmt.Errorf("overlay: invalid layer ID %q", id)
	}
	return nil
}

// lookup returns the directory of layer id and whether it is in a
// read-write home: the homes first, then the read-only image stores.
func (d *Driver) lookup(id string) (dir string, writable bool, err error) {
	if err := checkID(id); err != nil {
		return "", false, err
	}
	for i, h := range d.homes.Search() {
		p := filepath.Join(h, id)
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			return p, i < len(d.homes.Writable()), nil
		}
	}
	return "", false, fmt.Errorf("overlay layer %s: %w", id, driver.ErrLayerUnknown)
}

// Exists reports whether layer id has a directory.
func (d *Driver) Exists(id string) bool {
	_, _, err := d.lookup(id)
	return err == nil
}

// ListLayers lists every directory of the read-write homes except l,
// staging and tempdirs.
func (d *Driver) ListLayers() ([]string, error) {
	ids, err := driver.ListSubdirs(d.homes.Writable(), func(name string) bool { return reservedNames[name] })
	if err != nil {
		return nil, fmt.Errorf("overlay list layers: %w", err)
	}
	return ids, nil
}

// Status returns the driver's status pairs, as upstream prints them.
func (d *Driver) Status() [][2]string {
	return [][2]string{
		{"Backing Filesystem", d.backingFs},
		{"Supports d_type", "true"},
		{"Native Overlay Diff", strconv.FormatBool(!d.naiveDiff)},
		{"Using metacopy", strconv.FormatBool(d.metacopy)},
		{"Supports shifting", strconv.FormatBool(d.SupportsShifting())},
		{"Supports volatile", strconv.FormatBool(d.supportsVolatile())},
	}
}

// Cleanup unmounts the home's private bind mount (a busy home stays
// mounted, as after a process that did not shut down).
func (d *Driver) Cleanup(ctx context.Context) error {
	if d.skipMountHome {
		return nil
	}
	if mounted, err := mountinfo.Mounted(d.homes.Home); err != nil || !mounted {
		return nil
	}
	err := unix.Unmount(d.homes.Home, 0)
	if err == nil || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EBUSY) {
		return nil
	}
	return &os.PathError{Op: "unmount", Path: d.homes.Home, Err: err}
}

// tempRoot is where staged diffs and deferred deletions of base live.
func tempRoot(base string) string { return filepath.Join(base, tempDirsDir) }

// RecoverStaleTempDirs removes temp dirs under H/tempdirs (and the split
// image store's) whose owner died; live owners' dirs are left alone.
func (d *Driver) RecoverStaleTempDirs(ctx context.Context) error {
	var roots []string
	for _, base := range d.homes.Writable() {
		roots = append(roots, tempRoot(base))
	}
	if err := driver.RecoverStaleTempRoots(roots...); err != nil {
		return fmt.Errorf("overlay: %w", err)
	}
	return nil
}

// rootPair is driver.RootOwner with the driver's prefix on errors.
func rootPair(uidMap, gidMap []idmap.IDMap) (uid, gid int, err error) {
	uid, gid, err = driver.RootOwner(uidMap, gidMap)
	if err != nil {
		return -1, -1, fmt.Errorf("overlay: %w", err)
	}
	return uid, gid, nil
}

// mkdirAllOwned makes path and its missing parents, each with exactly
// mode and owned by uid:gid (driver.MkdirOwned).
func mkdirAllOwned(path string, mode uint32, uid, gid int) error {
	return driver.MkdirAllFunc(path, func(dir string) error {
		return driver.MkdirOwned(dir, mode, uid, gid)
	})
}

// newLink returns a fresh link name.
func newLink() (string, error) { return newLinkName(rand.Reader) }

// removeTree removes path through a staging temp dir of base (atomic
// disappearance), else in place.
func removeTree(base, path string) error {
	return driver.RemoveViaStaging(tempRoot(base), path)
}
