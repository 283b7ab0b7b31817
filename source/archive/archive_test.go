package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/opencontainers/go-digest"

	"github.com/stowage/stowage/source"
	"github.com/stowage/stowage/source/ocilayout"
)

var bg = context.Background()

// checkBlobs reads every layer blob and checks it against its digest,
// and the image's config and diff IDs against want.
func checkBlobs(t *testing.T, src source.Source, want v1.Image) *source.Image {
	t.Helper()
	img, err := src.Image(bg)
	if err != nil {
		t.Fatalf("Image: %v", err)
	}
	cfg, _ := want.ConfigName()
	if img.ConfigDigest.String() != cfg.String() {
		t.Errorf("config %s, want %s", img.ConfigDigest, cfg)
	}
	wcf, _ := want.ConfigFile()
	if len(img.Layers) != len(wcf.RootFS.DiffIDs) {
		t.Fatalf("%d layers, want %d", len(img.Layers), len(wcf.RootFS.DiffIDs))
	}
	if err := source.CheckDigest("manifest", img.Manifest, img.ManifestDigest); err != nil {
		t.Error(err)
	}
	for i, l := range img.Layers {
		if l.DiffID.String() != wcf.RootFS.DiffIDs[i].String() {
			t.Errorf("layer %d diff ID %s", i, l.DiffID)
		}
		rc, err := src.Blob(bg, l)
		if err != nil {
			t.Fatalf("Blob %d: %v", i, err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got := digest.FromBytes(data); got != l.Digest || (l.Size >= 0 && int64(len(data)) != l.Size) {
			t.Errorf("layer %d blob: digest %s size %d, want %s %d", i, got, len(data), l.Digest, l.Size)
		}
	}
	return img
}

func TestDockerArchiveCompressed(t *testing.T) {
	img, err := random.Image(5000, 3)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "d.tar")
	tag, _ := name.NewTag("example.com/app:1")
	if err := tarball.WriteToFile(file, tag, img); err != nil {
		t.Fatal(err)
	}
	src, err := OpenDocker(file, DockerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	got := checkBlobs(t, src, img)
	if len(got.Names) != 1 || got.Names[0] != "example.com/app:1" {
		t.Errorf("names %v", got.Names)
	}
	if _, err := OpenDockerImage(file, "example.com/app:2"); !errors.Is(err, source.ErrNotFound) {
		t.Errorf("unknown tag: %v", err)
	}
}

// OpenDockerImage opens file and resolves ref, for error checks.
func OpenDockerImage(file, ref string) (*source.Image, error) {
	src, err := OpenDocker(file, DockerOptions{Ref: ref})
	if err != nil {
		return nil, err
	}
	defer src.Close()
	return src.Image(bg)
}

// The legacy `docker save` layout: uncompressed layer.tar files, one of
// them a symlink to another's, and two images.
func TestDockerArchiveLegacy(t *testing.T) {
	img, err := random.Image(5000, 1)
	if err != nil {
		t.Fatal(err)
	}
	ls, _ := img.Layers()
	rc, _ := ls[0].Uncompressed()
	layerTar, _ := io.ReadAll(rc)
	cfgBytes, _ := img.RawConfigFile()
	// A second config listing the same layer twice.
	var cfg map[string]any
	json.Unmarshal(cfgBytes, &cfg)
	d, _ := ls[0].DiffID()
	cfg["rootfs"] = map[string]any{"type": "layers", "diff_ids": []string{d.String(), d.String()}}
	cfg2, _ := json.Marshal(cfg)
	manifest, _ := json.Marshal([]map[string]any{
		{"Config": "one.json", "RepoTags": []string{"one:latest"}, "Layers": []string{"aaa/layer.tar"}},
		{"Config": "two.json", "RepoTags": []string{"two:latest"}, "Layers": []string{"aaa/layer.tar", "bbb/layer.tar"}},
	})
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, data []byte) {
		tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data))})
		tw.Write(data)
	}
	add("aaa/layer.tar", layerTar)
	tw.WriteHeader(&tar.Header{Name: "bbb/layer.tar", Typeflag: tar.TypeSymlink, Linkname: "../aaa/layer.tar"})
	add("one.json", cfgBytes)
	add("two.json", cfg2)
	add("manifest.json", manifest)
	tw.Close()
	file := filepath.Join(t.TempDir(), "legacy.tar")
	os.WriteFile(file, buf.Bytes(), 0o644)

	if _, err := OpenDockerImage(file, ""); !errors.Is(err, source.ErrNotFound) {
		t.Errorf("two images without a ref: %v", err)
	}
	src, err := OpenDocker(file, DockerOptions{Ref: "two:latest"})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	got, err := src.Image(bg)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Layers) != 2 || got.Layers[1].Digest != got.Layers[1].DiffID || got.Layers[0].MediaType != source.MediaTypeOCILayer {
		t.Fatalf("layers %+v", got.Layers)
	}
	for _, l := range got.Layers {
		rc, err := src.Blob(bg, l)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(rc)
		if digest.FromBytes(data) != l.Digest {
			t.Errorf("blob through the symlink: wrong content")
		}
	}
	one, err := OpenDockerImage(file, "@0")
	if err != nil || one.Names[0] != "one:latest" {
		t.Errorf("@0: %v %v", one, err)
	}
}

// An OCI layout in a tar is read in place.
func TestOCIArchive(t *testing.T) {
	img, err := random.Image(5000, 2)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "oci")
	p, _ := layout.Write(dir, empty.Index)
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{ocilayout.RefAnnotation: "v1"})); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		rel, _ := filepath.Rel(dir, path)
		hdr, _ := tar.FileInfoHeader(fi, "")
		hdr.Name = rel
		if fi.IsDir() {
			hdr.Name += "/"
		}
		tw.WriteHeader(hdr)
		if fi.Mode().IsRegular() {
			data, _ := os.ReadFile(path)
			tw.Write(data)
		}
		return nil
	})
	tw.Close()
	file := filepath.Join(t.TempDir(), "oci.tar")
	os.WriteFile(file, buf.Bytes(), 0o644)
	src, err := OpenOCI(file, ocilayout.Options{Ref: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	checkBlobs(t, src, img)
	bad, _ := OpenOCI(file, ocilayout.Options{Ref: "nope"})
	defer bad.Close()
	if _, err := bad.Image(bg); !errors.Is(err, source.ErrNotFound) {
		t.Errorf("unknown ref: %v", err)
	}
	if _, err := OpenOCI(filepath.Join(t.TempDir(), "missing.tar"), ocilayout.Options{}); err == nil {
		t.Error("a missing archive opened")
	}
}
