package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/opencontainers/go-digest"
)

func TestPutLayerImageContainerFlow(t *testing.T) {
	s, opts := openTest(t)
	ctx := testCtx(t)
	blob := makeTar(t, map[string]string{"hello.txt": "hello\n"})
	l, err := s.PutLayer(ctx, bytes.NewReader(blob), LayerOptions{Names: []string{"base"}, ReadOnly: true})
	if err != nil {
		t.Fatalf("PutLayer: %v", err)
	}
	want := digest.FromBytes(blob)
	if l.UncompressedDigest != want || l.UncompressedSize != int64(len(blob)) || l.CompressedDigest != want {
		t.Fatalf("digests: got %+v, want %s size %d", l, want, len(blob))
	}
	if _, ok := l.Flags["incomplete"]; ok {
		t.Fatalf("layer still incomplete: %v", l.Flags)
	}
	if _, err := os.Stat(filepath.Join(opts.GraphRoot, "vfs-layers", l.ID+".tar-split.gz")); err != nil {
		t.Fatalf("tar-split: %v", err)
	}
	got, err := os.ReadFile(filepath.Join(opts.GraphRoot, "vfs", "dir", l.ID, "hello.txt"))
	if err != nil || string(got) != "hello\n" {
		t.Fatalf("layer content: %q %v", got, err)
	}
	// Bit-identical diff through the tar-split.
	rc, err := s.Diff(ctx, "", l.ID, DiffOptions{})
	if err != nil {
		t.Fatalf("Diff: %v", err)
	}
	diff, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(diff, blob) {
		t.Fatalf("Diff differs from the original (%d vs %d bytes): %v", len(diff), len(blob), err)
	}
	var direct bytes.Buffer
	if err := s.DiffTo(ctx, &direct, "", l.ID, DiffOptions{}); err != nil || !bytes.Equal(direct.Bytes(), blob) {
		t.Fatalf("DiffTo differs from the original (%d vs %d bytes): %v", direct.Len(), len(blob), err)
	}
	if err := s.DiffTo(ctx, io.Discard, "", "no-such-layer", DiffOptions{}); !errors.Is(err, ErrLayerUnknown) {
		t.Fatalf("DiffTo of an unknown layer: %v", err)
	}

	img, err := s.CreateImage(ctx, ImageOptions{TopLayer: "base", Names: []string{"img:1"}})
	if err != nil {
		t.Fatalf("CreateImage: %v", err)
	}
	if img.TopLayer != l.ID {
		t.Fatalf("top layer %q, want %q", img.TopLayer, l.ID)
	}
	if _, err := s.CreateImage(ctx, ImageOptions{ID: img.ID}); !errors.Is(err, ErrDuplicateID) {
		t.Fatalf("duplicate image ID: %v", err)
	}
	if _, err := s.CreateImage(ctx, ImageOptions{Names: []string{"img:1"}}); !errors.Is(err, ErrDuplicateName) {
		t.Fatalf("duplicate image name: %v", err)
	}
	c, err := s.CreateContainer(ctx, ContainerOptions{Image: "img:1", Names: []string{"ctr"}})
	if err != nil {
		t.Fatalf("CreateContainer: %v", err)
	}
	cl, err := s.Layer(ctx, c.LayerID)
	if err != nil || cl.Parent != l.ID {
		t.Fatalf("container layer: %+v %v", cl, err)
	}
	if c.Flags["MountLabel"] != "" || c.Flags["ProcessLabel"] != "" {
		t.Fatalf("flags: %v", c.Flags)
	}
	for _, d := range []string{
		filepath.Join(opts.GraphRoot, "vfs-containers", c.ID, "userdata"),
		filepath.Join(opts.RunRoot, "vfs-containers", c.ID, "userdata"),
	} {
		if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
			t.Fatalf("container dir %s: %v", d, err)
		}
	}
	// Lookups by name, prefix and layer ID.
	for _, key := range []string{"ctr", c.ID[:12], c.LayerID} {
		got, err := s.Container(ctx, key)
		if err != nil || got.ID != c.ID {
			t.Fatalf("Container(%q) = %v, %v", key, got, err)
		}
	}
	// Safety checks on delete.
	if err := s.DeleteLayer(ctx, l.ID); !errors.Is(err, ErrLayerHasChildren) {
		t.Fatalf("DeleteLayer with children: %v", err)
	}
	if err := s.DeleteLayer(ctx, c.LayerID); !errors.Is(err, ErrLayerUsedByContainer) {
		t.Fatalf("DeleteLayer of container layer: %v", err)
	}
	if _, err := s.DeleteImage(ctx, img.ID, true); !errors.Is(err, ErrImageUsedByContainer) {
		t.Fatalf("DeleteImage in use: %v", err)
	}
	if err := s.DeleteContainer(ctx, "ctr"); err != nil {
		t.Fatalf("DeleteContainer: %v", err)
	}
	if err := s.DeleteLayer(ctx, l.ID); !errors.Is(err, ErrLayerUsedByImage) {
		t.Fatalf("DeleteLayer of image top layer: %v", err)
	}
	removed, err := s.DeleteImage(ctx, "img:1", true)
	if err != nil || !slices.Equal(removed, []string{l.ID}) {
		t.Fatalf("DeleteImage = %v, %v", removed, err)
	}
	layers, err := s.Layers(ctx)
	if err != nil || len(layers) != 0 {
		t.Fatalf("layers left: %v %v", layers, err)
	}
	if err := s.DeleteLayer(ctx, "nosuch"); !errors.Is(err, ErrNotALayer) {
		t.Fatalf("DeleteLayer(nosuch): %v", err)
	}
	if err := s.Delete(ctx, "nosuch"); !errors.Is(err, ErrLayerUnknown) {
		t.Fatalf("Delete(nosuch): %v", err)
	}
}

func TestReopenSeesRecords(t *testing.T) {
	s, opts := openTest(t)
	ctx := testCtx(t)
	l, err := s.CreateLayer(ctx, LayerOptions{Names: []string{"one"}, Flags: map[string]any{"io.stowage.test": "x"}})
	if err != nil {
		t.Fatal(err)
	}
	s2, err := Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s2.Layer(ctx, "one")
	if err != nil || got.ID != l.ID || got.Flags["io.stowage.test"] != "x" || !got.Created.Equal(l.Created) {
		t.Fatalf("reopened layer = %+v, %v", got, err)
	}
}

func TestNamesMoveAndHistory(t *testing.T) {
	s, _ := openTest(t)
	ctx := testCtx(t)
	a, err := s.CreateImage(ctx, ImageOptions{Names: []string{"test:latest", "other:1"}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.CreateImage(ctx, ImageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AddNames(ctx, b.ID, []string{"other:1"}); err != nil {
		t.Fatal(err)
	}
	na, _ := s.Names(ctx, a.ID)
	nb, _ := s.Names(ctx, b.ID)
	if !slices.Equal(na, []string{"test:latest"}) || !slices.Equal(nb, []string{"other:1"}) {
		t.Fatalf("after move: a=%v b=%v", na, nb)
	}
	if err := s.SetNames(ctx, a.ID, []string{"test:latest", "test:v2"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetNames(ctx, a.ID, []string{"renamed:1"}); err != nil {
		t.Fatal(err)
	}
	img, _ := s.Image(ctx, a.ID)
	if want := []string{"renamed:1", "test:v2", "test:latest"}; !slices.Equal(img.NamesHistory, want) {
		t.Fatalf("history %v, want %v", img.NamesHistory, want)
	}
	if err := s.RemoveNames(ctx, a.ID, []string{"renamed:1"}); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.Names(ctx, a.ID); len(n) != 0 {
		t.Fatalf("names after remove: %v", n)
	}
	if err := s.SetNames(ctx, "nosuch", nil); !errors.Is(err, ErrLayerUnknown) {
		t.Fatalf("SetNames(nosuch): %v", err)
	}
}

func TestBigDataAndDigests(t *testing.T) {
	s, opts := openTest(t)
	ctx := testCtx(t)
	img, err := s.CreateImage(ctx, ImageOptions{Digest: digest.FromString("x")})
	if err != nil {
		t.Fatal(err)
	}
	man := []byte(`{"schemaVersion":2}`)
	if err := s.SetImageBigData(ctx, img.ID, "manifest-sha256:abcd", man, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.SetImageBigData(ctx, img.ID, "config.json", []byte("cfg"), nil); err != nil {
		t.Fatal(err)
	}
	enc := "=" + "bWFuaWZlc3Qtc2hhMjU2OmFiY2Q="
	if data, err := os.ReadFile(filepath.Join(opts.GraphRoot, "vfs-images", img.ID, enc)); err != nil || !bytes.Equal(data, man) {
		t.Fatalf("encoded big-data file: %q %v", data, err)
	}
	got, err := s.Image(ctx, img.ID)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(man)
	md := digest.Digest("sha256:" + hex.EncodeToString(sum[:]))
	if !slices.Equal(got.Digests, []digest.Digest{digest.FromString("x"), md}) {
		t.Fatalf("digests %v", got.Digests)
	}
	byD, err := s.ImagesByDigest(ctx, md)
	if err != nil || len(byD) != 1 {
		t.Fatalf("ImagesByDigest: %v %v", byD, err)
	}
	if n, err := s.ImageBigDataSize(ctx, img.ID, "config.json"); err != nil || n != 3 {
		t.Fatalf("size %d %v", n, err)
	}
	if n, err := s.ImageSize(ctx, img.ID); err != nil || n != int64(len(man)+3) {
		t.Fatalf("ImageSize %d %v", n, err)
	}
	if _, err := s.ImageBigData(ctx, img.ID, "nosuch"); err == nil {
		t.Fatal("missing key read succeeded")
	}
	if err := s.SetImageBigData(ctx, img.ID, "", nil, nil); !errors.Is(err, ErrInvalidBigDataName) {
		t.Fatalf("empty key: %v", err)
	}
	if keys, _ := s.ListImageBigData(ctx, img.ID); !slices.Equal(keys, []string{"manifest-sha256:abcd", "config.json"}) {
		t.Fatalf("keys %v", keys)
	}
}

func TestMountCounting(t *testing.T) {
	s, _ := openTest(t)
	ctx := testCtx(t)
	l, err := s.CreateLayer(ctx, LayerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p1, err := s.Mount(ctx, l.ID, MountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p2, err := s.Mount(ctx, l.ID, MountOptions{})
	if err != nil || p1 != p2 {
		t.Fatalf("second mount %q %v", p2, err)
	}
	if n, _ := s.Mounted(ctx, l.ID); n != 2 {
		t.Fatalf("count %d", n)
	}
	if _, err := s.Shutdown(ctx, false); !errors.Is(err, ErrLayerMounted) {
		t.Fatalf("Shutdown while mounted: %v", err)
	}
	still, err := s.Unmount(ctx, l.ID, false)
	if err != nil || !still {
		t.Fatalf("first unmount: %v %v", still, err)
	}
	still, err = s.Unmount(ctx, l.ID, false)
	if err != nil || still {
		t.Fatalf("last unmount: %v %v", still, err)
	}
	if _, err := s.Shutdown(ctx, false); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}
