package store

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stowage/stowage/driver/drivertest"
	"github.com/stowage/stowage/internal/fsx"
)

// syncEvent is one flush observed through fsx's sync hook.
type syncEvent struct {
	kind fsx.SyncKind
	path string
}

// recordSyncs records every flush until the test ends; the returned
// function snapshots what was recorded so far.
func recordSyncs(t *testing.T) func() []syncEvent {
	t.Helper()
	var mu sync.Mutex
	var evs []syncEvent
	t.Cleanup(fsx.SetSyncHook(func(k fsx.SyncKind, p string) {
		mu.Lock()
		evs = append(evs, syncEvent{k, p})
		mu.Unlock()
	}))
	return func() []syncEvent {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(evs)
	}
}

// indexOf returns the first (last, with last) event index matching, or -1.
func indexOf(evs []syncEvent, last bool, match func(syncEvent) bool) int {
	idx := -1
	for i, e := range evs {
		if match(e) {
			idx = i
			if !last {
				break
			}
		}
	}
	return idx
}

func isTemp(e syncEvent, base string) bool {
	return e.kind == fsx.SyncFileData && strings.HasPrefix(filepath.Base(e.path), fsx.TempPrefix(base))
}

func dirSync(dir string) func(syncEvent) bool {
	return func(e syncEvent) bool { return e.kind == fsx.SyncDirectory && e.path == dir }
}

func openDriverTest(t *testing.T, drv string, driverOpts ...string) *Store {
	t.Helper()
	if drv == "overlay" {
		drivertest.RequireOverlay(t)
	}
	dir := t.TempDir()
	s, err := Open(testCtx(t), Options{GraphRoot: filepath.Join(dir, "root"), RunRoot: filepath.Join(dir, "run"), GraphDriverName: drv, GraphDriverOptions: driverOpts})
	if err != nil {
		t.Fatalf("Open %s: %v", drv, err)
	}
	t.Cleanup(func() {
		_, _ = s.Shutdown(testCtx(t), true)
		s.Close()
	})
	return s
}

// TestPutLayerDurableOrder checks the durable commit (the default) on
// both drivers: every file of the layer is fdatasynced in the staging dir
// and its directories fsynced, before the publishing rename's directory
// is fsynced; the tar-split is flushed; the complete record is written
// through a flushed temp file, and the records directory is fsynced last.
func TestPutLayerDurableOrder(t *testing.T) {
	for _, drv := range []string{"vfs", "overlay"} {
		t.Run(drv, func(t *testing.T) {
			s := openDriverTest(t, drv)
			ctx := testCtx(t)
			get := recordSyncs(t)
			l, err := s.PutLayer(ctx, bytes.NewReader(makeTar(t, map[string]string{"a": "1", "b": "2"})), LayerOptions{})
			if err != nil {
				t.Fatal(err)
			}
			evs := get()
			g := s.GraphRoot()
			staged := func(name string) func(syncEvent) bool {
				return func(e syncEvent) bool {
					return e.kind == fsx.SyncFileData && strings.Contains(e.path, "/tempdirs/") && strings.HasSuffix(e.path, "-addition/"+name)
				}
			}
			lastData := -1
			for _, name := range []string{"a", "b"} {
				i := indexOf(evs, true, staged(name))
				if i < 0 {
					t.Fatalf("file %s was not fdatasynced in staging; flushes: %v", name, evs)
				}
				lastData = max(lastData, i)
			}
			stagedRoot := indexOf(evs, true, func(e syncEvent) bool {
				return e.kind == fsx.SyncDirectory && strings.Contains(e.path, "/tempdirs/") && strings.HasSuffix(e.path, "-addition")
			})
			if stagedRoot < lastData {
				t.Errorf("staged root dir fsynced at %d, before the files (%d)", stagedRoot, lastData)
			}
			var publish string
			switch drv {
			case "vfs":
				publish = filepath.Join(g, "vfs", "dir")
			case "overlay":
				publish = filepath.Join(g, "overlay")
				for _, f := range []string{"link"} {
					p := filepath.Join(g, "overlay", l.ID, f)
					if indexOf(evs, false, func(e syncEvent) bool { return e.kind == fsx.SyncFileData && e.path == p }) < 0 {
						t.Errorf("%s was not flushed", p)
					}
				}
				if indexOf(evs, false, dirSync(filepath.Join(g, "overlay", "l"))) < 0 {
					t.Errorf("overlay/l was not fsynced after the link was made")
				}
			}
			pub := indexOf(evs, true, dirSync(publish))
			if pub < 0 || pub < stagedRoot {
				t.Fatalf("publishing dir %s fsynced at %d, staged tree at %d: %v", publish, pub, stagedRoot, evs)
			}
			ts := indexOf(evs, false, func(e syncEvent) bool {
				return e.kind == fsx.SyncFileData && strings.Contains(e.path, drv+"-layers/tmp/")
			})
			if ts < 0 {
				t.Errorf("the staged tar-split was not flushed")
			}
			rec := indexOf(evs, true, func(e syncEvent) bool { return isTemp(e, "layers.json") })
			layersDir := filepath.Join(g, drv+"-layers")
			recDir := indexOf(evs, true, dirSync(layersDir))
			if rec < pub || recDir < rec {
				t.Errorf("complete record flushed at %d (dir at %d), layer published at %d: %v", rec, recDir, pub, evs)
			}
			// The tar-split rename is made durable before the complete record.
			tsDir := indexOf(evs[pub:], false, dirSync(layersDir))
			if tsDir < 0 || pub+tsDir >= rec {
				t.Errorf("tar-split directory not fsynced between publish (%d) and the record (%d): %v", pub, rec, evs)
			}
		})
	}
}

// TestSyncModes: sync=none flushes no layer content, sync=filesystem
// uses one syncfs; both still flush the records.
func TestSyncModes(t *testing.T) {
	for _, mode := range []string{"none", "filesystem"} {
		t.Run(mode, func(t *testing.T) {
			s := openDriverTest(t, "vfs", "vfs.sync="+mode)
			get := recordSyncs(t)
			if _, err := s.PutLayer(testCtx(t), bytes.NewReader(makeTar(t, map[string]string{"a": "1"})), LayerOptions{}); err != nil {
				t.Fatal(err)
			}
			evs := get()
			var staged, syncfs int
			for _, e := range evs {
				if strings.Contains(e.path, "/tempdirs/") {
					switch e.kind {
					case fsx.SyncFileSys:
						syncfs++
					default:
						staged++
					}
				}
			}
			want := map[string][2]int{"none": {0, 0}, "filesystem": {0, 1}}[mode]
			if staged != want[0] || syncfs != want[1] {
				t.Errorf("per-item flushes %d, syncfs %d; want %v: %v", staged, syncfs, want, evs)
			}
			if indexOf(evs, false, func(e syncEvent) bool { return isTemp(e, "layers.json") }) < 0 {
				t.Errorf("layers.json was not flushed")
			}
			pairs, err := s.Status(testCtx(t))
			if err != nil || pairs[len(pairs)-1] != [2]string{"Sync Mode", mode} {
				t.Errorf("status %v, %v; want a last pair Sync Mode: %s", pairs, err, mode)
			}
		})
	}
	if _, err := Open(testCtx(t), Options{GraphRoot: t.TempDir(), RunRoot: t.TempDir(), GraphDriverName: "vfs", GraphDriverOptions: []string{"vfs.sync=sometimes"}}); err == nil || !strings.Contains(err.Error(), "sync") {
		t.Errorf("a bad sync mode was accepted: %v", err)
	}
}

// TestRecordsAndBigDataDurable covers create-layer, images, containers,
// big data and the volatile exceptions.
func TestRecordsAndBigDataDurable(t *testing.T) {
	for _, drv := range []string{"vfs", "overlay"} {
		t.Run(drv, func(t *testing.T) {
			s := openDriverTest(t, drv)
			ctx := testCtx(t)
			g := s.GraphRoot()
			get := recordSyncs(t)
			base, err := s.CreateLayer(ctx, LayerOptions{})
			if err != nil {
				t.Fatal(err)
			}
			evs := get()
			layerDir := map[string]string{"vfs": filepath.Join(g, "vfs", "dir"), "overlay": filepath.Join(g, "overlay")}[drv]
			pub := indexOf(evs, true, dirSync(layerDir))
			rec := indexOf(evs, true, func(e syncEvent) bool { return isTemp(e, "layers.json") })
			if pub < 0 || rec < pub {
				t.Errorf("create-layer: layer dir flushed at %d, record at %d: %v", pub, rec, evs)
			}
			img, err := s.CreateImage(ctx, ImageOptions{TopLayer: base.ID})
			if err != nil {
				t.Fatal(err)
			}
			n := len(get())
			if err := s.SetImageBigData(ctx, img.ID, "manifest-x", []byte("{}"), nil); err != nil {
				t.Fatal(err)
			}
			evs = get()[n:]
			imgDir := filepath.Join(g, drv+"-images", img.ID)
			item := indexOf(evs, false, func(e syncEvent) bool { return isTemp(e, "=") || isTemp(e, "manifest-x") })
			itemDir := indexOf(evs, false, dirSync(imgDir))
			imgRec := indexOf(evs, true, func(e syncEvent) bool { return isTemp(e, "images.json") })
			if item < 0 || itemDir < item || imgRec < itemDir {
				t.Errorf("big data flushed at %d, its dir at %d, images.json at %d: %v", item, itemDir, imgRec, evs)
			}
			n = len(get())
			if _, err := s.CreateContainer(ctx, ContainerOptions{Image: img.ID}); err != nil {
				t.Fatal(err)
			}
			evs = get()[n:]
			if indexOf(evs, false, func(e syncEvent) bool { return isTemp(e, "containers.json") }) < 0 ||
				indexOf(evs, false, dirSync(filepath.Join(g, drv+"-containers"))) < 0 {
				t.Errorf("containers.json not written durably: %v", evs)
			}
			// A volatile container: neither its records nor its layer are flushed.
			n = len(get())
			if _, err := s.CreateContainer(ctx, ContainerOptions{Image: img.ID, Volatile: true}); err != nil {
				t.Fatal(err)
			}
			for _, e := range get()[n:] {
				if isTemp(e, "volatile-containers.json") || isTemp(e, "volatile-layers.json") || e.kind == fsx.SyncFileSys ||
					(e.kind == fsx.SyncDirectory && e.path == layerDir) {
					t.Errorf("volatile container flushed %v %s", e.kind, e.path)
				}
			}
		})
	}
}

// TestDeleteContainerRecordFirst: delete-container saves the container
// record's removal before it touches the layer (which it first flags
// incomplete), so a kill in between never leaves a container without its
// layer.
func TestDeleteContainerRecordFirst(t *testing.T) {
	s, _ := openTest(t)
	ctx := testCtx(t)
	l, err := s.CreateLayer(ctx, LayerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	img, err := s.CreateImage(ctx, ImageOptions{TopLayer: l.ID})
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.CreateContainer(ctx, ContainerOptions{Image: img.ID})
	if err != nil {
		t.Fatal(err)
	}
	get := recordSyncs(t)
	if err := s.DeleteContainer(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	evs := get()
	rec := indexOf(evs, false, func(e syncEvent) bool { return isTemp(e, "containers.json") })
	lay := indexOf(evs, false, func(e syncEvent) bool { return isTemp(e, "layers.json") })
	if rec < 0 || lay < 0 || rec > lay {
		t.Errorf("containers.json saved at %d, layers.json (layer flagged incomplete) at %d: %v", rec, lay, evs)
	}
	if _, err := s.Layer(ctx, c.LayerID); err == nil {
		t.Error("the container's layer survived")
	}
}

// TestOverlayChildLayoutFlushed: a child layer's lower and lower-layers
// files (what older tools read to mount it) are flushed before the record
// is complete.
func TestOverlayChildLayoutFlushed(t *testing.T) {
	s := openDriverTest(t, "overlay")
	ctx := testCtx(t)
	base, err := s.PutLayer(ctx, bytes.NewReader(makeTar(t, map[string]string{"a": "1"})), LayerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	get := recordSyncs(t)
	child, err := s.PutLayer(ctx, bytes.NewReader(makeTar(t, map[string]string{"b": "2"})), LayerOptions{Parent: base.ID})
	if err != nil {
		t.Fatal(err)
	}
	evs := get()
	rec := indexOf(evs, true, func(e syncEvent) bool { return isTemp(e, "layers.json") })
	for _, f := range []string{"link", "lower", "lower-layers"} {
		p := filepath.Join(s.GraphRoot(), "overlay", child.ID, f)
		i := indexOf(evs, false, func(e syncEvent) bool { return e.kind == fsx.SyncFileData && e.path == p })
		if i < 0 || i > rec {
			t.Errorf("%s flushed at %d, complete record at %d", f, i, rec)
		}
	}
}

// TestTransientStore: containers (and their layers) of a transient store
// live in the run root, unflushed; wiping the run root (a reboot) leaves
// images and their layers intact and the containers gone.
func TestTransientStore(t *testing.T) {
	dir := t.TempDir()
	opts := Options{GraphRoot: filepath.Join(dir, "g"), RunRoot: filepath.Join(dir, "r"), GraphDriverName: "vfs", TransientStore: true}
	ctx := testCtx(t)
	s, err := Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.PutLayer(ctx, bytes.NewReader(makeTar(t, map[string]string{"a": "1"})), LayerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	img, err := s.CreateImage(ctx, ImageOptions{TopLayer: l.ID})
	if err != nil {
		t.Fatal(err)
	}
	get := recordSyncs(t)
	c, err := s.CreateContainer(ctx, ContainerOptions{Image: img.ID})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range get() {
		if isTemp(e, "volatile-containers.json") || isTemp(e, "volatile-layers.json") || isTemp(e, "layers.json") || isTemp(e, "containers.json") {
			t.Errorf("transient container creation flushed %s", e.path)
		}
	}
	for _, p := range []string{"r/vfs-containers/volatile-containers.json", "r/vfs-containers/containers.lock", "r/vfs-layers/volatile-layers.json"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "g/vfs-layers/layers.json")); err != nil || strings.Contains(string(b), c.LayerID) {
		t.Errorf("the container layer is in G's layers.json (%v)", err)
	}
	s.Close()
	if err := os.RemoveAll(opts.RunRoot); err != nil { // the reboot
		t.Fatal(err)
	}
	s2, err := Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if cs, err := s2.Containers(ctx); err != nil || len(cs) != 0 {
		t.Errorf("containers after the reboot: %v, %v", cs, err)
	}
	if _, err := s2.Image(ctx, img.ID); err != nil {
		t.Errorf("image lost: %v", err)
	}
	if _, err := s2.Layer(ctx, l.ID); err != nil {
		t.Errorf("image layer lost: %v", err)
	}
	if _, err := s2.Layer(ctx, c.LayerID); err == nil {
		t.Errorf("the container layer's record survived the reboot")
	}
}
