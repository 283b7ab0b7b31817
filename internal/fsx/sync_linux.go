package fsx

import (
	"os"

	"golang.org/x/sys/unix"
)

func fdatasync(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var opErr error
	if err := rc.Control(func(fd uintptr) { opErr = eintrRetry(func() error { return unix.Fdatasync(int(fd)) }) }); err != nil {
		return err
	}
	if opErr != nil {
		return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: opErr}
	}
	return nil
}

// syncPath opens path without following a final symlink and without
// blocking (a fifo raced in cannot hang us), then fsyncs a directory or
// fdatasyncs a regular file. Anything else is left alone.
func syncPath(path string, dir bool) error {
	flags := unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOFOLLOW | unix.O_NONBLOCK
	if dir {
		flags |= unix.O_DIRECTORY
	}
	fd, err := openRetry(path, flags)
	if err != nil {
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	if dir {
		err = eintrRetry(func() error { return unix.Fsync(fd) })
		if err != nil {
			return &os.PathError{Op: "fsync", Path: path, Err: err}
		}
		return nil
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil // replaced by something else since the walk
	}
	if err := eintrRetry(func() error { return unix.Fdatasync(fd) }); err != nil {
		return &os.PathError{Op: "fdatasync", Path: path, Err: err}
	}
	return nil
}

func syncfs(path string) error {
	fd, err := openRetry(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return eintrRetry(func() error { return unix.Syncfs(fd) })
}

func openRetry(path string, flags int) (int, error) {
	for {
		fd, err := unix.Open(path, flags, 0)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

func eintrRetry(fn func() error) error {
	for {
		if err := fn(); err != unix.EINTR {
			return err
		}
	}
}

// deviceOf returns the device number of the file system holding path.
func deviceOf(path string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	return st.Dev, nil
}
