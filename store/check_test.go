package store

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/internal/idmap"
	"github.com/stowage/stowage/tarsplit"
)

// checkStore builds base <- child (both from diffs), an image on child
// and a container on the image.
func checkStore(t *testing.T) (s *Store, opts Options, base, child, img, ctr string) {
	t.Helper()
	s, opts = openTest(t)
	ctx := testCtx(t)
	b, err := s.PutLayer(ctx, bytes.NewReader(makeTar(t, map[string]string{"a": "aaaa", "dir/b": "bb"})), LayerOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.PutLayer(ctx, bytes.NewReader(makeTar(t, map[string]string{"c": "cccccc"})), LayerOptions{Parent: b.ID, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	i, err := s.CreateImage(ctx, ImageOptions{TopLayer: c.ID})
	if err != nil {
		t.Fatal(err)
	}
	k, err := s.CreateContainer(ctx, ContainerOptions{Image: i.ID})
	if err != nil {
		t.Fatal(err)
	}
	return s, opts, b.ID, c.ID, i.ID, k.ID
}

func mustCheck(t *testing.T, s *Store, opts CheckOptions) *CheckReport {
	t.Helper()
	r, err := s.Check(testCtx(t), opts)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	return r
}

// hasErr reports whether one of errs wraps target and contains text.
func hasErr(errs []error, target error, text string) bool {
	return slices.ContainsFunc(errs, func(e error) bool { return errors.Is(e, target) && strings.Contains(e.Error(), text) })
}

func TestCheckCleanStore(t *testing.T) {
	s, _, _, _, _, _ := checkStore(t)
	for _, o := range []CheckOptions{{}, {Quick: true}, {MaxUnreferencedAge: DefaultMaxUnreferencedAge}} {
		if r := mustCheck(t, s, o); !r.Empty() {
			t.Fatalf("%+v: clean store reported %+v", o, r)
		}
	}
}

func TestCheckDigestMismatchRepairKeepsTheRest(t *testing.T) {
	s, opts, base, child, img, ctr := checkStore(t)
	ctx := testCtx(t)
	// Same size, other bytes: only the CRC and digest can tell.
	if err := os.WriteFile(filepath.Join(opts.GraphRoot, "vfs", "dir", child, "c"), []byte("CCCCCC"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Like upstream's quick check (CheckMost), -q still verifies digests.
	for _, o := range []CheckOptions{{Quick: true}, {}} {
		r := mustCheck(t, s, o)
		if !hasErr(r.Layers[child], tarsplit.ErrFileIntegrity, "file integrity checksum failed for c") && !hasErr(r.Layers[child], ErrLayerIncorrectContentDigest, child) {
			t.Fatalf("%+v: layer errors: %v", o, r.Layers)
		}
	}
	r := mustCheck(t, s, CheckOptions{})
	if len(r.Layers[base]) != 0 || len(r.Images[img]) == 0 || len(r.Containers[ctr]) == 0 {
		t.Fatalf("report: %+v", r)
	}
	// Without RemoveContainers the container (and so the layer it sits on) stays.
	r, errs := s.Repair(ctx, RepairOptions{})
	if r == nil || len(errs) == 0 {
		t.Fatalf("repair without -f: %v %v", r, errs)
	}
	if _, err := s.Container(ctx, ctr); err != nil {
		t.Fatalf("container removed without RemoveContainers: %v", err)
	}
	r, errs = s.Repair(ctx, RepairOptions{RemoveContainers: true})
	if len(errs) != 0 || r == nil {
		t.Fatalf("repair -f: %v", errs)
	}
	if _, err := s.Layer(ctx, child); !errors.Is(err, ErrLayerUnknown) {
		t.Fatalf("damaged layer kept: %v", err)
	}
	if _, err := s.Image(ctx, img); !errors.Is(err, ErrImageUnknown) {
		t.Fatalf("damaged image kept: %v", err)
	}
	if _, err := s.Layer(ctx, base); err != nil {
		t.Fatalf("intact base layer removed: %v", err)
	}
	if r := mustCheck(t, s, CheckOptions{MaxUnreferencedAge: DefaultMaxUnreferencedAge}); !r.Empty() {
		t.Fatalf("after repair: %+v", r)
	}
}

func TestCheckAddedFileAndUnreferenced(t *testing.T) {
	s, opts := openTest(t)
	ctx := testCtx(t)
	l, err := s.PutLayer(ctx, bytes.NewReader(makeTar(t, map[string]string{"x/y": "1"})), LayerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(opts.GraphRoot, "vfs", "dir", l.ID, "x", "extra"), []byte("e"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := mustCheck(t, s, CheckOptions{MaxUnreferencedAge: DefaultMaxUnreferencedAge})
	if !hasErr(r.Layers[l.ID], ErrLayerContentModified, "layer "+l.ID+": +/x/extra, layer content modified") || len(r.Layers[l.ID]) != 1 {
		t.Fatalf("report: %v", r.Layers)
	}
	// Quick does not compare files with the diff (upstream's LayerContents).
	r = mustCheck(t, s, CheckOptions{Quick: true})
	if hasErr(r.Layers[l.ID], ErrLayerContentModified, "") {
		t.Fatalf("quick check compared contents: %v", r.Layers)
	}
	if !hasErr(r.Layers[l.ID], ErrLayerUnreferenced, "layer "+l.ID+": layer not referenced by any images or containers") {
		t.Fatalf("report with max age 0: %v", r.Layers)
	}
}

func TestCheckMissingRecordsAndData(t *testing.T) {
	s, opts, base, child, img, ctr := checkStore(t)
	ctx := testCtx(t)
	if err := s.SetImageBigData(ctx, img, "manifest", []byte("{}"), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.SetContainerBigData(ctx, ctr, "cfg", []byte("12345")); err != nil {
		t.Fatal(err)
	}
	if err := s.SetLayerBigData(ctx, base, "note", strings.NewReader("n")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(opts.GraphRoot, "vfs-layers", base, "note")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(opts.GraphRoot, "vfs-containers", ctr, "cfg"), []byte("123"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(opts.GraphRoot, "vfs-images", img, "manifest")); err != nil {
		t.Fatal(err)
	}
	r := mustCheck(t, s, CheckOptions{Quick: true, MaxUnreferencedAge: DefaultMaxUnreferencedAge})
	if !hasErr(r.Layers[base], ErrLayerDataMissing, `layer `+base+`: data item "note": layer data item is missing`) {
		t.Errorf("layer: %v", r.Layers)
	}
	if !hasErr(r.Images[img], ErrImageDataMissing, `image `+img+`: data item "manifest": image data item is missing`) {
		t.Errorf("image: %v", r.Images)
	}
	if !hasErr(r.Containers[ctr], ErrContainerDataIncorrectSize, `container `+ctr+`: data item "cfg": container data item has incorrect size`) {
		t.Errorf("container: %v", r.Containers)
	}
	// The child is built on the damaged base.
	if !hasErr(r.Layers[child], ErrLayerParentDamaged, "layer "+base+": parent layer is damaged") {
		t.Errorf("child: %v", r.Layers[child])
	}
}

func TestCheckOrphansTempsAndGC(t *testing.T) {
	s, opts, _, _, _, _ := checkStore(t)
	ctx := testCtx(t)
	orphanImg := filepath.Join(opts.GraphRoot, "vfs-images", "deadbeef")
	orphanTS := filepath.Join(opts.GraphRoot, "vfs-layers", "feedface.tar-split.gz")
	temp := filepath.Join(opts.GraphRoot, "vfs-layers", ".tmp-layers.json42")
	for _, d := range []string{orphanImg} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{orphanTS, temp} {
		if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	sl, err := s.CreateStorageLayer(ctx, "", "", LayerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := mustCheck(t, s, CheckOptions{Quick: true, MaxUnreferencedAge: DefaultMaxUnreferencedAge})
	if !hasErr(r.Images["deadbeef"], ErrOrphanData, orphanImg) || !hasErr(r.Layers["feedface"], ErrOrphanData, orphanTS) ||
		!hasErr(r.Files[temp], ErrLeftoverTemp, temp) || !hasErr(r.Layers[sl], ErrLayerUnaccounted, "layer "+sl+": layer in lower level storage driver not accounted for") {
		t.Fatalf("report: %+v", r)
	}
	removed, err := s.GC(ctx)
	if err != nil {
		t.Fatalf("GC: %v", err)
	}
	for _, want := range []string{orphanImg, orphanTS, temp, sl} {
		if !slices.Contains(removed, want) {
			t.Errorf("GC did not report removing %s: %v", want, removed)
		}
	}
	if r := mustCheck(t, s, CheckOptions{MaxUnreferencedAge: DefaultMaxUnreferencedAge}); !r.Empty() {
		t.Fatalf("after GC: %+v", r)
	}
	if ls, _ := s.Layers(ctx); len(ls) != 3 {
		t.Fatalf("GC touched records: %d layers", len(ls))
	}
}

func TestCorruptLayersJSONCheckAndRepair(t *testing.T) {
	s, opts, base, child, img, ctr := checkStore(t)
	ctx := testCtx(t)
	diff := func(id string) []byte {
		rc, err := s.Diff(ctx, "", id, DiffOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	want := diff(child)
	lj := filepath.Join(opts.GraphRoot, "vfs-layers", "layers.json")
	data, err := os.ReadFile(lj)
	if err != nil {
		t.Fatal(err)
	}
	// Truncate inside the second record (the child's, or the container layer's).
	damaged := data[:bytes.Index(data, []byte(`{"id":"`+child))+30]
	if err := os.WriteFile(lj, damaged, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, opts); !errors.Is(err, ErrCorruptMetadata) {
		t.Fatalf("Open of a corrupt store: %v", err)
	}
	cs, err := OpenForCheck(ctx, opts)
	if err != nil {
		t.Fatalf("OpenForCheck: %v", err)
	}
	r := mustCheck(t, cs, CheckOptions{})
	if !hasErr(r.Files[lj], ErrCorruptMetadata, lj+": at byte offset") || len(r.Files) != 1 {
		t.Fatalf("report: %+v", r.Files)
	}
	if got, _ := os.ReadFile(lj); !bytes.Equal(got, damaged) {
		t.Fatal("Check rewrote the damaged file")
	}
	r, errs := cs.Repair(ctx, RepairOptions{CheckOptions: CheckOptions{MaxUnreferencedAge: DefaultMaxUnreferencedAge}})
	if len(errs) != 0 {
		t.Fatalf("Repair: %v", errs)
	}
	kept, _ := filepath.Glob(lj + ".corrupt-*")
	if len(kept) != 1 {
		t.Fatalf("kept copies: %v", kept)
	}
	if got, _ := os.ReadFile(kept[0]); !bytes.Equal(got, damaged) {
		t.Fatal("the kept copy differs from the damaged file")
	}
	if !hasErr(r.Layers[child], ErrLayerUnaccounted, "re-created") {
		t.Fatalf("child not re-adopted: %v", r.Layers)
	}
	s2, err := Open(ctx, opts)
	if err != nil {
		t.Fatalf("Open after repair: %v", err)
	}
	for _, id := range []string{base, child} {
		if _, err := s2.Layer(ctx, id); err != nil {
			t.Fatalf("layer %s lost: %v", id, err)
		}
	}
	if _, err := s2.Image(ctx, img); err != nil {
		t.Fatalf("image lost: %v", err)
	}
	// The container's layer (no tar-split) was after the damage too: its
	// record comes back because the container names it.
	c, err := s2.Container(ctx, ctr)
	if err != nil {
		t.Fatalf("container lost: %v", err)
	}
	if l, err := s2.Layer(ctx, c.LayerID); err != nil || l.Parent != child {
		t.Fatalf("container layer: %+v %v", l, err)
	}
	if r := mustCheck(t, s2, CheckOptions{MaxUnreferencedAge: DefaultMaxUnreferencedAge}); !r.Empty() {
		t.Fatalf("after repair: %+v", r)
	}
	if got := diff(child); !bytes.Equal(got, want) {
		t.Fatal("re-created layer's diff differs")
	}
}

func TestCheckYoungChildProtectsOldParent(t *testing.T) {
	s, _ := openTest(t)
	ctx := testCtx(t)
	base, err := s.CreateLayer(ctx, LayerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	child, err := s.CreateLayer(ctx, LayerOptions{Parent: base.ID})
	if err != nil {
		t.Fatal(err)
	}
	// The base is older than a second, but a layer built on it is not: an
	// image may be being written on top.
	if r := mustCheck(t, s, CheckOptions{MaxUnreferencedAge: time.Second}); !r.Empty() {
		t.Fatalf("report: %v", r.Layers)
	}
	r := mustCheck(t, s, CheckOptions{})
	if len(r.Layers[base.ID]) != 1 || len(r.Layers[child.ID]) != 1 {
		t.Fatalf("with max age 0: %v", r.Layers)
	}
	if _, errs := s.Repair(ctx, RepairOptions{}); len(errs) != 0 {
		t.Fatalf("repair: %v", errs)
	}
	if ls, _ := s.Layers(ctx); len(ls) != 0 {
		t.Fatalf("layers left: %d", len(ls))
	}
}

func TestCheckDriverDirMissing(t *testing.T) {
	s, opts, _, _, img, ctr := checkStore(t)
	ctx := testCtx(t)
	c, err := s.Container(ctx, ctr)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(opts.GraphRoot, "vfs", "dir", c.LayerID)); err != nil {
		t.Fatal(err)
	}
	r := mustCheck(t, s, CheckOptions{Quick: true, MaxUnreferencedAge: DefaultMaxUnreferencedAge})
	if !hasErr(r.Layers[c.LayerID], ErrLayerDirMissing, "layer "+c.LayerID+": layer directory is missing") || !hasErr(r.Containers[ctr], ErrLayerDirMissing, c.LayerID) || len(r.Images[img]) != 0 {
		t.Fatalf("report: %+v", r)
	}
	if _, errs := s.Repair(ctx, RepairOptions{RemoveContainers: true, CheckOptions: CheckOptions{MaxUnreferencedAge: DefaultMaxUnreferencedAge}}); len(errs) != 0 {
		t.Fatalf("repair: %v", errs)
	}
	if _, err := s.Image(ctx, img); err != nil {
		t.Fatalf("intact image removed: %v", err)
	}
	if r := mustCheck(t, s, CheckOptions{MaxUnreferencedAge: DefaultMaxUnreferencedAge}); !r.Empty() {
		t.Fatalf("after repair: %+v", r)
	}
}

func TestCheckStrayDataFileKeepsRecord(t *testing.T) {
	s, opts, base, _, img, ctr := checkStore(t)
	ctx := testCtx(t)
	stray := []string{
		filepath.Join(opts.GraphRoot, "vfs-images", img, "stray"),
		filepath.Join(opts.GraphRoot, "vfs-containers", ctr, "stray"),
		filepath.Join(opts.GraphRoot, "vfs-layers", base, "stray"),
	}
	for _, p := range stray {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	r := mustCheck(t, s, CheckOptions{Quick: true, MaxUnreferencedAge: DefaultMaxUnreferencedAge})
	if !hasErr(r.Images[img], ErrOrphanData, stray[0]) || !hasErr(r.Containers[ctr], ErrOrphanData, stray[1]) || !hasErr(r.Layers[base], ErrOrphanData, stray[2]) {
		t.Fatalf("report: %+v", r)
	}
	if _, errs := s.Repair(ctx, RepairOptions{RemoveContainers: true, CheckOptions: CheckOptions{MaxUnreferencedAge: DefaultMaxUnreferencedAge}}); len(errs) != 0 {
		t.Fatalf("repair: %v", errs)
	}
	for _, p := range stray {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s kept: %v", p, err)
		}
	}
	if _, err := s.Container(ctx, ctr); err != nil {
		t.Fatalf("container removed: %v", err)
	}
	if _, err := s.Image(ctx, img); err != nil {
		t.Fatalf("image removed: %v", err)
	}
	if _, err := s.Layer(ctx, base); err != nil {
		t.Fatalf("layer removed: %v", err)
	}
	if r := mustCheck(t, s, CheckOptions{MaxUnreferencedAge: DefaultMaxUnreferencedAge}); !r.Empty() {
		t.Fatalf("after repair: %+v", r)
	}
}

// A read-only image store whose layers.json does not decode is set aside:
// check reports it and still checks the primary store; repair still
// repairs the primary store, leaves the read-only file as it is, and does
// not take the container layer built on the read-only store's layer for a
// dangling one.
func TestRepairSetsAsideCorruptReadOnlyStore(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	roOpts := Options{GraphRoot: filepath.Join(dir, "ro"), RunRoot: filepath.Join(dir, "ro-run"), GraphDriverName: "vfs"}
	ro, err := Open(ctx, roOpts)
	if err != nil {
		t.Fatal(err)
	}
	rol, err := ro.PutLayer(ctx, bytes.NewReader(makeTar(t, map[string]string{"r": "r"})), LayerOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	roImg, err := ro.CreateImage(ctx, ImageOptions{TopLayer: rol.ID})
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{GraphRoot: filepath.Join(dir, "root"), RunRoot: filepath.Join(dir, "run"), GraphDriverName: "vfs",
		GraphDriverOptions: []string{"vfs.imagestore=" + roOpts.GraphRoot}}
	s, err := Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctr, err := s.CreateContainer(ctx, ContainerOptions{Image: roImg.ID})
	if err != nil {
		t.Fatal(err)
	}
	bad, err := s.PutLayer(ctx, bytes.NewReader(makeTar(t, map[string]string{"c": "cccccc"})), LayerOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateImage(ctx, ImageOptions{TopLayer: bad.ID}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(opts.GraphRoot, "vfs", "dir", bad.ID, "c"), []byte("CCCCCC"), 0o644); err != nil {
		t.Fatal(err)
	}
	roFile := filepath.Join(roOpts.GraphRoot, "vfs-layers", "layers.json")
	garbage := []byte(`[{"id":"` + rol.ID + `","par`)
	if err := os.WriteFile(roFile, garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	cs, err := OpenForCheck(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	r, err := cs.Check(ctx, CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !hasErr(r.Files[roFile], ErrReadOnlyStoreSetAside, roFile) || !hasErr(r.Files[roFile], ErrCorruptMetadata, "") {
		t.Fatalf("read-only file: %v", r.Files)
	}
	if len(r.Layers[bad.ID]) == 0 {
		t.Fatalf("the primary store's damaged layer was not checked: %+v", r)
	}
	if len(r.Containers[ctr.ID]) != 0 || len(r.Layers[ctr.LayerID]) != 0 {
		t.Fatalf("container on the set-aside store reported: %v %v", r.Containers, r.Layers)
	}
	rs, err := OpenForCheck(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	r, errs := rs.Repair(ctx, RepairOptions{CheckOptions: CheckOptions{MaxUnreferencedAge: 0}})
	if r == nil || len(errs) != 0 {
		t.Fatalf("repair: %+v %v", r, errs)
	}
	if got, _ := os.ReadFile(roFile); !bytes.Equal(got, garbage) {
		t.Fatalf("read-only file rewritten: %q", got)
	}
	if _, err := rs.Layer(ctx, bad.ID); !errors.Is(err, ErrLayerUnknown) {
		t.Fatalf("damaged primary layer kept: %v", err)
	}
	if _, err := rs.Container(ctx, ctr.ID); err != nil {
		t.Fatalf("container removed: %v", err)
	}
	if _, err := rs.Layer(ctx, ctr.LayerID); err != nil {
		t.Fatalf("container layer removed: %v", err)
	}
	// The read-only store's own open still fails: it was not "fixed".
	if _, err := Open(ctx, opts); !errors.Is(err, ErrCorruptMetadata) {
		t.Fatalf("open with the corrupt read-only store: %v", err)
	}
}

// failingReader yields data, then fails.
type failingReader struct {
	r io.Reader
}

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, errors.New("connection reset")
	}
	return n, err
}

// An ApplyDiff that fails (or is killed) after writing files leaves its
// layer flagged: check reports it, after a reopen too, and a later
// successful ApplyDiff clears the flag.
func TestApplyDiffUnfinishedIsReported(t *testing.T) {
	s, opts := openTest(t)
	ctx := testCtx(t)
	l, err := s.CreateLayer(ctx, LayerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	full := makeTar(t, map[string]string{"a": strings.Repeat("a", 4096), "b": "bbb"})
	if _, err := s.ApplyDiff(ctx, l.ID, &failingReader{bytes.NewReader(full[:len(full)-1024])}); err == nil {
		t.Fatal("ApplyDiff of a broken stream succeeded")
	}
	s2, err := Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	want := "layer " + l.ID + ": applying a diff to the layer did not finish"
	r := mustCheck(t, s2, CheckOptions{MaxUnreferencedAge: DefaultMaxUnreferencedAge})
	if !hasErr(r.Layers[l.ID], ErrLayerApplyUnfinished, want) {
		t.Fatalf("report: %v", r.Layers)
	}
	if _, err := s2.ApplyDiff(ctx, l.ID, bytes.NewReader(full)); err != nil {
		t.Fatal(err)
	}
	if r := mustCheck(t, s2, CheckOptions{MaxUnreferencedAge: DefaultMaxUnreferencedAge}); !r.Empty() {
		t.Fatalf("after a successful ApplyDiff: %+v", r)
	}
	got, err := s2.Layer(ctx, l.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got.Flags[ApplyingDiffFlag]; ok {
		t.Fatalf("flag kept: %v", got.Flags)
	}
}

// Repair of a damaged mountpoints.json gives the layers that are still
// mounted (overlay) their records back, count 1: Mounted says so and one
// Unmount takes the mount away.
func TestRepairRestoresLostMountRecords(t *testing.T) {
	s := openDriverTest(t, "overlay")
	ctx := testCtx(t)
	var ids []string
	for range 2 {
		l, err := s.CreateLayer(ctx, LayerOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Mount(ctx, l.ID, MountOptions{}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, l.ID)
	}
	unmounted, err := s.CreateLayer(ctx, LayerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mpPath := s.mountpointsPath()
	data, err := os.ReadFile(mpPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(mpPath, data[:12], 0o600); err != nil { // both records lost
		t.Fatal(err)
	}
	opts := Options{GraphRoot: s.GraphRoot(), RunRoot: s.RunRoot(), GraphDriverName: "overlay"}
	rs, err := OpenForCheck(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	r, errs := rs.Repair(ctx, RepairOptions{CheckOptions: CheckOptions{MaxUnreferencedAge: DefaultMaxUnreferencedAge}})
	if r == nil || len(errs) != 0 {
		t.Fatalf("repair: %+v %v", r, errs)
	}
	t.Cleanup(func() { _, _ = rs.Shutdown(testCtx(t), true) })
	for _, id := range ids {
		if !hasErr(r.Files[mpPath], ErrMountRecordLost, "layer "+id+": ") {
			t.Errorf("layer %s not reported: %v", id, r.Files[mpPath])
		}
		if n, err := rs.Mounted(ctx, id); err != nil || n != 1 {
			t.Errorf("Mounted(%s) = %d, %v; want 1", id, n, err)
		}
	}
	if n, _ := rs.Mounted(ctx, unmounted.ID); n != 0 {
		t.Errorf("an unmounted layer got a record: %d", n)
	}
	p, _ := rs.graphDriver().(driver.MountPather).MountPath(ids[0])
	if still, err := rs.Unmount(ctx, ids[0], false); err != nil || still {
		t.Fatalf("Unmount: %v, %v", still, err)
	}
	if isMountPoint(p) {
		t.Fatalf("%s still mounted after one Unmount", p)
	}
}

// A layer record lost in a damaged layers.json is re-created with what the
// kept copy still holds of it: names, parent (vfs does not record it), ID
// maps and compressed digest; the fields cut off stay empty.
func TestRepairRecreatedLayerKeepsSurvivingFields(t *testing.T) {
	s, opts := openTest(t)
	ctx := testCtx(t)
	base, err := s.PutLayer(ctx, bytes.NewReader(makeTar(t, map[string]string{"a": "a"})), LayerOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(makeTar(t, map[string]string{"c": "cc"})); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	maps := []idmap.IDMap{{ContainerID: 0, HostID: 100000, Size: 65536}}
	child, err := s.PutLayer(ctx, &gz, LayerOptions{Parent: base.ID, ReadOnly: true, Names: []string{"kid"},
		IDMapping: IDMappingOptions{UIDMap: maps, GIDMap: maps}})
	if err != nil {
		t.Fatal(err)
	}
	if child.CompressedDigest == "" {
		t.Fatal("no compressed digest recorded")
	}
	if _, err := s.CreateImage(ctx, ImageOptions{TopLayer: child.ID}); err != nil {
		t.Fatal(err)
	}
	lj := filepath.Join(opts.GraphRoot, "vfs-layers", "layers.json")
	data, err := os.ReadFile(lj)
	if err != nil {
		t.Fatal(err)
	}
	rec := bytes.Index(data, []byte(`{"id":"`+child.ID))
	cut := bytes.Index(data[rec:], []byte(`"gidmap":`))
	if rec < 0 || cut < 0 {
		t.Fatalf("layers.json has no gidmap for the child: %s", data)
	}
	if err := os.WriteFile(lj, data[:rec+cut+len(`"gidmap":[{"cont`)], 0o600); err != nil {
		t.Fatal(err)
	}
	cs, err := OpenForCheck(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, errs := cs.Repair(ctx, RepairOptions{CheckOptions: CheckOptions{MaxUnreferencedAge: DefaultMaxUnreferencedAge}}); len(errs) != 0 {
		t.Fatalf("Repair: %v", errs)
	}
	s2, err := Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s2.Layer(ctx, "kid")
	if err != nil {
		t.Fatalf("layer by its recovered name: %v", err)
	}
	if got.ID != child.ID || got.Parent != base.ID || got.Flags[ParentUnknownFlag] != nil ||
		!idmap.Equal(got.UIDMap, maps) || len(got.GIDMap) != 0 ||
		got.CompressedDigest != child.CompressedDigest || got.CompressedSize != child.CompressedSize ||
		got.UncompressedDigest != child.UncompressedDigest {
		t.Fatalf("re-created record %+v\nwas %+v", got, child)
	}
	if r := mustCheck(t, s2, CheckOptions{MaxUnreferencedAge: DefaultMaxUnreferencedAge}); !r.Empty() {
		t.Fatalf("after repair: %+v", r)
	}
}

// Check reports a read-write layer that could not be mounted (overlay: a
// lower gone), as upstream's check does by mounting every layer, quick or
// not; a layer is reported once, its descendants as built on it.
func TestCheckLayerNotMountable(t *testing.T) {
	s := openDriverTest(t, "overlay")
	ctx := testCtx(t)
	base, err := s.CreateLayer(ctx, LayerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mid, err := s.CreateLayer(ctx, LayerOptions{Parent: base.ID})
	if err != nil {
		t.Fatal(err)
	}
	top, err := s.CreateLayer(ctx, LayerOptions{Parent: mid.ID})
	if err != nil {
		t.Fatal(err)
	}
	if r := mustCheck(t, s, CheckOptions{Quick: true, MaxUnreferencedAge: DefaultMaxUnreferencedAge}); !r.Empty() {
		t.Fatalf("clean store: %+v", r)
	}
	if err := os.RemoveAll(filepath.Join(s.GraphRoot(), "overlay", base.ID, "diff")); err != nil {
		t.Fatal(err)
	}
	r := mustCheck(t, s, CheckOptions{Quick: true, MaxUnreferencedAge: DefaultMaxUnreferencedAge})
	if !hasErr(r.Layers[mid.ID], os.ErrNotExist, "layer "+mid.ID+": overlay layer "+mid.ID+": lower:") {
		t.Fatalf("unmountable layer: %v", r.Layers)
	}
	if !hasErr(r.Layers[top.ID], ErrLayerParentDamaged, "") || len(r.Layers[top.ID]) != 1 {
		t.Fatalf("its child: %v", r.Layers[top.ID])
	}
	if _, err := s.Mount(ctx, mid.ID, MountOptions{}); err == nil {
		t.Fatal("the layer check reported unmountable mounts")
	}
}
