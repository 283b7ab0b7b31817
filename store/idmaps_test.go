package store

import (
	"bytes"
	"os"
	"testing"

	"github.com/stowage/stowage/internal/idmap"
)

// Without a shifting driver (vfs), a container whose maps differ from its
// image's top layer's sits on a mapped copy of that layer (same parent,
// digests and tar-split, the container's maps) registered in the image's
// mapped-layers, reused by the next container with the same maps, and
// deleted with the image.
func TestMappedCopyOfTopLayer(t *testing.T) {
	s, _ := openTest(t)
	ctx := testCtx(t)
	base, err := s.PutLayer(ctx, bytes.NewReader(makeTar(t, map[string]string{"a": "1"})), LayerOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	top, err := s.PutLayer(ctx, bytes.NewReader(makeTar(t, map[string]string{"b": "2"})), LayerOptions{Parent: base.ID, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	img, err := s.CreateImage(ctx, ImageOptions{TopLayer: top.ID})
	if err != nil {
		t.Fatal(err)
	}
	maps := []idmap.IDMap{{ContainerID: 0, HostID: 100000, Size: 65536}}
	mapped := IDMappingOptions{UIDMap: maps, GIDMap: maps}
	c1, err := s.CreateContainer(ctx, ContainerOptions{Image: img.ID, IDMapping: mapped})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Image(ctx, img.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.MappedTopLayers) != 1 {
		t.Fatalf("mapped-layers = %v, want one copy", got.MappedTopLayers)
	}
	cp, err := s.Layer(ctx, got.MappedTopLayers[0])
	if err != nil {
		t.Fatal(err)
	}
	if cp.Parent != base.ID || !idmap.Equal(cp.UIDMap, maps) || cp.UncompressedDigest != top.UncompressedDigest || cp.UncompressedSize != top.UncompressedSize {
		t.Errorf("mapped copy %+v does not copy %+v", cp, top)
	}
	if _, err := os.Stat(s.layers.TarSplitPath(cp.ID)); err != nil {
		t.Errorf("mapped copy has no tar-split: %v", err)
	}
	cl, err := s.Layer(ctx, c1.LayerID)
	if err != nil {
		t.Fatal(err)
	}
	if cl.Parent != cp.ID || !idmap.Equal(cl.UIDMap, maps) {
		t.Errorf("container layer parent %s maps %v, want the copy %s and %v", cl.Parent, cl.UIDMap, cp.ID, maps)
	}
	c2, err := s.CreateContainer(ctx, ContainerOptions{Image: img.ID, IDMapping: mapped})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Image(ctx, img.ID); len(got.MappedTopLayers) != 1 {
		t.Errorf("second container made another copy: %v", got.MappedTopLayers)
	}
	// an unmapped container uses the top layer itself
	c3, err := s.CreateContainer(ctx, ContainerOptions{Image: img.ID})
	if err != nil {
		t.Fatal(err)
	}
	if l, _ := s.Layer(ctx, c3.LayerID); l.Parent != top.ID {
		t.Errorf("unmapped container on %s, want %s", l.Parent, top.ID)
	}
	for _, c := range []string{c1.ID, c2.ID, c3.ID} {
		if err := s.DeleteContainer(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.DeleteImage(ctx, img.ID, true); err != nil {
		t.Fatal(err)
	}
	layers, err := s.Layers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 0 {
		ids := []string{}
		for _, l := range layers {
			ids = append(ids, l.ID)
		}
		t.Errorf("layers left after deleting the image: %v", ids)
	}
}
