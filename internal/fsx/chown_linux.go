package fsx

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// capabilityXattr is the file-capability xattr the kernel removes on chown.
const capabilityXattr = "security.capability"

// shifter holds the state of one ShiftOwners call.
type shifter struct {
	remap   Remap
	seen    map[inodeKey]bool // multiply-linked files already re-owned
	perName bool              // re-own every name, not each inode once
}

func shiftOwners(ctx context.Context, root string, remap Remap, perName bool) error {
	s := &shifter{remap: remap, seen: map[inodeKey]bool{}, perName: perName}
	return filepath.WalkDir(root, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		return s.shift(path)
	})
}

// shift re-owns one entry.
func (s *shifter) shift(path string) error {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return &os.PathError{Op: "lstat", Path: path, Err: err}
	}
	isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
	if !isDir && st.Nlink > 1 && !s.perName {
		k := inodeKey{dev: uint64(st.Dev), ino: st.Ino}
		if s.seen[k] {
			return nil
		}
		s.seen[k] = true
	}
	uid, gid, err := s.remap(int(st.Uid), int(st.Gid))
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if uid == int(st.Uid) && gid == int(st.Gid) {
		return nil
	}
	isLink := st.Mode&unix.S_IFMT == unix.S_IFLNK
	var capability []byte
	if !isLink {
		if capability, err = getXattr(path, capabilityXattr); err != nil {
			return err
		}
	}
	if err := unix.Lchown(path, uid, gid); err != nil {
		return &os.PathError{Op: "lchown", Path: path, Err: err}
	}
	if isLink {
		return nil
	}
	if st.Mode&(unix.S_ISUID|unix.S_ISGID) != 0 {
		if err := unix.Chmod(path, st.Mode&0o7777); err != nil {
			return &os.PathError{Op: "chmod", Path: path, Err: err}
		}
	}
	if capability != nil {
		if err := unix.Lsetxattr(path, capabilityXattr, capability, 0); err != nil {
			return &os.PathError{Op: "setxattr " + capabilityXattr, Path: path, Err: err}
		}
	}
	return nil
}

// getXattr returns the value of xattr name of path, or nil if it has none
// or the file system has no xattrs.
func getXattr(path, name string) ([]byte, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Lgetxattr(path, name, buf)
		switch {
		case err == nil:
			return buf[:n], nil
		case errors.Is(err, unix.ERANGE):
			size, err := unix.Lgetxattr(path, name, nil)
			if err != nil {
				return nil, &os.PathError{Op: "getxattr " + name, Path: path, Err: err}
			}
			buf = make([]byte, size+1)
		case errors.Is(err, unix.ENODATA), errors.Is(err, unix.ENOTSUP):
			return nil, nil
		default:
			return nil, &os.PathError{Op: "getxattr " + name, Path: path, Err: err}
		}
	}
}
