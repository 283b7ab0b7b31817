package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/stowage/stowage/driver/drivertest"
	"github.com/stowage/stowage/internal/fsx"
	"github.com/stowage/stowage/layer"
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

// isLayerRecords matches the flush of a new layers.json: a save's temp
// file, or the file a staged layer's commit prepares in tmp/.
func isLayerRecords(e syncEvent) bool {
	b := filepath.Base(e.path)
	return isTemp(e, "layers.json") ||
		e.kind == fsx.SyncFileData && filepath.Base(filepath.Dir(e.path)) == "tmp" && strings.HasPrefix(b, "layers-") && strings.HasSuffix(b, ".json")
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

// commitState is what was on disk when one flush was observed.
type commitState struct {
	complete bool // layers.json has the layer without the incomplete flag
	marker   bool // the layer's commit marker exists
	locked   bool // layers.lock is held (by anyone)
}

type probedEvent struct {
	syncEvent
	commitState
}

// recordCommit records every flush with the state of layer id in the
// store at G/<drv>-layers when it was made.
func recordCommit(t *testing.T, g, drv, id string) func() []probedEvent {
	t.Helper()
	dir := filepath.Join(g, drv+"-layers")
	lockFd, err := unix.Open(filepath.Join(dir, "layers.lock"), unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(lockFd) })
	find := func(file string) (found, incomplete bool) {
		data, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			return false, false
		}
		var recs []struct {
			ID    string         `json:"id"`
			Flags map[string]any `json:"flags"`
		}
		if json.Unmarshal(data, &recs) != nil {
			return false, false
		}
		for _, r := range recs {
			if r.ID == id {
				return true, r.Flags[layer.IncompleteFlag] == true
			}
		}
		return false, false
	}
	var mu sync.Mutex
	var evs []probedEvent
	t.Cleanup(fsx.SetSyncHook(func(k fsx.SyncKind, p string) {
		var st commitState
		f, inc := find("layers.json")
		st.complete = f && !inc
		_, err := os.Stat(filepath.Join(dir, "tmp", "commit-"+id))
		st.marker = err == nil
		lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0}
		if unix.FcntlFlock(uintptr(lockFd), unix.F_OFD_GETLK, &lk) == nil {
			st.locked = lk.Type != unix.F_UNLCK
		}
		mu.Lock()
		evs = append(evs, probedEvent{syncEvent{k, p}, st})
		mu.Unlock()
	}))
	return func() []probedEvent {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(evs)
	}
}

// TestPutLayerDurableOrder checks the durable commit (the default) on
// both drivers, by the state of the store at each flush: every file of the
// layer is fdatasynced in the staging dir and its directories fsynced
// before anything names the layer; the directory the staged tree is
// renamed into, overlay's l/, the tar-split's directory and the prepared
// layers.json are flushed while the commit marker names the layer, before
// the complete record, and with layers.lock NOT held (nothing is flushed
// under it); the records' directory is fsynced after the complete record
// was renamed into place and the lock released, before the marker goes;
// mountpoints.json is not touched.
func TestPutLayerDurableOrder(t *testing.T) {
	const id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, drv := range []string{"vfs", "overlay"} {
		t.Run(drv, func(t *testing.T) {
			s := openDriverTest(t, drv)
			ctx := testCtx(t)
			if _, err := s.Layers(ctx); err != nil { // creates layers.lock
				t.Fatal(err)
			}
			g := s.GraphRoot()
			get := recordCommit(t, g, drv, id)
			if _, err := s.PutLayer(ctx, bytes.NewReader(makeTar(t, map[string]string{"a": "1", "b": "2"})), LayerOptions{ID: id}); err != nil {
				t.Fatal(err)
			}
			evs := get()
			idx := func(last bool, match func(probedEvent) bool) int {
				i := -1
				for j, e := range evs {
					if match(e) {
						i = j
						if !last {
							break
						}
					}
				}
				return i
			}
			isDir := func(dir string) func(probedEvent) bool {
				return func(e probedEvent) bool { return e.kind == fsx.SyncDirectory && e.path == dir }
			}
			staged := func(name string) func(probedEvent) bool {
				return func(e probedEvent) bool {
					// overlay stages the layer directory, its files in diff/
					return e.kind == fsx.SyncFileData && strings.Contains(e.path, "/tempdirs/") &&
						(strings.HasSuffix(e.path, "-addition/"+name) || strings.HasSuffix(e.path, "-addition/diff/"+name))
				}
			}
			lastData := -1
			for _, name := range []string{"a", "b"} {
				i := idx(true, staged(name))
				if i < 0 {
					t.Fatalf("file %s was not fdatasynced in staging; flushes: %v", name, evs)
				}
				if st := evs[i].commitState; st.marker || st.complete {
					t.Errorf("file %s flushed while a record named the layer: %+v", name, st)
				}
				lastData = max(lastData, i)
			}
			stagedRoot := idx(true, func(e probedEvent) bool {
				return e.kind == fsx.SyncDirectory && strings.Contains(e.path, "/tempdirs/") && strings.HasSuffix(e.path, "-addition")
			})
			if stagedRoot < lastData {
				t.Errorf("staged root dir fsynced at %d, before the files (%d)", stagedRoot, lastData)
			}
			if idx(false, func(e probedEvent) bool {
				return e.kind == fsx.SyncFileData && strings.Contains(e.path, drv+"-layers/tmp/")
			}) < 0 {
				t.Errorf("the staged tar-split was not flushed")
			}
			// Before the complete record, with no lock held: the commit
			// marker names the layer.
			beforeRecord := func(what string, i int) {
				t.Helper()
				if i < 0 {
					t.Errorf("%s was not flushed: %v", what, evs)
					return
				}
				if st := evs[i].commitState; st.locked || !st.marker || st.complete {
					t.Errorf("%s flushed in state %+v; want with no lock held, with the commit marker, before the complete record", what, st)
				}
			}
			for i, e := range evs {
				if e.locked {
					t.Errorf("flush %d (%s) under layers.lock; want none there: %v", i, e.path, evs)
				}
			}
			switch drv {
			case "vfs":
				beforeRecord("vfs/dir", idx(true, isDir(filepath.Join(g, "vfs", "dir"))))
			case "overlay":
				// The layer directory was staged whole and flushed with
				// its files; at the commit only the rename (overlay) and
				// the l/ symlink (overlay/l) are flushed.
				beforeRecord("overlay", idx(true, isDir(filepath.Join(g, "overlay"))))
				beforeRecord("overlay/l", idx(true, isDir(filepath.Join(g, "overlay", "l"))))
				staged := func(name string, dir bool) int {
					return idx(true, func(e probedEvent) bool {
						return (e.kind == fsx.SyncDirectory) == dir && strings.Contains(e.path, "/tempdirs/") && strings.HasSuffix(e.path, "-addition"+name)
					})
				}
				if i := staged("/link", false); i < 0 || i > stagedRoot || evs[i].marker {
					t.Errorf("the staged link file flushed at %d (staged root %d); want in staging: %v", i, stagedRoot, evs)
				}
				for _, d := range []string{"/diff", "/work", "/merged", "/empty"} {
					if i := staged(d, true); i < 0 || i > stagedRoot || evs[i].marker {
						t.Errorf("staged %s fsynced at %d (staged root %d); want in staging: %v", d, i, stagedRoot, evs)
					}
				}
				for _, e := range evs {
					if e.marker && strings.HasPrefix(e.path, filepath.Join(g, "overlay", id)) {
						t.Errorf("%s flushed at the commit; want only overlay and overlay/l", e.path)
					}
				}
			}
			layersDir := filepath.Join(g, drv+"-layers")
			beforeRecord("the tar-split's directory", idx(false, func(e probedEvent) bool {
				return isDir(layersDir)(e) && e.marker && !e.complete
			}))
			beforeRecord("the prepared records", idx(true, func(e probedEvent) bool { return isLayerRecords(e.syncEvent) }))
			last := idx(true, isDir(layersDir))
			if last != len(evs)-1 || !evs[last].complete || evs[last].locked || !evs[last].marker {
				t.Errorf("last flush %d of %d (%+v); want the records' directory, after the complete record, with the lock released and before the marker's removal: %v", last, len(evs), evs[last].commitState, evs)
			}
			if idx(false, func(e probedEvent) bool { return strings.Contains(e.path, "mountpoints") }) >= 0 {
				t.Errorf("mountpoints.json was rewritten: %v", evs)
			}
		})
	}
}

// TestCommitLeavesVolatileAlone: a commit touches neither
// volatile-layers.json (where volatile layers' records live unflushed)
// nor leaves its marker behind, and no record of the layer is ever saved
// flagged incomplete.
func TestCommitLeavesVolatileAlone(t *testing.T) {
	const id = "1111222233334444111122223333444411112222333344441111222233334444"
	s := openDriverTest(t, "vfs")
	ctx := testCtx(t)
	vol, err := s.createLayer(ctx, LayerOptions{}, true)
	if err != nil {
		t.Fatal(err)
	}
	g := s.GraphRoot()
	volPath := filepath.Join(g, "vfs-layers", "volatile-layers.json")
	before, err := os.ReadFile(volPath)
	if err != nil || !strings.Contains(string(before), vol.ID) {
		t.Fatalf("volatile-layers.json: %s, %v", before, err)
	}
	fi, _ := os.Stat(volPath)
	get := recordCommit(t, g, "vfs", id)
	if _, err := s.PutLayer(ctx, bytes.NewReader(makeTar(t, map[string]string{"a": "1"})), LayerOptions{ID: id}); err != nil {
		t.Fatal(err)
	}
	fi2, _ := os.Stat(volPath)
	if after, _ := os.ReadFile(volPath); !bytes.Equal(before, after) || !fi.ModTime().Equal(fi2.ModTime()) {
		t.Errorf("volatile-layers.json rewritten: %s -> %s", before, after)
	}
	for _, e := range get() {
		if e.marker && e.kind == fsx.SyncFileData && strings.HasPrefix(filepath.Base(e.path), fsx.TempPrefix("layers.json")) {
			if b, _ := os.ReadFile(filepath.Join(g, "vfs-layers", "layers.json")); strings.Contains(string(b), `"incomplete":true`) {
				t.Errorf("an incomplete record was saved: %s", b)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(g, "vfs-layers", "tmp", "commit-"+id)); !os.IsNotExist(err) {
		t.Errorf("commit marker left: %v", err)
	}
	if l, err := s.Layer(ctx, id); err != nil || l.Volatile {
		t.Errorf("committed layer: %+v, %v", l, err)
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
			if indexOf(evs, false, isLayerRecords) < 0 {
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

// TestOverlayChildLayoutFlushed: a child layer's link, lower and
// lower-layers files (what older tools read to mount it) are flushed
// before the record is complete: in staging, with the layer's files, when
// the parent is known at staging; after the rename, with the marker, when
// a staged layer is committed on a parent named only at Commit.
func TestOverlayChildLayoutFlushed(t *testing.T) {
	const id = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
	const id2 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	s := openDriverTest(t, "overlay")
	ctx := testCtx(t)
	base, err := s.PutLayer(ctx, bytes.NewReader(makeTar(t, map[string]string{"a": "1"})), LayerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	check := func(t *testing.T, evs []probedEvent, files []string, staged bool) {
		t.Helper()
		for _, f := range files {
			p := filepath.Join(s.GraphRoot(), "overlay", id, f)
			match := func(e probedEvent) bool { return e.kind == fsx.SyncFileData && e.path == p }
			if staged {
				match = func(e probedEvent) bool {
					return e.kind == fsx.SyncFileData && strings.Contains(e.path, "/tempdirs/") && strings.HasSuffix(e.path, "-addition/"+f)
				}
			}
			i := slices.IndexFunc(evs, match)
			if i < 0 || evs[i].complete || evs[i].marker == staged {
				t.Errorf("%s flushed at %d; want before the complete record, staged %v: %v", f, i, staged, evs)
			}
		}
	}
	t.Run("parent at staging", func(t *testing.T) {
		get := recordCommit(t, s.GraphRoot(), "overlay", id)
		if _, err := s.PutLayer(ctx, bytes.NewReader(makeTar(t, map[string]string{"b": "2"})), LayerOptions{ID: id, Parent: base.ID}); err != nil {
			t.Fatal(err)
		}
		check(t, get(), []string{"link", "lower", "lower-layers"}, true)
	})
	t.Run("parent at commit", func(t *testing.T) {
		get := recordCommit(t, s.GraphRoot(), "overlay", id2)
		sl, err := s.StageLayer(ctx, bytes.NewReader(makeTar(t, map[string]string{"c": "3"})), LayerOptions{ID: id2})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sl.Commit(ctx, base.ID); err != nil {
			t.Fatal(err)
		}
		evs := get()
		for _, f := range []string{"lower", "lower-layers"} {
			p := filepath.Join(s.GraphRoot(), "overlay", id2, f)
			i := slices.IndexFunc(evs, func(e probedEvent) bool { return e.kind == fsx.SyncFileData && e.path == p })
			if i < 0 || evs[i].complete || !evs[i].marker {
				t.Errorf("%s flushed at %d; want before the complete record, with the marker: %v", f, i, evs)
			}
		}
		dir := filepath.Join(s.GraphRoot(), "overlay", id2)
		if _, err := os.Lstat(filepath.Join(dir, "empty")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("empty/ of the staged base layer left in the child: %v", err)
		}
		b, err := os.ReadFile(filepath.Join(dir, "lower-layers"))
		if err != nil || string(b) != base.ID {
			t.Errorf("lower-layers = %q, %v; want %q", b, err, base.ID)
		}
	})
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
