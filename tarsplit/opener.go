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
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return nil, &os.PathError{Op: "stat", Path: full, Err: err}
		}
		if st.Mode&unix.S_IFMT != unix.S_IFREG {
			unix.Close(fd)
			return nil, fmt.Errorf("%s: not a regular file (mode %o)", full, st.Mode)
		}
		return os.NewFile(uintptr(fd), full), nil
	}
}
