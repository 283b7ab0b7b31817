//go:build !linux

package lockfile

import (
	"errors"
	"os"
)

var errWouldBlock = errors.New("lock would block")

// setLock is unavailable: stowage relies on Linux OFD record locks.
func setLock(f *os.File, m lockMode) error {
	return errors.New("lockfile: OFD record locks are only supported on Linux")
}

func isReadOnlyFSError(err error) bool { return errors.Is(err, os.ErrPermission) }
