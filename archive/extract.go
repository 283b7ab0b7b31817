package archive

import (
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/vbatts/tar-split/archive/tar"
	"golang.org/x/sys/unix"

	"github.com/stowage/stowage/internal/idmap"
)

// entry extracts one tar entry; r is positioned at its payload.
func (u *unpacker) entry(hdr *tar.Header, r io.Reader) error {
	rel := cleanRel(hdr.Name)
	if rel == "" {
		// The layer root itself ("./"). The naive (vfs) apply merges it
		// like any existing dir, so its metadata lands on the root; the
		// overlay extraction skips it, as upstream's Unpack does.
		if u.opts.Whiteouts == WhiteoutDelete && hdr.Typeflag == tar.TypeDir {
			return u.rootMeta(hdr)
		}
		return nil
	}
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	base := path.Base(rel)
	switch {
	case base == whiteoutOpaqueDir:
		return u.whiteout(hdr, rel, base)
	case strings.HasPrefix(rel, whiteoutMetaPrefix):
		// AUFS metadata (.wh..wh.plnk/...): extracted so hard links into it
		// can be satisfied, removed when the archive is done.
		u.aufsMeta = true
	case strings.HasPrefix(base, whiteoutPrefix):
		return u.whiteout(hdr, rel, base)
	}

	uid, gid, chown, err := u.owner(hdr)
	if err != nil {
		return err
	}
	if hdr.Typeflag == tar.TypeLink {
		// The link shares its target's inode, whose times may still be
		// queued: set them first, so the link entry's own times win.
		if err := u.closer.sync(); err != nil {
			return err
		}
	}

	pfd, err := u.root.parent(rel, true)
	if err != nil {
		return u.pathErr(hdr, rel, err)
	}
	mode := uint32(hdr.Mode) & 0o7777
	isDir := hdr.Typeflag == tar.TypeDir
	merged := false

	fd, linkIsSymlink, err := u.create(hdr, pfd, base)
	if err == unix.EEXIST {
		var st unix.Stat_t
		if serr := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); serr != nil {
			return u.pathErr(hdr, rel, serr)
		}
		if isDir && st.Mode&unix.S_IFMT == unix.S_IFDIR {
			merged = true
			err = nil
		} else {
			if rerr := removeAllAt(pfd, base); rerr != nil {
				return u.pathErr(hdr, rel, rerr)
			}
			u.root.invalidate()
			fd, linkIsSymlink, err = u.create(hdr, pfd, base)
		}
	}
	if err == errSkip {
		return nil
	}
	if err != nil {
		return u.pathErr(hdr, rel, err)
	}
	u.unpacked[rel] = struct{}{}

	if fd >= 0 {
		werr := u.readPayload(r, fd)
		if werr == nil {
			u.size += hdr.Size
			// A new file in a non-setgid dir we made is already owned by
			// our euid/egid.
			_, plain := u.root.plainDirs[parentRel(rel)]
			werr = u.fileMeta(fd, hdr, uid, gid, chown && !(plain && uid == u.euid && gid == u.egid), mode)
		}
		if werr != nil {
			unix.Close(fd)
			return u.pathErr(hdr, rel, werr)
		}
		// Only the times are left: the closer sets them and closes fd.
		atime, mtime := entryTimes(hdr)
		return u.closer.add(fd, hdr.Name, rel, atime, mtime)
	}
	if err := u.meta(pfd, base, hdr, uid, gid, chown, mode, merged, linkIsSymlink); err != nil {
		return u.pathErr(hdr, rel, err)
	}

	if isDir {
		if mode&unix.S_ISGID == 0 {
			u.root.plainDirs[rel] = struct{}{}
		} else {
			delete(u.root.plainDirs, rel)
		}
	}
	atime, mtime := entryTimes(hdr)
	if isDir {
		u.dirTimes = append(u.dirTimes, dirTime{rel: rel, atime: atime, mtime: mtime})
		return nil
	}
	if hdr.Typeflag == tar.TypeLink && linkIsSymlink {
		return nil
	}
	if err := setTimesAt(pfd, base, atime, mtime); err != nil {
		return u.pathErr(hdr, rel, fmt.Errorf("setting times: %w", err))
	}
	return nil
}

// create makes the entry's object as base in pfd, failing with EEXIST when
// something is there. fd is an open descriptor for a regular file (the
// caller writes the payload), else -1; linkIsSymlink reports a hard link to
// a symlink. errSkip means the entry is skipped (device nodes in a user
// namespace).
func (u *unpacker) create(hdr *tar.Header, pfd int, base string) (fd int, linkIsSymlink bool, err error) {
	perm := uint32(hdr.Mode) & 0o777
	switch hdr.Typeflag {
	case tar.TypeDir:
		return -1, false, unix.Mkdirat(pfd, base, perm)
	case tar.TypeReg, tar.TypeRegA, tar.TypeCont:
		fd, err := rawOpenat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
		return fd, false, err
	case tar.TypeSymlink:
		return -1, false, unix.Symlinkat(hdr.Linkname, pfd, base)
	case tar.TypeLink:
		target := cleanRel(hdr.Linkname)
		if target == "" {
			return -1, false, fmt.Errorf("hard link to the layer root: %w", ErrUnsafePath)
		}
		tpfd, err := u.root.parent(target, false)
		if err != nil {
			return -1, false, err
		}
		var st unix.Stat_t
		if err := unix.Fstatat(tpfd, path.Base(target), &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return -1, false, err
		}
		linkIsSymlink = st.Mode&unix.S_IFMT == unix.S_IFLNK
		return -1, linkIsSymlink, unix.Linkat(tpfd, path.Base(target), pfd, base, 0)
	case tar.TypeChar, tar.TypeBlock:
		if u.inUserNS {
			return -1, false, errSkip
		}
		t := uint32(unix.S_IFCHR)
		if hdr.Typeflag == tar.TypeBlock {
			t = unix.S_IFBLK
		}
		return -1, false, unix.Mknodat(pfd, base, t|perm, int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))))
	case tar.TypeFifo:
		return -1, false, unix.Mknodat(pfd, base, unix.S_IFIFO|perm, 0)
	}
	return -1, false, fmt.Errorf("type %q: %w", hdr.Typeflag, ErrUnsupportedType)
}

var errSkip = errors.New("skip entry")

// setTimesAt sets name's atime and mtime in dirfd, not following a symlink.
func setTimesAt(dirfd int, name string, atime, mtime time.Time) error {
	ts := []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
	return unix.UtimesNanoAt(dirfd, name, ts, unix.AT_SYMLINK_NOFOLLOW)
}

func entryTimes(hdr *tar.Header) (atime, mtime time.Time) {
	mtime = hdr.ModTime
	atime = hdr.AccessTime
	if atime.Before(mtime) {
		atime = mtime
	}
	return atime, mtime
}

func (u *unpacker) pathErr(hdr *tar.Header, rel string, err error) error {
	return fmt.Errorf("extracting tar entry %q (%s): %w", hdr.Name, rel, err)
}

// owner maps the entry's tar IDs to host IDs. chown is false when the IDs
// are unmapped and chown errors are ignored.
func (u *unpacker) owner(hdr *tar.Header) (uid, gid int, chown bool, err error) {
	uid, err = idmap.ToHost(hdr.Uid, u.opts.UIDMap)
	if err == nil {
		gid, err = idmap.ToHost(hdr.Gid, u.opts.GIDMap)
	}
	if err != nil {
		if u.opts.IgnoreChownErrors {
			return -1, -1, false, nil
		}
		return -1, -1, false, fmt.Errorf("tar entry %q: owner %d:%d: %w", hdr.Name, hdr.Uid, hdr.Gid, err)
	}
	return uid, gid, true, nil
}

func (u *unpacker) chownErr(err error) error {
	if u.opts.IgnoreChownErrors {
		return nil
	}
	if err == unix.EINVAL {
		return fmt.Errorf("potentially insufficient UIDs or GIDs available in user namespace (check /etc/subuid and /etc/subgid): lchown: %w", err)
	}
	return fmt.Errorf("lchown: %w", err)
}

// fileMeta applies owner, mode and xattrs to a regular file through its fd.
func (u *unpacker) fileMeta(fd int, hdr *tar.Header, uid, gid int, chown bool, mode uint32) error {
	chowned := false
	if chown {
		if err := unix.Fchown(fd, uid, gid); err != nil {
			if err := u.chownErr(err); err != nil {
				return err
			}
		} else {
			chowned = true
		}
	}
	// open(2) applied perm&^umask; fix up when that lost bits, when there
	// are special bits, or when chown may have cleared them.
	if mode&0o7000 != 0 || mode&u.umask != 0 || (chowned && mode&0o6000 != 0) {
		if err := unix.Fchmod(fd, mode); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	return u.setXattrs(hdr, func(name string, v []byte) error { return unix.Fsetxattr(fd, name, v, 0) })
}

// meta applies owner, mode and xattrs to a non-regular entry.
func (u *unpacker) meta(pfd int, base string, hdr *tar.Header, uid, gid int, chown bool, mode uint32, merged, linkIsSymlink bool) error {
	if chown {
		if err := unix.Fchownat(pfd, base, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if err := u.chownErr(err); err != nil {
				return err
			}
		}
	}
	if hdr.Typeflag != tar.TypeSymlink && !(hdr.Typeflag == tar.TypeLink && linkIsSymlink) {
		// fchmodat follows symlinks, but base was just created (or
		// checked) as a non-symlink by this single writer.
		if err := unix.Fchmodat(pfd, base, mode, 0); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	return u.setXattrs(hdr, func(name string, v []byte) error {
		return unix.Lsetxattr(procPath(pfd, base), name, v, 0)
	})
}

// setXattrs applies the entry's SCHILY.xattr.* records (except
// security.selinux and overlayfs' own trusted.overlay.* / user.overlay.*,
// which would let a layer forge redirects, metacopy or opaque markers;
// opaque directories come only from .wh..wh..opq entries) with set,
// tolerating what tolerateXattr allows. The dropped records stay in the
// tar-split, so the layer's diff is still bit-identical.
func (u *unpacker) setXattrs(hdr *tar.Header, set func(name string, v []byte) error) error {
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, "SCHILY.xattr.")
		if !ok || name == "security.selinux" || strings.HasPrefix(name, "trusted.overlay.") || strings.HasPrefix(name, "user.overlay.") {
			continue
		}
		if err := u.tolerateXattr(set(name, []byte(v))); err != nil {
			return fmt.Errorf("setxattr %s: %w", name, err)
		}
	}
	return nil
}

// tolerateXattr drops ENOTSUP (and EPERM in a user namespace): the
// file system or namespace cannot hold the xattr, as upstream tolerates.
func (u *unpacker) tolerateXattr(err error) error {
	if err == unix.ENOTSUP || err == unix.EOPNOTSUPP || (err == unix.EPERM && u.inUserNS) {
		return nil
	}
	return err
}

// whiteout applies an AUFS whiteout entry.
func (u *unpacker) whiteout(hdr *tar.Header, rel, base string) error {
	dir := parentRel(rel)
	if u.opts.Whiteouts == WhiteoutOverlay {
		return u.overlayWhiteout(hdr, rel, base, dir)
	}
	if base == whiteoutOpaqueDir {
		dfd, err := u.root.resolveDir(dir)
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			return nil
		}
		if err != nil {
			return u.pathErr(hdr, rel, err)
		}
		if err := u.opaque(dfd, dir); err != nil {
			return u.pathErr(hdr, rel, err)
		}
		u.root.invalidate()
		return nil
	}
	name := strings.TrimPrefix(base, whiteoutPrefix)
	if !validComponent(name) {
		return fmt.Errorf("whiteout %q: %w", hdr.Name, ErrUnsafePath)
	}
	victim := path.Join(dir, name)
	pfd, err := u.root.parent(victim, false)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return nil
	}
	if err != nil {
		return u.pathErr(hdr, rel, err)
	}
	if err := removeAllAt(pfd, path.Base(victim)); err != nil {
		return u.pathErr(hdr, rel, err)
	}
	u.root.invalidate()
	return nil
}

// opaque removes every entry below dir that this tar did not unpack.
func (u *unpacker) opaque(dfd int, dir string) error {
	names, err := readDirNames(dfd)
	if err != nil {
		return err
	}
	for _, n := range names {
		p := path.Join(dir, n)
		if _, ok := u.unpacked[p]; !ok {
			if err := removeAllAt(dfd, n); err != nil {
				return err
			}
			continue
		}
		var st unix.Stat_t
		if err := unix.Fstatat(dfd, n, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			cfd, err := unix.Openat(dfd, n, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				return err
			}
			err = u.opaque(cfd, p)
			unix.Close(cfd)
			if err != nil {
				return err
			}
		}
	}
	return nil
}

func (u *unpacker) overlayWhiteout(hdr *tar.Header, rel, base, dir string) error {
	uid, gid, chown, err := u.owner(hdr)
	if err != nil {
		return err
	}
	if base == whiteoutOpaqueDir {
		var dfd int
		if dir == "" {
			dfd = u.root.fd
		} else {
			dfd, err = u.root.resolveDir(dir)
			if errors.Is(err, unix.ENOENT) {
				dfd, err = u.root.mkdirAll(dir)
			}
			if err != nil {
				return u.pathErr(hdr, rel, err)
			}
		}
		xattr := u.opts.OpaqueXattr
		if xattr == "" {
			xattr = "trusted.overlay.opaque"
		}
		if err := unix.Setxattr(fdPath(dfd), xattr, []byte("y"), 0); err != nil {
			return u.pathErr(hdr, rel, fmt.Errorf("setxattr %s: %w", xattr, err))
		}
		return nil
	}
	name := strings.TrimPrefix(base, whiteoutPrefix)
	if !validComponent(name) {
		return fmt.Errorf("whiteout %q: %w", hdr.Name, ErrUnsafePath)
	}
	victim := path.Join(dir, name)
	pfd, err := u.root.parent(victim, true)
	if errors.Is(err, unix.ENOTDIR) {
		return nil
	}
	if err != nil {
		return u.pathErr(hdr, rel, err)
	}
	err = unix.Mknodat(pfd, name, unix.S_IFCHR, 0)
	if err == unix.EEXIST {
		if err := removeAllAt(pfd, name); err != nil {
			return u.pathErr(hdr, rel, err)
		}
		u.root.invalidate()
		err = unix.Mknodat(pfd, name, unix.S_IFCHR, 0)
	}
	if err == unix.ENOTDIR {
		return nil
	}
	if err != nil {
		return u.pathErr(hdr, rel, fmt.Errorf("mknod whiteout: %w", err))
	}
	u.unpacked[victim] = struct{}{}
	if chown {
		if err := unix.Fchownat(pfd, name, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if err := u.chownErr(err); err != nil {
				return u.pathErr(hdr, rel, err)
			}
		}
	}
	return nil
}

func parentRel(rel string) string {
	d := path.Dir(rel)
	if d == "." {
		return ""
	}
	return d
}

// rootMeta applies a "./" directory entry's owner, mode and xattrs to the
// layer root; its times are applied with the other directories at the end.
func (u *unpacker) rootMeta(hdr *tar.Header) error {
	uid, gid, chown, err := u.owner(hdr)
	if err != nil {
		return err
	}
	fd, err := unix.Openat(u.root.fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return u.pathErr(hdr, ".", err)
	}
	defer unix.Close(fd)
	mode := uint32(hdr.Mode) & 0o7777
	if err := u.fileMeta(fd, hdr, uid, gid, chown, mode); err != nil {
		return u.pathErr(hdr, ".", err)
	}
	if err := unix.Fchmod(fd, mode); err != nil {
		return u.pathErr(hdr, ".", err)
	}
	u.rootSet = true
	u.root.rootPlain = mode&unix.S_ISGID == 0
	if u.root.rootPlain {
		u.root.plainDirs[""] = struct{}{}
	} else {
		delete(u.root.plainDirs, "")
	}
	atime, mtime := entryTimes(hdr)
	u.dirTimes = append(u.dirTimes, dirTime{rel: "", atime: atime, mtime: mtime})
	return nil
}
