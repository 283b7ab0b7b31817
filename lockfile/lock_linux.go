package lockfile

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// errWouldBlock reports that another owner holds a conflicting lock.
var errWouldBlock = errors.New("lock would block")

// setLock applies a non-blocking whole-file OFD record lock of kind m
// (modeUnlock releases). A conflicting lock gives errWouldBlock.
func setLock(f *os.File, m lockMode) error {
	lk := unix.Flock_t{Whence: 0, Start: 0, Len: 0} // whole file; Pid must be 0 for OFD
	switch m {
	case modeRead:
		lk.Type = unix.F_RDLCK
	case modeWrite:
		lk.Type = unix.F_WRLCK
	default:
		lk.Type = unix.F_UNLCK
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var opErr error
	if err := rc.Control(func(fd uintptr) {
		for {
			opErr = unix.FcntlFlock(fd, unix.F_OFD_SETLK, &lk)
			if !errors.Is(opErr, unix.EINTR) {
				return
			}
		}
	}); err != nil {
		return err
	}
	if errors.Is(opErr, unix.EAGAIN) || errors.Is(opErr, unix.EACCES) {
		return errWouldBlock
	}
	if opErr != nil {
		return &os.SyscallError{Syscall: "fcntl(F_OFD_SETLK)", Err: opErr}
	}
	return nil
}

// isReadOnlyFSError reports whether err means the lock file cannot be
// created or opened for writing because the file system or directory is
// read-only.
func isReadOnlyFSError(err error) bool {
	return errors.Is(err, unix.EROFS) || errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM)
}
