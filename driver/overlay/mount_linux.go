package overlay

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/stowage/stowage/driver"
)

// mergedDir is where layer id is mounted: H/<id>/merged, or for a layer
// of a read-only store R/overlay/<id>/merged (so the store is never
// written).
func (d *Driver) mergedDir(dir, id string, writable bool) string {
	if writable || d.runHome == "" {
		return filepath.Join(dir, mergedName)
	}
	return filepath.Join(d.runHome, id, mergedName)
}

// MountPath returns where Get mounts layer id (driver.MountPather).
func (d *Driver) MountPath(id string) (string, error) {
	dir, writable, err := d.lookup(id)
	if err != nil {
		return "", err
	}
	return d.mergedDir(dir, id, writable), nil
}

// CheckMountable reports what would make Get of layer id fail before it
// mounts: a lower that does not resolve or is gone, or more lowers than
// the kernel stacks (driver.MountChecker).
func (d *Driver) CheckMountable(id string) error {
	dir, _, err := d.lookup(id)
	if err != nil {
		return err
	}
	lowers, err := d.mountLowers(dir, id)
	if err != nil {
		return fmt.Errorf("overlay layer %s: lowers: %w", id, err)
	}
	for _, l := range lowers {
		if _, err := os.Stat(l); err != nil {
			return fmt.Errorf("overlay layer %s: lower: %w", id, err)
		}
	}
	if len(lowers) > maxDepth {
		return fmt.Errorf("overlay layer %s: %d lowers, the kernel stacks at most %d: %w", id, len(lowers), maxDepth, ErrMaxDepth)
	}
	return nil
}

// Get mounts layer id and returns its merged dir. A layer this process
// already mounted only gains a count. Options are the caller's, else
// mountopt (see planMount); "ro" mounts diff as the top lower with no
// upper. Under diff are the layer's own diff1, diff2... then each lower's
// diff and diffN. With opts.UIDMap/GIDMap the lowers (never the upper)
// are seen through idmapped clones of their homes mounted under
// <layer>/mapped while the overlay is made (see SupportsShifting); without
// shifting support that fails wrapping driver.ErrNotSupported. The mount is made through the new mount API (one "lowerdir+" per
// lower, so 500 lowers fit), falling back to mount(2). opts.Volatile adds
// the "volatile" option when the kernel has it (probed once, see
// supportsVolatile).
func (d *Driver) Get(ctx context.Context, id string, opts driver.MountOptions) (string, error) {
	dir, writable, err := d.lookup(id)
	if err != nil {
		return "", err
	}
	merged := d.mergedDir(dir, id, writable)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.counts[id] > 0 {
		if ok, _ := mountinfo.Mounted(merged); ok {
			d.counts[id]++
			return merged, nil
		}
	}
	lowers, err := d.mountLowers(dir, id)
	if err != nil {
		return "", err
	}
	for _, l := range lowers {
		if _, err := os.Stat(l); err != nil {
			return "", fmt.Errorf("overlay layer %s: lower: %w", id, err)
		}
	}
	plan, err := planMount(planInput{
		Diff: filepath.Join(dir, diffName), Work: filepath.Join(dir, workName), Empty: filepath.Join(dir, emptyName),
		Lowers: lowers, CallerOptions: opts.Options, MountOpt: d.mountOpt, Label: opts.MountLabel,
		Rootless: d.rootless, Metacopy: d.metacopy, ReadOnlyStore: !writable,
		Volatile: opts.Volatile, VolatileOK: opts.Volatile && d.supportsVolatile(),
	})
	if err != nil {
		return "", fmt.Errorf("overlay layer %s: %w", id, err)
	}
	if err := d.prepareMountDirs(dir, merged, plan); err != nil {
		return "", fmt.Errorf("overlay layer %s: %w", id, err)
	}
	if err := detachUncounted(merged); err != nil {
		return "", fmt.Errorf("overlay layer %s: %w", id, err)
	}
	if len(opts.UIDMap) > 0 || len(opts.GIDMap) > 0 {
		if !d.SupportsShifting() {
			return "", fmt.Errorf("overlay layer %s: ID-mapped mount asked for, but idmapped lowers are unavailable (not root, %s=yes, or the kernel lacks them): %w", id, disableIDMapEnv, driver.ErrNotSupported)
		}
		mappedDir := filepath.Join(filepath.Dir(merged), mappedName)
		cleanup, err := d.mapLowers(&plan, filepath.Join(dir, diffName), mappedDir, opts.UIDMap, opts.GIDMap)
		if err != nil {
			return "", fmt.Errorf("overlay layer %s: idmapped lowers: %w", id, err)
		}
		defer cleanup() // the overlay mount keeps its own references
	}
	if err := d.mount(plan, merged); err != nil {
		return "", fmt.Errorf("overlay mount of %s: %w", id, err)
	}
	d.counts[id] = 1
	return merged, nil
}

// prepareMountDirs creates merged (0700) and, for a writable mount, the
// upper diff if it vanished, and clears the volatile marker the kernel
// leaves in a workdir.
func (d *Driver) prepareMountDirs(dir, merged string, plan mountPlan) error {
	uid, gid, err := rootPair(d.uidMap, d.gidMap)
	if err != nil {
		return err
	}
	if err := mkdirAllOwned(merged, 0o700, uid, gid); err != nil {
		return err
	}
	if plan.ReadOnly() {
		return nil
	}
	if err := driver.MkdirOwned(plan.Upper, defaultPerms, uid, gid); err != nil {
		return err
	}
	if err := driver.MkdirOwned(plan.Work, 0o700, uid, gid); err != nil {
		return err
	}
	err = os.RemoveAll(filepath.Join(plan.Work, "work", "incompat", "volatile"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// detachUncounted detaches mounts left at merged that no count accounts
// for (the store asks for a mount only when mountpoints.json has none that
// is live): a process killed between its mount and the save of
// mountpoints.json, or a record lost with a damaged mountpoints.json,
// leaves one. Mounting over it would stack a second overlay that hides
// the first, and a later Put would only take the top one away; detaching
// replaces it instead (processes still using it keep their view).
func detachUncounted(merged string) error {
	for range 16 {
		if ok, err := mountinfo.Mounted(merged); err != nil || !ok {
			return err
		}
		if err := unmount(merged); err != nil {
			return err
		}
	}
	return nil
}

// mount executes plan onto target.
func (d *Driver) mount(plan mountPlan, target string) error {
	if d.useFsopen {
		err := mountFsopen(plan, target)
		if !errors.Is(err, unix.ENOSYS) {
			return err
		}
	}
	return mountClassic(plan, target)
}

// mountFsopen mounts with fsopen/fsconfig/fsmount/move_mount. Each
// lower is passed as its own "lowerdir+" (kernel ≥ 6.8); without it all
// lowers go in one "lowerdir" string.
func mountFsopen(plan mountPlan, target string) (retErr error) {
	fsfd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("fsopen: %w", err)
	}
	defer unix.Close(fsfd)
	defer func() {
		if retErr != nil {
			if msg := fsLog(fsfd); msg != "" {
				retErr = fmt.Errorf("%w (kernel: %s)", retErr, msg)
			}
		}
	}()
	set := func(key, val string) error {
		if err := unix.FsconfigSetString(fsfd, key, val); err != nil {
			return fmt.Errorf("fsconfig %s=%s: %w", key, val, err)
		}
		return nil
	}
	for i, l := range plan.Lowers {
		if err := unix.FsconfigSetString(fsfd, "lowerdir+", l); err != nil {
			if i == 0 && errors.Is(err, unix.EINVAL) && !strings.ContainsAny(strings.Join(plan.Lowers, ""), ":,\\") {
				if err := set("lowerdir", strings.Join(plan.Lowers, ":")); err != nil {
					return err
				}
				break
			}
			return fmt.Errorf("fsconfig lowerdir+=%s (lower %d): %w", l, i+1, err)
		}
	}
	if plan.Upper != "" {
		if err := set("upperdir", plan.Upper); err != nil {
			return err
		}
		if err := set("workdir", plan.Work); err != nil {
			return err
		}
	}
	for _, o := range plan.Data {
		key, val, hasVal := strings.Cut(o, "=")
		if !hasVal {
			if err := unix.FsconfigSetFlag(fsfd, key); err != nil {
				return fmt.Errorf("fsconfig %s: %w", key, err)
			}
			continue
		}
		if err := set(key, strings.Trim(val, `"`)); err != nil {
			return err
		}
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return fmt.Errorf("fsconfig create: %w", err)
	}
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, int(plan.Attrs))
	if err != nil {
		return fmt.Errorf("fsmount: %w", err)
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("move_mount to %s: %w", target, err)
	}
	return nil
}

// fsLog reads the kernel's messages about a failed fsconfig (best effort).
func fsLog(fsfd int) string {
	var msgs []string
	buf := make([]byte, 1024)
	for range 8 {
		n, err := unix.Read(fsfd, buf)
		if err != nil || n <= 0 {
			break
		}
		msgs = append(msgs, strings.TrimSpace(string(buf[:n])))
	}
	return strings.Join(msgs, "; ")
}

// mountClassic mounts with mount(2) and the option string; it fails
// cleanly when the string does not fit in a page.
func mountClassic(plan mountPlan, target string) error {
	data := plan.optionString()
	if len(data) >= unix.Getpagesize() {
		return fmt.Errorf("mount data for %d lowers is %d bytes, over the page size and fsopen is unavailable: %w", len(plan.Lowers), len(data), ErrMaxDepth)
	}
	if err := unix.Mount("overlay", target, "overlay", plan.Flags, data); err != nil {
		return &os.PathError{Op: "mount overlay", Path: target, Err: err}
	}
	return nil
}

// unmount detaches the mount at target; "not mounted" is not an error.
func unmount(target string) error {
	err := unix.Unmount(target, unix.MNT_DETACH)
	if err == nil || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
		return nil
	}
	return &os.PathError{Op: "unmount", Path: target, Err: err}
}

// Put undoes one Get: at the last in-process reference (or when this
// process did not mount it: the store calls Put when the cross-process
// count reaches zero) the merged dir is unmounted. A missing layer is not
// an error.
func (d *Driver) Put(ctx context.Context, id string) error {
	dir, writable, err := d.lookup(id)
	if err != nil {
		if errors.Is(err, driver.ErrLayerUnknown) {
			return nil
		}
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.counts[id] > 1 {
		d.counts[id]--
		return nil
	}
	delete(d.counts, id)
	merged := d.mergedDir(dir, id, writable)
	if err := unmount(merged); err != nil {
		return fmt.Errorf("overlay put %s: %w", id, err)
	}
	// Idmapped mounts are detached once the overlay is made; a crash in
	// between leaves them, and the last Put takes them away.
	if err := removeMapped(filepath.Join(filepath.Dir(merged), mappedName)); err != nil {
		return fmt.Errorf("overlay put %s: %w", id, err)
	}
	return nil
}

// BadMountOption names a mount option Get refuses (for the conformance
// suite): the upper dir is the driver's to choose.
func (d *Driver) BadMountOption() string { return "upperdir=/" }
