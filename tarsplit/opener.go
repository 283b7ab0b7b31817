package tarsplit

import (
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// DirOpener returns an Opener that opens tar-split names below dir, with
// chroot semantics: the kernel resolves every name inside dir
// (RESOLVE_IN_ROOT), so "..", absolute names and symlinks cannot leave it.
func DirOpener(dir string) Opener {
	return func(name string) (io.ReadCloser, error) {
		rel := strings.TrimPrefix(path.Clean("/"+name), "/")
		if rel == "" {
			rel = "."
		}
		dfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: dir, Err: err}
		}
		defer unix.Close(dfd)
		how := unix.OpenHow{
			// O_NONBLOCK: a FIFO must not block the open; it is refused below.
			Flags:   unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOFOLLOW | unix.O_NONBLOCK,
			Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
		}
		full := path.Join(dir, rel)
		fd, err := unix.Openat2(dfd, rel, &how)
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: full, Err: err}
		}
		if _, err := statRegular(fd, full); err != nil {
			return nil, err
		}
		return os.NewFile(uintptr(fd), full), nil
	}
}

// LayerDir opens tar-split names below one directory for a whole
// reassembly, with the confinement of DirOpener but one system call per
// file: an openat2 (RESOLVE_IN_ROOT, RESOLVE_NO_XDEV, O_NOFOLLOW) from a
// descriptor of the directory kept open. Resolving the whole name in the
// kernel costs about what an openat from a cached descriptor of the
// file's directory does, and a cache of directory descriptors misses on
// every file when a layer's files do not come directory by directory.
// Files are read with plain read(2), outside Go's poller.
type LayerDir struct {
	path string
	root int
	dev  uint64
}

// OpenLayerDir opens dir for Open; Close releases it.
func OpenLayerDir(dir string) (*LayerDir, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "stat", Path: dir, Err: err}
	}
	return &LayerDir{path: dir, root: fd, dev: st.Dev}, nil
}

// Close closes the directory's descriptor.
func (d *LayerDir) Close() error {
	err := unix.Close(d.root)
	d.root = -1
	return err
}

// Open opens the regular file name (a tar-split name) below the directory.
func (d *LayerDir) Open(name string) (io.ReadCloser, error) {
	rel := strings.TrimPrefix(path.Clean("/"+name), "/")
	full := path.Join(d.path, rel)
	if rel == "" {
		return nil, fmt.Errorf("%s: not a regular file", full)
	}
	how := unix.OpenHow{
		// O_NONBLOCK: a FIFO must not block the open; it is refused below.
		Flags:   unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_NOCTTY,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
	}
	var fd int
	var err error
	for {
		fd, err = unix.Openat2(d.root, rel, &how)
		if err != unix.EINTR && err != unix.EAGAIN {
			break
		}
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: full, Err: err}
	}
	st, err := statRegular(fd, full)
	if err != nil {
		return nil, err
	}
	if st.Dev != d.dev {
		unix.Close(fd)
		return nil, fmt.Errorf("%s: on another file system than %s", full, d.path)
	}
	return &fdReader{fd: fd, name: full, size: st.Size}, nil
}

// fdReader reads a regular file with read(2).
type fdReader struct {
	fd   int
	name string
	size int64 // at open
}

func (r *fdReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		n, err := unix.Read(r.fd, p)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, &os.PathError{Op: "read", Path: r.name, Err: err}
		}
		if n == 0 {
			return 0, io.EOF
		}
		return n, nil
	}
}

func (r *fdReader) Close() error {
	if r.fd < 0 {
		return nil
	}
	err := unix.Close(r.fd)
	r.fd = -1
	return err
}

// statRegular stats the open fd and refuses anything but a regular file;
// on an error it closes fd.
func statRegular(fd int, full string) (unix.Stat_t, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return st, &os.PathError{Op: "stat", Path: full, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return st, fmt.Errorf("%s: not a regular file (mode %o)", full, st.Mode)
	}
	return st, nil
}
