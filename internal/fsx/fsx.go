package fsx

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"golang.org/x/sync/errgroup"
)

// AtomicOptions control AtomicWriteFile.
type AtomicOptions struct {
	NoSync  bool // skip fdatasync and the directory fsync (volatile files)
	SyncDir bool // fsync the parent directory after the rename
}

// AtomicWriteFile writes data to path via "<dir>/.tmp-<base><random>"
// (created O_EXCL 0600 in the same directory), fdatasync (unless NoSync),
// fchmod to mode, rename over path, and with SyncDir an fsync of the
// directory. It returns the temp file's mtime (the mtime the target now
// has). On any error before the rename the temp file is removed and path is
// untouched; an error from the directory fsync comes after the rename, so
// the new content is visible but may not be durable.
func AtomicWriteFile(path string, data []byte, mode os.FileMode, opts AtomicOptions) (time.Time, error) {
	dir, base := filepath.Dir(path), filepath.Base(path)
	if path == "" || base == "." || base == string(filepath.Separator) {
		return time.Time{}, fmt.Errorf("atomic write: invalid file path %q", path)
	}
	tmp, err := os.CreateTemp(dir, ".tmp-"+base+"*")
	if err != nil {
		return time.Time{}, fmt.Errorf("atomic write of %s: %w", path, err)
	}
	mtime, err := writeTemp(tmp, data, mode, opts)
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return time.Time{}, fmt.Errorf("atomic write of %s: %w", path, err)
	}
	if opts.SyncDir && !opts.NoSync {
		if err := SyncDir(dir); err != nil {
			return mtime, fmt.Errorf("atomic write of %s: %w", path, err)
		}
	}
	return mtime, nil
}

// writeTemp fills, flushes, stats, chmods and closes the temp file.
func writeTemp(tmp *os.File, data []byte, mode os.FileMode, opts AtomicOptions) (time.Time, error) {
	_, err := tmp.Write(data)
	if err == nil && !opts.NoSync {
		err = SyncFile(tmp)
	}
	var fi os.FileInfo
	if err == nil {
		fi, err = tmp.Stat()
	}
	if err == nil {
		err = tmp.Chmod(mode)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return time.Time{}, err
	}
	return fi.ModTime(), nil
}

// SyncDir fsyncs a directory, making renames and creations in it durable.
func SyncDir(path string) error {
	if err := syncPathFn(path, true); err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	return nil
}

// SyncTree flushes every regular file under root (fdatasync, in parallel)
// and then every directory bottom-up, children before parents. Symlinks are
// never followed (and not synced: they have no data of their own to flush
// beyond their directory entry). ctx is checked between items; a cancelled
// sync leaves the tree as it was, partly flushed.
func SyncTree(ctx context.Context, root string) error {
	files, dirs, _, err := collectTree(ctx, root, -1)
	if err == nil {
		err = syncCollected(ctx, files, dirs)
	}
	if err != nil {
		return fmt.Errorf("sync tree %s: %w", root, err)
	}
	return nil
}

// syncPathFn is syncPath reporting to the sync hook; tests wrap it to
// observe the order.
var syncPathFn = func(path string, dir bool) error {
	if err := syncPath(path, dir); err != nil {
		return err
	}
	if dir {
		noteSync(SyncDirectory, path)
	} else {
		noteSync(SyncFileData, path)
	}
	return nil
}

// syncAll flushes paths in parallel (bounded) and waits for all of them.
func syncAll(ctx context.Context, paths []string, dirs bool) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0) * 4)
	for _, p := range paths {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error { return syncPathFn(p, dirs) }) // owner: g.Wait below
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}

// Syncfs flushes the whole file system holding path (syncfs(2)).
func Syncfs(path string) error {
	if err := syncfs(path); err != nil {
		return fmt.Errorf("syncfs %s: %w", path, err)
	}
	noteSync(SyncFileSys, path)
	return nil
}

// RemoveAll removes path recursively, unmounting anything mounted at or
// below it (lazily, deepest first) and clearing immutable and append-only
// flags that make removal fail with EPERM; a missing path is not an error.
// A symlink at path is removed, never followed. Removing "/" is refused.
func RemoveAll(path string) error {
	if path == "" {
		return nil
	}
	if filepath.Clean(path) == string(filepath.Separator) {
		return errors.New("fsx: refusing to remove /")
	}
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return removeAll(path)
}
