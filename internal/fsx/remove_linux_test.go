package fsx

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

func TestRemoveAllUnmounts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting tmpfs needs root")
	}
	root := filepath.Join(t.TempDir(), "victim")
	mnt := filepath.Join(root, "a", "mnt")
	if err := os.MkdirAll(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("cannot mount tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(mnt, unix.MNT_DETACH) })
	nested := filepath.Join(mnt, "inner")
	if err := os.Mkdir(nested, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", nested, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("nested tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(nested, unix.MNT_DETACH) })
	if err := os.WriteFile(filepath.Join(nested, "f"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(root); err == nil {
		t.Fatal("os.RemoveAll removed a tree with a mount inside: test cannot tell anything")
	}
	if err := RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(root); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("tree still there: %v", err)
	}
	for _, p := range []string{mnt, nested} {
		if mounted, _ := mountinfo.Mounted(p); mounted {
			t.Errorf("%s still mounted", p)
		}
	}
}

func TestRemoveAllImmutable(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("setting the immutable flag needs CAP_LINUX_IMMUTABLE")
	}
	root := filepath.Join(t.TempDir(), "victim")
	sub := filepath.Join(root, "sub")
	if err := os.MkdirAll(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(sub, "f")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	setFlag := func(p string, flag uint32) {
		t.Helper()
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NONBLOCK, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fd)
		attr, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
		if err == nil {
			err = unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, int(attr|flag))
		}
		if err != nil {
			t.Skipf("file system of %s does not support inode flags: %v", p, err)
		}
	}
	setFlag(file, fsImmutableFL)
	setFlag(sub, fsAppendFL)
	t.Cleanup(func() { clearFlagsUnder(root); _ = os.RemoveAll(root) })
	if err := os.RemoveAll(root); err == nil {
		t.Fatal("os.RemoveAll removed an immutable file: test cannot tell anything")
	}
	if err := RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(root); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("tree still there: %v", err)
	}
}
