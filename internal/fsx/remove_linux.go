package fsx

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// Inode flags from linux/fs.h (not exported by x/sys/unix).
const (
	fsImmutableFL = 0x00000010
	fsAppendFL    = 0x00000020
)

// removeAttempts bounds the unmount/unflag/remove rounds (a mount may
// appear again, or EBUSY may linger while a lazy unmount settles).
const removeAttempts = 5

func removeAll(path string) error {
	var err error
	for range removeAttempts {
		if err = unmountUnder(path); err != nil {
			return err
		}
		err = os.RemoveAll(path)
		if err == nil {
			return nil
		}
		switch {
		case errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES):
			if !clearFlagsUnder(path) {
				return fmt.Errorf("remove %s: %w", path, err)
			}
		case errors.Is(err, unix.EBUSY):
			// Retry after unmounting again.
		default:
			return fmt.Errorf("remove %s: %w", path, err)
		}
	}
	return fmt.Errorf("remove %s: %w", path, err)
}

// unmountUnder lazily unmounts every mount at or below path, deepest first.
func unmountUnder(path string) error {
	real, err := realPath(path)
	if err != nil {
		return err
	}
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(real))
	if err != nil {
		return fmt.Errorf("listing mounts under %s: %w", path, err)
	}
	sort.SliceStable(mounts, func(i, j int) bool { return len(mounts[i].Mountpoint) > len(mounts[j].Mountpoint) })
	for _, m := range mounts {
		err := unix.Unmount(m.Mountpoint, unix.MNT_DETACH)
		if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("unmounting %s: %w", m.Mountpoint, err)
		}
	}
	return nil
}

// realPath resolves the symlinks in path's parent (mount points are listed
// by real path) but not path itself: a symlink there is removed, not followed.
func realPath(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	parent, err := filepath.EvalSymlinks(filepath.Dir(abs))
	if err != nil {
		return abs, nil // parent vanished: nothing can be mounted under it
	}
	return filepath.Join(parent, filepath.Base(abs)), nil
}

// clearFlagsUnder clears the immutable and append-only flags of path and
// everything under it; it reports whether it cleared any.
func clearFlagsUnder(path string) bool {
	cleared := false
	_ = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // keep going: clear what can be reached
		}
		if d.IsDir() || d.Type().IsRegular() {
			if clearFlags(p, d.IsDir()) {
				cleared = true
			}
		}
		return nil
	})
	return cleared
}

func clearFlags(path string, dir bool) bool {
	flags := unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOFOLLOW | unix.O_NONBLOCK
	if dir {
		flags |= unix.O_DIRECTORY
	}
	fd, err := openRetry(path, flags)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	attr, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
	if err != nil || attr&(fsImmutableFL|fsAppendFL) == 0 {
		return false
	}
	return unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, int(attr&^(fsImmutableFL|fsAppendFL))) == nil
}
