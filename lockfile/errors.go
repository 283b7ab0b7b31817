package lockfile

import (
	"errors"
	"fmt"
	"time"
)

// ErrLocked is returned by TryLock when another owner holds the lock.
var ErrLocked = errors.New("lock is held by another owner")

// ErrReadOnly is returned when a write operation is attempted on a lock file
// opened with GetReadOnly.
var ErrReadOnly = errors.New("lock file is read-only")

// LockWaitError reports that ctx ended while waiting for a lock.
type LockWaitError struct {
	Path   string        // the lock file
	Waited time.Duration // how long this caller waited
	Err    error         // ctx.Err()
}

func (e *LockWaitError) Error() string {
	return fmt.Sprintf("waiting %s for lock %s: %v", e.Waited.Round(time.Millisecond), e.Path, e.Err)
}

func (e *LockWaitError) Unwrap() error { return e.Err }
