package lockfile

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// Held is a non-blocking exclusive lock on a temp-dir or staging lock file,
// taken on its own open file description: it conflicts with every other
// lock on the file, including other Held values and Files of this process.
type Held struct {
	// Fixed at construction; safe without locks.
	path string

	mu sync.Mutex
	f  *os.File // guarded by mu; nil once released
}

// tryLockAttempts bounds the retries when the path is replaced between our
// open and our lock (another owner unlinked it).
const tryLockAttempts = 8

// TryLock creates (if needed) and locks path without blocking; ErrLocked if
// another owner (in any process, or this one) holds it. On success the
// locked file is still the one at path (not one unlinked meanwhile).
func TryLock(path string) (*Held, error) { return tryLock(path, openCreate) }

// TryLockExisting is TryLock of a file that must exist: it never creates
// path, and fails with an error matching os.ErrNotExist when it is gone
// (for probing files someone else owns, such as a layer's commit marker,
// without leaving a new one behind when its owner just removed it).
func TryLockExisting(path string) (*Held, error) { return tryLock(path, openExisting) }

// TryLockNew creates path with O_EXCL and locks it without blocking. It
// fails with an error matching os.ErrExist if path already exists, and with
// ErrLocked if someone else locked or removed the new file first.
func TryLockNew(path string) (*Held, error) { return tryLock(path, openNew) }

// WaitLock is TryLock that waits for another owner to let go, polling with
// the backoff of File's waits, until it gets the lock or ctx ends (then a
// *LockWaitError).
func WaitLock(ctx context.Context, path string) (*Held, error) {
	start := time.Now()
	backoff := time.Millisecond / 2
	for {
		h, err := TryLock(path)
		if !errors.Is(err, ErrLocked) {
			return h, err
		}
		backoff = min(backoff*2, maxBackoff)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, &LockWaitError{Path: path, Waited: time.Since(start), Err: ctx.Err()}
		}
	}
}

// openMode says how tryLock opens the lock file.
type openMode int

const (
	openCreate   openMode = iota // create if missing (TryLock)
	openNew                      // create, failing if it exists (TryLockNew)
	openExisting                 // never create (TryLockExisting)
)

func tryLock(path string, m openMode) (*Held, error) {
	flags := os.O_RDWR
	switch m {
	case openCreate:
		flags |= os.O_CREATE
	case openNew:
		flags |= os.O_CREATE | os.O_EXCL
	}
	for range tryLockAttempts {
		f, err := os.OpenFile(path, flags, 0o644)
		if err != nil {
			return nil, fmt.Errorf("opening lock file: %w", err)
		}
		if err := setLock(f, modeWrite); err != nil {
			_ = f.Close()
			if errors.Is(err, errWouldBlock) {
				return nil, fmt.Errorf("%s: %w", path, ErrLocked)
			}
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		same, err := isSameFile(f, path)
		if err != nil {
			_ = f.Close()
			return nil, err
		}
		if same {
			return &Held{path: path, f: f}, nil
		}
		// The file we locked was unlinked (its owner removed it): the path
		// now names another file or nothing.
		_ = f.Close()
		switch m {
		case openNew:
			return nil, fmt.Errorf("%s: removed while being created: %w", path, ErrLocked)
		case openExisting:
			return nil, fmt.Errorf("%s: removed while being locked: %w", path, os.ErrNotExist)
		}
	}
	return nil, fmt.Errorf("%s: replaced repeatedly while locking: %w", path, ErrLocked)
}

// isSameFile reports whether path still names the open file f.
func isSameFile(f *os.File, path string) (bool, error) {
	fi, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("stat %s: %w", path, err)
	}
	pi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return os.SameFile(fi, pi), nil
}

// Path returns the locked file's path.
func (h *Held) Path() string { return h.path }

// Release unlocks and closes. It is idempotent.
func (h *Held) Release() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.releaseLocked()
}

func (h *Held) releaseLocked() error {
	if h.f == nil {
		return nil
	}
	f := h.f
	h.f = nil
	// Closing the only descriptor of the open file description drops the
	// OFD lock; unlock explicitly anyway so a leaked dup cannot keep it.
	_ = setLock(f, modeUnlock)
	if err := f.Close(); err != nil {
		return fmt.Errorf("closing lock file %s: %w", h.path, err)
	}
	return nil
}

// Remove unlinks the lock file while still holding it, then releases it, so
// nobody can lock the old file and believe it is current. Calling it after
// Release (or Remove) does nothing.
func (h *Held) Remove() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.f == nil {
		return nil
	}
	rmErr := os.Remove(h.path)
	if errors.Is(rmErr, os.ErrNotExist) {
		rmErr = nil
	}
	return errors.Join(rmErr, h.releaseLocked())
}
