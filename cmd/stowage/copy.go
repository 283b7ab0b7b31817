package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/stowage/stowage/internal/idmap"
	"github.com/stowage/stowage/store"
)

var copyCmd = &command{
	names:    []string{"copy"},
	synopsis: "[options [...]] [sourceLayerNameOrID:]/path [...] targetLayerNameOrID:/path",
	usage:    "Copy files or directories into a layer, possibly from another layer",
	minArgs:  2, maxArgs: -1, newRun: func() runner { return &copyRun{} },
}

type copyRun struct {
	cmdBase
	chown string
}

func (c *copyRun) addFlags(fs *flagSet) {
	fs.stringVar(&c.chown, []string{"-chown", "o"}, "Set owner on new copies")
	c.jsonFlag(fs)
}

// idPair is a UID and GID.
type idPair struct{ uid, gid int }

// parseChown reads "UID[:GID]" (GID defaults to UID).
func parseChown(s string) (*idPair, error) {
	if s == "" {
		return nil, nil
	}
	u, g, ok := strings.Cut(s, ":")
	if !ok {
		g = u
	}
	uid, err := strconv.ParseUint(u, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("bad UID: %q as a numeric UID: %w", u, err)
	}
	gid, err := strconv.ParseUint(g, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("bad GID: %q as a numeric GID: %w", g, err)
	}
	return &idPair{int(uid), int(gid)}, nil
}

// copyEnd is one resolved end of a copy: a host path and the ID maps of
// the layer it lives in (nil for host paths).
type copyEnd struct {
	path           string
	uidMap, gidMap []idmap.IDMap
}

func (c *copyRun) run(ctx context.Context, st *store.Store, args []string) error {
	chown, err := parseChown(c.chown)
	if err != nil {
		return err
	}
	var mounted []string
	defer func() {
		for _, id := range mounted {
			if _, err := st.Unmount(ctx, id, false); err != nil {
				c.p.Errorf("unmounting layer %q: %v\n", id, err)
			}
		}
	}()
	resolve := func(spec string) (copyEnd, error) {
		layerName, p, ok := strings.Cut(spec, ":")
		if !ok {
			return copyEnd{path: spec}, nil
		}
		l, err := st.Layer(ctx, layerName)
		if err != nil {
			return copyEnd{}, fmt.Errorf("error finding layer %q: %w", layerName, err)
		}
		mp, err := st.Mount(ctx, l.ID, store.MountOptions{MountLabel: l.MountLabel})
		if err != nil {
			return copyEnd{}, fmt.Errorf("error mounting layer %q: %w", l.ID, err)
		}
		mounted = append(mounted, l.ID)
		return copyEnd{path: filepath.Join(mp, filepath.Clean("/"+p)), uidMap: l.UIDMap, gidMap: l.GIDMap}, nil
	}
	dst, err := resolve(args[len(args)-1])
	if err != nil {
		return err
	}
	if strings.HasSuffix(args[len(args)-1], "/") {
		dst.path += "/"
	}
	for _, spec := range args[:len(args)-1] {
		src, err := resolve(spec)
		if err != nil {
			return err
		}
		cp := copier{src: src, dst: dst, chown: chown}
		if err := cp.copy(ctx); err != nil {
			return fmt.Errorf("error copying %q to %q: %w", src.path, dst.path, err)
		}
	}
	return nil
}

// copier copies one source into the destination, mapping ownership from
// the source layer's host IDs to the destination layer's host IDs.
type copier struct {
	src, dst copyEnd
	chown    *idPair
}

// copy follows `cp -a` conventions of upstream's CopyWithTar: a directory's
// contents go into the destination directory; a file goes to the
// destination path, or inside it when it ends in "/" or is a directory.
// ctx is checked between the entries of a directory.
func (c *copier) copy(ctx context.Context) error {
	fi, err := os.Lstat(c.src.path)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return filepath.WalkDir(c.src.path, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			rel, err := filepath.Rel(c.src.path, p)
			if err != nil {
				return err
			}
			return c.copyEntry(p, filepath.Join(c.dst.path, rel))
		})
	}
	target := c.dst.path
	if strings.HasSuffix(target, "/") {
		target = filepath.Join(target, filepath.Base(c.src.path))
	} else if dfi, err := os.Stat(target); err == nil && dfi.IsDir() {
		target = filepath.Join(target, filepath.Base(c.src.path))
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	return c.copyEntry(c.src.path, target)
}

// owner computes the destination owner of a source file.
func (c *copier) owner(fi fs.FileInfo) (int, int, error) {
	var uid, gid int
	if c.chown != nil {
		uid, gid = c.chown.uid, c.chown.gid
	} else {
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return -1, -1, errors.New("no ownership information")
		}
		var err error
		if uid, err = idmap.ToContainer(int(st.Uid), c.src.uidMap); err != nil {
			return -1, -1, err
		}
		if gid, err = idmap.ToContainer(int(st.Gid), c.src.gidMap); err != nil {
			return -1, -1, err
		}
	}
	hu, err := idmap.ToHost(uid, c.dst.uidMap)
	if err != nil {
		return -1, -1, err
	}
	hg, err := idmap.ToHost(gid, c.dst.gidMap)
	if err != nil {
		return -1, -1, err
	}
	return hu, hg, nil
}

func (c *copier) copyEntry(src, dst string) error {
	fi, err := os.Lstat(src)
	if err != nil {
		return err
	}
	uid, gid, err := c.owner(fi)
	if err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	switch mode := fi.Mode(); {
	case mode.IsDir():
		if err := os.Mkdir(dst, mode.Perm()); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
	case mode&fs.ModeSymlink != 0:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		_ = os.Remove(dst)
		if err := os.Symlink(target, dst); err != nil {
			return err
		}
		return os.Lchown(dst, uid, gid)
	case mode.IsRegular():
		if err := copyFileData(src, dst, mode.Perm()); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%s: unsupported file type %v", src, mode.Type())
	}
	if err := os.Lchown(dst, uid, gid); err != nil {
		return err
	}
	if err := os.Chmod(dst, fi.Mode().Perm()|fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)); err != nil {
		return err
	}
	return os.Chtimes(dst, fi.ModTime(), fi.ModTime())
}

func copyFileData(src, dst string, perm fs.FileMode) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}()
	_, err = io.Copy(out, in)
	return err
}
