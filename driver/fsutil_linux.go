package driver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stowage/stowage/archive"
	"github.com/stowage/stowage/internal/fsx"
	"github.com/stowage/stowage/internal/idmap"
	"github.com/stowage/stowage/staging"
)

// File-system helpers shared by the vfs and overlay drivers. They return
// bare errors (os.PathError and the like); each driver adds its own prefix.

// RootOwner returns the host owner of layer roots: container root through
// the maps. Without maps a non-root process is its own root (it could not
// chown to 0 anyway). A map without container root is an error
// "mapped root: ..." wrapping idmap's.
func RootOwner(uidMap, gidMap []idmap.IDMap) (uid, gid int, err error) {
	if len(uidMap) == 0 && len(gidMap) == 0 && os.Geteuid() != 0 {
		return os.Geteuid(), os.Getegid(), nil
	}
	uid, gid, err = idmap.RootPair(uidMap, gidMap)
	if err != nil {
		return -1, -1, fmt.Errorf("mapped root: %w", err)
	}
	return uid, gid, nil
}

// LchownIfNeeded changes path's owner (not following a final symlink)
// unless it already is uid:gid, so an unprivileged process can "chown" to
// itself.
func LchownIfNeeded(path string, uid, gid int) error {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return &os.PathError{Op: "lstat", Path: path, Err: err}
	}
	if int(st.Uid) == uid && int(st.Gid) == gid {
		return nil
	}
	return os.Lchown(path, uid, gid)
}

// MkdirExact makes the new directory path with exactly mode (set-ID and
// sticky bits included, umask ignored) owned by uid:gid. It fails if path
// exists; it does not remove what it made when a later step fails.
func MkdirExact(path string, mode uint32, uid, gid int) error {
	if err := unix.Mkdir(path, 0o700); err != nil {
		return &os.PathError{Op: "mkdir", Path: path, Err: err}
	}
	if err := LchownIfNeeded(path, uid, gid); err != nil {
		return err
	}
	if err := unix.Chmod(path, mode); err != nil { // after chown, which clears set-ID bits
		return &os.PathError{Op: "chmod", Path: path, Err: err}
	}
	return nil
}

// MkdirOwned is MkdirExact, except that an existing directory is left as
// it is (an existing non-directory is still an error).
func MkdirOwned(path string, mode uint32, uid, gid int) error {
	err := MkdirExact(path, mode, uid, gid)
	var pe *os.PathError
	if err != nil && errors.As(err, &pe) && pe.Op == "mkdir" && errors.Is(err, unix.EEXIST) {
		if fi, serr := os.Stat(path); serr == nil && fi.IsDir() {
			return nil
		}
	}
	return err
}

// MkdirAllFunc makes path and its missing parents, the outermost first,
// each by calling mkdir with it. An existing path that is not a directory
// is an error "<path>: not a directory".
func MkdirAllFunc(path string, mkdir func(dir string) error) error {
	if fi, err := os.Stat(path); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s: not a directory", path)
		}
		return nil
	}
	if err := MkdirAllFunc(filepath.Dir(path), mkdir); err != nil {
		return err
	}
	return mkdir(path)
}

// RenameNoReplace renames src to dst, failing if dst exists (even as an
// empty directory, which plain rename would replace). On a file system
// without RENAME_NOREPLACE it checks, then renames.
func RenameNoReplace(src, dst string) error {
	err := unix.Renameat2(unix.AT_FDCWD, src, unix.AT_FDCWD, dst, unix.RENAME_NOREPLACE)
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOSYS) {
		return &os.LinkError{Op: "rename", Old: src, New: dst, Err: err}
	}
	if _, err := os.Lstat(dst); err == nil {
		return &os.LinkError{Op: "rename", Old: src, New: dst, Err: unix.EEXIST}
	}
	return os.Rename(src, dst)
}

// RemoveViaStaging removes path (a missing one is not an error) by first
// moving it into a new staging temp dir under tempRoot, so it disappears
// atomically and a crash mid-removal leaves only a temp dir that stale
// recovery reclaims. Where staging is impossible it removes path in place.
func RemoveViaStaging(tempRoot, path string) error {
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if tmp, err := staging.New(tempRoot); err == nil {
		if err := tmp.StageDeletion(path); err == nil {
			return tmp.Cleanup()
		}
		_ = tmp.Cleanup() // nothing was moved; fall back to removing in place
	}
	return fsx.RemoveAll(path)
}

// RecoverStaleTempRoots runs staging.RecoverStale on each existing temp
// root, in order, stopping at the first error; missing roots are skipped.
func RecoverStaleTempRoots(roots ...string) error {
	for _, r := range roots {
		if _, err := os.Stat(r); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := staging.RecoverStale(r); err != nil {
			return err
		}
	}
	return nil
}

// OpenRegularInRoot opens for reading the regular file name (a tar name
// such as "./etc/passwd" or "etc/passwd") with every path component
// resolved inside root by openat2 RESOLVE_IN_ROOT: ".." and symlinks,
// absolute ones included, cannot leave it. O_NONBLOCK keeps a fifo from
// blocking the open. A name that cleans to the root itself, or anything
// but a regular file, is an error "not a regular file". Without openat2
// (ENOSYS) it walks name refusing every symlink when walkFallback is set
// (stricter, never escapes), else fails wrapping ErrNotSupported.
func OpenRegularInRoot(root, name string, walkFallback bool) (*os.File, error) {
	rel := strings.TrimPrefix(filepath.Clean("/"+name), "/")
	if rel == "" {
		return nil, errors.New("not a regular file")
	}
	f, err := openInRoot(root, rel, walkFallback)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, errors.New("not a regular file")
	}
	return f, nil
}

// openInRoot opens rel (clean, relative) for reading inside root; see
// OpenRegularInRoot.
func openInRoot(root, rel string, walkFallback bool) (*os.File, error) {
	rootFd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: root, Err: err}
	}
	defer unix.Close(rootFd)
	const flags = unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOCTTY | unix.O_NONBLOCK
	how := unix.OpenHow{Flags: flags, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV}
	fd, err := unix.Openat2(rootFd, rel, &how)
	if errors.Is(err, unix.ENOSYS) {
		if !walkFallback {
			return nil, fmt.Errorf("openat2 unavailable: %w", ErrNotSupported)
		}
		fd, err = openNoFollow(rootFd, rel, flags)
	}
	if err != nil {
		return nil, &os.PathError{Op: "openat2", Path: rel, Err: err}
	}
	return os.NewFile(uintptr(fd), filepath.Join(root, rel)), nil
}

// openNoFollow is the fallback for kernels without openat2: it walks rel
// one component at a time refusing every symlink.
func openNoFollow(rootFd int, rel string, flags int) (int, error) {
	parts := strings.Split(rel, "/")
	cur := rootFd
	for i, p := range parts {
		fl := unix.O_PATH | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
		if i == len(parts)-1 {
			fl = flags | unix.O_NOFOLLOW
		}
		fd, err := unix.Openat(cur, p, fl, 0)
		if cur != rootFd {
			unix.Close(cur)
		}
		if err != nil {
			return -1, err
		}
		cur = fd
	}
	return cur, nil
}

// StageTree stages a layer tree without store locks: it makes a staging
// temp dir under tempRoot, has prepare create the tree's root at the dir
// it is given (prepare's errors are returned as they are), unpacks blob
// into it with u and flushes the tree as mode says (fsx.FlushTree: per-file
// fdatasync and directories bottom-up for small trees, one syncfs for
// large ones), so the commit under layers.lock is only a rename and
// directory fsyncs. With deferFlush the flush is left to Staged.Flush
// (fsx.FlushTreeSince from the end of the extraction: layers staged
// before one syncfs share it). Its own errors start with prefix (the
// driver name) and " stage: ". On any error, including a cancelled ctx,
// the temp dir is removed; on success the caller owns the Staged value.
func StageTree(ctx context.Context, tempRoot, prefix string, blob io.Reader, u archive.UnpackOptions, mode fsx.SyncMode, deferFlush bool, prepare func(dir string) error) (*Staged, error) {
	return StageTreeIn(ctx, tempRoot, prefix, blob, u, mode, deferFlush, func(dir string) (string, error) {
		return dir, prepare(dir)
	})
}

// StageTreeIn is StageTree for a driver whose staged directory holds more
// than the layer's files (overlay stages its whole layer directory):
// prepare creates dir and returns the directory the blob is extracted
// into (dir or one inside it), which becomes Staged.Dir; the flush, here
// or deferred, covers all of dir.
func StageTreeIn(ctx context.Context, tempRoot, prefix string, blob io.Reader, u archive.UnpackOptions, mode fsx.SyncMode, deferFlush bool, prepare func(dir string) (string, error)) (_ *Staged, retErr error) {
	tmp, err := staging.New(tempRoot)
	if err != nil {
		return nil, fmt.Errorf("%s stage: %w", prefix, err)
	}
	defer func() {
		if retErr != nil {
			_ = tmp.Cleanup() // retErr is what the caller needs; recovery reclaims leftovers
		}
	}()
	dir := tmp.Addition()
	content, err := prepare(dir)
	if err != nil {
		return nil, err
	}
	u.FlushEarly = mode != fsx.SyncNone
	res, err := archive.Unpack(ctx, content, blob, u)
	if err != nil {
		return nil, fmt.Errorf("%s stage: %w", prefix, err)
	}
	if deferFlush {
		written := time.Now()
		flush := func(ctx context.Context) error {
			if err := fsx.FlushTreeSince(ctx, dir, mode, written); err != nil {
				return fmt.Errorf("%s stage: flushing %s: %w", prefix, dir, err)
			}
			return nil
		}
		return &Staged{Result: res, Dir: content, Cleanup: tmp.Cleanup, Flush: flush}, nil
	}
	if err := fsx.FlushTree(ctx, dir, mode); err != nil {
		return nil, fmt.Errorf("%s stage: flushing %s: %w", prefix, dir, err)
	}
	return &Staged{Result: res, Dir: content, Cleanup: tmp.Cleanup}, nil
}

// SyncOption parses the value of a driver's "sync" option.
func SyncOption(val string) (fsx.SyncMode, error) {
	m, err := fsx.ParseSyncMode(val)
	if err != nil {
		return m, fmt.Errorf("option sync: %w", err)
	}
	return m, nil
}

// FlushLayer flushes a layer tree written in place (Create's copy,
// ApplyDiff's extraction) as mode says, then fsyncs the directory holding
// it so its entry survives a crash. Volatile layers are not flushed.
func FlushLayer(ctx context.Context, dir string, mode fsx.SyncMode, volatile bool) error {
	if volatile {
		return nil
	}
	if err := fsx.FlushTree(ctx, dir, mode); err != nil {
		return err
	}
	return fsx.SyncDir(filepath.Dir(dir))
}
