package fsx

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: chown to other users")
	}
}

func owner(t *testing.T, p string) [2]int {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return [2]int{int(st.Uid), int(st.Gid)}
}

func chown(t *testing.T, p string, uid, gid int) {
	t.Helper()
	if err := os.Lchown(p, uid, gid); err != nil {
		t.Fatal(err)
	}
}

func TestShiftOwners(t *testing.T) {
	requireRoot(t)
	root := t.TempDir()
	chown(t, root, 0, 0)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Mkdir(filepath.Join(root, "d"), 0o755))
	chown(t, filepath.Join(root, "d"), 5, 6)
	must(os.WriteFile(filepath.Join(root, "d", "g"), []byte("x"), 0o644))
	chown(t, filepath.Join(root, "d", "g"), 7, 8)
	must(os.WriteFile(filepath.Join(root, "suid"), []byte("x"), 0o755))
	chown(t, filepath.Join(root, "suid"), 0, 0)
	must(unix.Chmod(filepath.Join(root, "suid"), 0o6755))
	must(os.Symlink("d/g", filepath.Join(root, "link")))
	chown(t, filepath.Join(root, "link"), 1, 2)
	// a hard link is shifted once, not twice
	must(os.Link(filepath.Join(root, "d", "g"), filepath.Join(root, "hard")))
	// outside the target map: becomes the overflow ID
	must(os.WriteFile(filepath.Join(root, "big"), nil, 0o644))
	chown(t, filepath.Join(root, "big"), 500, 500)
	// a file capability survives the chown (where the fs supports it)
	capPath := filepath.Join(root, "cap")
	must(os.WriteFile(capPath, nil, 0o755))
	// VFS_CAP_REVISION_2, CAP_NET_RAW permitted+effective
	capValue := []byte{0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	haveCap := unix.Lsetxattr(capPath, capabilityXattr, capValue, 0) == nil

	// +1000/+2000, except 500:500, which the remap sends to 65534
	shift := func(uid, gid int) (int, int, error) {
		if uid == 500 {
			return 65534, 65534, nil
		}
		return uid + 1000, gid + 2000, nil
	}
	if err := ShiftOwners(context.Background(), root, shift); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string][2]int{
		".": {1000, 2000}, "d": {1005, 2006}, "d/g": {1007, 2008}, "hard": {1007, 2008},
		"suid": {1000, 2000}, "link": {1001, 2002}, "big": {65534, 65534},
	} {
		if got := owner(t, filepath.Join(root, p)); got != want {
			t.Errorf("%s: owner %v, want %v", p, got, want)
		}
	}
	if fi, err := os.Stat(filepath.Join(root, "suid")); err != nil || fi.Mode()&(os.ModeSetuid|os.ModeSetgid) != os.ModeSetuid|os.ModeSetgid {
		t.Errorf("suid: set-ID bits lost: %v %v", fi.Mode(), err)
	}
	if target, err := os.Readlink(filepath.Join(root, "link")); err != nil || target != "d/g" {
		t.Errorf("link: %q %v", target, err)
	}
	if haveCap {
		got, err := getXattr(capPath, capabilityXattr)
		if err != nil || string(got) != string(capValue) {
			t.Errorf("capability after shift: %x %v, want %x", got, err, capValue)
		}
	}

	// Shifting back restores the original owners.
	back := func(uid, gid int) (int, int, error) { return uid - 1000, gid - 2000, nil }
	chown(t, filepath.Join(root, "big"), 1050, 2050)
	if err := ShiftOwners(context.Background(), root, back); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string][2]int{".": {0, 0}, "d": {5, 6}, "d/g": {7, 8}, "hard": {7, 8}, "link": {1, 2}, "big": {50, 50}} {
		if got := owner(t, filepath.Join(root, p)); got != want {
			t.Errorf("back: %s: owner %v, want %v", p, got, want)
		}
	}
}

func TestShiftOwnersErrors(t *testing.T) {
	requireRoot(t)
	root := t.TempDir()
	chown(t, root, 0, 0)
	p := filepath.Join(root, "f")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	chown(t, p, 5, 5)
	errNo := errors.New("owner refused")
	refuse5 := func(uid, gid int) (int, int, error) {
		if uid == 5 {
			return -1, -1, errNo
		}
		return uid + 1, gid + 1, nil
	}
	err := ShiftOwners(context.Background(), root, refuse5)
	if !errors.Is(err, errNo) || !strings.Contains(err.Error(), p) {
		t.Fatalf("refused owner: got %v, want errNo naming %s", err, p)
	}
	// nil remap touches nothing; a cancelled ctx stops the walk.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := ShiftOwners(ctx, root, nil); err != nil {
		t.Errorf("nil remap: %v", err)
	}
	if err := ShiftOwners(ctx, root, refuse5); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	if err := ShiftOwners(context.Background(), filepath.Join(root, "missing"), refuse5); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing root: %v", err)
	}
	if got := owner(t, p); got != [2]int{5, 5} {
		t.Errorf("f changed by failed walks: %v", got)
	}
}
