package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// String returns the letter containers-storage prints for k ("C", "A", "D").
func (k ChangeKind) String() string {
	switch k {
	case ChangeModify:
		return "C"
	case ChangeAdd:
		return "A"
	case ChangeDelete:
		return "D"
	}
	return "?"
}

// String formats a change as "A /path".
func (c Change) String() string { return c.Kind.String() + " " + c.Path }

type treeNode struct {
	name     string
	parent   *treeNode
	children map[string]*treeNode
	st       unix.Stat_t
	capab    []byte
	xattrs   map[string]string
	added    bool
}

func (n *treeNode) path() string {
	if n.parent == nil {
		return "/"
	}
	return filepath.Join(n.parent.path(), n.name)
}

func (n *treeNode) isDir() bool { return n.st.Mode&unix.S_IFMT == unix.S_IFDIR }

// scanTree reads dir (recursively, without following symlinks).
func scanTree(ctx context.Context, dir string) (*treeNode, error) {
	root := &treeNode{children: map[string]*treeNode{}}
	if dir == "" {
		root.st.Mode = unix.S_IFDIR
		return root, nil
	}
	if err := unix.Lstat(dir, &root.st); err != nil {
		return nil, &os.PathError{Op: "lstat", Path: dir, Err: err}
	}
	var walk func(n *treeNode, p string) error
	walk = func(n *treeNode, p string) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		ents, err := os.ReadDir(p)
		if err != nil {
			return err
		}
		for _, e := range ents {
			cp := filepath.Join(p, e.Name())
			c := &treeNode{name: e.Name(), parent: n, children: map[string]*treeNode{}}
			if err := unix.Lstat(cp, &c.st); err != nil {
				if err == unix.ENOENT {
					continue
				}
				return &os.PathError{Op: "lstat", Path: cp, Err: err}
			}
			c.capab, c.xattrs, err = diffXattrs(cp)
			if err != nil {
				return err
			}
			n.children[c.name] = c
			if c.isDir() {
				if err := walk(c, cp); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(root, dir); err != nil {
		return nil, err
	}
	return root, nil
}

// diffXattrs reads security.capability and user.* xattrs, which count as changes.
func diffXattrs(p string) ([]byte, map[string]string, error) {
	capab, err := lgetxattr(p, "security.capability")
	if err != nil {
		return nil, nil, err
	}
	names, err := llistxattr(p)
	if err != nil {
		return nil, nil, err
	}
	var xs map[string]string
	for _, k := range names {
		if !strings.HasPrefix(k, "user.") {
			continue
		}
		v, err := lgetxattr(p, k)
		if err != nil {
			return nil, nil, err
		}
		if xs == nil {
			xs = map[string]string{}
		}
		xs[k] = string(v)
	}
	return capab, xs, nil
}

func lgetxattr(p, name string) ([]byte, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Lgetxattr(p, name, buf)
		switch {
		case err == nil:
			return buf[:n], nil
		case err == unix.ENODATA || err == unix.ENOTSUP || err == unix.EOPNOTSUPP:
			return nil, nil
		case err == unix.ERANGE:
			sz, err := unix.Lgetxattr(p, name, nil)
			if err != nil {
				return nil, &os.PathError{Op: "lgetxattr " + name, Path: p, Err: err}
			}
			buf = make([]byte, sz+1)
		default:
			return nil, &os.PathError{Op: "lgetxattr " + name, Path: p, Err: err}
		}
	}
}

func llistxattr(p string) ([]string, error) {
	buf := make([]byte, 1024)
	for {
		n, err := unix.Llistxattr(p, buf)
		switch {
		case err == nil:
			var out []string
			for _, s := range bytes.Split(buf[:n], []byte{0}) {
				if len(s) > 0 {
					out = append(out, string(s))
				}
			}
			return out, nil
		case err == unix.ENOTSUP || err == unix.EOPNOTSUPP:
			return nil, nil
		case err == unix.ERANGE:
			sz, err := unix.Llistxattr(p, nil)
			if err != nil {
				return nil, &os.PathError{Op: "llistxattr", Path: p, Err: err}
			}
			buf = make([]byte, sz+1)
		default:
			return nil, &os.PathError{Op: "llistxattr", Path: p, Err: err}
		}
	}
}

// sameSecond compares mtimes the way upstream does: equal seconds, and
// equal nanoseconds unless one side has none (a filesystem or tar that
// dropped them).
func sameSecond(a, b unix.Timespec) bool {
	return a.Sec == b.Sec && (a.Nsec == b.Nsec || a.Nsec == 0 || b.Nsec == 0)
}

func statDiffers(o, n *unix.Stat_t) bool {
	if o.Mode != n.Mode || o.Uid != n.Uid || o.Gid != n.Gid || o.Rdev != n.Rdev {
		return true
	}
	if o.Mode&unix.S_IFMT != unix.S_IFDIR && (!sameSecond(o.Mtim, n.Mtim) || o.Size != n.Size) {
		return true
	}
	return false
}

func (n *treeNode) addChanges(old *treeNode, out *[]Change) {
	start := len(*out)
	if old == nil {
		*out = append(*out, Change{Path: n.path(), Kind: ChangeAdd})
		n.added = true
	}
	oldChildren := map[string]*treeNode{}
	if old != nil && n.isDir() {
		maps.Copy(oldChildren, old.children)
	}
	for _, name := range slices.Sorted(maps.Keys(n.children)) {
		c := n.children[name]
		oc := oldChildren[name]
		if oc != nil {
			if statDiffers(&oc.st, &c.st) || !bytes.Equal(oc.capab, c.capab) || !maps.Equal(oc.xattrs, c.xattrs) {
				*out = append(*out, Change{Path: c.path(), Kind: ChangeModify})
				c.added = true
			}
			delete(oldChildren, name)
		}
		c.addChanges(oc, out)
	}
	for _, name := range slices.Sorted(maps.Keys(oldChildren)) {
		*out = append(*out, Change{Path: oldChildren[name].path(), Kind: ChangeDelete})
	}
	// A directory with changes inside is reported as modified (once, before
	// its children) so its metadata is carried along.
	if len(*out) > start && n.isDir() && !n.added && n.parent != nil {
		*out = slices.Insert(*out, start, Change{Path: n.path(), Kind: ChangeModify})
	}
}

// ChangesDirs compares newDir with oldDir ("" = empty tree) naively, as
// upstream's ChangesDirs does: Add, Modify (mode, owner, rdev, xattrs, and
// for non-directories size or mtime at second granularity) and Delete (a
// deleted directory once); parents of changes are reported as Modify.
// Owners are compared as stored on disk.
func ChangesDirs(ctx context.Context, newDir, oldDir string) ([]Change, error) {
	if newDir == "" {
		return nil, errors.New("changes: new directory not given")
	}
	newRoot, err := scanTree(ctx, newDir)
	if err != nil {
		return nil, fmt.Errorf("changes: %w", err)
	}
	oldRoot, err := scanTree(ctx, oldDir)
	if err != nil {
		return nil, fmt.Errorf("changes: %w", err)
	}
	var out []Change
	newRoot.addChanges(oldRoot, &out)
	// The root itself is never reported.
	return slices.DeleteFunc(out, func(c Change) bool { return c.Path == "/" }), nil
}

// ChangesSize sums sizes of non-directory Add/Modify paths in dir (hard links once).
func ChangesSize(dir string, changes []Change) (int64, error) {
	var size int64
	seen := map[uint64]struct{}{}
	for _, c := range changes {
		if c.Kind != ChangeAdd && c.Kind != ChangeModify {
			continue
		}
		var st unix.Stat_t
		p := filepath.Join(dir, c.Path)
		if err := unix.Lstat(p, &st); err != nil {
			if err == unix.ENOENT {
				continue // changed again since the changes were computed
			}
			return size, &os.PathError{Op: "lstat", Path: p, Err: err}
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			continue
		}
		if st.Nlink > 1 {
			if _, ok := seen[st.Ino]; ok {
				continue
			}
			seen[st.Ino] = struct{}{}
		}
		size += st.Size
	}
	return size, nil
}
