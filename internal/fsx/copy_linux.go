package fsx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// inodeKey identifies a file across the tree being copied.
type inodeKey struct{ dev, ino uint64 }

// copier holds the state of one CopyTree call; it is not shared.
type copier struct {
	ctx     context.Context
	links   map[inodeKey]string // first destination path of each multiply-linked non-directory
	noClone bool                // FICLONE failed as unsupported once: stop trying
	noRange bool                // copy_file_range failed as unsupported once: stop trying
	root    bool                // euid 0: trusted.* xattrs are readable and settable
	buf     []byte              // read/write fallback buffer
}

func copyTree(ctx context.Context, dst, src string) error {
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return &os.PathError{Op: "lstat", Path: src, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return fmt.Errorf("copy %s: not a directory", src)
	}
	c := &copier{ctx: ctx, links: map[inodeKey]string{}, root: os.Geteuid() == 0}
	if err := c.copyDirContents(dst, src); err != nil {
		return err
	}
	return c.applyMeta(dst, src, &st)
}

// copyDirContents copies every entry of directory src into the existing dst.
func (c *copier) copyDirContents(dst, src string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return fmt.Errorf("read directory %s: %w", src, err)
	}
	sort.Strings(names) // deterministic choice of the first name of hard links
	for _, name := range names {
		if err := c.ctx.Err(); err != nil {
			return err
		}
		if err := c.copyEntry(filepath.Join(dst, name), filepath.Join(src, name)); err != nil {
			return err
		}
	}
	return nil
}

// copyEntry copies one entry (recursively for directories).
func (c *copier) copyEntry(dst, src string) error {
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return &os.PathError{Op: "lstat", Path: src, Err: err}
	}
	typ := st.Mode & unix.S_IFMT
	switch typ {
	case unix.S_IFDIR:
		if err := unix.Mkdir(dst, 0o700); err != nil {
			return &os.PathError{Op: "mkdir", Path: dst, Err: err}
		}
		if err := c.copyDirContents(dst, src); err != nil {
			return err
		}
		return c.applyMeta(dst, src, &st)
	case unix.S_IFSOCK:
		return nil // sockets are not content
	}

	key := inodeKey{dev: uint64(st.Dev), ino: st.Ino}
	if st.Nlink > 1 {
		if first, ok := c.links[key]; ok {
			if err := os.Link(first, dst); err != nil {
				return err
			}
			return nil // metadata is shared with the first name
		}
	}

	switch typ {
	case unix.S_IFREG:
		if err := c.copyFile(dst, src); err != nil {
			return err
		}
	case unix.S_IFLNK:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		if err := os.Symlink(target, dst); err != nil {
			return err
		}
	case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO:
		if err := unix.Mknod(dst, st.Mode, int(st.Rdev)); err != nil {
			if typ != unix.S_IFIFO && errors.Is(err, unix.EPERM) {
				return nil // no device nodes in a user namespace: skip, as upstream does
			}
			return &os.PathError{Op: "mknod", Path: dst, Err: err}
		}
	default:
		return fmt.Errorf("copy %s: unknown file type %#o", src, typ)
	}
	if st.Nlink > 1 {
		c.links[key] = dst
	}
	return c.applyMeta(dst, src, &st)
}

// applyMeta copies owner, xattrs, permission bits and times from src (whose
// lstat is st) to dst. The order matters: chown clears set-ID bits and
// security.capability, so it comes first.
func (c *copier) applyMeta(dst, src string, st *unix.Stat_t) error {
	if err := unix.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return &os.PathError{Op: "lchown", Path: dst, Err: err}
	}
	if err := c.copyXattrs(dst, src); err != nil {
		return err
	}
	isLink := st.Mode&unix.S_IFMT == unix.S_IFLNK
	if !isLink {
		if err := unix.Fchmodat(unix.AT_FDCWD, dst, st.Mode&0o7777, 0); err != nil {
			return &os.PathError{Op: "chmod", Path: dst, Err: err}
		}
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, dst, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "utimes", Path: dst, Err: err}
	}
	return nil
}

// copyFile creates dst (which must not exist) with src's content.
func (c *copier) copyFile(dst, src string) (err error) {
	in, err := os.OpenFile(src, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	if err := c.copyData(out, in); err != nil {
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	return nil
}

// copyData fills the empty file out with in's content: clone, else
// copy_file_range, else read/write. Each fallback continues from the
// current offsets, so a method failing midway loses nothing.
func (c *copier) copyData(out, in *os.File) error {
	if !c.noClone {
		err := cloneFd(int(out.Fd()), int(in.Fd()))
		if err == nil {
			return nil
		}
		if !errors.Is(err, ErrNotSupported) {
			return err
		}
		c.noClone = true
	}
	if !c.noRange {
		for {
			n, err := unix.CopyFileRange(int(in.Fd()), nil, int(out.Fd()), nil, 1<<30, 0)
			if err == nil && n == 0 {
				return nil
			}
			if err != nil {
				if errors.Is(err, unix.EINTR) {
					continue
				}
				if errors.Is(err, unix.EXDEV) || errors.Is(err, unix.ENOSYS) ||
					errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL) {
					c.noRange = true
					break
				}
				return err
			}
		}
	}
	if c.buf == nil {
		c.buf = make([]byte, 1<<20)
	}
	// Hide ReadFrom/WriteTo so io.CopyBuffer really reads and writes.
	_, err := io.CopyBuffer(struct{ io.Writer }{out}, struct{ io.Reader }{in}, c.buf)
	return err
}

// copyXattrs copies the xattrs containers/storage copies: security.capability,
// every user.* and, when root, trusted.overlay.opaque.
func (c *copier) copyXattrs(dst, src string) error {
	names, err := copyXattrNames(src)
	if err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) {
			return nil
		}
		return &os.PathError{Op: "llistxattr", Path: src, Err: err}
	}
	for _, name := range names {
		wanted := name == "security.capability" || strings.HasPrefix(name, "user.") ||
			(c.root && name == "trusted.overlay.opaque")
		if !wanted {
			continue
		}
		val, err := copyXattrValue(src, name)
		if err != nil {
			if errors.Is(err, unix.ENODATA) {
				continue // removed meanwhile
			}
			return &os.PathError{Op: "lgetxattr " + name, Path: src, Err: err}
		}
		if err := unix.Lsetxattr(dst, name, val, 0); err != nil {
			return &os.PathError{Op: "lsetxattr " + name, Path: dst, Err: err}
		}
	}
	return nil
}

// copyXattrNames lists path's xattr names (not following symlinks).
func copyXattrNames(path string) ([]string, error) {
	buf, err := xattrCall(256, func(b []byte) (int, error) { return unix.Llistxattr(path, b) })
	if err != nil {
		return nil, err
	}
	var names []string
	for _, b := range bytes.Split(buf, []byte{0}) {
		if len(b) > 0 {
			names = append(names, string(b))
		}
	}
	return names, nil
}

// copyXattrValue reads one xattr of path (not following symlinks).
func copyXattrValue(path, name string) ([]byte, error) {
	return xattrCall(128, func(b []byte) (int, error) { return unix.Lgetxattr(path, name, b) })
}

// xattrCall runs an xattr list/get call into a buffer of size bytes,
// and on ERANGE (the value grew) asks the size (call with nil) and
// retries with a buffer 64 bytes larger.
func xattrCall(size int, call func([]byte) (int, error)) ([]byte, error) {
	buf := make([]byte, size)
	for {
		n, err := call(buf)
		if errors.Is(err, unix.ERANGE) {
			size, err := call(nil)
			if err != nil {
				return nil, err
			}
			buf = make([]byte, size+64)
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}
