package vfs

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/stowage/stowage/archive"
	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/driver/drivertest"
	"github.com/stowage/stowage/internal/idmap"
	"github.com/stowage/stowage/internal/testutil"
)

var bg = context.Background()

func newAt(t *testing.T, opts driver.Options) *Driver {
	t.Helper()
	d, err := New(bg, opts)
	if err != nil {
		t.Fatal(err)
	}
	return d.(*Driver)
}

func TestConformance(t *testing.T) {
	drivertest.Run(t, func(t *testing.T) driver.Driver {
		return newAt(t, driver.Options{Root: filepath.Join(t.TempDir(), "vfs")})
	})
}

func TestOptions(t *testing.T) {
	for _, tc := range []struct {
		opt     string
		wantErr string // "" = accepted
	}{
		{"imagestore=/some/where", ""},
		{"ignore_chown_errors=true", ""},
		{"IGNORE_CHOWN_ERRORS = false", ""},
		{"ignore_chown_errors=maybe", `parsing "maybe": invalid syntax`},
		{"mountopt=nodev", "vfs driver does not support mount options"},
		{"foo=bar", "vfs driver does not support vfs.foo options"},
		{"sync=1", "vfs: option sync: \"1\" (want durable, filesystem or none)"},
		{"sync=filesystem", ""},
		{"sync=none", ""},
		{"novalue", "unable to parse key/value option: novalue"},
	} {
		t.Run(tc.opt, func(t *testing.T) {
			_, err := New(bg, driver.Options{Root: filepath.Join(t.TempDir(), "vfs"), DriverOptions: []string{tc.opt}})
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("rejected: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("got %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
	d := newAt(t, driver.Options{Root: filepath.Join(t.TempDir(), "vfs"), DriverOptions: []string{"ignore_chown_errors=1"}})
	if !d.ignoreChownErrors {
		t.Error("ignore_chown_errors=1 not applied")
	}
	if u := d.unpackOptions(driver.ApplyOptions{}); !u.IgnoreChownErrors || u.Whiteouts != archive.WhiteoutDelete {
		t.Errorf("unpack options %+v", u)
	}
	if _, err := New(bg, driver.Options{}); err == nil {
		t.Error("New without a root succeeded")
	}
}

func TestLayout(t *testing.T) {
	home := filepath.Join(t.TempDir(), "vfs")
	d := newAt(t, driver.Options{Root: home})
	if fi, err := os.Stat(home); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("home: %v %v, want mode 700", fi, err)
	}
	if err := d.Create(bg, "abc", "", driver.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p, err := d.Get(bg, "abc", driver.MountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(home, "dir", "abc"); p != want {
		t.Errorf("Get = %s, want %s", p, want)
	}
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&0o7777 != 0o555 {
		t.Errorf("layer root mode %o, want 555", st.Mode&0o7777)
	}
	if fi, err := os.Stat(filepath.Join(home, "dir")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("dir: %v %v, want mode 700", fi, err)
	}
}

func TestMappedRootOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown to a mapped root needs root")
	}
	home := filepath.Join(t.TempDir(), "vfs")
	d := newAt(t, driver.Options{Root: home})
	m := []driver.CreateOptions{{}}
	m[0].UIDMap = []idmap.IDMap{{ContainerID: 0, HostID: 100000, Size: 65536}}
	m[0].GIDMap = []idmap.IDMap{{ContainerID: 0, HostID: 200000, Size: 65536}}
	if err := d.Create(bg, "mapped", "", m[0]); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(home, "dir", "mapped"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != 100000 || st.Gid != 200000 {
		t.Errorf("owner %d:%d, want 100000:200000", st.Uid, st.Gid)
	}
}

func TestImageStoreLookup(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("extracting into a 0555 layer root needs root or a user namespace")
	}
	roRoot := t.TempDir()
	ro := newAt(t, driver.Options{Root: filepath.Join(roRoot, "vfs")})
	data := drivertest.Tar(t, drivertest.Entry{Name: "etc/", Type: '5'}, drivertest.Entry{Name: "etc/os-release", Body: "ID=ro\n"})
	s, err := ro.StageDiff(bg, "", bytes.NewReader(data), driver.ApplyOptions{}, driver.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := ro.CommitStaged(bg, "roLayer", "", s, driver.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	d := newAt(t, driver.Options{Root: filepath.Join(t.TempDir(), "vfs"), ImageStores: []string{roRoot}})
	if !d.Exists("roLayer") {
		t.Fatal("image store layer not found")
	}
	p, err := d.Get(bg, "roLayer", driver.MountOptions{Options: []string{"ro"}})
	if err != nil || p != filepath.Join(roRoot, "vfs", "dir", "roLayer") {
		t.Fatalf("Get = %s, %v", p, err)
	}
	rc, err := d.OpenFile("roLayer", "./etc/os-release")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "ID=ro\n" {
		t.Errorf("OpenFile read %q", b)
	}
	if ids, _ := d.ListLayers(); len(ids) != 0 {
		t.Errorf("ListLayers includes image store layers: %v", ids)
	}
	// A child in the read-write home copies the read-only parent.
	if err := d.Create(bg, "child", "roLayer", driver.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cp, _ := d.Get(bg, "child", driver.MountOptions{})
	if !strings.HasPrefix(cp, d.Home()) {
		t.Errorf("child created outside the home: %s", cp)
	}
	if b, err := os.ReadFile(filepath.Join(cp, "etc/os-release")); err != nil || string(b) != "ID=ro\n" {
		t.Errorf("child content %q %v", b, err)
	}
	// Remove and ApplyDiff never touch the image store.
	if err := d.Remove(bg, "roLayer"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(roRoot, "vfs", "dir", "roLayer", "etc/os-release")); err != nil {
		t.Errorf("Remove deleted from the image store: %v", err)
	}
	if _, err := d.ApplyDiff(bg, "roLayer", "", bytes.NewReader(data), driver.ApplyOptions{}); !errors.Is(err, driver.ErrLayerUnknown) {
		t.Errorf("ApplyDiff into an image store layer: %v", err)
	}
	var buf bytes.Buffer
	if err := d.Diff(bg, &buf, "roLayer", "", archive.ExportOptions{}); err != nil {
		t.Errorf("Diff of an image store layer: %v", err)
	}
}

func TestCreateReflinksOnXFS(t *testing.T) {
	mnt := testutil.XFSReflinkMount(t)
	d := newAt(t, driver.Options{Root: filepath.Join(mnt, "vfs")})
	if err := d.Create(bg, "base", "", driver.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	bp, _ := d.Get(bg, "base", driver.MountOptions{})
	big := bytes.Repeat([]byte("reflink!"), 8<<20) // 64 MiB
	if err := os.WriteFile(filepath.Join(bp, "big"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	free := func() int64 {
		unix.Sync()
		var st unix.Statfs_t
		if err := unix.Statfs(mnt, &st); err != nil {
			t.Fatal(err)
		}
		return int64(st.Bfree) * st.Bsize
	}
	before := free()
	for _, id := range []string{"c1", "c2", "c3"} {
		if err := d.Create(bg, id, "base", driver.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if used := before - free(); used > 16<<20 {
		t.Errorf("3 children of a 64 MiB layer used %d bytes: not reflinked", used)
	}
	cp, _ := d.Get(bg, "c3", driver.MountOptions{})
	got, err := os.ReadFile(filepath.Join(cp, "big"))
	if err != nil || !bytes.Equal(got, big) {
		t.Errorf("child content differs (%d bytes, %v)", len(got), err)
	}
}

func TestSplitImageStore(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("extracting into a 0555 layer root needs root or a user namespace")
	}
	root, istore := t.TempDir(), t.TempDir()
	d := newAt(t, driver.Options{Root: filepath.Join(root, "vfs"), ImageStore: istore})
	data := drivertest.Tar(t, drivertest.Entry{Name: "f", Body: "image"})
	s, err := d.StageDiff(bg, "", bytes.NewReader(data), driver.ApplyOptions{}, driver.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s.Dir, filepath.Join(istore, "vfs", "tempdirs")) {
		t.Errorf("image layer staged in %s, want under the image store", s.Dir)
	}
	if err := d.CommitStaged(bg, "img", "", s, driver.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := d.Create(bg, "ro2", "img", driver.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := d.Create(bg, "rw", "img", driver.CreateOptions{ReadWrite: true}); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]string{
		"img": filepath.Join(istore, "vfs", "dir", "img"),
		"ro2": filepath.Join(istore, "vfs", "dir", "ro2"),
		"rw":  filepath.Join(root, "vfs", "dir", "rw"),
	} {
		p, err := d.Get(bg, id, driver.MountOptions{})
		if err != nil || p != want {
			t.Errorf("Get(%s) = %s, %v; want %s", id, p, err, want)
		}
	}
	ids, err := d.ListLayers()
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(ids)
	if strings.Join(ids, ",") != "img,ro2,rw" {
		t.Errorf("ListLayers = %v", ids)
	}
	changes, err := d.Changes(bg, "rw", "img")
	if err != nil || len(changes) != 0 {
		t.Errorf("Changes of an unchanged copy: %v, %v", changes, err)
	}
	if _, err := d.ApplyDiff(bg, "ro2", "img", bytes.NewReader(drivertest.Tar(t, drivertest.Entry{Name: "g", Body: "g"})), driver.ApplyOptions{}); err != nil {
		t.Errorf("ApplyDiff into an image store layer: %v", err)
	}
	for _, id := range []string{"ro2", "img", "rw"} {
		if err := d.Remove(bg, id); err != nil {
			t.Fatal(err)
		}
		if d.Exists(id) {
			t.Errorf("%s exists after Remove", id)
		}
	}
	for _, dir := range []string{filepath.Join(istore, "vfs", "dir"), filepath.Join(istore, "vfs", "tempdirs")} {
		if ents, err := os.ReadDir(dir); err != nil || len(ents) != 0 {
			t.Errorf("%s not empty after removals: %v %v", dir, ents, err)
		}
	}
}

// TestConformanceOnXFS runs the suite where CopyTree reflinks (each
// subtest in a fresh directory of one xfs reflink=1 loop mount).
func TestConformanceOnXFS(t *testing.T) {
	mnt := testutil.XFSReflinkMount(t)
	n := 0
	drivertest.Run(t, func(t *testing.T) driver.Driver {
		n++
		root := filepath.Join(mnt, strconv.Itoa(n))
		t.Cleanup(func() { _ = os.RemoveAll(root) })
		return newAt(t, driver.Options{Root: filepath.Join(root, "vfs")})
	})
}
