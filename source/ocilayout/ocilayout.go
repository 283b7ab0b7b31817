// Package ocilayout reads images from OCI image layouts (index.json,
// oci-layout and blobs/<alg>/<hex>): a directory, or any fs.FS such as an
// oci-archive indexed in place by source/archive.
package ocilayout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"

	"github.com/stowage/stowage/source"
)

// RefAnnotation is the index annotation naming a manifest in a layout.
const RefAnnotation = "org.opencontainers.image.ref.name"

// maxMetadata bounds manifests, indexes and configs read into memory.
const maxMetadata = 16 << 20

// Options configure Open and OpenFS. The zero value picks the running
// platform and the only image in the layout.
type Options struct {
	// Ref selects the manifest by its ref.name annotation, or by digest
	// ("sha256:..."); empty needs a layout with exactly one manifest.
	Ref string
	// Platform picks from an index; zero: linux on runtime.GOARCH.
	Platform v1.Platform
}

// Source is an image in an OCI layout.
type Source struct {
	fsys   fs.FS
	opts   Options
	closer io.Closer // may be nil
	what   string    // for messages
}

// Open opens the layout directory dir.
func Open(dir string, opts Options) (*Source, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("oci layout %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("oci layout %s: not a directory: %w", dir, source.ErrBadReference)
	}
	return OpenFS(os.DirFS(dir), dir, opts, nil), nil
}

// OpenFS reads a layout from fsys; what names it in messages, closer (if
// not nil) is closed by Close.
func OpenFS(fsys fs.FS, what string, opts Options, closer io.Closer) *Source {
	if opts.Platform.OS == "" {
		opts.Platform = source.DefaultPlatform()
	}
	return &Source{fsys: fsys, opts: opts, closer: closer, what: what}
}

// Close closes what OpenFS was given to close.
func (s *Source) Close() error {
	if s.closer != nil {
		return s.closer.Close()
	}
	return nil
}

// Image resolves the manifest named by Options.Ref (through an index for
// the platform), its config and the layer list; every document read is
// checked against its digest.
func (s *Source) Image(ctx context.Context) (*source.Image, error) {
	top, err := s.readFile("index.json")
	if err != nil {
		return nil, err
	}
	desc, err := s.pick(top)
	if err != nil {
		return nil, err
	}
	img := &source.Image{}
	raw, err := s.readDoc(desc.Digest.String(), "manifest")
	if err != nil {
		return nil, err
	}
	if source.IsIndex(string(desc.MediaType), raw) {
		img.Index, img.IndexDigest = raw, digest.Digest(desc.Digest.String())
		if desc, err = source.SelectManifest(raw, s.opts.Platform); err != nil {
			return nil, fmt.Errorf("%s: %w", s.what, err)
		}
		if raw, err = s.readDoc(desc.Digest.String(), "manifest"); err != nil {
			return nil, err
		}
	}
	img.Manifest, img.ManifestDigest = raw, digest.Digest(desc.Digest.String())
	mt, cfg, layers, err := source.ParseManifest(raw, string(desc.MediaType))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.what, err)
	}
	img.ManifestMediaType, img.Layers = mt, layers
	img.ConfigDigest = digest.Digest(cfg.Digest.String())
	if img.Config, err = s.readDoc(cfg.Digest.String(), "config"); err != nil {
		return nil, err
	}
	if err := source.AttachDiffIDs(img.Config, img.Layers); err != nil {
		return nil, fmt.Errorf("%s: %w", s.what, err)
	}
	return img, nil
}

// pick finds the descriptor Options.Ref names in index.json.
func (s *Source) pick(top []byte) (v1.Descriptor, error) {
	var idx v1.IndexManifest
	if err := json.Unmarshal(top, &idx); err != nil {
		return v1.Descriptor{}, fmt.Errorf("%s: index.json: %w: %w", s.what, err, source.ErrBadManifest)
	}
	var refs []string
	for _, d := range idx.Manifests {
		r := d.Annotations[RefAnnotation]
		refs = append(refs, r)
		if s.opts.Ref != "" && (r == s.opts.Ref || d.Digest.String() == s.opts.Ref) {
			return d, nil
		}
	}
	switch {
	case s.opts.Ref != "":
		return v1.Descriptor{}, fmt.Errorf("%s: no image %q (refs: %s): %w", s.what, s.opts.Ref, strings.Join(refs, ", "), source.ErrNotFound)
	case len(idx.Manifests) == 1:
		return idx.Manifests[0], nil
	case len(idx.Manifests) == 0:
		return v1.Descriptor{}, fmt.Errorf("%s: the layout has no images: %w", s.what, source.ErrNotFound)
	}
	return v1.Descriptor{}, fmt.Errorf("%s: %d images in the layout, name one of refs %s: %w", s.what, len(idx.Manifests), strings.Join(refs, ", "), source.ErrNotFound)
}

// readDoc reads a small blob and checks its digest.
func (s *Source) readDoc(d, what string) ([]byte, error) {
	p, err := blobPath(digest.Digest(d))
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", s.what, what, err)
	}
	data, err := s.readFile(p)
	if err != nil {
		return nil, err
	}
	if err := source.CheckDigest(fmt.Sprintf("%s: %s %s", s.what, what, d), data, digest.Digest(d)); err != nil {
		return nil, err
	}
	return data, nil
}

func (s *Source) readFile(name string) ([]byte, error) {
	f, err := s.fsys.Open(name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: %s missing: %w", s.what, name, source.ErrNotFound)
		}
		return nil, fmt.Errorf("%s: %w", s.what, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxMetadata+1))
	if err != nil {
		return nil, fmt.Errorf("%s: reading %s: %w", s.what, name, err)
	}
	if len(data) > maxMetadata {
		return nil, fmt.Errorf("%s: %s is over %d bytes: %w", s.what, name, maxMetadata, source.ErrBadManifest)
	}
	return data, nil
}

// Blob opens blobs/<alg>/<hex> of l.Digest.
func (s *Source) Blob(ctx context.Context, l source.Layer) (io.ReadCloser, error) {
	p, err := blobPath(l.Digest)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.what, err)
	}
	f, err := s.fsys.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: blob %s missing: %w", s.what, l.Digest, source.ErrNotFound)
		}
		return nil, fmt.Errorf("%s: %w", s.what, err)
	}
	return f, nil
}

// blobPath is blobs/<alg>/<hex>, after checking d so it cannot escape.
func blobPath(d digest.Digest) (string, error) {
	if err := d.Validate(); err != nil {
		return "", fmt.Errorf("digest %q: %w: %w", d, err, source.ErrBadManifest)
	}
	return path.Join("blobs", string(d.Algorithm()), d.Encoded()), nil
}
