// Package archive reads images from tar archives in place: oci-archive
// (an OCI image layout in a tar, read through source/ocilayout) and
// docker-archive (the `docker save` format: manifest.json, a config and
// one tar per layer). Nothing is extracted to disk; blobs are sections of
// the archive file.
package archive

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"

	"github.com/stowage/stowage/source"
	"github.com/stowage/stowage/source/ocilayout"
)

// OpenOCI opens an oci-archive file; opts are as for an OCI layout.
func OpenOCI(file string, opts ocilayout.Options) (*ocilayout.Source, error) {
	t, err := openTarFS(file)
	if err != nil {
		return nil, fmt.Errorf("oci-archive %w", err)
	}
	return ocilayout.OpenFS(t, "oci-archive "+file, opts, t), nil
}

// DockerOptions configure OpenDocker.
type DockerOptions struct {
	// Ref picks the image by one of its RepoTags, or "@N" by its position
	// in manifest.json; empty needs an archive with one image.
	Ref string
}

// DockerSource is an image in a docker-archive file.
type DockerSource struct {
	t    *tarFS
	file string
	opts DockerOptions

	once sync.Once
	img  *source.Image
	err  error
	// paths maps a layer's blob digest to its member name; written once by Image.
	paths map[digest.Digest]string
}

// OpenDocker opens a docker-archive file.
func OpenDocker(file string, opts DockerOptions) (*DockerSource, error) {
	t, err := openTarFS(file)
	if err != nil {
		return nil, fmt.Errorf("docker-archive %w", err)
	}
	return &DockerSource{t: t, file: file, opts: opts, paths: map[digest.Digest]string{}}, nil
}

// Close closes the archive.
func (d *DockerSource) Close() error { return d.t.Close() }

// dockerManifestEntry is one image of manifest.json.
type dockerManifestEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// Image reads manifest.json and the config, and describes the image with
// an OCI manifest built here (the archive has none): layer media types
// follow each layer file's compression, and an uncompressed layer's blob
// digest is its diff ID; a compressed one's is hashed now.
func (d *DockerSource) Image(ctx context.Context) (*source.Image, error) {
	d.once.Do(func() { d.img, d.err = d.resolve(ctx) })
	return d.img, d.err
}

func (d *DockerSource) resolve(ctx context.Context) (*source.Image, error) {
	what := "docker-archive " + d.file
	raw, err := fs.ReadFile(d.t, "manifest.json")
	if err != nil {
		return nil, fmt.Errorf("%s: manifest.json: %w: %w", what, err, source.ErrBadManifest)
	}
	var entries []dockerManifestEntry
	if err := json.Unmarshal(raw, &entries); err != nil {
		return nil, fmt.Errorf("%s: manifest.json: %w: %w", what, err, source.ErrBadManifest)
	}
	e, err := d.pick(entries)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	img := &source.Image{Names: e.RepoTags}
	if img.Config, err = fs.ReadFile(d.t, e.Config); err != nil {
		return nil, fmt.Errorf("%s: config %s: %w: %w", what, e.Config, err, source.ErrBadManifest)
	}
	img.ConfigDigest = digest.FromBytes(img.Config)
	img.Layers = make([]source.Layer, len(e.Layers))
	if err := source.AttachDiffIDs(img.Config, img.Layers); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	for i, p := range e.Layers {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := d.describeLayer(&img.Layers[i], p); err != nil {
			return nil, fmt.Errorf("%s: layer %s: %w", what, p, err)
		}
	}
	if err := buildManifest(img); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return img, nil
}

// pick chooses the manifest.json entry named by Options.Ref.
func (d *DockerSource) pick(entries []dockerManifestEntry) (dockerManifestEntry, error) {
	ref := d.opts.Ref
	if strings.HasPrefix(ref, "@") {
		var n int
		if _, err := fmt.Sscanf(ref, "@%d", &n); err != nil || n < 0 || n >= len(entries) {
			return dockerManifestEntry{}, fmt.Errorf("no image %s among %d: %w", ref, len(entries), source.ErrNotFound)
		}
		return entries[n], nil
	}
	var tags []string
	for _, e := range entries {
		for _, t := range e.RepoTags {
			tags = append(tags, t)
			if ref != "" && (t == ref || strings.TrimPrefix(t, "docker.io/") == ref) {
				return e, nil
			}
		}
	}
	switch {
	case ref != "":
		return dockerManifestEntry{}, fmt.Errorf("no image %q (tags: %s): %w", ref, strings.Join(tags, ", "), source.ErrNotFound)
	case len(entries) == 1:
		return entries[0], nil
	}
	return dockerManifestEntry{}, fmt.Errorf("%d images in the archive; name one (tags: %s, or @N): %w", len(entries), strings.Join(tags, ", "), source.ErrNotFound)
}

// describeLayer fills the blob digest, size and media type of the layer
// file p.
func (d *DockerSource) describeLayer(l *source.Layer, p string) error {
	f, err := d.t.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	tf := f.(*tarFile)
	l.Size = tf.Size()
	br := bufio.NewReader(tf)
	magic, _ := br.Peek(6)
	l.MediaType = layerMediaType(magic)
	switch {
	case l.MediaType == source.MediaTypeOCILayer:
		l.Digest = l.DiffID // checked against the content when it is read
	case strings.HasPrefix(p, "blobs/"):
		l.Digest = digest.NewDigestFromEncoded(digest.Algorithm(path.Base(path.Dir(p))), path.Base(p))
		if err := l.Digest.Validate(); err != nil {
			l.Digest = ""
		}
	}
	if l.Digest == "" {
		dg := digest.Canonical.Digester()
		if _, err := io.Copy(dg.Hash(), br); err != nil {
			return err
		}
		l.Digest = dg.Digest()
	}
	d.paths[l.Digest] = p
	return nil
}

// layerMediaType names an OCI layer type from the first bytes.
func layerMediaType(magic []byte) string {
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		return "application/vnd.oci.image.layer.v1.tar+gzip"
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return "application/vnd.oci.image.layer.v1.tar+zstd"
	}
	return source.MediaTypeOCILayer
}

// buildManifest writes the OCI manifest describing img.
func buildManifest(img *source.Image) error {
	cfgDigest, err := v1.NewHash(img.ConfigDigest.String())
	if err != nil {
		return err
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     source.MediaTypeOCIManifest,
		Config:        v1.Descriptor{MediaType: types.OCIConfigJSON, Size: int64(len(img.Config)), Digest: cfgDigest},
	}
	for _, l := range img.Layers {
		h, err := v1.NewHash(l.Digest.String())
		if err != nil {
			return err
		}
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: types.MediaType(l.MediaType), Size: l.Size, Digest: h})
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return err
	}
	img.Manifest, img.ManifestMediaType, img.ManifestDigest = raw, source.MediaTypeOCIManifest, digest.FromBytes(raw)
	return nil
}

// Blob opens the layer file of l.
func (d *DockerSource) Blob(ctx context.Context, l source.Layer) (io.ReadCloser, error) {
	if _, err := d.Image(ctx); err != nil {
		return nil, err
	}
	p, ok := d.paths[l.Digest]
	if !ok {
		return nil, fmt.Errorf("docker-archive %s: no layer %s: %w", d.file, l.Digest, source.ErrNotFound)
	}
	return d.t.Open(p)
}
