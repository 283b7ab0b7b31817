package staging

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/stowage/stowage/internal/fsx"
	"github.com/stowage/stowage/lockfile"
)

const (
	lockPrefix = "lock-"
	dirPrefix  = "temp-dir-"
	// newAttempts bounds the search for a free <n>, as upstream does.
	newAttempts = 1000
)

// Dir is one live temp dir: root/temp-dir-<n>, kept alive by root/lock-<n>.
type Dir struct {
	// Fixed at construction; safe without locks.
	root, path string

	mu sync.Mutex
	// Guarded by mu.
	lock *lockfile.Held // nil after Cleanup
	next int            // the next <k>
}

// New creates root (0700) if needed, then lock-<n> (created O_EXCL and held)
// and temp-dir-<n> (0700). The caller must call Cleanup; if the process
// dies first, RecoverStale in a later process removes the dir.
func New(root string) (*Dir, error) {
	if root == "" {
		return nil, errors.New("staging: empty temp dir root")
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("staging: creating temp dir root: %w", err)
	}
	for range newAttempts {
		n := strconv.FormatUint(uint64(rand.Uint32()), 10)
		h, err := lockfile.TryLockNew(filepath.Join(root, lockPrefix+n))
		if errors.Is(err, fs.ErrExist) || errors.Is(err, lockfile.ErrLocked) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("staging: %w", err)
		}
		path := filepath.Join(root, dirPrefix+n)
		if err := os.Mkdir(path, 0o700); err != nil {
			_ = h.Remove() // nothing of ours to keep
			if errors.Is(err, fs.ErrExist) {
				continue // a dead owner's leftover; RecoverStale removes it
			}
			return nil, fmt.Errorf("staging: %w", err)
		}
		return &Dir{root: root, path: path, lock: h}, nil
	}
	return nil, fmt.Errorf("staging: no free temp dir name in %s after %d attempts", root, newAttempts)
}

// Path returns the temp-dir-<n> directory.
func (d *Dir) Path() string { return d.path }

// Root returns the directory holding the temp dir and its lock.
func (d *Dir) Root() string { return d.root }

// Addition returns a fresh path "<k>-addition" inside the dir without
// creating it: the caller creates it with the final mode and owner (rename
// keeps them) and later renames it to its destination on the same file
// system. After Cleanup the path is still returned but cannot be created.
func (d *Dir) Addition() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return filepath.Join(d.path, d.nextNameLocked("addition"))
}

// nextNameLocked returns "<k>-<suffix>" and advances k. Locking: d.mu held.
func (d *Dir) nextNameLocked(suffix string) string {
	k := d.next
	d.next++
	return strconv.Itoa(k) + "-" + suffix
}

// StageDeletion renames path into the dir as "<k>-<basename>" so it
// disappears from its place at once and is removed by Cleanup. path must be
// on the same file system as the dir.
func (d *Dir) StageDeletion(path string) error {
	base := filepath.Base(path)
	if path == "" || base == "." || base == ".." || base == string(filepath.Separator) {
		return fmt.Errorf("staging: cannot stage deletion of %q", path)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.lock == nil {
		return fmt.Errorf("staging: staging deletion of %s: %w", path, ErrCleanedUp)
	}
	if err := os.Rename(path, filepath.Join(d.path, d.nextNameLocked(base))); err != nil {
		return fmt.Errorf("staging: staging deletion: %w", err)
	}
	return nil
}

// Cleanup removes the temp dir recursively (unmounting and clearing
// immutable flags as needed), then unlinks and releases the lock file.
// Idempotent. If removing the dir fails the lock stays held, so Cleanup can
// be retried and no other process removes it meanwhile.
func (d *Dir) Cleanup() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.lock == nil {
		return nil
	}
	if err := fsx.RemoveAll(d.path); err != nil {
		return fmt.Errorf("staging: cleanup: %w", err)
	}
	if err := d.lock.Remove(); err != nil {
		return fmt.Errorf("staging: cleanup: %w", err)
	}
	d.lock = nil
	return nil
}

// RecoverStale removes every temp dir under root whose lock nobody holds:
// for each <n> named by a lock-<n> or temp-dir-<n> entry it tries lock-<n>
// without blocking (creating it if absent) and, if that succeeds, removes
// temp-dir-<n> and the lock file. Dirs of live owners, in this process or
// another, are skipped. A missing root is not an error. Errors for single
// entries do not stop the others; they are returned joined.
func RecoverStale(root string) error {
	ents, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("staging: recovering stale temp dirs: %w", err)
	}
	ids := map[string]bool{}
	for _, e := range ents {
		name := e.Name()
		if id, ok := strings.CutPrefix(name, dirPrefix); ok {
			ids[id] = true
		} else if id, ok := strings.CutPrefix(name, lockPrefix); ok {
			ids[id] = true
		}
	}
	var errs []error
	for _, id := range slices.Sorted(maps.Keys(ids)) {
		if err := recoverOne(root, id); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// recoverOne removes temp-dir-<id> and lock-<id> if nobody holds the lock.
func recoverOne(root, id string) error {
	h, err := lockfile.TryLock(filepath.Join(root, lockPrefix+id))
	if errors.Is(err, lockfile.ErrLocked) {
		return nil // owner alive
	}
	if err != nil {
		return fmt.Errorf("staging: recovering temp dir %s: %w", id, err)
	}
	if err := fsx.RemoveAll(filepath.Join(root, dirPrefix+id)); err != nil {
		_ = h.Release()
		return fmt.Errorf("staging: recovering temp dir %s: %w", id, err)
	}
	if err := h.Remove(); err != nil {
		return fmt.Errorf("staging: recovering temp dir %s: %w", id, err)
	}
	return nil
}
