package driver

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestOpenNoFollowFallback(t *testing.T) {
	root := t.TempDir()
	outside := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(outside, []byte("SECRET"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("ok"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{"abs": outside, "dirlink": filepath.Dir(outside), "rel": "etc/passwd"} {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	rootFd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(rootFd)
	fd, err := openNoFollow(rootFd, "etc/passwd", unix.O_RDONLY|unix.O_CLOEXEC)
	if err != nil {
		t.Fatalf("plain path: %v", err)
	}
	f := os.NewFile(uintptr(fd), "passwd")
	b, _ := io.ReadAll(f)
	f.Close()
	if string(b) != "ok" {
		t.Errorf("read %q", b)
	}
	// Every symlink is refused, escaping or not.
	for _, rel := range []string{"abs", "dirlink/secret", "rel"} {
		if fd, err := openNoFollow(rootFd, rel, unix.O_RDONLY|unix.O_CLOEXEC); err == nil {
			unix.Close(fd)
			t.Errorf("openNoFollow(%q) followed a symlink", rel)
		}
	}
}
