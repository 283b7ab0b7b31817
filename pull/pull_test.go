package pull

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/opencontainers/go-digest"

	"github.com/stowage/stowage/archive"
	"github.com/stowage/stowage/driver/drivertest"
	"github.com/stowage/stowage/internal/fsx"
	"github.com/stowage/stowage/layer"
	"github.com/stowage/stowage/lockfile"
	"github.com/stowage/stowage/source"
	"github.com/stowage/stowage/store"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func openStore(t *testing.T, drv string) *store.Store {
	t.Helper()
	if drv == "overlay" {
		drivertest.RequireOverlay(t)
	}
	dir := t.TempDir()
	st, err := store.Open(testCtx(t), store.Options{GraphRoot: filepath.Join(dir, "g"), RunRoot: filepath.Join(dir, "r"), GraphDriverName: drv})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = st.Shutdown(context.Background(), true)
		st.Close()
	})
	return st
}

// forDrivers runs fn on a fresh vfs store and, where the kernel allows, an
// overlay store.
func forDrivers(t *testing.T, fn func(t *testing.T, st *store.Store)) {
	for _, drv := range []string{"vfs", "overlay"} {
		t.Run(drv, func(t *testing.T) { fn(t, openStore(t, drv)) })
	}
}

func randomImage(t *testing.T, layers int) v1.Image {
	t.Helper()
	img, err := random.Image(20000, int64(layers))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// writeLayout writes images into a fresh layout, each under its ref.
func writeLayout(t *testing.T, imgs map[string]v1.Image) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "oci")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	for ref, img := range imgs {
		if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": ref})); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func open(t *testing.T, ref string) source.Source {
	t.Helper()
	src, err := OpenSource(ref, SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

func diffIDs(t *testing.T, img v1.Image) []digest.Digest {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	var out []digest.Digest
	for _, d := range cf.RootFS.DiffIDs {
		out = append(out, digest.Digest(d.String()))
	}
	return out
}

func TestPullRecords(t *testing.T) {
	forDrivers(t, func(t *testing.T, st *store.Store) {
		ctx := testCtx(t)
		img := randomImage(t, 3)
		dir := writeLayout(t, map[string]v1.Image{"v1": img})
		res, err := Pull(ctx, st, open(t, "oci:"+dir+":v1"), Options{Names: []string{"localhost/r:v1"}})
		if err != nil {
			t.Fatalf("Pull: %v", err)
		}
		cfgName, _ := img.ConfigName()
		mdig, _ := img.Digest()
		if res.ImageID != cfgName.Hex || res.Fetched != 3 || res.Reused != 0 {
			t.Fatalf("result %+v", res)
		}
		rec, err := st.Image(ctx, "localhost/r:v1")
		if err != nil {
			t.Fatal(err)
		}
		ids := LayerIDs(diffIDs(t, img))
		if rec.TopLayer != ids[2] || rec.Digest.String() != mdig.String() {
			t.Errorf("image top %s digest %s, want %s %s", rec.TopLayer, rec.Digest, ids[2], mdig)
		}
		want := map[string]bool{"manifest": true, "manifest-" + mdig.String(): true, cfgName.String(): true}
		for _, k := range rec.BigDataNames {
			delete(want, k)
		}
		if len(want) != 0 {
			t.Errorf("big data %v lacks %v", rec.BigDataNames, want)
		}
		m, _ := img.Manifest()
		for i, id := range ids {
			l, err := st.Layer(ctx, id)
			if err != nil {
				t.Fatalf("layer %d: %v", i, err)
			}
			if l.CompressedDigest.String() != m.Layers[i].Digest.String() || l.CompressedSize != m.Layers[i].Size ||
				l.UncompressedDigest != diffIDs(t, img)[i] || l.UncompressedSize <= 0 {
				t.Errorf("layer %d record %+v", i, l)
			}
			if i > 0 && l.Parent != ids[i-1] {
				t.Errorf("layer %d parent %s, want %s", i, l.Parent, ids[i-1])
			}
		}
		// A second pull reuses everything and fetches nothing.
		res, err = Pull(ctx, st, open(t, "oci:"+dir), Options{Names: []string{"localhost/r:again"}})
		if err != nil {
			t.Fatal(err)
		}
		if res.Reused != 3 || res.Bytes != 0 {
			t.Fatalf("re-pull %+v", res)
		}
		rec, _ = st.Image(ctx, res.ImageID)
		if len(rec.Names) != 2 {
			t.Errorf("names after re-pull %v", rec.Names)
		}
	})
}

// An image on top of a stored one fetches only its own layers; a layer
// whose content is stored under another chain is copied, not fetched.
func TestPullSharedLayers(t *testing.T) {
	forDrivers(t, func(t *testing.T, st *store.Store) {
		ctx := testCtx(t)
		base := randomImage(t, 2)
		top, err := mutate.AppendLayers(base, mustLayer(t))
		if err != nil {
			t.Fatal(err)
		}
		baseLayers, _ := base.Layers()
		other, err := mutate.AppendLayers(empty.Image, mustLayer(t), baseLayers[1])
		if err != nil {
			t.Fatal(err)
		}
		dir := writeLayout(t, map[string]v1.Image{"base": base, "top": top, "other": other})
		if _, err := Pull(ctx, st, open(t, "oci:"+dir+":base"), Options{}); err != nil {
			t.Fatal(err)
		}
		res, err := Pull(ctx, st, open(t, "oci:"+dir+":top"), Options{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Reused != 2 || res.Fetched != 1 {
			t.Fatalf("top: %+v", res)
		}
		res, err = Pull(ctx, st, open(t, "oci:"+dir+":other"), Options{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Fetched != 1 || res.Copied != 1 || res.Layers[1].How != HowCopied {
			t.Fatalf("other: %+v", res)
		}
		l, err := st.Layer(ctx, res.Layers[1].ID)
		if err != nil || l.UncompressedDigest != res.Layers[1].DiffID {
			t.Fatalf("copied layer %+v: %v", l, err)
		}
		// A copy is made from the stored layer's uncompressed diff, not from
		// the image's blob: its record describes that stream, as
		// containers/image's copy (PutLayer of a Diff, no OriginalDigest)
		// leaves it, not the blob digest and size it never read.
		if l.CompressedDigest != l.UncompressedDigest || l.CompressedSize != l.UncompressedSize ||
			l.CompressionType != int(archive.Uncompressed) {
			t.Errorf("copied layer records compressed %s (%d bytes, compression %d), want its diff %s (%d bytes, none)",
				l.CompressedDigest, l.CompressedSize, l.CompressionType, l.UncompressedDigest, l.UncompressedSize)
		}
		if res.Layers[1].Digest == res.Layers[1].DiffID {
			t.Fatal("the fixture's blob is not compressed: the check above proves nothing")
		}
		// The original keeps its blob digest and size.
		orig, err := st.Layer(ctx, LayerIDs(diffIDs(t, base))[1])
		if err != nil {
			t.Fatal(err)
		}
		if orig.CompressedDigest != res.Layers[1].Digest || orig.CompressedSize <= 0 || orig.CompressionType == int(archive.Uncompressed) {
			t.Errorf("original layer %+v", orig)
		}
	})
}

func mustLayer(t *testing.T) v1.Layer {
	t.Helper()
	ls, err := randomImage(t, 1).Layers()
	if err != nil {
		t.Fatal(err)
	}
	return ls[0]
}

// assertEmpty fails unless the store has no layers and no images.
func assertEmpty(t *testing.T, st *store.Store) {
	t.Helper()
	ctx := testCtx(t)
	ls, err := st.Layers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	imgs, err := st.Images(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 0 || len(imgs) != 0 {
		t.Fatalf("store keeps %d layers and %d images", len(ls), len(imgs))
	}
}

// A blob whose content is not its digest fails the pull with
// ErrDigestMismatch and leaves no layer or image.
func TestPullCorruptBlob(t *testing.T) {
	forDrivers(t, func(t *testing.T, st *store.Store) {
		img := randomImage(t, 3)
		dir := writeLayout(t, map[string]v1.Image{"v1": img})
		corruptBlob(t, dir, img, 2)
		_, err := Pull(testCtx(t), st, open(t, "oci:"+dir), Options{Jobs: 1})
		if !errors.Is(err, source.ErrDigestMismatch) {
			t.Fatalf("Pull of a corrupt blob: %v, want ErrDigestMismatch", err)
		}
		assertEmpty(t, st)
	})
}

// corruptBlob flips a byte in the middle of the blob of img's layer i in
// the layout dir.
func corruptBlob(t *testing.T, dir string, img v1.Image, i int) {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	d, err := ls[i].Digest()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "blobs", "sha256", d.Hex)
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// A diff ID in the config that does not match the content is caught too.
func TestPullWrongDiffID(t *testing.T) {
	st := openStore(t, "vfs")
	img := randomImage(t, 1)
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.RootFS.DiffIDs[0] = v1.Hash{Algorithm: "sha256", Hex: digest.FromString("x").Encoded()}
	img, err := mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	dir := writeLayout(t, map[string]v1.Image{"v1": img})
	if _, err := Pull(testCtx(t), st, open(t, "oci:"+dir), Options{}); !errors.Is(err, source.ErrDigestMismatch) {
		t.Fatalf("Pull with a wrong diff ID: %v", err)
	}
	assertEmpty(t, st)
}

// cancelAfter cancels the pull once some layer bytes were read.
type cancelAfter struct {
	cancel context.CancelFunc
	n      atomic.Int32
}

func (c *cancelAfter) Event(e Event) {
	if e.Kind == EventBytes && c.n.Add(1) == 1 {
		c.cancel()
	}
}

// A cancelled pull returns the context's error and leaves no layer.
func TestPullCancel(t *testing.T) {
	forDrivers(t, func(t *testing.T, st *store.Store) {
		img, err := random.Image(4<<20, 4)
		if err != nil {
			t.Fatal(err)
		}
		dir := writeLayout(t, map[string]v1.Image{"v1": img})
		ctx, cancel := context.WithCancel(testCtx(t))
		defer cancel()
		_, err = Pull(ctx, st, open(t, "oci:"+dir), Options{Jobs: 2, Progress: &cancelAfter{cancel: cancel}})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled Pull: %v", err)
		}
		assertEmpty(t, st)
	})
}

// Concurrent pulls of one image in one process fetch each layer once.
func TestPullConcurrentCoalesce(t *testing.T) {
	forDrivers(t, func(t *testing.T, st *store.Store) {
		img := randomImage(t, 4)
		dir := writeLayout(t, map[string]v1.Image{"v1": img})
		var wg sync.WaitGroup
		results := make([]*Result, 3)
		errs := make([]error, 3)
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i], errs[i] = Pull(testCtx(t), st, open(t, "oci:"+dir), Options{})
			}()
		}
		wg.Wait()
		fetched := 0
		for i, r := range results {
			if errs[i] != nil {
				t.Fatalf("pull %d: %v", i, errs[i])
			}
			fetched += r.Fetched
		}
		if fetched != 4 {
			t.Fatalf("%d layer fetches for a 4-layer image pulled 3 times at once", fetched)
		}
	})
}

// A multi-arch index yields the image for the requested platform.
func TestPullPlatform(t *testing.T) {
	st := openStore(t, "vfs")
	amd, arm := randomImage(t, 1), randomImage(t, 1)
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}},
	)
	dir := filepath.Join(t.TempDir(), "oci")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "multi"})); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		platform string
		want     v1.Image
	}{{"linux/arm64", arm}, {"linux/arm64/v8", arm}, {"linux/amd64", amd}} {
		plat, _ := source.ParsePlatform(tc.platform)
		src, err := OpenSource("oci:"+dir+":multi", SourceOptions{Platform: plat})
		if err != nil {
			t.Fatal(err)
		}
		res, err := Pull(testCtx(t), st, src, Options{})
		src.Close()
		if err != nil {
			t.Fatalf("%s: %v", tc.platform, err)
		}
		cfg, _ := tc.want.ConfigName()
		if res.ImageID != cfg.Hex {
			t.Errorf("%s: pulled %s, want %s", tc.platform, res.ImageID, cfg.Hex)
		}
		rec, _ := st.Image(testCtx(t), res.ImageID)
		idxDigest, _ := idx.Digest()
		if len(rec.Digests) != 2 || rec.Digests[1].String() != idxDigest.String() && rec.Digests[0].String() != idxDigest.String() {
			t.Errorf("%s: digests %v lack the index %s", tc.platform, rec.Digests, idxDigest)
		}
	}
	plat, _ := source.ParsePlatform("linux/s390x")
	src, _ := OpenSource("oci:"+dir+":multi", SourceOptions{Platform: plat})
	defer src.Close()
	if _, err := Pull(testCtx(t), st, src, Options{}); !errors.Is(err, source.ErrNoPlatform) {
		t.Fatalf("missing platform: %v", err)
	}
}

func TestLayerIDs(t *testing.T) {
	a := digest.FromString("a")
	b := digest.FromString("b")
	ids := LayerIDs([]digest.Digest{a, b})
	want1 := digest.FromString(a.Encoded() + "+" + b.Encoded()).Encoded()
	if ids[0] != a.Encoded() || ids[1] != want1 {
		t.Fatalf("LayerIDs = %v", ids)
	}
}

func TestNormalizeName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"hello", "docker.io/library/hello:latest"},
		{"user/app:1", "docker.io/user/app:1"},
		{"localhost/hello", "localhost/hello:latest"},
		{"127.0.0.1:5000/a/b:t", "127.0.0.1:5000/a/b:t"},
		{"quay.io/x/y@sha256:" + digest.FromString("x").Encoded(), "quay.io/x/y@sha256:" + digest.FromString("x").Encoded()},
		{"index.docker.io/library/busybox", "docker.io/library/busybox:latest"},
	} {
		got, err := NormalizeName(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("NormalizeName(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "docker://x", "UPPER/case", "a b"} {
		if _, err := NormalizeName(bad); err == nil {
			t.Errorf("NormalizeName(%q) accepted", bad)
		}
	}
}

// gatedSource holds back the blob of its last layer until gate is closed.
type gatedSource struct {
	source.Source
	last digest.Digest
	gate chan struct{}
}

func (g *gatedSource) Blob(ctx context.Context, l source.Layer) (io.ReadCloser, error) {
	if l.Digest == g.last {
		select {
		case <-g.gate:
		case <-time.After(20 * time.Second):
			return nil, errors.New("the base layer was not committed while the top layer waited")
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return g.Source.Blob(ctx, l)
}

// commitSeen closes gate when the base layer is committed.
type commitSeen struct {
	gate chan struct{}
	once sync.Once
}

func (c *commitSeen) Event(e Event) {
	if e.Kind == EventCommitted && e.Index == 0 {
		c.once.Do(func() { close(c.gate) })
	}
}

// On overlay, layers are committed while later ones are still being
// fetched: the top layer's blob is only served once the base layer is in
// the store.
func TestPullCommitsWhileFetching(t *testing.T) {
	st := openStore(t, "overlay")
	img := randomImage(t, 3)
	dir := writeLayout(t, map[string]v1.Image{"v1": img})
	src := open(t, "oci:"+dir)
	im, err := src.Image(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	gate := make(chan struct{})
	g := &gatedSource{Source: src, last: im.Layers[len(im.Layers)-1].Digest, gate: gate}
	res, err := Pull(testCtx(t), st, g, Options{Jobs: 4, Progress: &commitSeen{gate: gate}})
	if err != nil {
		t.Fatalf("Pull: %v", err)
	}
	if res.Fetched != 3 {
		t.Fatalf("fetched %d layers, want 3", res.Fetched)
	}
}

// A lock file left for a stored layer (its pull was killed after the
// commit) is removed by the next pull, which finds the layer stored.
func TestPullRemovesStaleLockOfStoredLayer(t *testing.T) {
	st := openStore(t, "vfs")
	img := randomImage(t, 2)
	dir := writeLayout(t, map[string]v1.Image{"v1": img})
	res, err := Pull(testCtx(t), st, open(t, "oci:"+dir), Options{})
	if err != nil {
		t.Fatal(err)
	}
	locks := filepath.Join(st.RunRoot(), "vfs-layers", "pull-locks")
	stale := filepath.Join(locks, res.Layers[0].ID+".lock")
	if err := os.MkdirAll(locks, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stale, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Pull(testCtx(t), st, open(t, "oci:"+dir), Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stale lock file of a stored layer still there: %v", err)
	}
}

// TestPullSavesImagesOnce: a pull without names writes images.json once
// (the record with its manifests and config: store.CreateImage with
// BigData), flushing the big-data items before images.json names the
// image.
func TestPullSavesImagesOnce(t *testing.T) {
	st := openStore(t, "vfs")
	ctx := testCtx(t)
	img := randomImage(t, 2)
	cfg, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	dir := writeLayout(t, map[string]v1.Image{"v1": img})
	src := open(t, "oci:"+dir+":v1")
	recorded := func() bool {
		b, err := os.ReadFile(filepath.Join(st.GraphRoot(), "vfs-images", "images.json"))
		return err == nil && strings.Contains(string(b), cfg.Hex)
	}
	var mu sync.Mutex
	var saves, items []string
	t.Cleanup(fsx.SetSyncHook(func(k fsx.SyncKind, p string) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case k == fsx.SyncFileData && strings.HasPrefix(filepath.Base(p), fsx.TempPrefix("images.json")):
			saves = append(saves, p)
		case k == fsx.SyncFileData && strings.HasSuffix(filepath.Dir(filepath.Dir(p)), "-images"):
			if recorded() {
				t.Errorf("big-data item %s flushed after images.json named the image", p)
			}
			items = append(items, p)
		}
	}))
	res, err := Pull(ctx, st, src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(saves) != 1 || len(items) != 3 {
		t.Errorf("images.json flushed %d times (want 1), big-data items %d (want 3: manifest-<digest>, manifest, config)", len(saves), len(items))
	}
	if keys, err := st.ListImageBigData(ctx, res.ImageID); err != nil || len(keys) != 3 {
		t.Errorf("big-data keys %v, %v", keys, err)
	}
}

// A pull's commits defer their last flush (the layer records' directory)
// and run them all before the image record is saved: each commit's own
// fsync of that directory (its tar-split's) comes before the next layer's
// record, and the deferred ones all come after the last layer record and
// before images.json names the image (a commit that waited for its own
// would fsync once per record instead).
func TestPullFinishesCommitsBeforeTheImage(t *testing.T) {
	forDrivers(t, func(t *testing.T, st *store.Store) {
		ctx := testCtx(t)
		const n = 4
		img := randomImage(t, n)
		dir := writeLayout(t, map[string]v1.Image{"v1": img})
		src := open(t, "oci:"+dir+":v1")
		layersDir := filepath.Join(st.GraphRoot(), st.GraphDriverName()+"-layers")
		records := func() int {
			var recs []json.RawMessage
			b, _ := os.ReadFile(filepath.Join(layersDir, "layers.json"))
			_ = json.Unmarshal(b, &recs)
			return len(recs)
		}
		var mu sync.Mutex
		var evs []string
		t.Cleanup(fsx.SetSyncHook(func(k fsx.SyncKind, p string) {
			mu.Lock()
			defer mu.Unlock()
			switch {
			case k == fsx.SyncDirectory && p == layersDir:
				evs = append(evs, fmt.Sprintf("layers-dir/%d", records()))
			case k == fsx.SyncFileData && strings.HasPrefix(filepath.Base(p), fsx.TempPrefix("images.json")):
				evs = append(evs, "images.json")
			}
		}))
		if _, err := Pull(ctx, st, src, Options{}); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		at := slices.Index(evs, "images.json")
		all := 0
		for _, e := range evs[:max(at, 0)] {
			if e == fmt.Sprintf("layers-dir/%d", n) {
				all++
			}
		}
		// n deferred fsyncs with every record in place (a commit that
		// waited for its own fsync leaves only the last one there).
		if at < 0 || all < n {
			t.Errorf("layer records' directory fsyncs (with the number of records then): %v; want %d with all %d records, before images.json", evs, n, n)
		}
	})
}

// A pull that fails after committing a layer deletes that layer again
// before it releases the layer's fetch lock (the lock is held at every
// save of layers.json the rollback makes): a pull
// waiting on the lock then finds the layer absent and fetches it, instead
// of reusing a layer that is about to be deleted. Releasing the locks of
// the commits whose last flush was deferred when that flush ran, before
// the rollback, fails this.
func TestPullRollbackBeforeReleasingFetchLocks(t *testing.T) {
	forDrivers(t, func(t *testing.T, st *store.Store) {
		ctx := testCtx(t)
		img := randomImage(t, 2)
		dir := writeLayout(t, map[string]v1.Image{"v1": img})
		corruptBlob(t, dir, img, 1)
		src := open(t, "oci:"+dir)
		im, err := src.Image(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// The corrupt blob is served only once the base layer is committed.
		gate := make(chan struct{})
		g := &gatedSource{Source: src, last: im.Layers[1].Digest, gate: gate}
		base := LayerIDs(diffIDs(t, img))[0]
		lockPath := filepath.Join(st.RunRoot(), st.GraphDriverName()+"-layers", "pull-locks", base+".lock")
		layersDir := filepath.Join(st.GraphRoot(), st.GraphDriverName()+"-layers")
		var mu sync.Mutex
		var saves []string // "with" or "without" the base layer; "+free" if its fetch lock was free
		t.Cleanup(fsx.SetSyncHook(func(k fsx.SyncKind, p string) {
			if k != fsx.SyncFileData || filepath.Dir(p) != layersDir || !strings.HasPrefix(filepath.Base(p), fsx.TempPrefix("layers.json")) {
				return
			}
			b, err := os.ReadFile(p)
			if err != nil {
				t.Errorf("reading %s: %v", p, err)
				return
			}
			e := "without"
			if strings.Contains(string(b), base) {
				e = "with"
			}
			switch h, err := lockfile.TryLock(lockPath); {
			case err == nil:
				e += "+free"
				_ = h.Remove()
			case !errors.Is(err, lockfile.ErrLocked):
				t.Errorf("trying the fetch lock: %v", err)
			}
			mu.Lock()
			saves = append(saves, e)
			mu.Unlock()
		}))
		_, err = Pull(ctx, st, g, Options{Jobs: 2, Progress: &commitSeen{gate: gate}})
		if !errors.Is(err, source.ErrDigestMismatch) {
			t.Fatalf("Pull with a corrupt top layer: %v, want ErrDigestMismatch", err)
		}
		mu.Lock()
		got := slices.Clone(saves)
		mu.Unlock()
		// The base layer was committed (the gate opened), then deleted by
		// the rollback (a save without it).
		select {
		case <-gate:
		default:
			t.Fatal("the base layer was never committed")
		}
		if !slices.Contains(got, "without") && !slices.Contains(got, "without+free") {
			t.Fatalf("layers.json saves %v: none drops the base layer", got)
		}
		for _, e := range got {
			if strings.HasSuffix(e, "+free") {
				t.Fatalf("layers.json saves %v: the base layer's fetch lock was free at a save (a waiting pull could reuse a layer being deleted)", got)
			}
		}
		assertEmpty(t, st)
		h, err := lockfile.TryLock(lockPath)
		if err != nil {
			t.Fatalf("the base layer's fetch lock after the pull: %v", err)
		}
		_ = h.Remove()
	})
}

// imagesSaves runs fn and returns how many times images.json was saved
// meanwhile (flushes of its temp files).
func imagesSaves(t *testing.T, fn func()) int {
	t.Helper()
	var n atomic.Int32
	restore := fsx.SetSyncHook(func(k fsx.SyncKind, p string) {
		if k == fsx.SyncFileData && strings.HasPrefix(filepath.Base(p), fsx.TempPrefix("images.json")) {
			n.Add(1)
		}
	})
	defer restore()
	fn()
	return int(n.Load())
}

// A pull that names the image saves images.json once, the record having
// its names and names history as a creation followed by AddNames leaves
// them (a name another image has moves, that image keeps its history).
func TestPullNamedSavesImagesOnce(t *testing.T) {
	st := openStore(t, "vfs")
	ctx := testCtx(t)
	a, b := randomImage(t, 1), randomImage(t, 1)
	dir := writeLayout(t, map[string]v1.Image{"a": a, "b": b})
	pull := func(ref string, names ...string) *Result {
		t.Helper()
		var res *Result
		saves := imagesSaves(t, func() {
			var err error
			if res, err = Pull(ctx, st, open(t, "oci:"+dir+":"+ref), Options{Names: names}); err != nil {
				t.Fatalf("Pull %s: %v", ref, err)
			}
		})
		if saves != 1 {
			t.Errorf("pull of %s named %v saved images.json %d times, want 1", ref, names, saves)
		}
		return res
	}
	const tag, other = "localhost/x:tag", "localhost/x:other"
	ra := pull("a", tag)
	rb := pull("b", tag, other)
	for _, tc := range []struct {
		id             string
		names, history []string
	}{
		{ra.ImageID, nil, []string{tag}},
		{rb.ImageID, []string{tag, other}, []string{other, tag}},
	} {
		rec, err := st.Image(ctx, tc.id)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(rec.Names, tc.names) || !slices.Equal(rec.NamesHistory, tc.history) {
			t.Errorf("image %s: names %v history %v; want %v %v", tc.id, rec.Names, rec.NamesHistory, tc.names, tc.history)
		}
	}
}

// Pulling an image that is stored again saves images.json once when it
// adds a name or a manifest, and not at all when the image has them all;
// an item whose file was damaged is written again.
func TestPullAgainSavesImagesOnce(t *testing.T) {
	st := openStore(t, "vfs")
	ctx := testCtx(t)
	img := randomImage(t, 2)
	dir := writeLayout(t, map[string]v1.Image{"v1": img})
	const first, second = "localhost/r:1", "localhost/r:2"
	var id string
	for _, tc := range []struct {
		what   string
		names  []string
		damage bool
		saves  int
	}{
		{"first pull", []string{first}, false, 1},
		{"same name", []string{first}, false, 0},
		{"no name", nil, false, 0},
		{"new name", []string{second}, false, 1},
		{"damaged manifest", nil, true, 1},
	} {
		if tc.damage {
			p := filepath.Join(st.GraphRoot(), "vfs-images", id, "manifest")
			if err := os.WriteFile(p, []byte("{}"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		saves := imagesSaves(t, func() {
			res, err := Pull(ctx, st, open(t, "oci:"+dir+":v1"), Options{Names: tc.names})
			if err != nil {
				t.Fatalf("%s: %v", tc.what, err)
			}
			id = res.ImageID
		})
		if saves != tc.saves {
			t.Errorf("%s: images.json saved %d times, want %d", tc.what, saves, tc.saves)
		}
	}
	rec, err := st.Image(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rec.Names, []string{second, first}) || !slices.Equal(rec.NamesHistory, []string{first, second}) {
		t.Errorf("names %v history %v", rec.Names, rec.NamesHistory)
	}
	m, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	if got, err := st.ImageBigData(ctx, id, "manifest"); err != nil || string(got) != string(m) {
		t.Errorf("manifest after the repairing pull: %q, %v", got, err)
	}
	if len(rec.BigDataNames) != 3 {
		t.Errorf("big-data keys %v", rec.BigDataNames)
	}
}

// onEvent runs fn at the first event of kind on layer index (Progress
// calls are synchronous: the pull waits for fn).
type onEvent struct {
	kind  EventKind
	index int
	fn    func()
	once  sync.Once
}

func (o *onEvent) Event(e Event) {
	if e.Kind == o.kind && e.Index == o.index {
		o.once.Do(o.fn)
	}
}

// countingSource counts the blob reads of each layer digest.
type countingSource struct {
	source.Source
	mu sync.Mutex
	n  map[digest.Digest]int
}

func (c *countingSource) Blob(ctx context.Context, l source.Layer) (io.ReadCloser, error) {
	c.mu.Lock()
	if c.n == nil {
		c.n = map[digest.Digest]int{}
	}
	c.n[l.Digest]++
	c.mu.Unlock()
	return c.Source.Blob(ctx, l)
}

// deleteImage deletes image id and the layers only it used (what a failed
// pull's rollback does to the layers it committed).
func deleteImage(t *testing.T, st *store.Store, id string) {
	t.Helper()
	removed, err := st.DeleteImage(testCtx(t), id, true)
	if err != nil || len(removed) == 0 {
		t.Errorf("deleting image %s: removed %v, %v", id, removed, err)
	}
}

// assertChain fails unless image id is stored on the chain ids (base
// first), every layer complete, and no other layer is stored.
func assertChain(t *testing.T, st *store.Store, id string, ids []string) {
	t.Helper()
	ctx := testCtx(t)
	rec, err := st.Image(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if rec.TopLayer != ids[len(ids)-1] {
		t.Fatalf("image top layer %s, want %s", rec.TopLayer, ids[len(ids)-1])
	}
	for i := len(ids) - 1; i >= 0; i-- {
		l, err := st.Layer(ctx, ids[i])
		if err != nil {
			t.Fatalf("layer %d of the image: %v", i, err)
		}
		want := ""
		if i > 0 {
			want = ids[i-1]
		}
		if l.Parent != want || l.Flags[layer.IncompleteFlag] != nil {
			t.Fatalf("layer %d: parent %q (want %q), flags %v", i, l.Parent, want, l.Flags)
		}
	}
	ls, err := st.Layers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != len(ids) {
		t.Fatalf("%d layers stored, want the image's %d", len(ls), len(ids))
	}
}

// A layer the pull found stored and reused, deleted before the pull commits
// a layer on it (another pull's rollback, between this pull's look at the
// store and its commit), makes the pull plan again and fetch it: the pull
// succeeds with the whole chain stored. Without the retry it fails with
// store.ErrParentUnknown.
func TestPullRetriesWhenReusedParentVanishes(t *testing.T) {
	forDrivers(t, func(t *testing.T, st *store.Store) {
		ctx := testCtx(t)
		base := randomImage(t, 2)
		top, err := mutate.AppendLayers(base, mustLayer(t))
		if err != nil {
			t.Fatal(err)
		}
		dir := writeLayout(t, map[string]v1.Image{"base": base, "top": top})
		rb, err := Pull(ctx, st, open(t, "oci:"+dir+":base"), Options{})
		if err != nil {
			t.Fatal(err)
		}
		// Layers 0 and 1 are found stored; once layer 1 is reused (before
		// layer 2 is fetched), they are deleted.
		prog := &onEvent{kind: EventReused, index: 1, fn: func() { deleteImage(t, st, rb.ImageID) }}
		src := &countingSource{Source: open(t, "oci:"+dir+":top")}
		res, err := Pull(ctx, st, src, Options{Progress: prog})
		if err != nil {
			t.Fatalf("Pull after its reused layers were deleted: %v", err)
		}
		if res.Fetched != 3 || res.Reused != 0 {
			t.Errorf("result %+v: want 3 layers fetched (the final attempt's counts)", res)
		}
		assertChain(t, st, res.ImageID, LayerIDs(diffIDs(t, top)))
		im, err := src.Image(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// Layer 2 may have been fetched by the failed attempt too (its
		// commit failed), layers 0 and 1 only by the retry.
		src.mu.Lock()
		defer src.mu.Unlock()
		if n := src.n[im.Layers[0].Digest] + src.n[im.Layers[1].Digest]; n != 2 {
			t.Errorf("layers 0 and 1 fetched %d times in all, want once each", n)
		}
	})
}

// An image whose layers were all found stored, its top layer deleted
// before the image is recorded, is pulled again: the image creation's
// store.ErrLayerUnknown is retried.
func TestPullRetriesWhenReusedTopLayerVanishes(t *testing.T) {
	forDrivers(t, func(t *testing.T, st *store.Store) {
		ctx := testCtx(t)
		img := randomImage(t, 3)
		// Another image (another config) on the same layers.
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		cf = cf.DeepCopy()
		cf.Author = "another"
		other, err := mutate.ConfigFile(img, cf)
		if err != nil {
			t.Fatal(err)
		}
		dir := writeLayout(t, map[string]v1.Image{"v1": img, "other": other})
		ro, err := Pull(ctx, st, open(t, "oci:"+dir+":other"), Options{})
		if err != nil {
			t.Fatal(err)
		}
		prog := &onEvent{kind: EventReused, index: 2, fn: func() { deleteImage(t, st, ro.ImageID) }}
		res, err := Pull(ctx, st, open(t, "oci:"+dir+":v1"), Options{Progress: prog, Names: []string{"localhost/r:v1"}})
		if err != nil {
			t.Fatalf("Pull after its reused layers were deleted: %v", err)
		}
		if res.Fetched != 3 || res.Reused != 0 || len(res.Layers) != 3 {
			t.Errorf("result %+v: want 3 layers fetched", res)
		}
		assertChain(t, st, res.ImageID, LayerIDs(diffIDs(t, img)))
		if rec, err := st.Image(ctx, "localhost/r:v1"); err != nil || rec.ID != res.ImageID {
			t.Errorf("the image's name: %v, %v", rec, err)
		}
	})
}

// A layer copied from a stored layer with the same diff ID, that layer
// deleted before its diff is read: the pull plans again, keeping the layer
// it committed (with its fetch lock held, and counted as fetched) and
// fetching the other. When the retry then fails for another reason (a
// corrupt blob), that is not retried and the rollback deletes the layer
// the first attempt committed, before its fetch lock is released. vfs
// only: there the base layer is committed before the copy starts.
func TestPullRetriesWhenCopySourceVanishes(t *testing.T) {
	for _, corrupt := range []bool{false, true} {
		t.Run(fmt.Sprintf("corrupt=%v", corrupt), func(t *testing.T) {
			st := openStore(t, "vfs")
			ctx := testCtx(t)
			shared := mustLayer(t)
			x, err := mutate.AppendLayers(empty.Image, mustLayer(t), shared)
			if err != nil {
				t.Fatal(err)
			}
			y, err := mutate.AppendLayers(empty.Image, mustLayer(t), shared)
			if err != nil {
				t.Fatal(err)
			}
			dirX := writeLayout(t, map[string]v1.Image{"x": x})
			dirY := writeLayout(t, map[string]v1.Image{"y": y})
			if corrupt {
				corruptBlob(t, dirY, y, 1)
			}
			rx, err := Pull(ctx, st, open(t, "oci:"+dirX), Options{})
			if err != nil {
				t.Fatal(err)
			}
			ids := LayerIDs(diffIDs(t, y))
			lockPath := filepath.Join(st.RunRoot(), "vfs-layers", "pull-locks", ids[0]+".lock")
			var baseLock []error // the base layer's fetch lock, tried at each fetch of layer 1
			prog := &onEvent{kind: EventCopy, index: 1, fn: func() { deleteImage(t, st, rx.ImageID) }}
			src := &countingSource{Source: open(t, "oci:"+dirY)}
			im, err := src.Image(ctx)
			if err != nil {
				t.Fatal(err)
			}
			res, err := Pull(ctx, st, src, Options{Progress: progressFunc(func(e Event) {
				prog.Event(e)
				if e.Kind == EventFetch && e.Index == 1 {
					h, err := lockfile.TryLock(lockPath)
					if err == nil {
						_ = h.Remove()
					}
					baseLock = append(baseLock, err)
				}
			})})
			if len(baseLock) != 1 || !errors.Is(baseLock[0], lockfile.ErrLocked) {
				t.Errorf("the base layer's fetch lock at the retry's fetch of layer 1: %v, want held", baseLock)
			}
			src.mu.Lock()
			fetches := src.n[im.Layers[1].Digest]
			src.mu.Unlock()
			if fetches != 1 {
				t.Errorf("layer 1 fetched %d times, want once (the retry's)", fetches)
			}
			if corrupt {
				if !errors.Is(err, source.ErrDigestMismatch) {
					t.Fatalf("Pull: %v, want ErrDigestMismatch", err)
				}
				assertEmpty(t, st)
				h, err := lockfile.TryLock(lockPath)
				if err != nil {
					t.Fatalf("the base layer's fetch lock after the pull: %v", err)
				}
				_ = h.Remove()
				return
			}
			if err != nil {
				t.Fatalf("Pull after the copy's source was deleted: %v", err)
			}
			if res.Fetched != 2 || res.Copied != 0 || res.Reused != 0 || res.Layers[0].How != HowFetched || res.Layers[0].Bytes <= 0 {
				t.Errorf("result %+v: want both layers fetched (layer 0 by the first attempt)", res)
			}
			assertChain(t, st, res.ImageID, ids)
		})
	}
}

type progressFunc func(Event)

func (f progressFunc) Event(e Event) { f(e) }
