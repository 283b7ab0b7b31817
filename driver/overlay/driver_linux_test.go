//go:build linux

package overlay

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/stowage/stowage/archive"
	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/driver/drivertest"
)

var bg = context.Background()

func cleanupDriver(t testing.TB, d *Driver) {
	t.Cleanup(func() {
		if err := d.Cleanup(bg); err != nil {
			t.Errorf("Cleanup: %v", err)
		}
	})
}

func readString(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func stage(t testing.TB, d *Driver, id, parent string, data []byte) {
	t.Helper()
	s, err := d.StageDiff(bg, parent, bytes.NewReader(data), driver.ApplyOptions{}, driver.CreateOptions{})
	if err != nil {
		t.Fatalf("StageDiff %s: %v", id, err)
	}
	if err := d.CommitStaged(bg, id, parent, s, driver.CreateOptions{}); err != nil {
		_ = s.Cleanup()
		t.Fatalf("CommitStaged %s: %v", id, err)
	}
}

func TestLayoutOnDisk(t *testing.T) {
	d := newTestDriver(t)
	cleanupDriver(t, d)
	for _, c := range [][2]string{{"base", ""}, {"child", "base"}, {"grand", "child"}} {
		if err := d.Create(bg, c[0], c[1], driver.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	h := d.Home()
	for p, want := range map[string]os.FileMode{h: 0o700, h + "/l": 0o755, h + "/base/diff": 0o555, h + "/base/work": 0o700,
		h + "/base/merged": 0o700, h + "/base/empty": 0o700, h + "/base": 0o700} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: %v %v, want mode %o", p, fi.Mode(), err, want)
		}
	}
	if got := readString(t, h+"/.has-mount-program"); got != "false" {
		t.Errorf(".has-mount-program = %q", got)
	}
	for _, id := range []string{"child", "grand"} {
		if _, err := os.Stat(filepath.Join(h, id, emptyName)); err == nil {
			t.Errorf("%s has empty/", id)
		}
	}
	if _, err := os.Stat(h + "/base/lower"); err == nil {
		t.Error("base has a lower file")
	}
	links := map[string]string{}
	for _, id := range []string{"base", "child", "grand"} {
		link := readString(t, filepath.Join(h, id, linkFile))
		if len(link) != linkLen || strings.ContainsAny(link, "\n") {
			t.Errorf("%s link %q", id, link)
		}
		if target, err := os.Readlink(filepath.Join(h, "l", link)); err != nil || target != "../"+id+"/diff" {
			t.Errorf("l/%s -> %q, %v", link, target, err)
		}
		links[id] = link
	}
	if got, want := readString(t, h+"/grand/lower"), "l/"+links["child"]+":l/"+links["base"]; got != want {
		t.Errorf("grand lower %q, want %q", got, want)
	}
	if got := readString(t, h+"/grand/lower-layers"); got != "child:base" {
		t.Errorf("grand lower-layers %q", got)
	}
	// The two files agree: lower resolved through l/ gives lower-layers.
	for _, id := range []string{"child", "grand"} {
		byLayers, err := d.lowerIDs(id)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(h, id, lowerLayersFile), filepath.Join(h, id, "ll.bak")); err != nil {
			t.Fatal(err)
		}
		byLower, err := d.lowerIDs(id)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(byLayers, byLower) {
			t.Errorf("%s: lower-layers %v, lower %v", id, byLayers, byLower)
		}
		if err := os.Rename(filepath.Join(h, id, "ll.bak"), filepath.Join(h, id, lowerLayersFile)); err != nil {
			t.Fatal(err)
		}
	}
	// Remove takes the l/ link with it.
	if err := d.Remove(bg, "grand"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(h, "l", links["grand"])); err == nil {
		t.Error("l/ link of a removed layer survives")
	}
}

// A layer written by v1.43 has no lower-layers: its lowers come from lower.
func TestLegacyLowerOnly(t *testing.T) {
	d := newTestDriver(t)
	cleanupDriver(t, d)
	stage(t, d, "base", "", drivertest.Tar(t, drivertest.Entry{Name: "from-base", Body: "b"}))
	stage(t, d, "mid", "base", drivertest.Tar(t, drivertest.Entry{Name: "from-mid", Body: "m"}))
	if err := d.Create(bg, "top", "mid", driver.CreateOptions{ReadWrite: true}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"mid", "top"} {
		if err := os.Remove(filepath.Join(d.Home(), id, lowerLayersFile)); err != nil {
			t.Fatal(err)
		}
	}
	p, err := d.Get(bg, "top", driver.MountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Put(bg, "top")
	for _, f := range []string{"from-base", "from-mid"} {
		if _, err := os.Stat(filepath.Join(p, f)); err != nil {
			t.Errorf("legacy chain: %v", err)
		}
	}
	// A child of a legacy layer gets both files again.
	if err := d.Create(bg, "next", "mid", driver.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := readString(t, filepath.Join(d.Home(), "next", lowerLayersFile)); got != "mid:base" {
		t.Errorf("lower-layers of a child of a legacy layer: %q", got)
	}
	// A missing l/ entry is a clear error, not a wrong mount.
	link := readString(t, filepath.Join(d.Home(), "base", linkFile))
	if err := os.Remove(filepath.Join(d.Home(), "l", link)); err != nil {
		t.Fatal(err)
	}
	if _, err := d.lowerIDs("mid"); err == nil {
		t.Error("lowerIDs with a missing l/ entry succeeded")
	}
}

// makeChain makes n layers c0..c(n-1), each on the previous, each adding
// file f<i> written straight into its diff.
func makeChain(t testing.TB, d *Driver, n int) []string {
	ids := make([]string, n)
	for i := range n {
		ids[i] = fmt.Sprintf("c%d", i)
		parent := ""
		if i > 0 {
			parent = ids[i-1]
		}
		if err := d.Create(bg, ids[i], parent, driver.CreateOptions{}); err != nil {
			t.Fatalf("create %s: %v", ids[i], err)
		}
		if err := os.WriteFile(filepath.Join(d.Home(), ids[i], diffName, "f"+fmt.Sprint(i)), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

func TestDeepChain(t *testing.T) {
	d := newTestDriver(t)
	cleanupDriver(t, d)
	ids := makeChain(t, d, maxDepth+1) // the top has 500 lowers
	top := ids[len(ids)-1]
	p, err := d.Get(bg, top, driver.MountOptions{})
	if err != nil {
		t.Fatalf("mount of a layer with %d lowers: %v", maxDepth, err)
	}
	for _, f := range []string{"f0", "f250", fmt.Sprintf("f%d", maxDepth)} {
		if _, err := os.Stat(filepath.Join(p, f)); err != nil {
			t.Errorf("deep mount lacks %s: %v", f, err)
		}
	}
	if err := d.Put(bg, top); err != nil {
		t.Fatal(err)
	}
	if ok, _ := isMounted(p); ok {
		t.Error("still mounted after Put")
	}
	// Read-only, the top's own diff makes 501 lowerdirs: refused cleanly.
	if _, err := d.Get(bg, top, driver.MountOptions{Options: []string{"ro"}}); !errors.Is(err, ErrMaxDepth) {
		t.Errorf("ro mount with %d lowerdirs: %v, want ErrMaxDepth", maxDepth+1, err)
	}
	if err := d.Create(bg, "too-deep", top, driver.CreateOptions{}); !errors.Is(err, ErrMaxDepth) {
		t.Errorf("layer with %d lowers: %v, want ErrMaxDepth", maxDepth+1, err)
	}
	if d.Exists("too-deep") {
		t.Error("refused layer left behind")
	}
	// The lower file stays within what v1.43 reads (l/ + 26 + ':').
	if got := len(readString(t, filepath.Join(d.Home(), top, lowerFile))); got != maxDepth*(linkLen+3)-1 {
		t.Errorf("lower file of the top is %d bytes", got)
	}
}

func isMounted(p string) (bool, error) {
	var a, b unix.Stat_t
	if err := unix.Stat(p, &a); err != nil {
		return false, err
	}
	if err := unix.Stat(filepath.Dir(p), &b); err != nil {
		return false, err
	}
	if a.Dev != b.Dev {
		return true, nil
	}
	b2, err := os.ReadFile("/proc/self/mountinfo")
	return strings.Contains(string(b2), " "+p+" "), err
}

func TestGetPutCounts(t *testing.T) {
	d := newTestDriver(t)
	cleanupDriver(t, d)
	stage(t, d, "base", "", drivertest.Tar(t, drivertest.Entry{Name: "f", Body: "x"}))
	p1, err := d.Get(bg, "base", driver.MountOptions{Options: []string{"nodev"}})
	if err != nil {
		t.Fatal(err)
	}
	p2, err := d.Get(bg, "base", driver.MountOptions{})
	if err != nil || p2 != p1 {
		t.Fatalf("second Get %q, %v", p2, err)
	}
	if err := d.Put(bg, "base"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := isMounted(p1); !ok {
		t.Error("unmounted while a Get is outstanding")
	}
	if err := d.Put(bg, "base"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := isMounted(p1); ok {
		t.Error("still mounted after the last Put")
	}
	if err := d.Put(bg, "base"); err != nil {
		t.Errorf("Put of an unmounted layer: %v", err)
	}
}

// A volatile Get mounts with the "volatile" option when the kernel has it
// (the probe result is cached in the run home); a plain Get does not.
func TestGetVolatile(t *testing.T) {
	d := newTestDriver(t)
	cleanupDriver(t, d)
	if !d.supportsVolatile() {
		t.Skip("the kernel refuses overlay's volatile option")
	}
	if _, err := os.Stat(filepath.Join(d.runHome, "volatile-true")); err != nil {
		t.Errorf("probe result not cached: %v", err)
	}
	stage(t, d, "base", "", drivertest.Tar(t, drivertest.Entry{Name: "f", Body: "x"}))
	for _, volatile := range []bool{true, false} {
		p, err := d.Get(bg, "base", driver.MountOptions{Volatile: volatile})
		if err != nil {
			t.Fatal(err)
		}
		opts := superOptions(t, p)
		// Newer kernels show the option as fsync=volatile.
		words := strings.Split(opts, ",")
		if got := slices.Contains(words, "volatile") || slices.Contains(words, "fsync=volatile"); got != volatile {
			t.Errorf("Volatile %v: mount options %q", volatile, opts)
		}
		if err := d.Put(bg, "base"); err != nil {
			t.Fatal(err)
		}
	}
}

// A mount nobody counts (its process died before mountpoints.json was
// saved) is replaced by the next Get, not hidden under a second overlay.
func TestGetReplacesUncountedMount(t *testing.T) {
	d := newTestDriver(t)
	cleanupDriver(t, d)
	stage(t, d, "base", "", drivertest.Tar(t, drivertest.Entry{Name: "f", Body: "x"}))
	p, err := d.Get(bg, "base", driver.MountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d.mu.Lock()
	delete(d.counts, "base") // as seen by another process
	d.mu.Unlock()
	if _, err := d.Get(bg, "base", driver.MountOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := mountsAt(t, p); n != 1 {
		t.Fatalf("%d mounts at %s, want 1", n, p)
	}
	if err := d.Put(bg, "base"); err != nil {
		t.Fatal(err)
	}
	if n := mountsAt(t, p); n != 0 {
		t.Fatalf("%d mounts left at %s after the last Put", n, p)
	}
}

// mountsAt counts the entries of /proc/self/mountinfo mounted at p.
func mountsAt(t *testing.T, p string) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == p {
			n++
		}
	}
	return n
}

// superOptions returns the file system options of the mount at p.
func superOptions(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && f[4] == p {
			_, after, _ := strings.Cut(line, " - ")
			if g := strings.Fields(after); len(g) == 3 {
				return g[2]
			}
		}
	}
	t.Fatalf("%s is not in /proc/self/mountinfo", p)
	return ""
}

func TestHomePrivateMount(t *testing.T) {
	d := newTestDriver(t)
	if ok, _ := isMounted(d.Home()); !ok {
		t.Fatal("home is not a mount point after New")
	}
	if err := d.Cleanup(bg); err != nil {
		t.Fatal(err)
	}
	if ok, _ := isMounted(d.Home()); ok {
		t.Error("home still mounted after Cleanup")
	}
	skip := newTestDriver(t, "skip_mount_home=true")
	if ok, _ := isMounted(skip.Home()); ok {
		t.Error("skip_mount_home=true mounted the home")
	}
}

func TestOptions(t *testing.T) {
	drivertest.RequireOverlay(t)
	for _, o := range []string{"bogus=1", "mount_program=/usr/bin/fuse-overlayfs", "skip_mount_home=maybe", "novalue"} {
		if _, err := New(bg, driver.Options{Root: t.TempDir(), DriverOptions: []string{o}}); err == nil {
			t.Errorf("option %q accepted", o)
		}
	}
	d := newTestDriver(t, "mountopt=nodev", "skip_mount_home=true")
	status := map[string]string{}
	for _, kv := range d.Status() {
		status[kv[0]] = kv[1]
	}
	for _, k := range []string{"Backing Filesystem", "Supports d_type", "Native Overlay Diff", "Using metacopy"} {
		if status[k] == "" {
			t.Errorf("status lacks %q", k)
		}
	}
}

// Native diff: overlay whiteouts come back as .wh. entries, an opaque dir
// over a lower dir as its header plus .wh..wh..opq (zero mtime, the dir's
// mode), Changes as Delete of the dir and Add of its entries.
func TestNativeDiffWhiteouts(t *testing.T) {
	d := newTestDriver(t)
	cleanupDriver(t, d)
	stage(t, d, "base", "", drivertest.Tar(t,
		drivertest.Entry{Name: "gone", Body: "g"},
		drivertest.Entry{Name: "opq/", Type: tar.TypeDir, Mode: 0o750},
		drivertest.Entry{Name: "opq/old", Body: "o"},
		drivertest.Entry{Name: "own/", Type: tar.TypeDir},
		drivertest.Entry{Name: "own/.wh..wh..opq"},
	))
	stage(t, d, "child", "base", drivertest.Tar(t,
		drivertest.Entry{Name: ".wh.gone"},
		drivertest.Entry{Name: "opq/", Type: tar.TypeDir, Mode: 0o750},
		drivertest.Entry{Name: "opq/.wh..wh..opq"},
		drivertest.Entry{Name: "opq/new", Body: "n"},
	))
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(d.Home(), "child/diff/gone"), &st); err != nil || !isWhiteout(&st) {
		t.Fatalf("whiteout on disk: %v mode %o rdev %d", err, st.Mode, st.Rdev)
	}
	if !isOpaque(filepath.Join(d.Home(), "child/diff/opq"), "trusted.overlay.opaque") {
		t.Fatal("opaque xattr not set")
	}
	var buf bytes.Buffer
	if err := d.Diff(bg, &buf, "child", "base", archive.ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&buf)
	var names []string
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, hdr.Name)
		if hdr.Name == "opq/.wh..wh..opq" && (hdr.ModTime.Unix() != 0 || hdr.Mode != 0o750) {
			t.Errorf("opaque marker mtime %v mode %o", hdr.ModTime, hdr.Mode)
		}
		if hdr.Name == ".wh.gone" && (hdr.Mode != 0 || hdr.Typeflag != tar.TypeReg) {
			t.Errorf("whiteout entry mode %o type %c", hdr.Mode, hdr.Typeflag)
		}
	}
	if want := []string{".wh.gone", "opq/", "opq/.wh..wh..opq", "opq/new"}; !slices.Equal(names, want) {
		t.Errorf("child diff %q, want %q", names, want)
	}
	ch, err := d.Changes(bg, "child", "base")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(ch), "[D /gone D /opq A /opq/new]"; got != want {
		t.Errorf("Changes %s, want %s", got, want)
	}
	// A base layer's opaque dir has nothing below it: no marker.
	buf.Reset()
	if err := d.Diff(bg, &buf, "base", "", archive.ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := drivertest.TarNames(t, buf.Bytes()); slices.Contains(got, "own/.wh..wh..opq") {
		t.Errorf("base diff has an opaque marker: %q", got)
	}
	// Against a parent that is not the real one: the naive path (mounts).
	ch, err = d.Changes(bg, "child", "")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(ch), "[A /opq A /opq/new A /own]"; got != want {
		t.Errorf("naive Changes against nothing %s, want %s", got, want)
	}
	size, err := d.DiffSize(bg, "child", "base")
	if err != nil || size != 1 {
		t.Errorf("DiffSize %d, %v, want 1", size, err)
	}
}

// Without fsopen the classic mount(2) path mounts short chains and
// refuses, cleanly, option strings over a page.
func TestClassicMountFallback(t *testing.T) {
	d := newTestDriver(t)
	cleanupDriver(t, d)
	d.useFsopen = false
	ids := makeChain(t, d, 100)
	p, err := d.Get(bg, ids[2], driver.MountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"f0", "f1", "f2"} {
		if _, err := os.Stat(filepath.Join(p, f)); err != nil {
			t.Errorf("classic mount lacks %s: %v", f, err)
		}
	}
	if err := d.Put(bg, ids[2]); err != nil {
		t.Fatal(err)
	}
	top := ids[len(ids)-1]
	if _, err := d.Get(bg, top, driver.MountOptions{}); !errors.Is(err, ErrMaxDepth) {
		if err == nil {
			_ = d.Put(bg, top)
		}
		t.Errorf("classic mount of 99 lowers (over a page): %v, want ErrMaxDepth", err)
	}
}
