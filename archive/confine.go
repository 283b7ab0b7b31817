package archive

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// cleanRel turns a tar name into a path relative to the layer root with
// chroot semantics: "../x" and "/x" both become "x"; the root is "".
func cleanRel(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

// root is an open layer directory. Every path operation goes through a
// directory fd that the kernel resolved with RESOLVE_IN_ROOT (so "..",
// absolute symlinks and symlinked parents cannot leave the tree), followed
// by a *at call on a single final component that never follows symlinks.
type root struct {
	fd      int
	cache   map[string]int // rel dir -> O_PATH dir fd
	stale   []int          // fds to close once the current entry is done
	uid     int            // owner of implicitly created dirs
	gid     int
	created func(rel string)
	// plainDirs holds dirs known to exist without the setgid bit (made or
	// chmod'ed by this unpack): files created in them get our egid, so a
	// chown to our own IDs can be skipped. Cleared whenever anything is
	// removed, since a path may then name another directory.
	plainDirs map[string]struct{}
	rootPlain bool // the root itself has no setgid bit
}

const maxCachedDirs = 1024

func openRoot(dest string) (*root, error) {
	fd, err := unix.Open(dest, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dest, Err: err}
	}
	r := &root{fd: fd, cache: map[string]int{}, plainDirs: map[string]struct{}{}}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err == nil && st.Mode&unix.S_ISGID == 0 {
		r.rootPlain = true
		r.plainDirs[""] = struct{}{}
	}
	return r, nil
}

func (r *root) close() {
	r.invalidate()
	r.flush()
	unix.Close(r.fd)
}

// invalidate forgets cached dir fds (after something was removed, a cached
// path may now name a different object). The fds stay open until flush so
// callers holding one can finish their entry.
func (r *root) invalidate() {
	clear(r.plainDirs)
	if r.rootPlain {
		r.plainDirs[""] = struct{}{}
	}
	r.retireCache()
}

// retireCache moves every cached dir fd to stale (closed at the next flush).
func (r *root) retireCache() {
	for _, fd := range r.cache {
		r.stale = append(r.stale, fd)
	}
	clear(r.cache)
}

func (r *root) flush() {
	for _, fd := range r.stale {
		unix.Close(fd)
	}
	r.stale = r.stale[:0]
}

// resolveDir opens rel (a directory) confined to the root.
func (r *root) resolveDir(rel string) (int, error) {
	if rel == "" || rel == "." {
		return r.fd, nil
	}
	if fd, ok := r.cache[rel]; ok {
		return fd, nil
	}
	how := unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	var fd int
	var err error
	for {
		fd, err = unix.Openat2(r.fd, rel, &how)
		if err != unix.EINTR && err != unix.EAGAIN {
			break
		}
	}
	if err != nil {
		return -1, err
	}
	if len(r.cache) >= maxCachedDirs {
		r.retireCache()
	}
	r.cache[rel] = fd
	return fd, nil
}

// parent returns a confined fd of the directory containing rel, creating
// missing directories (0755 before umask, owned by the mapped root) when
// mkdir is set.
func (r *root) parent(rel string, mkdir bool) (int, error) {
	dir := path.Dir(rel)
	if dir == "." {
		return r.fd, nil
	}
	fd, err := r.resolveDir(dir)
	if err == nil || !mkdir || !errors.Is(err, unix.ENOENT) {
		return fd, err
	}
	return r.mkdirAll(dir)
}

func (r *root) mkdirAll(dir string) (int, error) {
	comps := strings.Split(dir, "/")
	prev := r.fd
	for i := range comps {
		p := strings.Join(comps[:i+1], "/")
		fd, err := r.resolveDir(p)
		if errors.Is(err, unix.ENOENT) {
			if err = unix.Mkdirat(prev, comps[i], 0o755); err != nil && err != unix.EEXIST {
				return -1, fmt.Errorf("mkdir %s: %w", p, err)
			}
			if err == nil {
				if err := unix.Fchownat(prev, comps[i], r.uid, r.gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
					return -1, fmt.Errorf("chown %s: %w", p, err)
				}
				if r.created != nil {
					r.created(p)
				}
				if r.uid == os.Geteuid() && r.gid == os.Getegid() {
					r.plainDirs[p] = struct{}{}
				}
			}
			fd, err = r.resolveDir(p)
		}
		if err != nil {
			return -1, fmt.Errorf("open %s: %w", p, err)
		}
		prev = fd
	}
	return prev, nil
}

// fdPath names the open fd through /proc, for the few calls (setxattr,
// lsetxattr) that have no fd or *at form usable on an O_PATH fd.
func fdPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// procPath names the entry name in the directory fd dirfd through /proc.
func procPath(dirfd int, name string) string { return fdPath(dirfd) + "/" + name }

// removeAllAt removes name in dirfd and everything below it, never
// following symlinks.
func removeAllAt(dirfd int, name string) error {
	if !validComponent(name) {
		return fmt.Errorf("remove %q: %w", name, ErrUnsafePath)
	}
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || err == unix.ENOENT {
		return nil
	}
	if err != unix.EISDIR && err != unix.EPERM {
		return err
	}
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), name)
	names, err := f.Readdirnames(-1)
	if err != nil {
		f.Close()
		return err
	}
	for _, n := range names {
		if err := removeAllAt(fd, n); err != nil {
			f.Close()
			return err
		}
	}
	f.Close()
	if err := unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR); err != nil && err != unix.ENOENT {
		return err
	}
	return nil
}

// readDirNames lists the directory dirfd (which may be an O_PATH fd).
func readDirNames(dirfd int) ([]string, error) {
	fd, err := unix.Openat(dirfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), ".")
	defer f.Close()
	return f.Readdirnames(-1)
}

// validComponent reports whether name is one ordinary path component.
func validComponent(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.Contains(name, "/")
}
