package ocilayout

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/stowage/stowage/source"
)

var bg = context.Background()

func twoImages(t *testing.T) (string, v1.Image) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "oci")
	p, _ := layout.Write(dir, empty.Index)
	var first v1.Image
	for _, ref := range []string{"a", "b"} {
		img, _ := random.Image(1000, 1)
		if first == nil {
			first = img
		}
		if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{RefAnnotation: ref})); err != nil {
			t.Fatal(err)
		}
	}
	return dir, first
}

func TestLayoutRefs(t *testing.T) {
	dir, a := twoImages(t)
	src, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Image(bg); !errors.Is(err, source.ErrNotFound) {
		t.Fatalf("two images, no ref: %v", err)
	}
	md, _ := a.Digest()
	for _, ref := range []string{"a", md.String()} {
		src, _ := Open(dir, Options{Ref: ref})
		img, err := src.Image(bg)
		if err != nil || img.ManifestDigest.String() != md.String() {
			t.Errorf("ref %s: %v %v", ref, img, err)
		}
	}
	if _, err := Open(filepath.Join(dir, "index.json"), Options{}); !errors.Is(err, source.ErrBadReference) {
		t.Errorf("a file as layout: %v", err)
	}
}

// A manifest blob whose content changed fails with ErrDigestMismatch; a
// missing blob with ErrNotFound.
func TestLayoutTampered(t *testing.T) {
	dir, a := twoImages(t)
	md, _ := a.Digest()
	p := filepath.Join(dir, "blobs", "sha256", md.Hex)
	raw, _ := os.ReadFile(p)
	os.WriteFile(p, append(raw, ' '), 0o644)
	src, _ := Open(dir, Options{Ref: "a"})
	if _, err := src.Image(bg); !errors.Is(err, source.ErrDigestMismatch) {
		t.Fatalf("tampered manifest: %v", err)
	}
	os.Remove(p)
	if _, err := src.Image(bg); !errors.Is(err, source.ErrNotFound) {
		t.Fatalf("missing manifest: %v", err)
	}
	if _, err := src.Blob(bg, source.Layer{Digest: "sha256:../../etc"}); !errors.Is(err, source.ErrBadManifest) {
		t.Fatalf("a path as digest: %v", err)
	}
}
