package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/stowage/stowage/internal/fsx"
)

// TestCreateImageOneSave: creating an image with big-data items (as a
// pull does: manifests and the config) flushes images.json once, after
// every item's file and the items' directory were flushed, and images.json
// is renamed only then (at every flush of an item, images.json on disk does
// not name the image yet). The record is what containers/storage writes
// (sizes, digests, names in order; a repeated key keeps its last value).
func TestCreateImageOneSave(t *testing.T) {
	s, opts := openTest(t)
	ctx := testCtx(t)
	base, err := s.CreateLayer(ctx, LayerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const id = "1111111111111111111111111111111111111111111111111111111111111111"
	imagesDir := filepath.Join(opts.GraphRoot, "vfs-images")
	dataDir := filepath.Join(imagesDir, id)
	recorded := func() bool {
		b, err := os.ReadFile(filepath.Join(imagesDir, "images.json"))
		return err == nil && bytes.Contains(b, []byte(id))
	}
	type ev struct {
		kind     fsx.SyncKind
		path     string
		recorded bool
	}
	var mu sync.Mutex
	var evs []ev
	t.Cleanup(fsx.SetSyncHook(func(k fsx.SyncKind, p string) {
		r := recorded()
		mu.Lock()
		evs = append(evs, ev{k, p, r})
		mu.Unlock()
	}))
	manifest := []byte(`{"schemaVersion":2}`)
	md := digest.FromBytes(manifest)
	config := []byte(`{"architecture":"amd64"}`)
	cd := digest.FromBytes(config)
	items := []BigDataItem{
		{Key: "manifest-" + md.String(), Data: manifest, Digest: md},
		{Key: "manifest", Data: []byte("old"), Digest: md},
		{Key: "manifest", Data: manifest, Digest: md},
		{Key: cd.String(), Data: config}, // digest computed
	}
	if _, err := s.CreateImage(ctx, ImageOptions{ID: id, TopLayer: base.ID, Digest: md, BigData: items}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	got := evs
	mu.Unlock()
	saves, itemSyncs, dataDirSyncs := 0, 0, 0
	for _, e := range got {
		switch {
		case e.kind == fsx.SyncFileData && strings.HasPrefix(filepath.Base(e.path), fsx.TempPrefix("images.json")):
			saves++
		case e.kind == fsx.SyncFileData && filepath.Dir(e.path) == dataDir:
			itemSyncs++
			if e.recorded {
				t.Errorf("item %s flushed after images.json named the image", e.path)
			}
		case e.kind == fsx.SyncDirectory && e.path == dataDir:
			dataDirSyncs++
			if e.recorded {
				t.Errorf("big-data dir flushed after images.json named the image")
			}
		}
	}
	if saves != 1 || itemSyncs != 3 || dataDirSyncs != 1 {
		t.Errorf("images.json flushed %d times (want 1), items %d (want 3), their dir %d (want 1): %v", saves, itemSyncs, dataDirSyncs, got)
	}
	if !recorded() {
		t.Fatal("images.json does not name the image")
	}
	var recs []struct {
		ID             string                   `json:"id"`
		Digest         digest.Digest            `json:"digest"`
		BigDataNames   []string                 `json:"big-data-names"`
		BigDataSizes   map[string]int64         `json:"big-data-sizes"`
		BigDataDigests map[string]digest.Digest `json:"big-data-digests"`
	}
	b, err := os.ReadFile(filepath.Join(imagesDir, "images.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &recs); err != nil || len(recs) != 1 {
		t.Fatalf("images.json: %v, %d records", err, len(recs))
	}
	r := recs[0]
	wantNames := []string{"manifest-" + md.String(), "manifest", cd.String()}
	if strings.Join(r.BigDataNames, ",") != strings.Join(wantNames, ",") {
		t.Errorf("big-data-names %v, want %v", r.BigDataNames, wantNames)
	}
	if r.BigDataSizes["manifest"] != int64(len(manifest)) || r.BigDataDigests["manifest"] != md || r.BigDataDigests[cd.String()] != cd {
		t.Errorf("sizes %v digests %v", r.BigDataSizes, r.BigDataDigests)
	}
	for key, want := range map[string][]byte{"manifest": manifest, cd.String(): config} {
		data, err := s.ImageBigData(ctx, id, key)
		if err != nil || !bytes.Equal(data, want) {
			t.Errorf("item %s: %q, %v; want %q", key, data, err, want)
		}
	}
	if imgs, err := s.ImagesByDigest(ctx, md); err != nil || len(imgs) != 1 {
		t.Errorf("ImagesByDigest(%s): %d images, %v", md, len(imgs), err)
	}
}

// TestCreateImageBigDataFails: when an item cannot be written, the image
// is not recorded (in memory or on disk) and its data dir is gone.
func TestCreateImageBigDataFails(t *testing.T) {
	s, opts := openTest(t)
	ctx := testCtx(t)
	const id = "2222222222222222222222222222222222222222222222222222222222222222"
	dataDir := filepath.Join(opts.GraphRoot, "vfs-images", id)
	// A file where the data dir goes: the items cannot be written.
	if err := os.WriteFile(dataDir, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := s.CreateImage(ctx, ImageOptions{ID: id, BigData: []BigDataItem{{Key: "manifest", Data: []byte("{}")}}})
	if err == nil {
		t.Fatal("CreateImage succeeded with an unwritable data dir")
	}
	if _, err := s.Image(ctx, id); !errors.Is(err, ErrImageUnknown) {
		t.Errorf("Image after failed create: %v, want ErrImageUnknown", err)
	}
	if b, err := os.ReadFile(filepath.Join(opts.GraphRoot, "vfs-images", "images.json")); err == nil && bytes.Contains(b, []byte(id)) {
		t.Errorf("images.json names the image: %s", b)
	}
	if _, err := os.Lstat(dataDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("data dir left behind: %v", err)
	}
	// An invalid key is refused before anything is written.
	if _, err := s.CreateImage(ctx, ImageOptions{ID: id, BigData: []BigDataItem{{Key: "", Data: []byte("{}")}}}); !errors.Is(err, ErrInvalidBigDataName) {
		t.Errorf("empty key: %v, want ErrInvalidBigDataName", err)
	}
	if _, err := s.Image(ctx, id); !errors.Is(err, ErrImageUnknown) {
		t.Errorf("Image after refused create: %v", err)
	}
}

// BenchmarkCreateImageBigData times creating an image with a pull's four
// big-data items (run with TMPDIR on the file system of interest).
func BenchmarkCreateImageBigData(b *testing.B) {
	dir := b.TempDir()
	s, err := Open(context.Background(), Options{GraphRoot: filepath.Join(dir, "root"), RunRoot: filepath.Join(dir, "run"), GraphDriverName: "vfs"})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	manifest := bytes.Repeat([]byte("m"), 2000)
	config := bytes.Repeat([]byte("c"), 5000)
	items := []BigDataItem{
		{Key: "manifest-sha256:" + strings.Repeat("1", 64), Data: manifest},
		{Key: "manifest-sha256:" + strings.Repeat("2", 64), Data: manifest},
		{Key: "manifest", Data: manifest},
		{Key: "sha256:" + strings.Repeat("3", 64), Data: config},
	}
	b.ResetTimer()
	for range b.N {
		if _, err := s.CreateImage(ctx, ImageOptions{BigData: items}); err != nil {
			b.Fatal(err)
		}
	}
}

// imagesSaves runs fn and returns how many times an images.json was
// saved meanwhile (flushes of its temp files).
func imagesSaves(t *testing.T, fn func()) int {
	t.Helper()
	var mu sync.Mutex
	n := 0
	restore := fsx.SetSyncHook(func(k fsx.SyncKind, p string) {
		if k == fsx.SyncFileData && strings.HasPrefix(filepath.Base(p), fsx.TempPrefix("images.json")) {
			mu.Lock()
			n++
			mu.Unlock()
		}
	})
	defer restore()
	fn()
	mu.Lock()
	defer mu.Unlock()
	return n
}

// assertImageNames fails unless the image has these names and names
// history, in memory and in images.json (read by a fresh store).
func assertImageNames(t *testing.T, s *Store, opts Options, id string, names, history []string) {
	t.Helper()
	ctx := testCtx(t)
	fresh, err := Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	for what, st := range map[string]*Store{"in memory": s, "on disk": fresh} {
		img, err := st.Image(ctx, id)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if !slices.Equal(img.Names, names) || !slices.Equal(img.NamesHistory, history) {
			t.Errorf("%s: image %.12s has names %v history %v; want %v %v", what, id, img.Names, img.NamesHistory, names, history)
		}
	}
}

// TestCreateImageMoveNames: with MoveNames the names move from the images
// that have them and enter the new image's names history, in one save, as
// CreateImage then AddNames would leave them; when the save fails the
// other images get their names back.
func TestCreateImageMoveNames(t *testing.T) {
	s, opts := openTest(t)
	ctx := testCtx(t)
	const a, b, c = "aaaa111111111111111111111111111111111111111111111111111111111111", "bbbb111111111111111111111111111111111111111111111111111111111111", "cccc111111111111111111111111111111111111111111111111111111111111"
	if _, err := s.CreateImage(ctx, ImageOptions{ID: a, Names: []string{"x:1", "x:2"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateImage(ctx, ImageOptions{ID: b, Names: []string{"x:2"}}); !errors.Is(err, ErrDuplicateName) {
		t.Fatalf("a taken name without MoveNames: %v, want ErrDuplicateName", err)
	}
	items := []BigDataItem{{Key: "manifest", Data: []byte("{}")}}
	saves := imagesSaves(t, func() {
		if _, err := s.CreateImage(ctx, ImageOptions{ID: b, Names: []string{"x:2", "x:3"}, MoveNames: true, BigData: items}); err != nil {
			t.Fatal(err)
		}
	})
	if saves != 1 {
		t.Errorf("images.json saved %d times, want 1", saves)
	}
	assertImageNames(t, s, opts, a, []string{"x:1"}, nil)
	assertImageNames(t, s, opts, b, []string{"x:2", "x:3"}, []string{"x:3", "x:2"})
	// A file where c's data dir goes: the save fails, b keeps its names.
	if err := os.WriteFile(filepath.Join(opts.GraphRoot, "vfs-images", c), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateImage(ctx, ImageOptions{ID: c, Names: []string{"x:3"}, MoveNames: true, BigData: items}); err == nil {
		t.Fatal("CreateImage succeeded with an unwritable data dir")
	}
	if _, err := s.Image(ctx, c); !errors.Is(err, ErrImageUnknown) {
		t.Errorf("image after the failed create: %v", err)
	}
	assertImageNames(t, s, opts, b, []string{"x:2", "x:3"}, []string{"x:3", "x:2"})
}

// TestUpdateImage: items and names are added in one save; items and names
// the image already has change nothing (no save); a damaged item's file is
// written again; names move from other images as with AddNames.
func TestUpdateImage(t *testing.T) {
	s, opts := openTest(t)
	ctx := testCtx(t)
	const a, b = "aaaa222222222222222222222222222222222222222222222222222222222222", "bbbb222222222222222222222222222222222222222222222222222222222222"
	manifest := []byte(`{"schemaVersion":2}`)
	md := digest.FromBytes(manifest)
	config := []byte(`{"architecture":"amd64"}`)
	items := []BigDataItem{
		{Key: "manifest-" + md.String(), Data: manifest, Digest: md},
		{Key: "manifest", Data: manifest, Digest: md},
		{Key: digest.FromBytes(config).String(), Data: config},
	}
	if _, err := s.CreateImage(ctx, ImageOptions{ID: a, Names: []string{"x:1"}, BigData: items[:1]}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateImage(ctx, ImageOptions{ID: b, Names: []string{"x:2"}}); err != nil {
		t.Fatal(err)
	}
	update := func(what string, u ImageUpdate, want int) {
		t.Helper()
		saves := imagesSaves(t, func() {
			if err := s.UpdateImage(ctx, a, u); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
		})
		if saves != want {
			t.Errorf("%s: images.json saved %d times, want %d", what, saves, want)
		}
	}
	update("new items and a name", ImageUpdate{BigData: items, AddNames: []string{"x:2"}}, 1)
	update("the same again", ImageUpdate{BigData: items, AddNames: []string{"x:2", "x:1"}}, 0)
	update("nothing", ImageUpdate{}, 0)
	assertImageNames(t, s, opts, a, []string{"x:2", "x:1"}, []string{"x:1", "x:2"})
	assertImageNames(t, s, opts, b, nil, nil)
	img, err := s.Image(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if len(img.BigDataNames) != 3 || img.BigDataSizes["manifest"] != int64(len(manifest)) || !slices.Contains(img.Digests, md) {
		t.Errorf("record %+v", img)
	}
	p := filepath.Join(opts.GraphRoot, "vfs-images", a, "manifest")
	if err := os.WriteFile(p, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	update("a damaged item", ImageUpdate{BigData: items}, 1)
	if got, err := s.ImageBigData(ctx, a, "manifest"); err != nil || !bytes.Equal(got, manifest) {
		t.Errorf("manifest after the update: %q, %v", got, err)
	}
	if err := s.UpdateImage(ctx, "nosuch", ImageUpdate{AddNames: []string{"x:9"}}); !errors.Is(err, ErrImageUnknown) {
		t.Errorf("unknown image: %v", err)
	}
	if err := s.UpdateImage(ctx, a, ImageUpdate{BigData: []BigDataItem{{Key: "", Data: manifest}}}); !errors.Is(err, ErrInvalidBigDataName) {
		t.Errorf("empty key: %v", err)
	}
}
