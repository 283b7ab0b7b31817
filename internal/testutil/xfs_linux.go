package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// XFSReflinkMount loop-mounts a fresh 512 MiB XFS made with reflink=1
// and returns its mount point (unmounted when the test ends); it skips
// the test when that is impossible (not root, no mkfs.xfs, no loop
// mount).
func XFSReflinkMount(t testing.TB) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("reflink test needs root to loop-mount xfs")
	}
	mkfs, err := exec.LookPath("mkfs.xfs")
	if err != nil {
		t.Skip("reflink test needs mkfs.xfs (apt-get install xfsprogs)")
	}
	dir := t.TempDir()
	img, mnt := filepath.Join(dir, "xfs.img"), filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 512<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(mkfs, "-q", "-m", "reflink=1", img).CombinedOutput(); err != nil {
		t.Skipf("mkfs.xfs -m reflink=1 failed: %v: %s", err, out)
	}
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot loop-mount xfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})
	return mnt
}
