package vfs

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/internal/idmap"
)

// ownerOf returns path's uid:gid.
func ownerOf(t *testing.T, path string) [2]int {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	return [2]int{int(st.Uid), int(st.Gid)}
}

// ownedBase makes an unmapped layer "base" holding f (0:0), d (5:6) and d/g (7:8).
func ownedBase(t *testing.T, d *Driver) string {
	t.Helper()
	if err := d.Create(bg, "base", "", driver.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	dir, err := d.Get(bg, "base", driver.MountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []struct {
		path     string
		dir      bool
		uid, gid int
	}{{"f", false, 0, 0}, {"d", true, 5, 6}, {"d/g", false, 7, 8}} {
		p := filepath.Join(dir, e.path)
		if e.dir {
			err = os.Mkdir(p, 0o755)
		} else {
			err = os.WriteFile(p, []byte(e.path), 0o644)
		}
		if err == nil {
			err = os.Lchown(p, e.uid, e.gid)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

var (
	shiftU = []idmap.IDMap{{ContainerID: 0, HostID: 1000, Size: 100}}
	shiftG = []idmap.IDMap{{ContainerID: 0, HostID: 2000, Size: 100}}
)

func TestCreateShiftsParentCopy(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown to other users needs root")
	}
	home := filepath.Join(t.TempDir(), "vfs")
	d := newAt(t, driver.Options{Root: home})
	baseDir := ownedBase(t, d)
	if err := d.Create(bg, "child", "base", driver.CreateOptions{UIDMap: shiftU, GIDMap: shiftG}); err != nil {
		t.Fatal(err)
	}
	child := filepath.Join(home, "dir", "child")
	want := map[string][2]int{".": {1000, 2000}, "f": {1000, 2000}, "d": {1005, 2006}, "d/g": {1007, 2008}}
	for p, w := range want {
		if got := ownerOf(t, filepath.Join(child, p)); got != w {
			t.Errorf("child %s: owner %v, want %v", p, got, w)
		}
	}
	// The parent is untouched.
	if got := ownerOf(t, filepath.Join(baseDir, "d/g")); got != [2]int{7, 8} {
		t.Errorf("base d/g: %v, want 7:8", got)
	}
	// A grandchild with the same maps as its parent is a plain copy, and
	// one back to host maps undoes the shift.
	if err := d.Create(bg, "same", "child", driver.CreateOptions{UIDMap: shiftU, GIDMap: shiftG, ParentUIDMap: shiftU, ParentGIDMap: shiftG}); err != nil {
		t.Fatal(err)
	}
	if got := ownerOf(t, filepath.Join(home, "dir", "same", "d/g")); got != [2]int{1007, 2008} {
		t.Errorf("same-map grandchild d/g: %v, want 1007:2008", got)
	}
	if err := d.Create(bg, "unshifted", "child", driver.CreateOptions{ParentUIDMap: shiftU, ParentGIDMap: shiftG}); err != nil {
		t.Fatal(err)
	}
	for p, w := range map[string][2]int{".": {0, 0}, "d": {5, 6}, "d/g": {7, 8}} {
		if got := ownerOf(t, filepath.Join(home, "dir", "unshifted", p)); got != w {
			t.Errorf("host-mapped grandchild %s: %v, want %v", p, got, w)
		}
	}
	// A parent owner outside the parent's maps fails the create and leaves nothing.
	if err := os.Lchown(filepath.Join(home, "dir", "child", "f"), 5, 5); err != nil {
		t.Fatal(err)
	}
	err := d.Create(bg, "bad", "child", driver.CreateOptions{ParentUIDMap: shiftU, ParentGIDMap: shiftG})
	if err == nil {
		t.Fatal("create with an unmappable parent owner succeeded")
	}
	if d.Exists("bad") {
		t.Error("failed create left the layer directory")
	}
}

func TestStageDiffShiftsParentNotDiff(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown to other users needs root")
	}
	home := filepath.Join(t.TempDir(), "vfs")
	d := newAt(t, driver.Options{Root: home})
	ownedBase(t, d)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "new", Mode: 0o644, Uid: 3, Gid: 4, Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	create := driver.CreateOptions{UIDMap: shiftU, GIDMap: shiftG}
	s, err := d.StageDiff(bg, "base", &buf, driver.ApplyOptions{UIDMap: shiftU, GIDMap: shiftG}, create)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.CommitStaged(bg, "child", "base", s, create); err != nil {
		t.Fatal(err)
	}
	child := filepath.Join(home, "dir", "child")
	for p, w := range map[string][2]int{".": {1000, 2000}, "f": {1000, 2000}, "d/g": {1007, 2008}, "new": {1003, 2004}} {
		if got := ownerOf(t, filepath.Join(child, p)); got != w {
			t.Errorf("child %s: owner %v, want %v", p, got, w)
		}
	}
}
