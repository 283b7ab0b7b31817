package drivertest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/stowage/stowage/archive"
	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/internal/idmap"
)

// Homer is implemented by drivers that can name their home directory; the
// suite then checks that failed operations leave nothing behind in it.
type Homer interface {
	Home() string
}

// BadMountOptioner is implemented by drivers that accept "nosuid" (overlay
// passes mount flags through); the suite then expects the option it
// returns to be refused with driver.ErrBadMountOpt instead.
type BadMountOptioner interface {
	BadMountOption() string
}

// Run runs every conformance subtest. newDriver is called once per
// subtest with that subtest's t and must return a driver on a fresh root
// (for example t.TempDir()).
func Run(t *testing.T, newDriver func(t *testing.T) driver.Driver) {
	tests := []struct {
		name     string
		extracts bool // writes into a 0555 layer root: needs root (or CAP_DAC_OVERRIDE)
		fn       func(t *testing.T, d driver.Driver)
	}{
		{"CreateExistsRemove", false, testCreateExistsRemove},
		{"CreateBadParent", false, testCreateBadParent},
		{"ChildSeesParent", false, testChildSeesParent},
		{"GetPutOptions", false, testGetPutOptions},
		{"StageCommitMatchesTar", true, testStageCommitMatchesTar},
		{"StageResult", true, testStageResult},
		{"StageMissingParent", false, testStageMissingParent},
		{"StageIDMapped", true, testStageIDMapped},
		{"CommitExistingFails", true, testCommitExistingFails},
		{"StageCleanupDiscards", true, testStageCleanupDiscards},
		{"Whiteouts", true, testWhiteouts},
		{"ApplyDiffInPlace", true, testApplyDiffInPlace},
		{"DiffChangesDiffSize", true, testDiffChangesDiffSize},
		{"DiffBaseLayer", true, testDiffBaseLayer},
		{"OpenFile", true, testOpenFile},
		{"ListLayers", true, testListLayers},
		{"FailedStageLeavesNothing", true, testFailedStageLeavesNothing},
		{"CancelledStageLeavesNothing", true, testCancelledStageLeavesNothing},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.extracts && !isRoot() {
				t.Skip("extracting into a layer (root mode 0555, as upstream) needs root or a user namespace")
			}
			d := newDriver(t)
			t.Cleanup(func() {
				if err := d.Cleanup(context.Background()); err != nil {
					t.Errorf("Cleanup: %v", err)
				}
			})
			tc.fn(t, d)
		})
	}
}

var bg = context.Background()

func isRoot() bool { return os.Geteuid() == 0 }

// layerPath returns the visible tree of id (Get), releasing it at test end.
func layerPath(t *testing.T, d driver.Driver, id string) string {
	t.Helper()
	p, err := d.Get(bg, id, driver.MountOptions{})
	if err != nil {
		t.Fatalf("Get(%s): %v", id, err)
	}
	t.Cleanup(func() {
		if err := d.Put(bg, id); err != nil {
			t.Errorf("Put(%s): %v", id, err)
		}
	})
	return p
}

// putLayer stages data on parent and commits it as id.
func putLayer(t *testing.T, d driver.Driver, id, parent string, data []byte) archive.UnpackResult {
	t.Helper()
	s, err := d.StageDiff(bg, parent, bytes.NewReader(data), driver.ApplyOptions{}, driver.CreateOptions{})
	if err != nil {
		t.Fatalf("StageDiff(%s on %q): %v", id, parent, err)
	}
	if err := d.CommitStaged(bg, id, parent, s, driver.CreateOptions{}); err != nil {
		_ = s.Cleanup()
		t.Fatalf("CommitStaged(%s): %v", id, err)
	}
	if err := s.Cleanup(); err != nil {
		t.Errorf("Cleanup after commit (must be idempotent): %v", err)
	}
	return s.Result
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustNotExist(t *testing.T, p string) {
	t.Helper()
	if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s: want not to exist, got %v", p, err)
	}
}

func normName(n string) string {
	n = strings.TrimPrefix(n, "./")
	n = strings.TrimPrefix(n, "/")
	return strings.TrimSuffix(n, "/")
}

func testCreateExistsRemove(t *testing.T, d driver.Driver) {
	before := snapshot(t, d)
	if d.Exists("base") {
		t.Fatal("Exists before Create")
	}
	if err := d.Create(bg, "base", "", driver.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if !d.Exists("base") {
		t.Fatal("Exists after Create = false")
	}
	// A second Create either fails (vfs) or, as upstream's overlay does
	// with a leftover directory, replaces it with a fresh layer.
	if err := d.Create(bg, "base", "", driver.CreateOptions{}); err == nil && !d.Exists("base") {
		t.Error("Create of an existing layer succeeded but left no layer")
	}
	p := layerPath(t, d, "base")
	fi, err := os.Stat(p)
	if err != nil || !fi.IsDir() {
		t.Fatalf("Get path %s: %v", p, err)
	}
	if err := d.Remove(bg, "base"); err != nil {
		t.Fatal(err)
	}
	if d.Exists("base") {
		t.Error("Exists after Remove")
	}
	if err := d.Remove(bg, "base"); err != nil {
		t.Errorf("Remove of a missing layer: %v", err)
	}
	checkNothingLeft(t, d, before)
	if _, err := d.Get(bg, "base", driver.MountOptions{}); !errors.Is(err, driver.ErrLayerUnknown) {
		t.Errorf("Get of a removed layer: %v, want ErrLayerUnknown", err)
	}
}

func testCreateBadParent(t *testing.T, d driver.Driver) {
	if err := d.Create(bg, "child", "no-such-parent", driver.CreateOptions{}); !errors.Is(err, driver.ErrLayerUnknown) {
		t.Errorf("Create on a missing parent: %v, want ErrLayerUnknown", err)
	}
	if d.Exists("child") {
		t.Error("failed Create left the layer")
	}
	for _, bad := range []string{"", "..", "a/b"} {
		if err := d.Create(bg, bad, "", driver.CreateOptions{}); err == nil {
			t.Errorf("Create(%q) succeeded", bad)
		}
	}
}

func testChildSeesParent(t *testing.T, d driver.Driver) {
	if err := d.Create(bg, "base", "", driver.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	bp := layerPath(t, d, "base")
	fi, err := os.Stat(bp)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o555 {
		t.Errorf("base layer root mode %o, want 555", fi.Mode().Perm())
	}
	if err := os.Chmod(bp, 0o755); err != nil { // writable without root too
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(bp, "etc/hostname"), "parent\n")
	if err := os.Symlink("hostname", filepath.Join(bp, "etc/link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(bp, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := d.Create(bg, "child", "base", driver.CreateOptions{ReadWrite: true}); err != nil {
		t.Fatal(err)
	}
	cp := layerPath(t, d, "child")
	if got := readFile(t, filepath.Join(cp, "etc/link")); got != "parent\n" {
		t.Errorf("child sees %q through the parent's symlink", got)
	}
	if fi, err := os.Stat(cp); err != nil || fi.Mode().Perm() != 0o750 {
		t.Errorf("child root mode: %v %v, want the parent's 750", fi.Mode(), err)
	}
	// Writes to the child do not reach the parent.
	writeFile(t, filepath.Join(cp, "etc/hostname"), "child\n")
	if got := readFile(t, filepath.Join(bp, "etc/hostname")); got != "parent\n" {
		t.Errorf("parent changed through the child: %q", got)
	}
}

func testGetPutOptions(t *testing.T, d driver.Driver) {
	if err := d.Create(bg, "lyr", "", driver.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Get(bg, "lyr", driver.MountOptions{Options: []string{"ro"}}); err != nil {
		t.Errorf("Get with ro: %v", err)
	} else if err := d.Put(bg, "lyr"); err != nil {
		t.Errorf("Put: %v", err)
	}
	bad := "nosuid"
	if b, ok := d.(BadMountOptioner); ok {
		bad = b.BadMountOption()
	}
	if _, err := d.Get(bg, "lyr", driver.MountOptions{Options: []string{bad}}); !errors.Is(err, driver.ErrBadMountOpt) {
		t.Errorf("Get with %s: %v, want ErrBadMountOpt", bad, err)
	}
	if _, err := d.Get(bg, "missing", driver.MountOptions{}); !errors.Is(err, driver.ErrLayerUnknown) {
		t.Errorf("Get of a missing layer: %v, want ErrLayerUnknown", err)
	}
}

// richTar has every entry kind; owners, devices and capabilities need root
// to be checked, but the tar is the same either way.
func richTar(t *testing.T) []byte {
	entries := []Entry{
		{Name: "dir/", Type: tar.TypeDir, Mode: 0o710, UID: 1000, GID: 1001},
		{Name: "dir/file", Body: "content\n", Mode: 0o640, UID: 1000, GID: 1001, Xattrs: map[string]string{"user.note": "hi"}},
		// A hard link's header carries its target's metadata (as tar writes it;
		// extraction applies it to the shared inode).
		{Name: "dir/hard", Type: tar.TypeLink, Link: "dir/file", Mode: 0o640, UID: 1000, GID: 1001},
		{Name: "dir/sym", Type: tar.TypeSymlink, Link: "file", UID: 33, GID: 44},
		{Name: "suid", Body: "#!/bin/sh\n", Mode: 0o4755},
		{Name: "empty", Body: "", Mode: 0o600},
		{Name: "fifo", Type: tar.TypeFifo, Mode: 0o620},
	}
	if isRoot() {
		entries = append(entries,
			Entry{Name: "null", Type: tar.TypeChar, Mode: 0o666, Major: 1, Minor: 3},
			Entry{Name: "loop", Type: tar.TypeBlock, Mode: 0o600, Major: 7, Minor: 9})
	}
	return Tar(t, entries...)
}

func testStageCommitMatchesTar(t *testing.T, d driver.Driver) {
	data := richTar(t)
	putLayer(t, d, "lyr", "", data)
	p := layerPath(t, d, "lyr")
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		checkEntry(t, p, hdr, string(body))
	}
	var a, b unix.Stat_t
	if err := unix.Lstat(filepath.Join(p, "dir/file"), &a); err != nil {
		t.Fatal(err)
	}
	if err := unix.Lstat(filepath.Join(p, "dir/hard"), &b); err != nil {
		t.Fatal(err)
	}
	if a.Ino != b.Ino {
		t.Errorf("hard link is a separate inode")
	}
}

// checkEntry compares one tar header with what is on disk under root.
func checkEntry(t *testing.T, root string, hdr *tar.Header, body string) {
	t.Helper()
	p := filepath.Join(root, normName(hdr.Name))
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Errorf("%s: %v", hdr.Name, err)
		return
	}
	typ := st.Mode & unix.S_IFMT
	wantTyp := map[byte]uint32{
		tar.TypeReg: unix.S_IFREG, tar.TypeLink: unix.S_IFREG, tar.TypeDir: unix.S_IFDIR,
		tar.TypeSymlink: unix.S_IFLNK, tar.TypeChar: unix.S_IFCHR, tar.TypeBlock: unix.S_IFBLK,
		tar.TypeFifo: unix.S_IFIFO,
	}[hdr.Typeflag]
	if typ != wantTyp {
		t.Errorf("%s: type %#o, want %#o", hdr.Name, typ, wantTyp)
		return
	}
	if hdr.Typeflag == tar.TypeLink {
		return // checked through its target
	}
	if hdr.Typeflag != tar.TypeSymlink && st.Mode&0o7777 != uint32(hdr.Mode)&0o7777 {
		t.Errorf("%s: mode %#o, want %#o", hdr.Name, st.Mode&0o7777, hdr.Mode&0o7777)
	}
	if isRoot() && (int(st.Uid) != hdr.Uid || int(st.Gid) != hdr.Gid) {
		t.Errorf("%s: owner %d:%d, want %d:%d", hdr.Name, st.Uid, st.Gid, hdr.Uid, hdr.Gid)
	}
	if hdr.Typeflag != tar.TypeDir && st.Mtim.Sec != hdr.ModTime.Unix() {
		t.Errorf("%s: mtime %d, want %d", hdr.Name, st.Mtim.Sec, hdr.ModTime.Unix())
	}
	switch hdr.Typeflag {
	case tar.TypeReg:
		if got := readFile(t, p); got != body {
			t.Errorf("%s: content %q", hdr.Name, got)
		}
	case tar.TypeSymlink:
		if got, _ := os.Readlink(p); got != hdr.Linkname {
			t.Errorf("%s: target %q, want %q", hdr.Name, got, hdr.Linkname)
		}
	case tar.TypeChar, tar.TypeBlock:
		if st.Rdev != unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)) {
			t.Errorf("%s: device %d:%d", hdr.Name, unix.Major(st.Rdev), unix.Minor(st.Rdev))
		}
	}
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, "SCHILY.xattr.")
		if !ok {
			continue
		}
		buf := make([]byte, 4096)
		n, err := unix.Lgetxattr(p, name, buf)
		if err != nil || string(buf[:n]) != v {
			t.Errorf("%s: xattr %s = %q (%v), want %q", hdr.Name, name, buf[:max(n, 0)], err, v)
		}
	}
}

func testStageResult(t *testing.T, d driver.Driver) {
	data := richTar(t)
	res := putLayer(t, d, "lyr", "", data)
	sum := sha256.Sum256(data)
	if want := fmt.Sprintf("sha256:%x", sum); string(res.UncompressedDigest) != want {
		t.Errorf("UncompressedDigest %s, want %s", res.UncompressedDigest, want)
	}
	if res.UncompressedSize != int64(len(data)) {
		t.Errorf("UncompressedSize %d, want %d", res.UncompressedSize, len(data))
	}
	if res.Compression != archive.Uncompressed {
		t.Errorf("Compression %v, want Uncompressed", res.Compression)
	}
	if isRoot() && !slices.Contains(res.UIDs, 1000) {
		t.Errorf("UIDs %v lack 1000", res.UIDs)
	}
}

func testStageMissingParent(t *testing.T, d driver.Driver) {
	data := Tar(t, Entry{Name: "f", Body: "x"})
	s, err := d.StageDiff(bg, "no-such-parent", bytes.NewReader(data), driver.ApplyOptions{}, driver.CreateOptions{})
	if !errors.Is(err, driver.ErrLayerUnknown) {
		if s != nil {
			_ = s.Cleanup()
		}
		t.Fatalf("StageDiff on a missing parent: %v, want ErrLayerUnknown", err)
	}
}

func testStageIDMapped(t *testing.T, d driver.Driver) {
	if !isRoot() {
		t.Skip("chown to mapped IDs needs root")
	}
	uidMap := []idmap.IDMap{{ContainerID: 0, HostID: 100000, Size: 65536}}
	gidMap := []idmap.IDMap{{ContainerID: 0, HostID: 200000, Size: 65536}}
	data := Tar(t, Entry{Name: "f", Body: "x", UID: 0, GID: 0}, Entry{Name: "g", Body: "y", UID: 7, GID: 8})
	s, err := d.StageDiff(bg, "", bytes.NewReader(data),
		driver.ApplyOptions{UIDMap: uidMap, GIDMap: gidMap},
		driver.CreateOptions{UIDMap: uidMap, GIDMap: gidMap})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.CommitStaged(bg, "m", "", s, driver.CreateOptions{UIDMap: uidMap, GIDMap: gidMap}); err != nil {
		_ = s.Cleanup()
		t.Fatal(err)
	}
	if !slices.Equal(s.Result.UIDs, []uint32{0, 7}) || !slices.Equal(s.Result.GIDs, []uint32{0, 8}) {
		t.Errorf("result IDs %v/%v, want tar IDs [0 7]/[0 8]", s.Result.UIDs, s.Result.GIDs)
	}
	p := layerPath(t, d, "m")
	for name, want := range map[string][2]uint32{".": {100000, 200000}, "f": {100000, 200000}, "g": {100007, 200008}} {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(p, name), &st); err != nil {
			t.Fatal(err)
		}
		if st.Uid != want[0] || st.Gid != want[1] {
			t.Errorf("%s: owner %d:%d, want %d:%d", name, st.Uid, st.Gid, want[0], want[1])
		}
	}
	// Diff maps host owners back to the tar's.
	var buf bytes.Buffer
	if err := d.Diff(bg, &buf, "m", "", archive.ExportOptions{UIDMap: uidMap, GIDMap: gidMap}); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&buf)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		want := map[string][2]int{"f": {0, 0}, "g": {7, 8}}[normName(hdr.Name)]
		if hdr.Uid != want[0] || hdr.Gid != want[1] {
			t.Errorf("diff %s: owner %d:%d, want %d:%d", hdr.Name, hdr.Uid, hdr.Gid, want[0], want[1])
		}
	}
}

func testCommitExistingFails(t *testing.T, d driver.Driver) {
	putLayer(t, d, "lyr", "", Tar(t, Entry{Name: "first", Body: "1"}))
	s, err := d.StageDiff(bg, "", bytes.NewReader(Tar(t, Entry{Name: "second", Body: "2"})), driver.ApplyOptions{}, driver.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Cleanup()
	if err := d.CommitStaged(bg, "lyr", "", s, driver.CreateOptions{}); err == nil {
		t.Fatal("CommitStaged over an existing layer succeeded")
	}
	p := layerPath(t, d, "lyr")
	if _, err := os.Stat(filepath.Join(p, "first")); err != nil {
		t.Errorf("existing layer damaged: %v", err)
	}
	mustNotExist(t, filepath.Join(p, "second"))
}

func testStageCleanupDiscards(t *testing.T, d driver.Driver) {
	before := snapshot(t, d)
	s, err := d.StageDiff(bg, "", bytes.NewReader(Tar(t, Entry{Name: "f", Body: "x"})), driver.ApplyOptions{}, driver.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if err := s.Cleanup(); err != nil {
		t.Errorf("second Cleanup: %v", err)
	}
	checkNothingLeft(t, d, before)
}

func testWhiteouts(t *testing.T, d driver.Driver) {
	putLayer(t, d, "base", "", Tar(t,
		Entry{Name: "a", Body: "a"},
		Entry{Name: "keep", Body: "k"},
		Entry{Name: "gone/", Type: tar.TypeDir},
		Entry{Name: "gone/x", Body: "x"},
		Entry{Name: "opq/", Type: tar.TypeDir},
		Entry{Name: "opq/old1", Body: "1"},
		Entry{Name: "opq/old2", Body: "2"},
		Entry{Name: "rep/", Type: tar.TypeDir},
		Entry{Name: "rep/x", Body: "x"},
	))
	putLayer(t, d, "child", "base", Tar(t,
		Entry{Name: ".wh.a", Body: ""},
		Entry{Name: ".wh.gone", Body: ""},
		Entry{Name: "opq/", Type: tar.TypeDir},
		Entry{Name: "opq/.wh..wh..opq", Body: ""},
		Entry{Name: "opq/new", Body: "n"},
		Entry{Name: "rep", Body: "now a file"},
	))
	cp := layerPath(t, d, "child")
	if got := readFile(t, filepath.Join(cp, "rep")); got != "now a file" {
		t.Errorf("rep = %q", got)
	}
	// A layer on top of child sees child's tree, not base's entries.
	if err := d.Create(bg, "grandchild", "child", driver.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	gp := layerPath(t, d, "grandchild")
	mustNotExist(t, filepath.Join(gp, "a"))
	mustNotExist(t, filepath.Join(gp, "opq/old1"))
	if got := readFile(t, filepath.Join(gp, "rep")); got != "now a file" {
		t.Errorf("grandchild rep = %q", got)
	}
	mustNotExist(t, filepath.Join(cp, "a"))
	mustNotExist(t, filepath.Join(cp, "gone"))
	mustNotExist(t, filepath.Join(cp, ".wh.a"))
	if got := readFile(t, filepath.Join(cp, "keep")); got != "k" {
		t.Errorf("keep = %q", got)
	}
	names, err := os.ReadDir(filepath.Join(cp, "opq"))
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 1 || names[0].Name() != "new" {
		t.Errorf("opaque dir holds %v, want only new", names)
	}
	bp := layerPath(t, d, "base")
	for _, n := range []string{"a", "gone/x", "opq/old1"} {
		if _, err := os.Stat(filepath.Join(bp, n)); err != nil {
			t.Errorf("parent lost %s: %v", n, err)
		}
	}
}

func testApplyDiffInPlace(t *testing.T, d driver.Driver) {
	if err := d.Create(bg, "lyr", "", driver.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	data := Tar(t, Entry{Name: "d/", Type: tar.TypeDir}, Entry{Name: "d/f", Body: "applied"})
	res, err := d.ApplyDiff(bg, "lyr", "", bytes.NewReader(data), driver.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.UncompressedSize != int64(len(data)) {
		t.Errorf("UncompressedSize %d, want %d", res.UncompressedSize, len(data))
	}
	if got := readFile(t, filepath.Join(layerPath(t, d, "lyr"), "d/f")); got != "applied" {
		t.Errorf("d/f = %q", got)
	}
	if _, err := d.ApplyDiff(bg, "missing", "", bytes.NewReader(data), driver.ApplyOptions{}); !errors.Is(err, driver.ErrLayerUnknown) {
		t.Errorf("ApplyDiff to a missing layer: %v, want ErrLayerUnknown", err)
	}
}

// parentChild makes base{a,b,dir/c} and child: a modified, b deleted, new added.
func parentChild(t *testing.T, d driver.Driver) {
	putLayer(t, d, "base", "", Tar(t,
		Entry{Name: "a", Body: "a-old\n"},
		Entry{Name: "b", Body: "b\n"},
		Entry{Name: "dir/", Type: tar.TypeDir},
		Entry{Name: "dir/c", Body: "c\n"},
	))
	later := epoch.Add(3600e9)
	putLayer(t, d, "child", "base", Tar(t,
		Entry{Name: "a", Body: "a-new-longer\n", ModTime: later},
		Entry{Name: ".wh.b"},
		Entry{Name: "new", Body: "new!\n", ModTime: later},
	))
}

func testDiffChangesDiffSize(t *testing.T, d driver.Driver) {
	parentChild(t, d)
	var buf bytes.Buffer
	if err := d.Diff(bg, &buf, "child", "base", archive.ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	got := TarNames(t, buf.Bytes())
	sort.Strings(got)
	if want := []string{".wh.b", "a", "new"}; !slices.Equal(got, want) {
		t.Errorf("Diff entries %q, want %q", got, want)
	}
	changes, err := d.Changes(bg, "child", "base")
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]archive.ChangeKind{}
	for _, c := range changes {
		kinds[c.Path] = c.Kind
	}
	want := map[string]archive.ChangeKind{"/a": archive.ChangeModify, "/b": archive.ChangeDelete, "/new": archive.ChangeAdd}
	if fmt.Sprint(kinds) != fmt.Sprint(want) {
		t.Errorf("Changes %v, want %v", kinds, want)
	}
	size, err := d.DiffSize(bg, "child", "base")
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(len("a-new-longer\n") + len("new!\n")); size != want {
		t.Errorf("DiffSize %d, want %d", size, want)
	}
	if _, err := d.Changes(bg, "child", "missing"); !errors.Is(err, driver.ErrLayerUnknown) {
		t.Errorf("Changes against a missing parent: %v", err)
	}
}

func testDiffBaseLayer(t *testing.T, d driver.Driver) {
	parentChild(t, d)
	var buf bytes.Buffer
	if err := d.Diff(bg, &buf, "base", "", archive.ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	got := TarNames(t, buf.Bytes())
	sort.Strings(got)
	if want := []string{"a", "b", "dir", "dir/c"}; !slices.Equal(got, want) {
		t.Errorf("base Diff entries %q, want %q", got, want)
	}
	// The regenerated tar unpacks to the same content.
	tr := tar.NewReader(bytes.NewReader(buf.Bytes()))
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag == tar.TypeReg {
			b, _ := io.ReadAll(tr)
			if want := map[string]string{"a": "a-old\n", "b": "b\n", "dir/c": "c\n"}[normName(hdr.Name)]; string(b) != want {
				t.Errorf("%s: %q, want %q", hdr.Name, b, want)
			}
		}
	}
	size, err := d.DiffSize(bg, "base", "")
	if err != nil {
		t.Fatal(err)
	}
	if size != int64(len("a-old\nb\nc\n")) {
		t.Errorf("base DiffSize %d", size)
	}
}

func testOpenFile(t *testing.T, d driver.Driver) {
	outside := filepath.Join(t.TempDir(), "secret")
	writeFile(t, outside, "SECRET")
	putLayer(t, d, "lyr", "", Tar(t,
		Entry{Name: "etc/", Type: tar.TypeDir},
		Entry{Name: "etc/passwd", Body: "root:x:0:0\n"},
		Entry{Name: "abs", Type: tar.TypeSymlink, Link: outside},
		Entry{Name: "rel", Type: tar.TypeSymlink, Link: "../../../../../../../../" + outside},
		Entry{Name: "fifo", Type: tar.TypeFifo},
	))
	for _, name := range []string{"./etc/passwd", "etc/passwd", "/etc/passwd"} {
		rc, err := d.OpenFile("lyr", name)
		if err != nil {
			t.Errorf("OpenFile(%q): %v", name, err)
			continue
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || string(b) != "root:x:0:0\n" {
			t.Errorf("OpenFile(%q) read %q, %v", name, b, err)
		}
	}
	for _, name := range []string{"abs", "rel", "../secret", "fifo", "etc", "missing"} {
		rc, err := d.OpenFile("lyr", name)
		if err == nil {
			b, _ := io.ReadAll(rc)
			rc.Close()
			if strings.Contains(string(b), "SECRET") {
				t.Errorf("OpenFile(%q) escaped the layer", name)
			} else {
				t.Errorf("OpenFile(%q) succeeded (%q), want an error", name, b)
			}
		}
	}
	if _, err := d.OpenFile("missing", "etc/passwd"); !errors.Is(err, driver.ErrLayerUnknown) {
		t.Errorf("OpenFile in a missing layer: %v", err)
	}
}

func testListLayers(t *testing.T, d driver.Driver) {
	ids, err := d.ListLayers()
	if err != nil || len(ids) != 0 {
		t.Fatalf("fresh ListLayers = %v, %v", ids, err)
	}
	for _, id := range []string{"one", "two", "three"} {
		if err := d.Create(bg, id, "", driver.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	putLayer(t, d, "four", "one", Tar(t, Entry{Name: "f", Body: "x"}))
	if err := d.Remove(bg, "two"); err != nil {
		t.Fatal(err)
	}
	ids, err = d.ListLayers()
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(ids)
	if want := []string{"four", "one", "three"}; !slices.Equal(ids, want) {
		t.Errorf("ListLayers = %v, want %v", ids, want)
	}
}

// snapshot lists every path under the driver home (nil if it has none).
func snapshot(t *testing.T, d driver.Driver) map[string]bool {
	t.Helper()
	h, ok := d.(Homer)
	if !ok {
		return nil
	}
	out := map[string]bool{}
	err := filepath.WalkDir(h.Home(), func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		out[p] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checkNothingLeft fails if the home gained anything but empty directories
// since before, or if any layer exists.
func checkNothingLeft(t *testing.T, d driver.Driver, before map[string]bool) {
	t.Helper()
	if ids, err := d.ListLayers(); err != nil || len(ids) != 0 {
		t.Errorf("layers left behind: %v %v", ids, err)
	}
	if before == nil {
		return
	}
	for p := range snapshot(t, d) {
		if before[p] {
			continue
		}
		if ents, err := os.ReadDir(p); err == nil && len(ents) == 0 {
			continue // an empty infrastructure dir such as tempdirs
		}
		t.Errorf("left behind: %s", p)
	}
}

func testFailedStageLeavesNothing(t *testing.T, d driver.Driver) {
	putLayer(t, d, "base", "", Tar(t, Entry{Name: "f", Body: "x"}))
	if err := d.Remove(bg, "base"); err != nil {
		t.Fatal(err)
	}
	good := Tar(t, Entry{Name: "a", Body: strings.Repeat("x", 5000)}, Entry{Name: "b", Body: "y"})
	for name, blob := range map[string][]byte{
		"truncated": good[:1500],
		"garbage":   bytes.Repeat([]byte("not a tar "), 200),
		"escape2":   Tar(t, Entry{Name: "../../escaped", Body: "x"}),
		"escape3":   Tar(t, Entry{Name: "../../../escaped", Body: "x"}),
		"symlinked": Tar(t, Entry{Name: "up", Type: tar.TypeSymlink, Link: "../.."}, Entry{Name: "up/escaped", Body: "x"}),
	} {
		before := snapshot(t, d)
		s, err := d.StageDiff(bg, "", bytes.NewReader(blob), driver.ApplyOptions{}, driver.CreateOptions{})
		if err == nil {
			_ = s.Cleanup()
			if name == "truncated" || name == "garbage" {
				t.Errorf("%s: StageDiff succeeded", name)
			}
		}
		checkNothingLeft(t, d, before)
	}
}

func testCancelledStageLeavesNothing(t *testing.T, d driver.Driver) {
	before := snapshot(t, d)
	ctx, cancel := context.WithCancel(bg)
	cancel()
	s, err := d.StageDiff(ctx, "", bytes.NewReader(Tar(t, Entry{Name: "f", Body: "x"})), driver.ApplyOptions{}, driver.CreateOptions{})
	if err == nil {
		_ = s.Cleanup()
		t.Fatal("StageDiff with a cancelled ctx succeeded")
	}
	checkNothingLeft(t, d, before)
}
