package source

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"
)

// Media types of manifests and indexes a Source understands.
const (
	MediaTypeOCIManifest    = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeOCIIndex       = "application/vnd.oci.image.index.v1+json"
	MediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	// MediaTypeOCILayer is an uncompressed OCI layer (docker-archive layers).
	MediaTypeOCILayer = "application/vnd.oci.image.layer.v1.tar"
)

// Source gives read access to one image, wherever it is kept. Close
// releases what the source holds open; a Source is safe for concurrent
// Blob calls.
type Source interface {
	// Image resolves the image: its manifest (picked from an index for the
	// platform the source was opened with), config and layer list.
	Image(ctx context.Context) (*Image, error)
	// Blob opens a layer blob as stored (compressed bytes). The stream is
	// not verified: callers check it against l.Digest and l.DiffID.
	Blob(ctx context.Context, l Layer) (io.ReadCloser, error)
	// Close releases open files and connections.
	Close() error
}

// Layer describes one layer of an image.
type Layer struct {
	Digest    digest.Digest // blob digest, as stored
	Size      int64         // blob size; -1 when not known
	MediaType string
	DiffID    digest.Digest // uncompressed digest (the config's rootfs.diff_ids)
}

// Image is a resolved image: raw bytes are kept so that the store records
// exactly what the source had.
type Image struct {
	Manifest          []byte
	ManifestMediaType string
	ManifestDigest    digest.Digest
	// Index is the index or manifest list the manifest was picked from
	// (nil when the reference named a manifest).
	Index        []byte
	IndexDigest  digest.Digest
	Config       []byte
	ConfigDigest digest.Digest
	Layers       []Layer
	// Names are names the source suggests for the image (a docker-archive's
	// RepoTags, an OCI layout's ref annotation as given); may be empty.
	Names []string
}

// DefaultPlatform is linux on the running architecture.
func DefaultPlatform() v1.Platform {
	p := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	if runtime.GOARCH == "arm" {
		p.Variant = "v7"
	}
	return p
}

// ParsePlatform parses "os/arch[/variant]".
func ParsePlatform(s string) (v1.Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return v1.Platform{}, fmt.Errorf("platform %q: want os/arch[/variant]: %w", s, ErrBadReference)
	}
	p := v1.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

// PlatformString formats p as os/arch[/variant].
func PlatformString(p v1.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// IsIndex reports whether mediaType (or, when empty, the document) is an
// OCI index or a Docker manifest list.
func IsIndex(mediaType string, raw []byte) bool {
	switch mediaType {
	case MediaTypeOCIIndex, MediaTypeDockerList:
		return true
	case "":
		var probe struct {
			MediaType string          `json:"mediaType"`
			Manifests json.RawMessage `json:"manifests"`
		}
		if json.Unmarshal(raw, &probe) != nil {
			return false
		}
		return probe.MediaType == MediaTypeOCIIndex || probe.MediaType == MediaTypeDockerList || (probe.MediaType == "" && probe.Manifests != nil)
	}
	return false
}

// SelectManifest picks the manifest for platform p from an index. A
// variant is compared only when p has one (arm64's "v8" equals none).
func SelectManifest(raw []byte, p v1.Platform) (v1.Descriptor, error) {
	idx, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("parsing index: %w: %w", err, ErrBadManifest)
	}
	var have []string
	for _, d := range idx.Manifests {
		if d.Platform == nil {
			continue
		}
		have = append(have, PlatformString(*d.Platform))
		if platformMatches(*d.Platform, p) {
			return d, nil
		}
	}
	return v1.Descriptor{}, fmt.Errorf("no image for %s in the index (it has %s): %w",
		PlatformString(p), strings.Join(have, ", "), ErrNoPlatform)
}

func platformMatches(have, want v1.Platform) bool {
	if have.OS != want.OS || have.Architecture != want.Architecture {
		return false
	}
	if want.Variant == "" {
		return true
	}
	norm := func(v string) string {
		if v == "" && want.Architecture == "arm64" {
			return "v8"
		}
		return v
	}
	return norm(have.Variant) == norm(want.Variant)
}

// ParseManifest reads an image manifest: its media type (from the
// document, else mt) and layer list (diff IDs still empty).
func ParseManifest(raw []byte, mt string) (mediaType string, config v1.Descriptor, layers []Layer, err error) {
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return "", v1.Descriptor{}, nil, fmt.Errorf("parsing manifest: %w: %w", err, ErrBadManifest)
	}
	if m.MediaType != "" {
		mt = string(m.MediaType)
	}
	if mt == "" {
		mt = MediaTypeOCIManifest
	}
	if mt != MediaTypeOCIManifest && mt != MediaTypeDockerManifest {
		return "", v1.Descriptor{}, nil, fmt.Errorf("manifest media type %q: %w", mt, ErrUnsupported)
	}
	for _, l := range m.Layers {
		layers = append(layers, Layer{Digest: digest.Digest(l.Digest.String()), Size: l.Size, MediaType: string(l.MediaType)})
	}
	return mt, m.Config, layers, nil
}

// AttachDiffIDs checks config and fills each layer's DiffID from its
// rootfs.diff_ids, which must list one per layer.
func AttachDiffIDs(config []byte, layers []Layer) error {
	cf, err := v1.ParseConfigFile(bytes.NewReader(config))
	if err != nil {
		return fmt.Errorf("parsing image config: %w: %w", err, ErrBadManifest)
	}
	if len(cf.RootFS.DiffIDs) != len(layers) {
		return fmt.Errorf("image config lists %d diff IDs for %d layers: %w", len(cf.RootFS.DiffIDs), len(layers), ErrBadManifest)
	}
	for i, d := range cf.RootFS.DiffIDs {
		dd := digest.Digest(d.String())
		if err := dd.Validate(); err != nil {
			return fmt.Errorf("diff ID %d %q: %w: %w", i, d, err, ErrBadManifest)
		}
		layers[i].DiffID = dd
	}
	return nil
}

// CheckDigest fails with ErrDigestMismatch unless data has digest want.
func CheckDigest(what string, data []byte, want digest.Digest) error {
	if err := want.Validate(); err != nil {
		return fmt.Errorf("%s digest %q: %w", what, want, err)
	}
	if got := want.Algorithm().FromBytes(data); got != want {
		return fmt.Errorf("%s: got %s, want %s: %w", what, got, want, ErrDigestMismatch)
	}
	return nil
}
