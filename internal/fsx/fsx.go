// Package fsx owns the Linux file-system primitives the store needs:
// atomic file replacement, directory and tree syncing, reflinks and copies.
package fsx

import (
	"context"
	"errors"
	"os"
	"time"
)

// ErrNotSupported is returned where the file system or platform lacks a feature (e.g. reflinks).
var ErrNotSupported = errors.New("not supported")

// AtomicOptions control AtomicWriteFile.
type AtomicOptions struct {
	NoSync  bool // skip fdatasync and the directory fsync (volatile files)
	SyncDir bool // fsync the parent directory after the rename
}

// AtomicWriteFile writes data to path via "<dir>/.tmp-<base><random>"
// (O_EXCL, mode), fdatasync, rename. It returns the temp file's mtime (the
// mtime the target now has).
func AtomicWriteFile(path string, data []byte, mode os.FileMode, opts AtomicOptions) (time.Time, error) {
	return time.Time{}, errors.New("fsx: not implemented")
}

// SyncDir fsyncs a directory.
func SyncDir(path string) error { return errors.New("fsx: not implemented") }

// SyncTree flushes every regular file under root (fdatasync, in parallel)
// and then every directory bottom-up.
func SyncTree(ctx context.Context, root string) error { return errors.New("fsx: not implemented") }

// Syncfs flushes the file system holding path.
func Syncfs(path string) error { return errors.New("fsx: not implemented") }

// RemoveAll removes path recursively, unmounting anything mounted below it
// and clearing immutable flags; a missing path is not an error.
func RemoveAll(path string) error { return os.RemoveAll(path) }
