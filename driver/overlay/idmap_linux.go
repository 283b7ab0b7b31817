package overlay

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/internal/fsx"
	"github.com/stowage/stowage/internal/idmap"
	"github.com/stowage/stowage/staging"
)

// SupportsShifting reports whether Get can show a container's lowers
// through its ID maps with idmapped mounts: we are root,
// _CONTAINERS_OVERLAY_DISABLE_IDMAP is not "yes", and the kernel mounts
// overlay on an idmapped lower. The kernel is probed once per driver and
// the result cached in R/overlay/idmapped-lower-dir-true (or -false), the
// file containers/storage uses, so both tools decide alike for one run
// root.
func (d *Driver) SupportsShifting() bool {
	if os.Getenv(disableIDMapEnv) == "yes" || d.rootless {
		return false
	}
	d.idmapOnce.Do(func() { d.idmapOK = d.probeCached(idmapFeature, d.tryIDMappedLower) })
	return d.idmapOK
}

// probeCached reads the cached result of the kernel feature probe try
// (R/overlay/<feature>-true or -false, the files containers/storage
// writes), else runs try and caches its result (the error text in a
// -false file).
func (d *Driver) probeCached(feature string, try func() error) bool {
	cache := func(ok bool) string {
		return filepath.Join(d.runHome, feature+"-"+strconv.FormatBool(ok))
	}
	if d.runHome != "" {
		for _, ok := range []bool{true, false} {
			if _, err := os.Stat(cache(ok)); err == nil {
				return ok
			}
		}
	}
	err := try()
	ok := err == nil
	if d.runHome != "" && os.MkdirAll(d.runHome, 0o700) == nil {
		text := ""
		if err != nil {
			text = err.Error()
		}
		_ = os.WriteFile(cache(ok), []byte(text), 0o600) // only a cache: the probe runs again next time
	}
	return ok
}

// tryIDMappedLower mounts, in a temp dir of the home, an overlay whose
// lower is an idmapped mount (root mapped to itself).
func (d *Driver) tryIDMappedLower() (retErr error) {
	tmp, err := staging.New(tempRoot(d.homes.Home))
	if err != nil {
		return err
	}
	defer tmp.Cleanup()
	dir := tmp.Addition()
	names := []string{"lower", "mapped", "upper", "work", "merged"}
	for _, n := range append([]string{""}, names...) {
		if err := os.Mkdir(filepath.Join(dir, n), 0o700); err != nil {
			return err
		}
	}
	ns, err := newUserns([]idmap.IDMap{{ContainerID: 0, HostID: 0, Size: 1}}, []idmap.IDMap{{ContainerID: 0, HostID: 0, Size: 1}})
	if err != nil {
		return err
	}
	defer ns.Close()
	mapped := filepath.Join(dir, "mapped")
	if err := idmappedMount(filepath.Join(dir, "lower"), mapped, ns); err != nil {
		return err
	}
	defer unmount(mapped)
	merged := filepath.Join(dir, "merged")
	plan := mountPlan{Lowers: []string{mapped}, Upper: filepath.Join(dir, "upper"), Work: filepath.Join(dir, "work"), Data: []string{"index=off"}}
	if err := d.mount(plan, merged); err != nil {
		return err
	}
	return unmount(merged)
}

// newUserns returns an open /proc/<pid>/ns/user of a user namespace with
// the given maps (an empty side maps every ID to itself). A child is
// started in a new user namespace and stopped by ptrace at its first
// instruction, so it never runs; its maps are written, the namespace
// opened and the child killed: the open file keeps the namespace alive.
func newUserns(uidMap, gidMap []idmap.IDMap) (*os.File, error) {
	cmd := exec.Command("/proc/self/exe")
	cmd.Args = []string{"stowage-userns"}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWUSER,
		Ptrace:     true, // stop at exec: the child runs no code
		Pdeathsig:  syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting a user namespace: %w", err)
	}
	defer func() {
		_ = cmd.Process.Kill() // it never ran; Wait reaps it
		_ = cmd.Wait()
	}()
	pid := strconv.Itoa(cmd.Process.Pid)
	for _, m := range []struct {
		file string
		maps []idmap.IDMap
	}{{"uid_map", uidMap}, {"gid_map", gidMap}} {
		p := filepath.Join("/proc", pid, m.file)
		if err := os.WriteFile(p, []byte(usernsMapLines(m.maps)), 0); err != nil {
			return nil, fmt.Errorf("writing the user namespace's %s: %w", m.file, err)
		}
	}
	f, err := os.Open(filepath.Join("/proc", pid, "ns", "user"))
	if err != nil {
		return nil, fmt.Errorf("opening the user namespace: %w", err)
	}
	return f, nil
}

// idmappedMount mounts an idmapped clone of the mount at src (the mount
// only, not the mounts below it) onto target (created 0700).
func idmappedMount(src, target string, userns *os.File) error {
	fd, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return &os.PathError{Op: "open_tree", Path: src, Err: err}
	}
	defer unix.Close(fd)
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(userns.Fd())}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &attr); err != nil {
		return &os.PathError{Op: "mount_setattr idmap", Path: src, Err: err}
	}
	if err := os.Mkdir(target, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	if err := unix.MoveMount(fd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return &os.PathError{Op: "move_mount", Path: target, Err: err}
	}
	return nil
}

// mapLowers rewrites plan's lowers (not the layer's own diff) to paths
// in idmapped clones of their homes, mounted under mappedDir. The
// returned cleanup detaches and removes them: call it once the overlay
// is mounted (overlay keeps its own references) or has failed.
func (d *Driver) mapLowers(plan *mountPlan, diff, mappedDir string, uidMap, gidMap []idmap.IDMap) (cleanup func(), err error) {
	p := planIDMappedLowers(mappedDir, d.homes.Search(), plan.Lowers, diff)
	if len(p.Roots) == 0 {
		return func() {}, nil
	}
	ns, err := newUserns(uidMap, gidMap)
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	cleanup = func() { _ = removeMapped(mappedDir) } // best effort: Put and Remove retry
	if err := os.MkdirAll(mappedDir, 0o700); err != nil {
		return nil, err
	}
	for i, root := range p.Roots {
		if err := idmappedMount(root, filepath.Join(mappedDir, strconv.Itoa(i)), ns); err != nil {
			cleanup()
			return nil, err
		}
	}
	plan.Lowers = p.Lowers
	return cleanup, nil
}

// removeMapped detaches the idmapped mounts under mappedDir and removes
// the directory. Entries are removed with rmdir, never recursively, so a
// mount that failed to detach is reported instead of emptied.
func removeMapped(mappedDir string) error {
	ents, err := os.ReadDir(mappedDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range ents {
		p := filepath.Join(mappedDir, e.Name())
		if err := unmount(p); err != nil {
			errs = append(errs, err)
		}
		if err := os.Remove(p); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.Remove(mappedDir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// reown gives layer id, just created on a parent whose files are owned
// in other maps, the parent's view re-owned through shift, as
// containers/storage's UpdateLayerIDMap does (so v1.43 reads the
// result): the layer is mounted, every entry whose owner changes is
// lchowned through the mount (the kernel copies it up into diff), then
// diff becomes diff1 (older diffN move one up), work is recreated, and a
// new empty diff gets diff1's mode and owner.
//
// Locking: layers.lock held for writing (the layer is not yet visible).
func (d *Driver) reown(ctx context.Context, dir string, shift driver.IDShift) error {
	extra, err := ownExtraDiffs(dir)
	if err != nil {
		return err
	}
	lowers, err := d.lowerDirs(filepath.Base(dir))
	if err != nil {
		return err
	}
	plan, err := planMount(planInput{
		Diff: filepath.Join(dir, diffName), Work: filepath.Join(dir, workName), Empty: filepath.Join(dir, emptyName),
		Lowers: append(extra, lowers...), MountOpt: d.mountOpt, Rootless: d.rootless, Metacopy: d.metacopy,
	})
	if err != nil {
		return err
	}
	merged := filepath.Join(dir, mergedName)
	if err := d.mount(plan, merged); err != nil {
		return fmt.Errorf("mounting to re-own: %w", err)
	}
	err = fsx.ShiftOwnersPerName(ctx, merged, shift.Remap)
	if uerr := unmount(merged); err == nil {
		err = uerr
	}
	if err != nil {
		return fmt.Errorf("re-owning the parent's files: %w", err)
	}
	for _, r := range rotateDiffs(len(extra) + 1) {
		if err := os.Rename(filepath.Join(dir, r[0]), filepath.Join(dir, r[1])); err != nil {
			return err
		}
	}
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(dir, numberedDiff(1)), &st); err != nil {
		return &os.PathError{Op: "stat", Path: filepath.Join(dir, numberedDiff(1)), Err: err}
	}
	work := filepath.Join(dir, workName)
	if err := fsx.RemoveAll(work); err != nil {
		return err
	}
	if err := driver.MkdirOwned(work, 0o700, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	return driver.MkdirOwned(filepath.Join(dir, diffName), st.Mode&0o7777, int(st.Uid), int(st.Gid))
}

// ownExtraDiffs lists dir's diff1, diff2... (they stack under diff, in
// that order), stopping at the first missing number.
func ownExtraDiffs(dir string) ([]string, error) {
	var out []string
	for i := 1; ; i++ {
		p := filepath.Join(dir, numberedDiff(i))
		if _, err := os.Stat(p); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return out, nil
			}
			return nil, err
		}
		out = append(out, p)
	}
}
