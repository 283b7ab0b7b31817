package archive_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stowage/stowage/archive"
	"github.com/stowage/stowage/internal/idmap"
)

func unpack(t *testing.T, dest string, data []byte, opts archive.UnpackOptions) error {
	t.Helper()
	_, err := archive.Unpack(context.Background(), dest, bytes.NewReader(data), opts)
	return err
}

func lstat(t *testing.T, p string) *syscall.Stat_t {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t)
}

func TestUnpackMetadata(t *testing.T) {
	needRoot(t)
	mtime := time.Unix(1600000000, 123456789)
	d := dir("d/", 0o1777)
	d.hdr.ModTime = mtime
	suid := file("d/suid", "x", 0o4755)
	suid.hdr.Uid, suid.hdr.Gid = 1000, 1000
	suid.hdr.ModTime = mtime
	xa := file("xa", "x", 0o600)
	xa.hdr.PAXRecords = map[string]string{"SCHILY.xattr.user.test": "v", "SCHILY.xattr.security.selinux": "system_u:object_r:foo_t:s0"}
	cdev := tarEntry{hdr: tar.Header{Typeflag: tar.TypeChar, Name: "null", Mode: 0o666, Devmajor: 1, Devminor: 3, ModTime: epoch}}
	fifo := tarEntry{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "fifo", Mode: 0o640, ModTime: epoch}}
	sl := symlink("link", "/nonexistent/target")
	sl.hdr.Uid, sl.hdr.Gid = 5, 6
	hl := hardlink("d/hl", "d/suid")
	hl.hdr.Mode, hl.hdr.Uid, hl.hdr.Gid, hl.hdr.ModTime = suid.hdr.Mode, suid.hdr.Uid, suid.hdr.Gid, suid.hdr.ModTime
	data := makeTar(t, tar.FormatPAX, 0, d, suid, xa, cdev, fifo, sl, file("deep/er/f", "f", 0o644), hl)
	dest := t.TempDir()
	if err := unpack(t, dest, data, archive.UnpackOptions{}); err != nil {
		t.Fatal(err)
	}
	st := lstat(t, filepath.Join(dest, "d/suid"))
	if st.Mode&0o7777 != 0o4755 || st.Uid != 1000 || st.Gid != 1000 {
		t.Errorf("suid file mode %o owner %d:%d", st.Mode&0o7777, st.Uid, st.Gid)
	}
	if st.Mtim.Sec != mtime.Unix() || st.Mtim.Nsec != int64(mtime.Nanosecond()) {
		t.Errorf("mtime %v", st.Mtim)
	}
	if st.Nlink != 2 {
		t.Errorf("hard link count %d, want 2", st.Nlink)
	}
	st = lstat(t, filepath.Join(dest, "d"))
	if st.Mode&0o7777 != 0o1777 || st.Mtim.Sec != mtime.Unix() {
		t.Errorf("dir mode %o mtime %v (dir times must be applied after children)", st.Mode&0o7777, st.Mtim)
	}
	buf := make([]byte, 64)
	if n, err := unix.Lgetxattr(filepath.Join(dest, "xa"), "user.test", buf); err != nil || string(buf[:n]) != "v" {
		t.Errorf("user.test xattr: %q %v", buf[:n], err)
	}
	if _, err := unix.Lgetxattr(filepath.Join(dest, "xa"), "security.selinux", buf); err == nil {
		// selinux may label files itself; only fail if our value leaked
		n, _ := unix.Lgetxattr(filepath.Join(dest, "xa"), "security.selinux", buf)
		if strings.Contains(string(buf[:n]), "foo_t") {
			t.Errorf("security.selinux from the tar was applied")
		}
	}
	st = lstat(t, filepath.Join(dest, "null"))
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(st.Rdev) != 1 || unix.Minor(st.Rdev) != 3 {
		t.Errorf("char device mode %o rdev %d", st.Mode, st.Rdev)
	}
	if st := lstat(t, filepath.Join(dest, "fifo")); st.Mode&unix.S_IFMT != unix.S_IFIFO || st.Mode&0o777 != 0o640 {
		t.Errorf("fifo mode %o", st.Mode)
	}
	if tgt, err := os.Readlink(filepath.Join(dest, "link")); err != nil || tgt != "/nonexistent/target" {
		t.Errorf("symlink %q %v", tgt, err)
	}
	if st := lstat(t, filepath.Join(dest, "link")); st.Uid != 5 || st.Gid != 6 {
		t.Errorf("symlink owner %d:%d", st.Uid, st.Gid)
	}
	if st := lstat(t, filepath.Join(dest, "deep/er")); st.Mode&0o777 != 0o755 {
		t.Errorf("implicit dir mode %o", st.Mode&0o777)
	}
}

func TestUnpackIDMapping(t *testing.T) {
	needRoot(t)
	f := file("f", "x", 0o644)
	f.hdr.Uid, f.hdr.Gid = 1, 2
	data := makeTar(t, tar.FormatUnknown, 0, f, file("sub/g", "y", 0o644))
	maps := []idmap.IDMap{{ContainerID: 0, HostID: 100000, Size: 65536}}
	dest := t.TempDir()
	if err := unpack(t, dest, data, archive.UnpackOptions{UIDMap: maps, GIDMap: maps}); err != nil {
		t.Fatal(err)
	}
	if st := lstat(t, filepath.Join(dest, "f")); st.Uid != 100001 || st.Gid != 100002 {
		t.Errorf("owner %d:%d, want 100001:100002", st.Uid, st.Gid)
	}
	if st := lstat(t, filepath.Join(dest, "sub")); st.Uid != 100000 || st.Gid != 100000 {
		t.Errorf("implicit dir owner %d:%d, want mapped root", st.Uid, st.Gid)
	}
	small := []idmap.IDMap{{ContainerID: 0, HostID: 100000, Size: 1}}
	err := unpack(t, t.TempDir(), data, archive.UnpackOptions{UIDMap: small, GIDMap: small})
	if !errors.Is(err, idmap.ErrNotMapped) {
		t.Errorf("unmapped ID: err = %v", err)
	}
	if err := unpack(t, t.TempDir(), data, archive.UnpackOptions{UIDMap: small, GIDMap: small, IgnoreChownErrors: true}); err != nil {
		t.Errorf("IgnoreChownErrors: %v", err)
	}
}

func TestUnpackReplacesExisting(t *testing.T) {
	dest := t.TempDir()
	os.MkdirAll(filepath.Join(dest, "a/sub"), 0o755)
	os.WriteFile(filepath.Join(dest, "a/sub/old"), []byte("old"), 0o644)
	os.MkdirAll(filepath.Join(dest, "keep"), 0o755)
	os.WriteFile(filepath.Join(dest, "keep/old"), []byte("old"), 0o644)
	data := makeTar(t, tar.FormatUnknown, 0, file("a", "now a file", 0o644), dir("keep/", 0o700), file("keep/new", "n", 0o644))
	if err := unpack(t, dest, data, archive.UnpackOptions{IgnoreChownErrors: true}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dest, "a")); string(b) != "now a file" {
		t.Errorf("a = %q", b)
	}
	for _, p := range []string{"keep/old", "keep/new"} {
		if _, err := os.Stat(filepath.Join(dest, p)); err != nil {
			t.Errorf("%s: %v (dirs must merge)", p, err)
		}
	}
	if st := lstat(t, filepath.Join(dest, "keep")); st.Mode&0o777 != 0o700 {
		t.Errorf("merged dir mode %o, want 700", st.Mode&0o777)
	}
}

func TestWhiteoutsDelete(t *testing.T) {
	dest := t.TempDir()
	for _, p := range []string{"gone/x", "opq/old1", "opq/olddir/y", "keep"} {
		os.MkdirAll(filepath.Dir(filepath.Join(dest, p)), 0o755)
		os.WriteFile(filepath.Join(dest, p), []byte("z"), 0o644)
	}
	data := makeTar(t, tar.FormatUnknown, 0,
		file(".wh.gone", "", 0o644),
		dir("opq/", 0o755),
		file("opq/new-before", "b", 0o644),
		file("opq/.wh..wh..opq", "", 0o644),
		file("opq/new-after", "a", 0o644),
		file(".wh.nonexistent", "", 0o644),
		file(".wh..wh.plnk/123", "linked", 0o644),
		hardlink("usesplnk", ".wh..wh.plnk/123"),
		file(".wh.recreated", "", 0o644),
		file("recreated", "r", 0o644),
	)
	if err := unpack(t, dest, data, archive.UnpackOptions{IgnoreChownErrors: true}); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"gone": false, "opq/old1": false, "opq/olddir": false, "opq/new-before": true, "opq/new-after": true,
		"keep": true, ".wh.gone": false, "opq/.wh..wh..opq": false, ".wh..wh.plnk": false, "usesplnk": true, "recreated": true}
	for p, exists := range want {
		_, err := os.Lstat(filepath.Join(dest, p))
		if (err == nil) != exists {
			t.Errorf("%s: exists=%v, want %v", p, err == nil, exists)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dest, "usesplnk")); string(b) != "linked" {
		t.Errorf("hard link into .wh..wh.plnk: %q", b)
	}
}

func TestWhiteoutsOverlay(t *testing.T) {
	needRoot(t)
	dest := t.TempDir()
	wh := file("dir/.wh.gone", "", 0o644)
	wh.hdr.Uid, wh.hdr.Gid = 1000, 1000
	data := makeTar(t, tar.FormatUnknown, 0,
		dir("dir/", 0o755), wh,
		dir("opq/", 0o755), file("opq/.wh..wh..opq", "", 0o644),
		file(".wh.foo", "", 0o644), file("foo/.wh.bar", "", 0o644),
	)
	if err := unpack(t, dest, data, archive.UnpackOptions{Whiteouts: archive.WhiteoutOverlay, OpaqueXattr: "trusted.overlay.opaque"}); err != nil {
		t.Fatal(err)
	}
	st := lstat(t, filepath.Join(dest, "dir/gone"))
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 || st.Mode&0o7777 != 0 || st.Uid != 1000 {
		t.Errorf("whiteout device mode %o rdev %d uid %d", st.Mode, st.Rdev, st.Uid)
	}
	buf := make([]byte, 8)
	if n, err := unix.Lgetxattr(filepath.Join(dest, "opq"), "trusted.overlay.opaque", buf); err != nil || string(buf[:n]) != "y" {
		t.Errorf("opaque xattr %q %v", buf[:n], err)
	}
	if _, err := os.Lstat(filepath.Join(dest, "opq/.wh..wh..opq")); err == nil {
		t.Errorf("opaque marker written as a file")
	}
}

func TestDuplicatePathRejected(t *testing.T) {
	data := makeTar(t, tar.FormatUnknown, 0, file("same", "1", 0o644), file("./same", "2", 0o644))
	dest := t.TempDir()
	_, err := archive.Unpack(context.Background(), dest, bytes.NewReader(data), archive.UnpackOptions{TarSplit: &bytes.Buffer{}, IgnoreChownErrors: true})
	if !errors.Is(err, archive.ErrDuplicatePath) || !strings.Contains(err.Error(), "duplicates of file paths not supported") {
		t.Fatalf("err = %v", err)
	}
	// Without tar-split, duplicates are just applied in order.
	if err := unpack(t, t.TempDir(), data, archive.UnpackOptions{IgnoreChownErrors: true}); err != nil {
		t.Fatalf("without tar-split: %v", err)
	}
}

func TestGarbageAndTruncated(t *testing.T) {
	junk := []byte("junk\n")
	for _, comp := range []string{"plain", "gzip", "bzip2", "xz", "zstd"} {
		t.Run(comp, func(t *testing.T) {
			err := unpack(t, t.TempDir(), compressWith(t, comp, junk), archive.UnpackOptions{})
			if err == nil || !(strings.Contains(err.Error(), "invalid tar header") || strings.Contains(err.Error(), "unexpected EOF")) {
				t.Fatalf("err = %v", err)
			}
		})
	}
	good := makeTar(t, tar.FormatUnknown, 0, file("a", strings.Repeat("a", 5000), 0o644))
	for _, comp := range []string{"plain", "gzip", "zstd", "xz"} {
		blob := compressWith(t, comp, good)
		for _, cut := range []int{len(blob) / 3, len(blob) - 700} {
			if cut <= 12 || cut >= len(blob) {
				continue
			}
			err := unpack(t, t.TempDir(), blob[:cut], archive.UnpackOptions{IgnoreChownErrors: true})
			if err == nil {
				t.Errorf("%s cut at %d of %d: no error", comp, cut, len(blob))
			}
		}
	}
	short := compressWith(t, "gzip", []byte("x"))
	if err := unpack(t, t.TempDir(), short, archive.UnpackOptions{}); err == nil || !strings.Contains(err.Error(), "unexpected EOF") {
		t.Errorf("compressed stream shorter than a header: %v", err)
	}
}

func TestUnpackSparseRejected(t *testing.T) {
	// An old-GNU sparse header ('S') with an empty map.
	data := makeTar(t, tar.FormatGNU, 0, file("sparse", "", 0o644))
	patchHeader(data, 0, func(h []byte) { h[156] = 'S' })
	err := unpack(t, t.TempDir(), data, archive.UnpackOptions{IgnoreChownErrors: true})
	if !errors.Is(err, archive.ErrSparse) {
		t.Fatalf("sparse entry: err = %v", err)
	}
}

func TestUnpackCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	data := makeTar(t, tar.FormatUnknown, 0, file("a", "a", 0o644))
	if _, err := archive.Unpack(ctx, t.TempDir(), bytes.NewReader(data), archive.UnpackOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

func TestSetgidDirGroupIsChowned(t *testing.T) {
	needRoot(t)
	d := dir("sg/", 0o2775)
	d.hdr.Gid = 1234
	data := makeTar(t, tar.FormatUnknown, 0, d, file("sg/f", "x", 0o644), file("plain", "y", 0o644))
	dest := t.TempDir()
	if err := unpack(t, dest, data, archive.UnpackOptions{}); err != nil {
		t.Fatal(err)
	}
	if st := lstat(t, filepath.Join(dest, "sg/f")); st.Gid != 0 {
		t.Errorf("file in setgid dir has gid %d, want 0 from the tar", st.Gid)
	}
	if st := lstat(t, filepath.Join(dest, "plain")); st.Uid != 0 || st.Gid != 0 {
		t.Errorf("plain file owner %d:%d", st.Uid, st.Gid)
	}
}

func TestRootOpaqueMarker(t *testing.T) {
	dest := t.TempDir()
	os.WriteFile(filepath.Join(dest, "lower"), []byte("l"), 0o644)
	data := makeTar(t, tar.FormatUnknown, 0, file("new", "n", 0o644), file(".wh..wh..opq", "", 0o644))
	if err := unpack(t, dest, data, archive.UnpackOptions{IgnoreChownErrors: true}); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dest)
	if len(ents) != 1 || ents[0].Name() != "new" {
		t.Errorf("after a root opaque marker: %v", ents)
	}
}

func TestUnpackPAXSparseRejected(t *testing.T) {
	if _, err := exec.LookPath("tar"); err != nil {
		t.Skip("GNU tar not installed: cannot make a PAX sparse fixture")
	}
	src := t.TempDir()
	f, err := os.Create(filepath.Join(src, "holes"))
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("end"), 1<<20)
	f.Close()
	for _, format := range []string{"posix", "gnu"} {
		out, err := exec.Command("tar", "--sparse", "--format="+format, "-C", src, "-cf", "-", "holes").Output()
		if err != nil {
			t.Fatalf("tar: %v", err)
		}
		err = unpack(t, t.TempDir(), out, archive.UnpackOptions{IgnoreChownErrors: true})
		if !errors.Is(err, archive.ErrSparse) {
			t.Errorf("%s sparse: err = %v", format, err)
		}
	}
}

func TestRootEntryMetadata(t *testing.T) {
	needRoot(t)
	mtime := time.Unix(1500000000, 0)
	root := dir("./", 0o711)
	root.hdr.Uid, root.hdr.Gid, root.hdr.ModTime = 12, 34, mtime
	data := makeTar(t, tar.FormatUnknown, 0, root, file("sub/f", "a", 0o644))
	dest := t.TempDir()
	if err := unpack(t, dest, data, archive.UnpackOptions{}); err != nil {
		t.Fatal(err)
	}
	st := lstat(t, dest)
	if st.Mode&0o7777 != 0o711 || st.Uid != 12 || st.Gid != 34 || st.Mtim.Sec != mtime.Unix() {
		t.Errorf("naive apply: root mode %o owner %d:%d mtime %d", st.Mode&0o7777, st.Uid, st.Gid, st.Mtim.Sec)
	}
	// The overlay extraction skips the root entry, as upstream's Unpack.
	dest = t.TempDir()
	os.Chmod(dest, 0o755)
	if err := unpack(t, dest, data, archive.UnpackOptions{Whiteouts: archive.WhiteoutOverlay}); err != nil {
		t.Fatal(err)
	}
	if st := lstat(t, dest); st.Mode&0o7777 != 0o755 || st.Uid != 0 {
		t.Errorf("overlay apply: root mode %o owner %d", st.Mode&0o7777, st.Uid)
	}
}
