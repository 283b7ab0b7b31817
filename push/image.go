package push

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"

	"github.com/stowage/stowage/archive"
	"github.com/stowage/stowage/image"
	"github.com/stowage/stowage/layer"
	"github.com/stowage/stowage/store"
)

// Compression is how exported layers are compressed. The zero value is gzip.
type Compression int

// Compressions.
const (
	Gzip Compression = iota
	Zstd
	None
)

func (c Compression) String() string {
	switch c {
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	case None:
		return "none"
	}
	return fmt.Sprintf("Compression(%d)", int(c))
}

// ParseCompression maps "gzip", "zstd" and "none" (also "" for gzip and
// "uncompressed" for none) to a Compression.
func ParseCompression(s string) (Compression, error) {
	switch strings.ToLower(s) {
	case "", "gzip":
		return Gzip, nil
	case "zstd":
		return Zstd, nil
	case "none", "uncompressed":
		return None, nil
	}
	return 0, fmt.Errorf("%w %q (want gzip, zstd or none)", ErrBadCompression, s)
}

func (c Compression) archive() archive.Compression {
	switch c {
	case Zstd:
		return archive.Zstd
	case None:
		return archive.Uncompressed
	}
	return archive.Gzip
}

func (c Compression) mediaType() types.MediaType {
	switch c {
	case Zstd:
		return types.OCILayerZStd
	case None:
		return types.OCIUncompressedLayer
	}
	return types.OCILayer
}

// Options control Export and Push. The zero value exports gzip layers,
// GOMAXPROCS at a time, into os.TempDir().
type Options struct {
	Compression Compression
	// Jobs is how many layers are read and compressed at once, and how many
	// blobs are uploaded at once to a registry; 0 means GOMAXPROCS (at
	// least 2).
	Jobs int
	// TempDir holds the compressed layers until they are written; empty
	// means os.TempDir().
	TempDir string
	// Insecure lets a registry destination use plain HTTP or a TLS
	// certificate that does not verify (localhost registries use HTTP
	// without it).
	Insecure bool
	// AuthFile, if set, is the only file registry credentials are read
	// from (podman push --authfile); else the files pull searches.
	AuthFile string
	// OnLayer, when set, is called once per exported layer, from one
	// goroutine at a time.
	OnLayer func(LayerInfo)
}

func (o Options) jobs() int {
	if o.Jobs > 0 {
		return o.Jobs
	}
	return max(2, runtime.GOMAXPROCS(0))
}

// LayerInfo describes one exported layer.
type LayerInfo struct {
	ID         string        `json:"id,omitempty"` // the store's layer ID
	Index      int           `json:"index"`        // 0 for the base layer
	DiffID     digest.Digest `json:"diff-id"`      // the uncompressed tar's digest
	BlobDigest digest.Digest `json:"digest"`       // the compressed blob's digest
	Size       int64         `json:"size"`         // the compressed blob's size
}

// Reader is what Export needs from a store: *store.Store has it.
type Reader interface {
	Image(ctx context.Context, nameOrID string) (*image.Image, error)
	Layer(ctx context.Context, nameOrID string) (*layer.Layer, error)
	ImageBigData(ctx context.Context, nameOrID, key string) ([]byte, error)
	Diff(ctx context.Context, from, to string, opts store.DiffOptions) (io.ReadCloser, error)
}

// Image is an image exported from the store: a go-containerregistry
// v1.Image whose layers are compressed blobs in a temporary directory.
// It is safe for concurrent use. Close removes the blobs.
type Image struct {
	dir       string
	layers    []*blobLayer
	config    []byte
	configDig v1.Hash
	manifest  []byte
	digest    v1.Hash
}

var _ v1.Image = (*Image)(nil)

// Export reads the image nameOrID from st: its config and every layer of
// its chain (opts.Jobs at a time), compressed per opts into a temporary
// directory. The caller must Close the result. A cancelled ctx stops the
// export and removes the directory.
func Export(ctx context.Context, st Reader, nameOrID string, opts Options) (_ *Image, err error) {
	img, err := st.Image(ctx, nameOrID)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", nameOrID, err)
	}
	chain, err := layerChain(ctx, st, img.TopLayer)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", img.ID, err)
	}
	stored, err := storedConfig(ctx, st, img)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", img.ID, err)
	}
	dir, err := os.MkdirTemp(opts.TempDir, "stowage-push-")
	if err != nil {
		return nil, err
	}
	out := &Image{dir: dir}
	defer func() {
		if err != nil {
			out.Close()
		}
	}()
	if out.layers, err = exportLayers(ctx, st, chain, dir, opts); err != nil {
		return nil, fmt.Errorf("image %s: %w", img.ID, err)
	}
	if stored != nil {
		if err := checkDiffIDs(stored, out.layers); err != nil {
			return nil, fmt.Errorf("image %s: %w", img.ID, err)
		}
		out.config = stored
	} else {
		out.config = synthesizeConfig(img, out.layers)
	}
	if err := out.buildManifest(); err != nil {
		return nil, err
	}
	return out, nil
}

// Close removes the image's temporary blobs. The Image must not be used
// afterwards.
func (i *Image) Close() error {
	if i.dir == "" {
		return nil
	}
	err := os.RemoveAll(i.dir)
	i.dir = ""
	return err
}

// layerChain returns the layers from the base up to top ("" gives none).
func layerChain(ctx context.Context, st Reader, top string) ([]*layer.Layer, error) {
	var chain []*layer.Layer
	seen := map[string]bool{}
	for id := top; id != ""; {
		if seen[id] {
			return nil, fmt.Errorf("layer %s: parent chain loops", id)
		}
		seen[id] = true
		l, err := st.Layer(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("layer %s: %w", id, err)
		}
		chain = append(chain, l)
		id = l.Parent
	}
	for i, j := 0, len(chain)-1; i < j; i, j = i+1, j-1 {
		chain[i], chain[j] = chain[j], chain[i]
	}
	return chain, nil
}

// storedConfig returns the config blob kept as big data, or nil when the
// image has none. It is found, in this order, through the "manifest" item's
// config digest, under the image ID as a digest (containers/image names an
// image after its config), or as any "sha256:" item that hashes to its key
// and parses as a config with rootfs.diff_ids.
func storedConfig(ctx context.Context, st Reader, img *image.Image) ([]byte, error) {
	has := map[string]bool{}
	for _, k := range img.BigDataNames {
		has[k] = true
	}
	var candidates []string
	if has["manifest"] {
		m, err := st.ImageBigData(ctx, img.ID, "manifest")
		if err != nil {
			return nil, err
		}
		var mf struct {
			Config struct {
				Digest string `json:"digest"`
			} `json:"config"`
		}
		if json.Unmarshal(m, &mf) == nil && mf.Config.Digest != "" {
			candidates = append(candidates, mf.Config.Digest)
		}
	}
	candidates = append(candidates, "sha256:"+img.ID)
	for _, k := range img.BigDataNames {
		if strings.HasPrefix(k, "sha256:") {
			candidates = append(candidates, k)
		}
	}
	for _, k := range candidates {
		if !has[k] {
			continue
		}
		data, err := st.ImageBigData(ctx, img.ID, k)
		if err != nil {
			return nil, err
		}
		if digest.FromBytes(data).String() != k {
			continue
		}
		var cfg struct {
			RootFS *struct {
				DiffIDs []string `json:"diff_ids"`
			} `json:"rootfs"`
		}
		if json.Unmarshal(data, &cfg) == nil && cfg.RootFS != nil {
			return data, nil
		}
	}
	return nil, nil
}

// exportLayers compresses every layer of chain into dir, jobs at a time.
func exportLayers(ctx context.Context, st Reader, chain []*layer.Layer, dir string, opts Options) ([]*blobLayer, error) {
	out := make([]*blobLayer, len(chain))
	var mu sync.Mutex // serialises opts.OnLayer
	// Owned here: g.Wait returns only after every export goroutine ended.
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opts.jobs())
	for i, l := range chain {
		g.Go(func() error {
			bl, err := exportLayer(gctx, st, l.ID, dir, opts.Compression)
			if err != nil {
				return fmt.Errorf("layer %s: %w", l.ID, err)
			}
			out[i] = bl
			if opts.OnLayer != nil {
				mu.Lock()
				opts.OnLayer(LayerInfo{ID: l.ID, Index: i, DiffID: digest.Digest(bl.diffID.String()),
					BlobDigest: digest.Digest(bl.digest.String()), Size: bl.size})
				mu.Unlock()
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

// countWriter counts bytes.
type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// exportLayer streams the layer's diff against its parent (uncompressed,
// bit-identical where a tar-split exists), hashing it, and writes it
// compressed to a file in dir, hashing that too.
func exportLayer(ctx context.Context, st Reader, id, dir string, c Compression) (_ *blobLayer, err error) {
	unc := archive.Uncompressed
	rc, err := st.Diff(ctx, "", id, store.DiffOptions{Compression: &unc})
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := rc.Close(); err == nil && cerr != nil && !errors.Is(cerr, io.ErrClosedPipe) {
			err = cerr
		}
	}()
	f, err := os.CreateTemp(dir, "layer-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	blobHash, diffHash := sha256.New(), sha256.New()
	var n countWriter
	cw, err := archive.CompressStream(io.MultiWriter(bw, blobHash, &n), c.archive())
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(io.MultiWriter(cw, diffHash), rc); err != nil {
		cw.Close()
		return nil, err
	}
	if err := cw.Close(); err != nil {
		return nil, err
	}
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	return &blobLayer{
		path:   f.Name(),
		digest: sumHash(blobHash),
		diffID: sumHash(diffHash),
		size:   n.n,
		mt:     c.mediaType(),
	}, nil
}

func sumHash(h hash.Hash) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
}

// checkDiffIDs fails unless the config's rootfs.diff_ids are the exported
// layers' diff IDs, in order.
func checkDiffIDs(config []byte, layers []*blobLayer) error {
	cf, err := v1.ParseConfigFile(bytes.NewReader(config))
	if err != nil {
		return fmt.Errorf("stored config: %w", err)
	}
	if len(cf.RootFS.DiffIDs) != len(layers) {
		return fmt.Errorf("%w: the config lists %d layers, the store's chain has %d", ErrDiffIDMismatch, len(cf.RootFS.DiffIDs), len(layers))
	}
	for i, l := range layers {
		if cf.RootFS.DiffIDs[i] != l.diffID {
			return fmt.Errorf("%w: layer %d exports as %s, the config says %s", ErrDiffIDMismatch, i, l.diffID, cf.RootFS.DiffIDs[i])
		}
	}
	return nil
}

// synthesizeConfig makes a minimal OCI config for an image stored without
// one: this machine's OS and architecture and the layers' diff IDs.
func synthesizeConfig(img *image.Image, layers []*blobLayer) []byte {
	type rootfs struct {
		Type    string   `json:"type"`
		DiffIDs []string `json:"diff_ids"`
	}
	cfg := struct {
		Created      string         `json:"created,omitempty"`
		Architecture string         `json:"architecture"`
		OS           string         `json:"os"`
		Config       map[string]any `json:"config"`
		RootFS       rootfs         `json:"rootfs"`
	}{
		Architecture: runtime.GOARCH,
		OS:           "linux",
		Config:       map[string]any{},
		RootFS:       rootfs{Type: "layers", DiffIDs: []string{}},
	}
	if !img.Created.IsZero() {
		cfg.Created = img.Created.UTC().Format(time.RFC3339Nano)
	}
	for _, l := range layers {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, l.diffID.String())
	}
	b, _ := json.Marshal(cfg) // cannot fail: plain strings and maps
	return b
}

func (i *Image) buildManifest() error {
	h, n, err := v1.SHA256(bytes.NewReader(i.config))
	if err != nil {
		return err
	}
	i.configDig = h
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        v1.Descriptor{MediaType: types.OCIConfigJSON, Size: n, Digest: h},
		Layers:        []v1.Descriptor{},
	}
	for _, l := range i.layers {
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: l.mt, Size: l.size, Digest: l.digest})
	}
	if i.manifest, err = json.Marshal(m); err != nil {
		return err
	}
	i.digest, _, err = v1.SHA256(bytes.NewReader(i.manifest))
	return err
}

// Layers implements v1.Image: base layer first.
func (i *Image) Layers() ([]v1.Layer, error) {
	out := make([]v1.Layer, len(i.layers))
	for k, l := range i.layers {
		out[k] = l
	}
	return out, nil
}

// MediaType implements v1.Image: always an OCI manifest.
func (i *Image) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }

// Size implements v1.Image.
func (i *Image) Size() (int64, error) { return int64(len(i.manifest)), nil }

// ConfigName implements v1.Image: the config's digest (the image ID).
func (i *Image) ConfigName() (v1.Hash, error) { return i.configDig, nil }

// ConfigFile implements v1.Image.
func (i *Image) ConfigFile() (*v1.ConfigFile, error) {
	return v1.ParseConfigFile(bytes.NewReader(i.config))
}

// RawConfigFile implements v1.Image.
func (i *Image) RawConfigFile() ([]byte, error) { return i.config, nil }

// Digest implements v1.Image: the manifest's digest.
func (i *Image) Digest() (v1.Hash, error) { return i.digest, nil }

// Manifest implements v1.Image.
func (i *Image) Manifest() (*v1.Manifest, error) {
	return v1.ParseManifest(bytes.NewReader(i.manifest))
}

// RawManifest implements v1.Image.
func (i *Image) RawManifest() ([]byte, error) { return i.manifest, nil }

// LayerByDigest implements v1.Image.
func (i *Image) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	for _, l := range i.layers {
		if l.digest == h {
			return l, nil
		}
	}
	return nil, fmt.Errorf("no layer with digest %s", h)
}

// LayerByDiffID implements v1.Image.
func (i *Image) LayerByDiffID(h v1.Hash) (v1.Layer, error) {
	for _, l := range i.layers {
		if l.diffID == h {
			return l, nil
		}
	}
	return nil, fmt.Errorf("no layer with diff ID %s", h)
}

// blobLayer is a v1.Layer whose compressed blob is a local file.
type blobLayer struct {
	path           string
	digest, diffID v1.Hash
	size           int64
	mt             types.MediaType
}

var _ v1.Layer = (*blobLayer)(nil)

func (l *blobLayer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *blobLayer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *blobLayer) Size() (int64, error)                { return l.size, nil }
func (l *blobLayer) MediaType() (types.MediaType, error) { return l.mt, nil }
func (l *blobLayer) Compressed() (io.ReadCloser, error)  { return os.Open(l.path) }
func (l *blobLayer) Uncompressed() (io.ReadCloser, error) {
	f, err := os.Open(l.path)
	if err != nil {
		return nil, err
	}
	rc, _, err := archive.DecompressStream(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &closeBoth{rc, f}, nil
}

type closeBoth struct {
	io.ReadCloser
	f *os.File
}

func (c *closeBoth) Close() error {
	err := c.ReadCloser.Close()
	if ferr := c.f.Close(); err == nil {
		err = ferr
	}
	return err
}
