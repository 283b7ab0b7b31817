// Package lockfile owns containers-storage-compatible lock files: fcntl
// (OFD) record locks, the 64-byte last-writer token, and lock wait/hold
// statistics.
//
// CONTRACT (filled in by the lockfile work; signatures are fixed):
//   - Get/GetReadOnly return one *File per cleaned path per process.
//   - Lock/RLock block (honouring ctx) across goroutines and processes;
//     they are not reentrant. Unlock releases the most recent hold.
//   - RecordWrite pwrites a fresh unique 64-byte token at offset 0 and
//     returns it; the caller must hold the write lock.
//   - LastWrite reads the current token (a short or empty file is a valid
//     token); the caller must hold a lock.
package lockfile

import (
	"context"
	"errors"
	"time"
)

// ErrLocked is returned by TryLock when another owner holds the lock.
var ErrLocked = errors.New("lock is held by another owner")

// LastWrite is an opaque last-writer token; compare with ==.
type LastWrite struct{ token string }

// IsZero reports whether the token is the empty (never written) token.
func (l LastWrite) IsZero() bool { return l.token == "" }

// File is a lock file shared by every user in this process.
type File struct {
	path     string
	readOnly bool
}

// Get opens (creating 0644, and the parent dir 0700, as needed) the lock
// file at path for read-write use.
func Get(path string) (*File, error) { return nil, errors.New("lockfile: not implemented") }

// GetReadOnly opens the lock file of a read-only store (O_RDONLY); only
// RLock may be used on it.
func GetReadOnly(path string) (*File, error) { return nil, errors.New("lockfile: not implemented") }

// Path returns the lock file's path.
func (f *File) Path() string { return f.path }

// Lock takes the write lock, waiting until ctx ends.
func (f *File) Lock(ctx context.Context) error { return errors.New("lockfile: not implemented") }

// RLock takes a read lock, waiting until ctx ends.
func (f *File) RLock(ctx context.Context) error { return errors.New("lockfile: not implemented") }

// Unlock releases a hold taken by Lock or RLock.
func (f *File) Unlock() {}

// AssertWriter panics unless this process holds the write lock.
func (f *File) AssertWriter() {}

// RecordWrite writes a new unique token. Locking: write lock held.
func (f *File) RecordWrite() (LastWrite, error) {
	return LastWrite{}, errors.New("lockfile: not implemented")
}

// LastWrite returns the current token. Locking: read or write lock held.
func (f *File) LastWrite() (LastWrite, error) {
	return LastWrite{}, errors.New("lockfile: not implemented")
}

// Held is a non-blocking exclusive lock on a temp-dir or staging lock file.
type Held struct{ path string }

// TryLock creates (if needed) and locks path without blocking; ErrLocked if
// another owner (in any process, or this one) holds it.
func TryLock(path string) (*Held, error) { return nil, errors.New("lockfile: not implemented") }

// Release unlocks and closes. Remove also unlinks the file first.
func (h *Held) Release() error { return nil }

// Stat is the wait/hold statistics of one lock file in this process.
type Stat struct {
	Path          string
	Locks, RLocks int64
	Waited, Held  time.Duration
	LongestWait   time.Duration
	LongestHold   time.Duration
}

// Stats returns a snapshot of this process's statistics for every lock file used.
func Stats() []Stat { return nil }
