package overlay

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/internal/idmap"
)

// ownedTar is a layer with files owned by container IDs 0:0, 5:6 and
// 7:8, and a hard link to d/g.
func ownedTar(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range []tar.Header{
		{Name: "f", Typeflag: tar.TypeReg, Mode: 0o644, Size: 2},
		{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o755, Uid: 5, Gid: 6},
		{Name: "d/g", Typeflag: tar.TypeReg, Mode: 0o4755, Uid: 7, Gid: 8, Size: 2},
		{Name: "d/hard", Typeflag: tar.TypeLink, Linkname: "d/g", Mode: 0o4755, Uid: 7, Gid: 8},
	} {
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			if _, err := tw.Write([]byte("x\n")); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// owners returns "path uid:gid" lines of the tree at root.
func owners(t testing.TB, root string) string {
	t.Helper()
	var lines []string
	err := filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		lines = append(lines, rel+" "+itoa(st.Uid)+":"+itoa(st.Gid))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

func itoa(n uint32) string {
	var b []byte
	for {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
		if n == 0 {
			return string(b)
		}
	}
}

var (
	maps3000 = []idmap.IDMap{{ContainerID: 0, HostID: 3000, Size: 100}}
	maps4000 = []idmap.IDMap{{ContainerID: 0, HostID: 4000, Size: 100}}
)

const (
	hostOwners   = ". 0:0\nd 5:6\nd/g 7:8\nd/hard 7:8\nf 0:0"
	mappedOwners = ". 3000:4000\nd 3005:4006\nd/g 3007:4008\nd/hard 3007:4008\nf 3000:4000"
)

// A child whose maps differ from its parent's sees the parent's files
// re-owned through a diff1 under an empty diff, as v1.43's
// UpdateLayerIDMap leaves it; its own children stack diff1 too; the
// parent is untouched.
func TestCreateReownsParentView(t *testing.T) {
	d := newTestDriver(t)
	cleanupDriver(t, d)
	stage(t, d, "base", "", ownedTar(t))
	opts := driver.CreateOptions{UIDMap: maps3000, GIDMap: maps4000}
	if err := d.Create(bg, "mapped", "base", opts); err != nil {
		t.Fatal(err)
	}
	h := d.Home()
	if got := owners(t, filepath.Join(h, "mapped", "diff")); got != ". 3000:4000" {
		t.Errorf("mapped diff = %q, want an empty dir owned by the mapped root", got)
	}
	if got := owners(t, filepath.Join(h, "mapped", "diff1")); got != mappedOwners {
		t.Errorf("mapped diff1:\n%s\nwant\n%s", got, mappedOwners)
	}
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(h, "mapped", "diff1", "d", "g"), &st); err != nil || st.Mode&0o7777 != 0o4755 {
		t.Errorf("mode of a set-user-ID file after re-owning: %o %v, want 4755", st.Mode&0o7777, err)
	}
	if got := owners(t, filepath.Join(h, "base", "diff")); got != hostOwners {
		t.Errorf("base changed:\n%s", got)
	}
	same := driver.CreateOptions{UIDMap: maps3000, GIDMap: maps4000, ParentUIDMap: maps3000, ParentGIDMap: maps4000, ReadWrite: true}
	if err := d.Create(bg, "ctr", "mapped", same); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(h, "ctr", "diff1")); err == nil {
		t.Error("a child with its parent's maps got a diff1")
	}
	mnt, err := d.Get(bg, "ctr", driver.MountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Put(bg, "ctr")
	if got := owners(t, mnt); got != mappedOwners {
		t.Errorf("container view:\n%s\nwant\n%s", got, mappedOwners)
	}
	// tar-split reassembly of the copy reads the template's files
	rc, err := d.OpenFile("mapped", "d/g")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "x\n" {
		t.Errorf("OpenFile of the copy = %q", b)
	}
}

// A staged diff on a parent owned in other maps commits over the
// re-owned view: diff holds the staged files, diff1 the parent's.
func TestCommitStagedOverReownedParent(t *testing.T) {
	d := newTestDriver(t)
	cleanupDriver(t, d)
	stage(t, d, "base", "", ownedTar(t))
	create := driver.CreateOptions{UIDMap: maps3000, GIDMap: maps4000}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	_ = tw.WriteHeader(&tar.Header{Name: "new", Typeflag: tar.TypeReg, Mode: 0o644, Uid: 3, Gid: 4})
	_ = tw.Close()
	s, err := d.StageDiff(bg, "base", &buf, driver.ApplyOptions{UIDMap: maps3000, GIDMap: maps4000}, create)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.CommitStaged(bg, "top", "base", s, create); err != nil {
		t.Fatal(err)
	}
	h := d.Home()
	if got := owners(t, filepath.Join(h, "top", "diff")); got != ". 3000:4000\nnew 3003:4004" {
		t.Errorf("top diff:\n%s", got)
	}
	if got := owners(t, filepath.Join(h, "top", "diff1")); got != mappedOwners {
		t.Errorf("top diff1:\n%s", got)
	}
}

// With idmapped lowers, a container layer on an unmapped parent shows
// the lowers through the maps while nothing on disk changes, and the
// temporary idmapped mounts are gone once the overlay is mounted.
func TestIDMappedLowers(t *testing.T) {
	t.Setenv(disableIDMapEnv, "")
	d := newTestDriver(t)
	cleanupDriver(t, d)
	if !d.SupportsShifting() {
		t.Skip("the kernel cannot mount overlay on idmapped lowers here")
	}
	if _, err := os.Stat(filepath.Join(d.runHome, idmapFeature+"-true")); err != nil {
		t.Errorf("probe result not cached: %v", err)
	}
	stage(t, d, "base", "", ownedTar(t))
	if err := d.Create(bg, "ctr", "base", driver.CreateOptions{ReadWrite: true}); err != nil {
		t.Fatal(err)
	}
	for _, ro := range []bool{false, true} {
		mo := driver.MountOptions{UIDMap: maps3000, GIDMap: maps4000}
		if ro {
			mo.Options = []string{"ro"}
		}
		mnt, err := d.Get(bg, "ctr", mo)
		if err != nil {
			t.Fatal(err)
		}
		// the upper (the container's own diff) is not shifted
		want := strings.Replace(mappedOwners, ". 3000:4000", ". 0:0", 1)
		if got := owners(t, mnt); got != want {
			t.Errorf("ro=%v: mounted view:\n%s\nwant\n%s", ro, got, want)
		}
		if _, err := os.Stat(filepath.Join(d.Home(), "ctr", mappedName)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("ro=%v: %s left after the mount: %v", ro, mappedName, err)
		}
		if err := d.Put(bg, "ctr"); err != nil {
			t.Fatal(err)
		}
	}
	if got := owners(t, filepath.Join(d.Home(), "base", "diff")); got != hostOwners {
		t.Errorf("base changed on disk:\n%s", got)
	}
	if err := d.Remove(bg, "ctr"); err != nil {
		t.Fatal(err)
	}
	if got := owners(t, filepath.Join(d.Home(), "base", "diff")); got != hostOwners {
		t.Errorf("removing the container touched base:\n%s", got)
	}
}

// _CONTAINERS_OVERLAY_DISABLE_IDMAP=yes turns shifting off: Get with maps
// fails instead of showing unshifted files.
func TestDisableIDMapEnv(t *testing.T) {
	t.Setenv(disableIDMapEnv, "yes")
	d := newTestDriver(t)
	cleanupDriver(t, d)
	if d.SupportsShifting() {
		t.Fatalf("SupportsShifting with %s=yes", disableIDMapEnv)
	}
	if err := d.Create(bg, "base", "", driver.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err := d.Get(bg, "base", driver.MountOptions{UIDMap: maps3000, GIDMap: maps4000})
	if !errors.Is(err, driver.ErrNotSupported) {
		t.Errorf("Get with maps: %v, want ErrNotSupported", err)
	}
	for _, p := range d.Status() {
		if p[0] == "Supports shifting" && p[1] != "false" {
			t.Errorf("status %v", p)
		}
	}
}

// Create over a leftover directory (no record) replaces it, as upstream
// does, keeping a single l/ link for the layer.
func TestCreateReplacesLeftover(t *testing.T) {
	d := newTestDriver(t)
	cleanupDriver(t, d)
	if err := d.Create(bg, "x", "", driver.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	junk := filepath.Join(d.Home(), "x", "diff", "junk")
	if err := os.WriteFile(junk, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.Create(bg, "x", "", driver.CreateOptions{}); err != nil {
		t.Fatalf("Create over a leftover: %v", err)
	}
	if _, err := os.Stat(junk); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("leftover content survived: %v", err)
	}
	links, err := os.ReadDir(filepath.Join(d.Home(), linkDir))
	if err != nil || len(links) != 1 {
		t.Errorf("l/ has %d entries (%v), want 1", len(links), err)
	}
}
