package fsx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stowage/stowage/internal/testutil"
)

// entryInfo is the comparable metadata of one tree entry.
type entryInfo struct {
	mode     uint32
	uid, gid uint32
	rdev     uint64
	size     int64
	mtime    unix.Timespec
	target   string
	content  string
	xattrs   string
	nlink    uint64
}

func describe(t *testing.T, root string) map[string]entryInfo {
	t.Helper()
	out := map[string]entryInfo{}
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		e := entryInfo{mode: st.Mode, uid: st.Uid, gid: st.Gid, rdev: st.Rdev, mtime: st.Mtim, nlink: st.Nlink}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			e.content, e.size = string(b), st.Size
		case unix.S_IFLNK:
			e.target, _ = os.Readlink(p)
		}
		names, _ := copyXattrNames(p)
		var xs []string
		for _, n := range names {
			if strings.HasPrefix(n, "security.selinux") {
				continue
			}
			v, _ := copyXattrValue(p, n)
			xs = append(xs, n+"="+string(v))
		}
		e.xattrs = strings.Join(xs, ",")
		out[rel] = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func mustWrite(t *testing.T, p, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := unix.Chmod(p, uint32(mode)); err != nil { // raw bits: 0o4755 is set-uid
		t.Fatal(err)
	}
}

// writableAtCleanup makes every directory under dir writable before the
// TempDir cleanup runs, so an unprivileged run can remove 0555 dirs.
func writableAtCleanup(t *testing.T, dir string) {
	t.Cleanup(func() {
		_ = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
			if err == nil && fi.IsDir() {
				_ = os.Chmod(p, 0o755)
			}
			return nil
		})
	})
}

// buildTree makes a source tree with every kind of entry CopyTree handles.
func buildTree(t *testing.T, src string) {
	t.Helper()
	writableAtCleanup(t, src)
	root := os.Geteuid() == 0
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(src, "a/b/c"), 0o755))
	mustWrite(t, filepath.Join(src, "a/file"), "hello", 0o644)
	mustWrite(t, filepath.Join(src, "a/b/exec"), "#!/bin/sh\n", 0o4755)
	mustWrite(t, filepath.Join(src, "empty"), "", 0o600)
	must(os.Link(filepath.Join(src, "a/file"), filepath.Join(src, "a/b/c/hardlink")))
	must(os.Link(filepath.Join(src, "a/file"), filepath.Join(src, "z-third-link")))
	must(os.Symlink("../file", filepath.Join(src, "a/b/rel-link")))
	must(os.Symlink("/etc/does-not-exist", filepath.Join(src, "abs-link")))
	must(unix.Mkfifo(filepath.Join(src, "fifo"), 0o640))
	must(unix.Setxattr(filepath.Join(src, "a/file"), "user.test", []byte("value"), 0))
	must(unix.Setxattr(filepath.Join(src, "a"), "user.dir", []byte("d"), 0))
	must(unix.Chmod(filepath.Join(src, "a/b"), 0o1777))
	if root {
		must(unix.Mknod(filepath.Join(src, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
		must(unix.Mknod(filepath.Join(src, "blk"), unix.S_IFBLK|0o600, int(unix.Mkdev(7, 200))))
		must(os.Lchown(filepath.Join(src, "a/file"), 1000, 1001))
		must(os.Lchown(filepath.Join(src, "a/b/rel-link"), 33, 44))
		must(os.Lchown(filepath.Join(src, "a/b"), 2000, 2000))
		must(unix.Lchown(filepath.Join(src, "a/b/exec"), 5, 6))
		must(unix.Chmod(filepath.Join(src, "a/b/exec"), 0o4755)) // chown cleared set-uid
		cap := []byte{0, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
		must(unix.Setxattr(filepath.Join(src, "a/b/exec"), "security.capability", cap, 0))
		must(unix.Setxattr(filepath.Join(src, "a/b/c"), "trusted.overlay.opaque", []byte("y"), 0))
	}
	must(os.Chmod(filepath.Join(src, "a/b/c"), 0o555))
	// Times last, after all children exist; directories included.
	old := time.Date(2001, 2, 3, 4, 5, 6, 700, time.UTC)
	for _, p := range []string{"a/file", "a/b/exec", "a/b/c", "a/b", "a", "empty", "."} {
		must(os.Chtimes(filepath.Join(src, p), old, old))
	}
	must(unix.Lutimes(filepath.Join(src, "abs-link"), []unix.Timeval{{Sec: 1000}, {Sec: 2000}}))
	must(os.Chmod(src, 0o751))
}

func TestCopyTreePreservesEverything(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	writableAtCleanup(t, dst)
	buildTree(t, src)
	// A socket must be skipped.
	l, err := net.Listen("unix", filepath.Join(src, "sock"))
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if err := os.Chtimes(src, time.Unix(5000, 0), time.Unix(5000, 0)); err != nil {
		t.Fatal(err)
	}
	if err := CopyTree(context.Background(), dst, src); err != nil {
		t.Fatal(err)
	}
	want, got := describe(t, src), describe(t, dst)
	delete(want, "sock")
	if _, err := os.Lstat(filepath.Join(dst, "sock")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket copied: %v", err)
	}
	for name, w := range want {
		g, ok := got[name]
		if !ok {
			t.Errorf("%s missing from copy", name)
			continue
		}
		if g != w {
			t.Errorf("%s differs:\n got %+v\nwant %+v", name, g, w)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%s unexpected in copy", name)
		}
	}
	// Hard links stay one inode inside dst, distinct from src's.
	var a, b, s unix.Stat_t
	_ = unix.Lstat(filepath.Join(dst, "a/file"), &a)
	_ = unix.Lstat(filepath.Join(dst, "a/b/c/hardlink"), &b)
	_ = unix.Lstat(filepath.Join(src, "a/file"), &s)
	if a.Ino != b.Ino || a.Nlink != 3 {
		t.Errorf("hard links not preserved: ino %d/%d nlink %d", a.Ino, b.Ino, a.Nlink)
	}
	if a.Ino == s.Ino {
		t.Errorf("copy shares the source inode")
	}
	if os.Geteuid() == 0 {
		if got["null"].mode&unix.S_IFMT != unix.S_IFCHR || got["null"].rdev != unix.Mkdev(1, 3) {
			t.Errorf("char device not copied: %+v", got["null"])
		}
		if !strings.Contains(got["a/b/exec"].xattrs, "security.capability") {
			t.Errorf("capability lost: %q", got["a/b/exec"].xattrs)
		}
		if got["a/b/exec"].mode&0o7777 != 0o4755 {
			t.Errorf("set-uid lost: %o", got["a/b/exec"].mode)
		}
	}
}

func TestCopyTreeCancelled(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	writableAtCleanup(t, dst)
	buildTree(t, src)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := CopyTree(ctx, dst, src); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

func TestCopyTreeErrors(t *testing.T) {
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "f"), "x", 0o644)
	if err := CopyTree(context.Background(), t.TempDir(), filepath.Join(dir, "f")); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("copying a file: got %v", err)
	}
	if err := CopyTree(context.Background(), t.TempDir(), filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("copying a missing dir: got %v", err)
	}
	// dst not empty: a name clash fails rather than overwriting.
	src, dst := t.TempDir(), t.TempDir()
	mustWrite(t, filepath.Join(src, "f"), "new", 0o644)
	mustWrite(t, filepath.Join(dst, "f"), "old", 0o644)
	if err := CopyTree(context.Background(), dst, src); !errors.Is(err, os.ErrExist) {
		t.Errorf("clash: got %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "f")); string(b) != "old" {
		t.Errorf("existing file overwritten: %q", b)
	}
}

func TestCopyTreeLargeFileFallbacks(t *testing.T) {
	// ext4/tmpfs have no FICLONE: the copy_file_range and read/write
	// paths must give identical content.
	src, dst := t.TempDir(), t.TempDir()
	data := bytes.Repeat([]byte("0123456789abcdef"), 300000) // 4.8 MB
	mustWrite(t, filepath.Join(src, "big"), string(data), 0o644)
	c := &copier{ctx: context.Background(), links: map[inodeKey]string{}, noClone: true, noRange: true}
	if err := c.copyFile(filepath.Join(dst, "rw"), filepath.Join(src, "big")); err != nil {
		t.Fatal(err)
	}
	if err := CopyTree(context.Background(), dst, src); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"rw", "big"} {
		b, err := os.ReadFile(filepath.Join(dst, n))
		if err != nil || !bytes.Equal(b, data) {
			t.Errorf("%s: content differs (%d bytes, %v)", n, len(b), err)
		}
	}
}

func TestReflinkUnsupported(t *testing.T) {
	var st unix.Statfs_t
	dir := t.TempDir()
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	if st.Type == unix.XFS_SUPER_MAGIC || st.Type == unix.BTRFS_SUPER_MAGIC {
		t.Skip("temp dir is on a file system with reflinks")
	}
	src, dst := mkPair(t, dir, "data")
	if err := Reflink(dst, src); !errors.Is(err, ErrNotSupported) {
		t.Fatalf("got %v, want ErrNotSupported", err)
	}
}

func mkPair(t *testing.T, dir, content string) (src, dst *os.File) {
	t.Helper()
	mustWrite(t, filepath.Join(dir, "src"), content, 0o644)
	src, err := os.Open(filepath.Join(dir, "src"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	dst, err = os.Create(filepath.Join(dir, "dst"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dst.Close() })
	return src, dst
}

func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	unix.Sync()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bfree) * st.Bsize
}

func TestReflinkXFS(t *testing.T) {
	mnt := testutil.XFSReflinkMount(t)
	src, dst := mkPair(t, mnt, "reflinked content")
	if err := Reflink(dst, src); err != nil {
		t.Fatalf("reflink on xfs reflink=1: %v", err)
	}
	b, err := os.ReadFile(dst.Name())
	if err != nil || string(b) != "reflinked content" {
		t.Fatalf("clone content %q, %v", b, err)
	}

	// CopyTree of a 64 MiB file must clone it: free space barely moves.
	tree := filepath.Join(mnt, "tree")
	if err := os.MkdirAll(filepath.Join(tree, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte{0xa5}, 64<<20)
	mustWrite(t, filepath.Join(tree, "sub/big"), string(big), 0o644)
	copyDir := filepath.Join(mnt, "copy")
	if err := os.Mkdir(copyDir, 0o755); err != nil {
		t.Fatal(err)
	}
	before := freeBytes(t, mnt)
	if err := CopyTree(context.Background(), copyDir, tree); err != nil {
		t.Fatal(err)
	}
	after := freeBytes(t, mnt)
	if used := before - after; used > 8<<20 {
		t.Errorf("CopyTree used %d bytes for a 64 MiB file: not reflinked", used)
	}
	got, err := os.ReadFile(filepath.Join(copyDir, "sub/big"))
	if err != nil || !bytes.Equal(got, big) {
		t.Errorf("cloned content differs (%d bytes, %v)", len(got), err)
	}

	// Across file systems FICLONE fails (EXDEV) and the copy falls back.
	other := t.TempDir()
	buildTree(t, other)
	cross := filepath.Join(mnt, "cross")
	if err := os.Mkdir(cross, 0o755); err != nil {
		t.Fatal(err)
	}
	writableAtCleanup(t, cross)
	if err := CopyTree(context.Background(), cross, other); err != nil {
		t.Fatalf("cross-file-system copy: %v", err)
	}
	want, have := describe(t, other), describe(t, cross)
	for name, w := range want {
		if have[name] != w {
			t.Errorf("cross copy %s:\n got %+v\nwant %+v", name, have[name], w)
		}
	}
}

// BenchmarkCopyTree copies a tree of 2,000 small files in 100 directories
// (compare with `cp -a` of the same tree on the same file system).
func BenchmarkCopyTree(b *testing.B) {
	src := b.TempDir()
	for i := 0; i < 2000; i++ {
		d := filepath.Join(src, fmt.Sprintf("d%03d", i%100))
		if err := os.MkdirAll(d, 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("f%d", i)), bytes.Repeat([]byte{byte(i)}, 4096+i), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dst := filepath.Join(b.TempDir(), "dst")
		if err := os.Mkdir(dst, 0o755); err != nil {
			b.Fatal(err)
		}
		if err := CopyTree(context.Background(), dst, src); err != nil {
			b.Fatal(err)
		}
	}
}
