package store

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// A store opened without a driver name on a file system overlay cannot
// use as a backing store (here: an overlay mount) falls back to vfs and
// leaves no overlay home behind.
func TestDetectFallsBackWhenOverlayUnsupported(t *testing.T) {
	base, merged := overlayMount(t)

	ctx := context.Background()
	g, r := filepath.Join(merged, "g"), filepath.Join(base, "r")
	st, err := Open(ctx, Options{GraphRoot: g, RunRoot: r})
	if err != nil {
		t.Fatalf("Open without a driver name on overlayfs: %v", err)
	}
	defer st.Close()
	if got := st.GraphDriverName(); got != "vfs" {
		t.Fatalf("driver = %q, want vfs (overlay cannot stack on overlayfs)", got)
	}
	if _, err := os.Stat(filepath.Join(g, "overlay")); !os.IsNotExist(err) {
		t.Fatalf("a skipped overlay driver left its home behind (stat: %v)", err)
	}
}

// An explicitly named driver that is not supported is an error, not a
// silent fallback.
func TestExplicitUnsupportedDriverFails(t *testing.T) {
	base, merged := overlayMount(t)
	_, err := Open(context.Background(), Options{GraphRoot: filepath.Join(merged, "g"), RunRoot: filepath.Join(base, "r"), GraphDriverName: "overlay"})
	if err == nil {
		t.Fatal("Open with overlay on overlayfs succeeded")
	}
}

// overlayMount mounts an empty overlay file system under a temp dir and
// returns the temp dir and the mount point (skipping without root).
func overlayMount(t *testing.T) (base, merged string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount an overlay file system")
	}
	base = t.TempDir()
	for _, d := range []string{"lower", "upper", "work", "merged"} {
		if err := os.Mkdir(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	merged = filepath.Join(base, "merged")
	opts := "lowerdir=" + filepath.Join(base, "lower") + ",upperdir=" + filepath.Join(base, "upper") + ",workdir=" + filepath.Join(base, "work")
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		t.Skipf("cannot mount overlay here: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(merged, unix.MNT_DETACH) })
	return base, merged
}
