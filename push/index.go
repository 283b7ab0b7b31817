package push

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"

	"github.com/stowage/stowage/image"
	"github.com/stowage/stowage/source"
	"github.com/stowage/stowage/source/registry"
)

// Multi-platform push.
//
// A pull from a multi-platform index stores one image per platform pulled
// (image ID = that platform's config digest), each carrying the index as
// the big-data item "manifest-<index digest>" and its own manifest as
// "manifest-<manifest digest>". Push writes one image, as podman and skopeo
// do from containers-storage. PushAll instead rebuilds an index of every
// platform of that source index that is present in the store: each is
// exported as Push would (so its manifest digest is new), and listed with
// the platform the source index gave it. Platforms that were never pulled
// are left out and reported in IndexResult.Missing.

// IndexReader is what PushAll needs from a store: *store.Store has it.
type IndexReader interface {
	Reader
	Images(ctx context.Context) ([]image.Image, error)
}

// PlatformInfo is one platform PushAll wrote.
type PlatformInfo struct {
	Platform       string        `json:"platform"`
	ImageID        string        `json:"image"`
	ManifestDigest digest.Digest `json:"manifest-digest"`
	Layers         int           `json:"layers"`
	Bytes          int64         `json:"bytes"`
}

// IndexResult describes a finished PushAll.
type IndexResult struct {
	Destination Destination
	IndexDigest digest.Digest
	// SourceIndex is the digest of the index the images were pulled from.
	SourceIndex digest.Digest
	Platforms   []PlatformInfo // in the source index's order
	// Missing lists the source index's platforms that are not in the
	// store (never pulled) and so were not written.
	Missing  []string
	Bytes    int64
	Duration time.Duration
}

// SourceIndex returns the multi-platform index img was pulled from (the
// first "manifest-*" big-data item that is an index) and its digest; ok is
// false when it came from none.
func SourceIndex(ctx context.Context, st Reader, img *image.Image) (idx *v1.IndexManifest, d digest.Digest, ok bool, err error) {
	for _, k := range img.BigDataNames {
		dg, found := strings.CutPrefix(k, "manifest-")
		if !found {
			continue
		}
		raw, err := st.ImageBigData(ctx, img.ID, k)
		if err != nil {
			return nil, "", false, fmt.Errorf("image %s: %s: %w", img.ID, k, err)
		}
		if !source.IsIndex("", raw) {
			continue
		}
		if idx, err = v1.ParseIndexManifest(bytes.NewReader(raw)); err != nil {
			return nil, "", false, fmt.Errorf("image %s: %s: %w", img.ID, k, err)
		}
		return idx, digest.Digest(dg), true, nil
	}
	return nil, "", false, nil
}

// platformString formats p as os/arch[/variant] ("unknown" when absent).
func platformString(p *v1.Platform) string {
	if p == nil {
		return "unknown"
	}
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// indexMember is one platform of the source index found in the store.
type indexMember struct {
	desc    v1.Descriptor
	imageID string
}

// storedPlatforms maps the source index's manifests to stored images (the
// image whose digests include the manifest's). Entries without a real
// platform (attestations: unknown/unknown) are neither written nor
// reported missing.
func storedPlatforms(idx *v1.IndexManifest, images []image.Image) (found []indexMember, missing []string) {
	byDigest := map[digest.Digest]string{}
	for _, im := range images {
		for _, d := range im.Digests {
			byDigest[d] = im.ID
		}
	}
	for _, desc := range idx.Manifests {
		if desc.Platform != nil && desc.Platform.OS == "unknown" {
			continue
		}
		if id, ok := byDigest[digest.Digest(desc.Digest.String())]; ok {
			found = append(found, indexMember{desc: desc, imageID: id})
		} else {
			missing = append(missing, platformString(desc.Platform))
		}
	}
	return found, missing
}

// PushAll writes an OCI index holding every platform of the index the
// image nameOrID was pulled from that is present in st (see the comment
// at the top of this file) to dest: an OCI layout, an OCI archive or a
// registry. It fails with ErrNotFromIndex when the image came from no
// index, and with ErrBadDestination for a docker-archive, which cannot
// hold an index.
func PushAll(ctx context.Context, st IndexReader, nameOrID string, dest Destination, opts Options) (_ IndexResult, err error) {
	start := time.Now()
	if dest.Kind == DockerArchive {
		return IndexResult{}, fmt.Errorf("%w %s: a docker-archive cannot hold a multi-platform index (use oci:, oci-archive: or docker://, or push one platform)", ErrBadDestination, dest)
	}
	img, err := st.Image(ctx, nameOrID)
	if err != nil {
		return IndexResult{}, fmt.Errorf("image %s: %w", nameOrID, err)
	}
	idx, idxDigest, ok, err := SourceIndex(ctx, st, img)
	if err != nil {
		return IndexResult{}, err
	}
	if !ok {
		return IndexResult{}, fmt.Errorf("image %s: %w", nameOrID, ErrNotFromIndex)
	}
	images, err := st.Images(ctx)
	if err != nil {
		return IndexResult{}, err
	}
	members, missing := storedPlatforms(idx, images)
	if len(members) == 0 {
		// The image itself is always a member unless the index does not
		// list it (a store edited by hand).
		return IndexResult{}, fmt.Errorf("image %s: none of the platforms of index %s is stored: %w", nameOrID, idxDigest, ErrNotFromIndex)
	}
	res := IndexResult{Destination: dest, SourceIndex: idxDigest, Missing: missing}
	var exported []*Image
	defer func() {
		for _, e := range exported {
			e.Close()
		}
	}()
	ii := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	var adds []mutate.IndexAddendum
	for _, m := range members {
		e, err := Export(ctx, st, m.imageID, opts)
		if err != nil {
			return IndexResult{}, fmt.Errorf("platform %s: %w", platformString(m.desc.Platform), err)
		}
		exported = append(exported, e)
		pi := PlatformInfo{Platform: platformString(m.desc.Platform), ImageID: m.imageID,
			ManifestDigest: digest.Digest(e.digest.String()), Layers: len(e.layers)}
		for _, l := range e.layers {
			pi.Bytes += l.size
		}
		res.Platforms = append(res.Platforms, pi)
		res.Bytes += pi.Bytes
		adds = append(adds, mutate.IndexAddendum{Add: e, Descriptor: v1.Descriptor{MediaType: types.OCIManifestSchema1, Platform: m.desc.Platform}})
	}
	ii = mutate.AppendManifests(ii, adds...)
	h, err := ii.Digest()
	if err != nil {
		return IndexResult{}, err
	}
	res.IndexDigest = digest.Digest(h.String())
	if err := WriteIndex(ctx, ii, exported, dest, opts); err != nil {
		return IndexResult{}, err
	}
	res.Duration = time.Since(start)
	return res, nil
}

// WriteIndex writes the index ii, whose manifests are images, to dest (an
// OCI layout, where an entry with the same ref name or digest is replaced;
// an OCI archive, written under a temporary name; or a registry).
func WriteIndex(ctx context.Context, ii v1.ImageIndex, images []*Image, dest Destination, opts Options) error {
	var err error
	switch dest.Kind {
	case OCILayout:
		err = writeLayoutIndex(ctx, ii, dest)
	case OCIArchive:
		err = writeFileAtomic(dest.Path, func(w io.Writer) error {
			raw, err := ii.RawManifest()
			if err != nil {
				return err
			}
			h, err := ii.Digest()
			if err != nil {
				return err
			}
			imgs := make([]v1.Image, len(images))
			for i, e := range images {
				imgs[i] = e
			}
			top := v1.Descriptor{MediaType: types.OCIImageIndex, Size: int64(len(raw)), Digest: h}
			return writeOCIArchiveOf(ctx, w, top, raw, imgs, dest.Ref)
		})
	case Registry:
		ref, kc, ropts, rerr := registryTarget(ctx, dest, opts)
		if rerr != nil {
			return rerr
		}
		err = registry.AuthError(remote.WriteIndex(ref, ii, ropts...), kc, ref.Context().RegistryStr())
	default:
		err = fmt.Errorf("%w %s: cannot hold a multi-platform index", ErrBadDestination, dest)
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", dest, err)
	}
	return nil
}

func writeLayoutIndex(ctx context.Context, ii v1.ImageIndex, dest Destination) error {
	h, err := ii.Digest()
	if err != nil {
		return err
	}
	p, m, lopts, err := layoutTarget(ctx, dest, h)
	if err != nil {
		return err
	}
	return p.ReplaceIndex(ii, m, lopts...)
}
