package store

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The error texts below are the ones containers/storage prints and the
// upstream bats suites match; the sentinels stay reachable with errors.Is.
func TestMissingItemAndUnknownIDErrors(t *testing.T) {
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
	_, ierr := s.ImageBigData(ctx, img.ID, "nokey")
	_, cerr := s.ContainerBigData(ctx, c.ID, "nokey")
	_, lerr := s.LayerBigData(ctx, l.ID, "nokey")
	for _, tc := range []struct {
		err      error
		kind, id string
	}{{ierr, "image", img.ID}, {cerr, "container", c.ID}, {lerr, "layer", l.ID}} {
		want := fmt.Sprintf("locating item named %q for %s with ID %q: file does not exist", "nokey", tc.kind, tc.id)
		if tc.err == nil || tc.err.Error() != want {
			t.Errorf("%s data: got %v, want %q", tc.kind, tc.err, want)
		}
		if !errors.Is(tc.err, fs.ErrNotExist) {
			t.Errorf("%s data: %v is not fs.ErrNotExist", tc.kind, tc.err)
		}
	}
	err = s.SetMetadata(ctx, "nosuch", "x")
	if !errors.Is(err, ErrNotAnID) || err.Error() != "identifier is not a layer, image, or container" {
		t.Errorf("SetMetadata(unknown): %v", err)
	}
	if _, err := s.Metadata(ctx, "nosuch"); !errors.Is(err, ErrNotAnID) {
		t.Errorf("Metadata(unknown): %v", err)
	}
}

// Every layer-store save rewrites mountpoints.json with a new token in
// mountpoints.lock (store-format §2.6).
func TestLayerSaveRewritesMountpoints(t *testing.T) {
	s, opts := openTest(t)
	ctx := testCtx(t)
	lockPath := filepath.Join(opts.RunRoot, "vfs-layers", "mountpoints.lock")
	jsonPath := filepath.Join(opts.RunRoot, "vfs-layers", "mountpoints.json")
	before, _ := os.ReadFile(lockPath)
	l, err := s.CreateLayer(ctx, LayerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	after, err := os.ReadFile(lockPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) == 0 || bytes.Equal(before, after) {
		t.Errorf("mountpoints.lock token not rewritten: before %q after %q", before, after)
	}
	if data, err := os.ReadFile(jsonPath); err != nil || strings.TrimSpace(string(data)) != "[]" {
		t.Errorf("mountpoints.json: %q %v, want []", data, err)
	}
	if err := s.SetMetadata(ctx, l.ID, "m"); err != nil {
		t.Fatal(err)
	}
	again, _ := os.ReadFile(lockPath)
	if bytes.Equal(again, after) {
		t.Error("a metadata save did not rewrite mountpoints.lock's token")
	}
}

// A Shutdown by another store object (process) moves storage.lock's token;
// the next layer operation here re-creates the driver object (spec §2.5),
// and operations without a shutdown in between keep it.
func TestDriverRecreatedAfterForeignShutdown(t *testing.T) {
	s, opts := openTest(t)
	ctx := testCtx(t)
	first := s.graphDriver()
	if _, err := s.CreateLayer(ctx, LayerOptions{}); err != nil {
		t.Fatal(err)
	}
	if s.graphDriver() != first {
		t.Fatal("driver re-created without a shutdown")
	}
	other, err := Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Shutdown(ctx, false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateLayer(ctx, LayerOptions{}); err != nil {
		t.Fatal(err)
	}
	second := s.graphDriver()
	if second == first {
		t.Fatal("driver not re-created after another store's Shutdown")
	}
	if _, err := s.Mount(ctx, mustLayerID(t, s), MountOptions{}); err != nil {
		t.Fatal(err)
	}
	if s.graphDriver() != second {
		t.Error("driver re-created again without a new shutdown")
	}
}

func mustLayerID(t *testing.T, s *Store) string {
	t.Helper()
	ls, err := s.Layers(testCtx(t))
	if err != nil || len(ls) == 0 {
		t.Fatalf("layers: %v %v", ls, err)
	}
	return ls[0].ID
}
