package lockfile

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestGetReadOnlyOnReadOnlyFS opens an existing lock file on a read-only
// file system: O_RDONLY|O_CREAT is refused there, plain O_RDONLY works.
func TestGetReadOnlyOnReadOnlyFS(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting tmpfs needs root")
	}
	mnt := t.TempDir()
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("cannot mount tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(mnt, unix.MNT_DETACH) })
	if err := os.WriteFile(filepath.Join(mnt, "layers.lock"), []byte("token"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("", mnt, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		t.Skipf("cannot remount read-only: %v", err)
	}
	f, err := GetReadOnly(filepath.Join(mnt, "layers.lock"))
	if err != nil {
		t.Fatalf("GetReadOnly on a read-only FS: %v", err)
	}
	if err := f.RLock(context.Background()); err != nil {
		t.Fatal(err)
	}
	lw, err := f.LastWrite()
	f.Unlock()
	if err != nil || string(lw.Bytes()) != "token" {
		t.Fatalf("LastWrite = %q, %v", lw.Bytes(), err)
	}
	if _, err := GetReadOnly(filepath.Join(mnt, "missing.lock")); err == nil {
		t.Error("GetReadOnly created a file on a read-only FS")
	}
	if _, err := Get(filepath.Join(mnt, "other.lock")); err == nil {
		t.Error("Get succeeded on a read-only FS")
	}
}
