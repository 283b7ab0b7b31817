package push

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"

	"github.com/stowage/stowage/source/registry"
)

// refNameAnnotation names an image inside an OCI layout's index.json.
const refNameAnnotation = "org.opencontainers.image.ref.name"

// Result describes a finished Push.
type Result struct {
	Destination    Destination
	ManifestDigest digest.Digest
	ConfigDigest   digest.Digest // the image ID a pull of it gets
	Layers         []LayerInfo   // base layer first
	Bytes          int64         // sum of the layer blobs' sizes
	Duration       time.Duration
}

// Push exports the image nameOrID from st and writes it to dest (see
// ParseDestination). The temporary blobs are removed before it returns.
func Push(ctx context.Context, st Reader, nameOrID string, dest Destination, opts Options) (Result, error) {
	start := time.Now()
	img, err := Export(ctx, st, nameOrID, opts)
	if err != nil {
		return Result{}, err
	}
	defer img.Close()
	if err := Write(ctx, img, dest, opts); err != nil {
		return Result{}, err
	}
	res := Result{
		Destination:    dest,
		ManifestDigest: digest.Digest(img.digest.String()),
		ConfigDigest:   digest.Digest(img.configDig.String()),
	}
	for k, l := range img.layers {
		res.Layers = append(res.Layers, LayerInfo{Index: k, DiffID: digest.Digest(l.diffID.String()),
			BlobDigest: digest.Digest(l.digest.String()), Size: l.size})
		res.Bytes += l.size
	}
	res.Duration = time.Since(start)
	return res, nil
}

// Write writes img to dest: an OCI layout (created, or added to: an image
// with the same ref name, or the same digest when there is no ref name, is
// replaced), an OCI archive or docker-archive file (written under a
// temporary name and renamed into place), or a registry.
func Write(ctx context.Context, img v1.Image, dest Destination, opts Options) error {
	var err error
	switch dest.Kind {
	case OCILayout:
		err = writeLayout(ctx, img, dest)
	case OCIArchive:
		err = writeFileAtomic(dest.Path, func(w io.Writer) error { return writeOCIArchive(ctx, w, img, dest.Ref) })
	case DockerArchive:
		err = writeDockerArchive(img, dest)
	case Registry:
		err = writeRegistry(ctx, img, dest, opts)
	default:
		err = fmt.Errorf("%w: %s", ErrBadDestination, dest)
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", dest, err)
	}
	return nil
}

func writeLayout(ctx context.Context, img v1.Image, dest Destination) error {
	h, err := img.Digest()
	if err != nil {
		return err
	}
	p, m, lopts, err := layoutTarget(ctx, dest, h)
	if err != nil {
		return err
	}
	return p.ReplaceImage(img, m, lopts...)
}

// layoutTarget opens dest's OCI layout (creating an empty one where there
// is none) and says which entry an object of digest h replaces: the one
// with dest's ref name when it has one (which the new entry gets), else
// the one of that digest.
func layoutTarget(ctx context.Context, dest Destination, h v1.Hash) (layout.Path, match.Matcher, []layout.Option, error) {
	if err := ctx.Err(); err != nil {
		return "", nil, nil, err
	}
	p, err := layout.FromPath(dest.Path)
	if err != nil {
		if _, serr := os.Stat(filepath.Join(dest.Path, "index.json")); !errors.Is(serr, os.ErrNotExist) {
			return "", nil, nil, err // there is a layout, and it does not read
		}
		if p, err = layout.Write(dest.Path, empty.Index); err != nil {
			return "", nil, nil, err
		}
	}
	if dest.Ref == "" {
		return p, match.Digests(h), nil, nil
	}
	return p, match.Annotation(refNameAnnotation, dest.Ref),
		[]layout.Option{layout.WithAnnotations(map[string]string{refNameAnnotation: dest.Ref})}, nil
}

// writeFileAtomic writes path through fn under a temporary name in the same
// directory, syncs it and renames it into place.
func writeFileAtomic(path string, fn func(io.Writer) error) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := fn(bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// writeOCIArchive writes an OCI layout as a tar stream: oci-layout,
// index.json (one manifest, named ref when given) and the blobs.
func writeOCIArchive(ctx context.Context, w io.Writer, img v1.Image, ref string) error {
	manifest, err := img.RawManifest()
	if err != nil {
		return err
	}
	mDigest, err := img.Digest()
	if err != nil {
		return err
	}
	top := v1.Descriptor{MediaType: types.OCIManifestSchema1, Size: int64(len(manifest)), Digest: mDigest}
	return writeOCIArchiveOf(ctx, w, top, manifest, []v1.Image{img}, ref)
}

// writeOCIArchiveOf writes an OCI layout as a tar stream: oci-layout,
// index.json naming top (with ref when given), top's bytes and every blob
// of images (each blob once).
func writeOCIArchiveOf(ctx context.Context, w io.Writer, top v1.Descriptor, topRaw []byte, images []v1.Image, ref string) error {
	tw := tar.NewWriter(w)
	now := time.Now().UTC().Truncate(time.Second)
	dir := func(name string) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: now})
	}
	file := func(name string, size int64, r io.Reader) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o644, ModTime: now}); err != nil {
			return err
		}
		n, err := io.Copy(tw, r)
		if err == nil && n != size {
			err = fmt.Errorf("%s: wrote %d bytes, want %d", name, n, size)
		}
		return err
	}
	bytesFile := func(name string, b []byte) error { return file(name, int64(len(b)), bytes.NewReader(b)) }
	seen := map[v1.Hash]bool{}
	blob := func(d v1.Hash, b []byte) error {
		if seen[d] {
			return nil
		}
		seen[d] = true
		return bytesFile("blobs/sha256/"+d.Hex, b)
	}

	if ref != "" {
		top.Annotations = map[string]string{refNameAnnotation: ref}
	}
	index, err := json.Marshal(v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{top}})
	if err != nil {
		return err
	}
	if err := bytesFile("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	if err := bytesFile("index.json", index); err != nil {
		return err
	}
	if err := dir("blobs/"); err != nil {
		return err
	}
	if err := dir("blobs/sha256/"); err != nil {
		return err
	}
	if err := blob(top.Digest, topRaw); err != nil {
		return err
	}
	for _, img := range images {
		if err := writeImageBlobs(img, blob, seen, file); err != nil {
			return err
		}
	}
	return tw.Close()
}

// writeImageBlobs writes img's manifest, config and layer blobs through
// blob and file, skipping digests already seen.
func writeImageBlobs(img v1.Image, blob func(v1.Hash, []byte) error, seen map[v1.Hash]bool, file func(string, int64, io.Reader) error) error {
	manifest, err := img.RawManifest()
	if err != nil {
		return err
	}
	config, err := img.RawConfigFile()
	if err != nil {
		return err
	}
	mDigest, err := img.Digest()
	if err != nil {
		return err
	}
	cDigest, err := img.ConfigName()
	if err != nil {
		return err
	}
	if err := blob(mDigest, manifest); err != nil {
		return err
	}
	if err := blob(cDigest, config); err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return err
		}
		if seen[d] {
			continue
		}
		seen[d] = true
		size, err := l.Size()
		if err != nil {
			return err
		}
		rc, err := l.Compressed()
		if err != nil {
			return err
		}
		err = file("blobs/sha256/"+d.Hex, size, rc)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func writeDockerArchive(img v1.Image, dest Destination) error {
	var ref name.Reference
	if dest.Ref != "" {
		t, err := name.NewTag(dest.Ref)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrBadDestination, err)
		}
		ref = t
	} else {
		// tarball.Write wants a reference; a digest one adds no RepoTags.
		h, err := img.Digest()
		if err != nil {
			return err
		}
		if ref, err = name.NewDigest("stowage/untagged@" + h.String()); err != nil {
			return err
		}
	}
	return writeFileAtomic(dest.Path, func(w io.Writer) error { return tarball.Write(ref, img, w) })
}

func writeRegistry(ctx context.Context, img v1.Image, dest Destination, opts Options) error {
	ref, kc, ropts, err := registryTarget(ctx, dest, opts)
	if err != nil {
		return err
	}
	// A refused login or push is source.ErrUnauthorized, as for pull.
	return registry.AuthError(remote.Write(ref, img, ropts...), kc, ref.Context().RegistryStr())
}

// registryTarget resolves a registry destination: its reference, the
// keychain (opts.AuthFile, else the files pull searches) and the remote
// options.
func registryTarget(ctx context.Context, dest Destination, opts Options) (name.Reference, authn.Keychain, []remote.Option, error) {
	var nopts []name.Option
	if opts.Insecure {
		nopts = append(nopts, name.Insecure)
	}
	ref, err := name.ParseReference(dest.Ref, nopts...)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %v", ErrBadDestination, err)
	}
	kc := registry.DefaultKeychain() // the auth files podman reads, in its order
	if opts.AuthFile != "" {
		kc = registry.FileKeychain(opts.AuthFile)
	}
	ropts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(kc),
		remote.WithJobs(opts.jobs()),
		remote.WithUserAgent("stowage"),
	}
	if opts.Insecure {
		tr := remote.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // asked for with Insecure
		ropts = append(ropts, remote.WithTransport(tr))
	}
	return ref, kc, ropts, nil
}
