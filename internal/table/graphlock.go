package table

import (
	"context"

	"github.com/stowage/stowage/lockfile"
)

// GraphLock wraps G/storage.lock, which guards driver-level state rather
// than records: it is taken for writing around mounts and Shutdown, and
// only Shutdown writes its token.
type GraphLock struct {
	// Fixed at construction; safe without locks.
	f *lockfile.File
}

// NewGraphLock opens (creating) the lock file at path.
func NewGraphLock(path string) (*GraphLock, error) {
	f, err := lockfile.Get(path)
	if err != nil {
		return nil, err
	}
	return &GraphLock{f: f}, nil
}

// LockWrite takes the lock for writing; the function releases it.
func (g *GraphLock) LockWrite(ctx context.Context) (func(), error) {
	if err := g.f.Lock(ctx); err != nil {
		return nil, err
	}
	return g.f.Unlock, nil
}

// LockRead takes the lock for reading; the function releases it.
func (g *GraphLock) LockRead(ctx context.Context) (func(), error) {
	if err := g.f.RLock(ctx); err != nil {
		return nil, err
	}
	return g.f.Unlock, nil
}

// ModifiedSince reports whether the token differs from prev (someone ran
// Shutdown since prev was seen) and returns the current token.
//
// Locking: held for reading or writing.
func (g *GraphLock) ModifiedSince(prev lockfile.LastWrite) (lockfile.LastWrite, bool, error) {
	return g.f.ModifiedSince(prev)
}

// RecordWrite writes a new token (before tearing down driver state).
//
// Locking: held for writing.
func (g *GraphLock) RecordWrite() error {
	_, err := g.f.RecordWrite()
	return err
}
