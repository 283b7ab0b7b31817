package lockfile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// lockMode is the kind of hold a caller wants or a File has.
type lockMode int

const (
	modeUnlock lockMode = iota
	modeRead
	modeWrite
)

// maxBackoff caps the sleep between non-blocking attempts on a lock that
// another process holds, as upstream retries every 10 ms.
const maxBackoff = 10 * time.Millisecond

// registry holds the one *File per cleaned path of this process.
var registry struct {
	mu    sync.Mutex
	files map[string]*File // guarded by mu
}

// File is a lock file shared by every user in this process.
type File struct {
	// Fixed at construction; safe without locks.
	path string

	mu sync.Mutex
	// Guarded by mu.
	readOnly       bool
	fd             *os.File
	readers        int           // read holds in this process
	writer         bool          // a write hold in this process
	writersWaiting int           // Lock callers waiting; new readers queue behind them
	changed        chan struct{} // closed and replaced whenever a hold ends
	holds          []time.Time   // start of each current hold, most recent last
	stat           Stat
}

// Get opens (creating 0644, and the parent dir 0700, as needed) the lock
// file at path for read-write use. Calling it again for the same cleaned
// path returns the same *File. If the path was first opened with
// GetReadOnly, Get reopens it read-write, which fails while it is held.
func Get(path string) (*File, error) { return get(path, false) }

// GetReadOnly opens the lock file of a read-only store (O_RDONLY|O_CREAT,
// or plain O_RDONLY on a read-only file system); only RLock may be used on
// it. If the path is already open read-write, that *File is returned.
func GetReadOnly(path string) (*File, error) { return get(path, true) }

func get(path string, readOnly bool) (*File, error) {
	if path == "" {
		return nil, errors.New("lockfile: empty lock file path")
	}
	clean := filepath.Clean(path)
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if f, ok := registry.files[clean]; ok {
		if !readOnly {
			if err := f.makeWritable(); err != nil {
				return nil, err
			}
		}
		return f, nil
	}
	fd, err := openLockFile(clean, readOnly)
	if err != nil {
		return nil, err
	}
	f := &File{path: clean, readOnly: readOnly, fd: fd, changed: make(chan struct{})}
	f.stat.Path = clean
	if registry.files == nil {
		registry.files = make(map[string]*File)
	}
	registry.files[clean] = f
	return f, nil
}

// makeWritable reopens a read-only File read-write.
func (f *File) makeWritable() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.readOnly {
		return nil
	}
	if f.writer || f.readers > 0 {
		return fmt.Errorf("lock file %s: opened read-only and held, cannot reopen read-write", f.path)
	}
	fd, err := openLockFile(f.path, false)
	if err != nil {
		return err
	}
	_ = f.fd.Close() // read-only descriptor, nothing to flush
	f.fd, f.readOnly = fd, false
	return nil
}

// openLockFile opens path the way containers/storage does, creating the
// parent directory (0700) if it is missing.
func openLockFile(path string, readOnly bool) (*os.File, error) {
	flags := os.O_RDWR | os.O_CREATE
	if readOnly {
		flags = os.O_RDONLY | os.O_CREATE
	}
	fd, err := os.OpenFile(path, flags, 0o644)
	if errors.Is(err, os.ErrNotExist) {
		// For a read-only store that cannot make the directory, the
		// open error stands.
		switch mkErr := os.MkdirAll(filepath.Dir(path), 0o700); {
		case mkErr == nil:
			fd, err = os.OpenFile(path, flags, 0o644)
		case !readOnly:
			return nil, fmt.Errorf("creating lock file directory: %w", mkErr)
		}
	}
	if err != nil && readOnly && isReadOnlyFSError(err) {
		fd, err = os.OpenFile(path, os.O_RDONLY, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("opening lock file: %w", err)
	}
	return fd, nil
}

// Path returns the lock file's cleaned path.
func (f *File) Path() string { return f.path }

// ReadOnly reports whether the file is open read-only (GetReadOnly).
func (f *File) ReadOnly() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.readOnly
}

// Lock takes the write lock, waiting until ctx ends. It excludes every other
// holder in this process and in other processes. If ctx ends first the error
// is a *LockWaitError and nothing is held.
func (f *File) Lock(ctx context.Context) error { return f.acquire(ctx, modeWrite) }

// RLock takes a read lock, waiting until ctx ends. Readers share with other
// readers of any process. If ctx ends first the error is a *LockWaitError.
func (f *File) RLock(ctx context.Context) error { return f.acquire(ctx, modeRead) }

// acquire waits for an in-process slot of kind m and, for the first holder,
// the cross-process OFD lock.
func (f *File) acquire(ctx context.Context, m lockMode) error {
	start := time.Now()
	f.mu.Lock()
	if m == modeWrite {
		if f.readOnly {
			f.mu.Unlock()
			return fmt.Errorf("write-locking %s: %w", f.path, ErrReadOnly)
		}
		f.writersWaiting++
	}
	backoff := time.Millisecond / 2
	for {
		if err := ctx.Err(); err != nil {
			return f.giveUpLocked(m, start, err)
		}
		var wait <-chan struct{}
		var timer *time.Timer
		switch {
		case !f.compatibleLocked(m):
			wait = f.changed
		case f.writer || f.readers > 0:
			// Joining readers: the OFD read lock is already ours.
			f.grantLocked(m, start)
			f.mu.Unlock()
			return nil
		default:
			err := setLock(f.fd, m)
			if err == nil {
				f.grantLocked(m, start)
				f.mu.Unlock()
				return nil
			}
			if !errors.Is(err, errWouldBlock) {
				f.giveUpLockedNoStat(m)
				return fmt.Errorf("locking %s: %w", f.path, err)
			}
			// Another process holds it: poll with a short backoff.
			backoff = min(backoff*2, maxBackoff)
			timer = time.NewTimer(backoff)
		}
		f.mu.Unlock()
		if timer != nil {
			select {
			case <-timer.C:
			case <-ctx.Done():
				timer.Stop()
			}
		} else {
			select {
			case <-wait:
			case <-ctx.Done():
			}
		}
		f.mu.Lock()
	}
}

// compatibleLocked reports whether a hold of kind m may join the current
// in-process holders. Locking: f.mu held.
func (f *File) compatibleLocked(m lockMode) bool {
	if m == modeWrite {
		return !f.writer && f.readers == 0
	}
	return !f.writer && f.writersWaiting == 0
}

// grantLocked records a new hold. Locking: f.mu held.
func (f *File) grantLocked(m lockMode, start time.Time) {
	now := time.Now()
	if m == modeWrite {
		f.writersWaiting--
		f.writer = true
		f.stat.Locks++
	} else {
		f.readers++
		f.stat.RLocks++
	}
	f.holds = append(f.holds, now)
	f.noteWaitLocked(now.Sub(start))
}

// giveUpLocked abandons a wait because ctx ended, and unlocks f.mu.
func (f *File) giveUpLocked(m lockMode, start time.Time, ctxErr error) error {
	waited := time.Since(start)
	f.noteWaitLocked(waited)
	f.giveUpLockedNoStat(m)
	return &LockWaitError{Path: f.path, Waited: waited, Err: ctxErr}
}

// giveUpLockedNoStat drops a waiting writer's claim and unlocks f.mu.
func (f *File) giveUpLockedNoStat(m lockMode) {
	if m == modeWrite {
		f.writersWaiting--
		f.broadcastLocked() // readers queued behind this writer may go
	}
	f.mu.Unlock()
}

func (f *File) noteWaitLocked(d time.Duration) {
	f.stat.Waited += d
	f.stat.LongestWait = max(f.stat.LongestWait, d)
}

// broadcastLocked wakes every waiter. Locking: f.mu held.
func (f *File) broadcastLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// Unlock releases a hold taken by Lock or RLock: the write hold if there is
// one, else one read hold. The last holder in this process releases the
// cross-process lock. Unlocking an unheld lock panics (programming error).
func (f *File) Unlock() {
	f.mu.Lock()
	wrote := f.writer
	switch {
	case f.writer:
		f.writer = false
	case f.readers > 0:
		f.readers--
	default:
		f.mu.Unlock()
		panic("lockfile: Unlock of unlocked lock " + f.path)
	}
	since := f.holds[len(f.holds)-1]
	f.holds = f.holds[:len(f.holds)-1]
	if !f.writer && f.readers == 0 {
		// Cannot fail on a valid descriptor we own; closing it would be
		// the only other way to drop the lock, and we keep it open.
		_ = setLock(f.fd, modeUnlock)
	}
	held := time.Since(since)
	f.stat.Held += held
	f.stat.LongestHold = max(f.stat.LongestHold, held)
	if wrote {
		f.stat.LongestWriteHold = max(f.stat.LongestWriteHold, held)
	}
	f.broadcastLocked()
	f.mu.Unlock()
	reportHold(f.path, held)
}

// AssertWriter panics unless this process holds the write lock.
func (f *File) AssertWriter() {
	f.mu.Lock()
	w := f.writer
	f.mu.Unlock()
	if !w {
		panic("lockfile: " + f.path + " is not locked for writing")
	}
}

// RecordWrite writes a new unique 64-byte token at offset 0 and returns it.
//
// Locking: write lock held (AssertWriter).
func (f *File) RecordWrite() (LastWrite, error) {
	f.AssertWriter()
	tok := newToken()
	f.mu.Lock()
	fd := f.fd
	f.mu.Unlock()
	if _, err := fd.WriteAt(tok, 0); err != nil {
		return LastWrite{}, fmt.Errorf("recording write in %s: %w", f.path, err)
	}
	return LastWrite{token: string(tok)}, nil
}

// LastWrite returns the current token: up to 64 bytes at offset 0. A short
// or empty file is a valid token (the empty one for a new file).
//
// Locking: read or write lock held (not asserted).
func (f *File) LastWrite() (LastWrite, error) {
	f.mu.Lock()
	fd := f.fd
	f.mu.Unlock()
	buf := make([]byte, TokenSize)
	n, err := fd.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return LastWrite{}, fmt.Errorf("reading last write of %s: %w", f.path, err)
	}
	return LastWrite{token: string(buf[:n])}, nil
}

// ModifiedSince reads the current token and reports whether it differs from
// prev, i.e. whether someone wrote since prev was seen. It returns the
// current token so the caller can remember it after reloading.
//
// Locking: read or write lock held.
func (f *File) ModifiedSince(prev LastWrite) (LastWrite, bool, error) {
	cur, err := f.LastWrite()
	if err != nil {
		return LastWrite{}, false, err
	}
	return cur, cur != prev, nil
}

// Stats returns a snapshot of this process's statistics for every lock file
// opened with Get or GetReadOnly, sorted by path.
func Stats() []Stat {
	registry.mu.Lock()
	files := make([]*File, 0, len(registry.files))
	for _, f := range registry.files {
		files = append(files, f)
	}
	registry.mu.Unlock()
	out := make([]Stat, 0, len(files))
	for _, f := range files {
		f.mu.Lock()
		out = append(out, f.stat)
		f.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}
