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
	p, err := PrepareAtomicWrite(path, data, mode, opts.NoSync)
	if err != nil {
		return time.Time{}, err
	}
	if err := p.Rename(); err != nil {
		return time.Time{}, err
	}
	if opts.SyncDir && !opts.NoSync {
		if err := SyncDir(p.Dir()); err != nil {
			return p.Mtime(), fmt.Errorf("atomic write of %s: %w", path, err)
		}
	}
	return p.Mtime(), nil
}

// PendingWrite is the first half of an atomic replacement: a complete temp
// file beside its target, waiting for Rename (or Abort). Splitting the two
// lets a caller flush several temp files and other paths concurrently and
// rename only once all of them are durable.
type PendingWrite struct {
	path, tmp string
	mtime     time.Time
}

// PrepareAtomicWrite writes data to a new "<dir>/.tmp-<base><random>"
// beside path, fdatasyncs it unless noSync, and fchmods it to mode. On
// error nothing is left behind.
func PrepareAtomicWrite(path string, data []byte, mode os.FileMode, noSync bool) (*PendingWrite, error) {
	dir, base := filepath.Dir(path), filepath.Base(path)
	if path == "" || base == "." || base == string(filepath.Separator) {
		return nil, fmt.Errorf("atomic write: invalid file path %q", path)
	}
	tmp, err := os.CreateTemp(dir, TempPrefix(base)+"*")
	if err != nil {
		return nil, fmt.Errorf("atomic write of %s: %w", path, err)
	}
	mtime, err := writeTemp(tmp, data, mode, AtomicOptions{NoSync: noSync})
	if err != nil {
		_ = os.Remove(tmp.Name())
		return nil, fmt.Errorf("atomic write of %s: %w", path, err)
	}
	return &PendingWrite{path: path, tmp: tmp.Name(), mtime: mtime}, nil
}

// PrepareAtomicWriteAs is PrepareAtomicWrite with the temp file at tmp
// (created or truncated; same file system as path, any directory), for a
// writer that owns a fixed name there (the layer store's prepared
// records, see table.Prepared). On error tmp is removed.
func PrepareAtomicWriteAs(tmp, path string, data []byte, mode os.FileMode, noSync bool) (*PendingWrite, error) {
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("atomic write of %s: %w", path, err)
	}
	mtime, err := writeTemp(f, data, mode, AtomicOptions{NoSync: noSync})
	if err != nil {
		_ = os.Remove(tmp)
		return nil, fmt.Errorf("atomic write of %s: %w", path, err)
	}
	return &PendingWrite{path: path, tmp: tmp, mtime: mtime}, nil
}

// Rename moves the temp file over the target; on error the temp file is
// removed and the target is untouched. The rename is durable only once
// the directory (Dir) is fsynced.
func (p *PendingWrite) Rename() error {
	if err := os.Rename(p.tmp, p.path); err != nil {
		_ = os.Remove(p.tmp)
		return fmt.Errorf("atomic write of %s: %w", p.path, err)
	}
	return nil
}

// Abort removes the temp file (before Rename).
func (p *PendingWrite) Abort() { _ = os.Remove(p.tmp) }

// Dir returns the directory holding the target.
func (p *PendingWrite) Dir() string { return filepath.Dir(p.path) }

// Mtime returns the temp file's mtime: the target's once renamed.
func (p *PendingWrite) Mtime() time.Time { return p.mtime }

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

// SyncConcurrently fdatasyncs files and fsyncs dirs all at once (bounded
// parallelism, no order among them), for flushes that need only be
// complete before some later step: concurrent flushes on one file system
// share journal commits (ext4, xfs), so the batch costs about one flush.
// Missing paths are errors.
func SyncConcurrently(ctx context.Context, files, dirs []string) error {
	var g errgroup.Group
	g.SetLimit(runtime.GOMAXPROCS(0) * 4)
	for _, p := range files {
		g.Go(func() error { return syncPathFn(p, false) }) // owner: g.Wait below
	}
	for _, p := range dirs {
		g.Go(func() error { return syncPathFn(p, true) }) // owner: g.Wait below
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	return ctx.Err()
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
