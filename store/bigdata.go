package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"

	"github.com/stowage/stowage/image"
	"github.com/stowage/stowage/internal/fsx"
)

// writeBigDataFile writes one item atomically (0600) into dir (0700):
// temp file, fdatasync, rename, fsync of dir (and of the parents of dirs
// it had to create). Temp files of writers that died in dir are removed
// first: the caller holds the write lock every writer of dir holds.
func writeBigDataFile(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := fsx.MkdirAllDurable(dir, 0o700); err != nil {
		return err
	}
	if _, err := fsx.RemoveStaleTemps(dir, ""); err != nil {
		return err
	}
	_, err := fsx.AtomicWriteFile(path, data, 0o600, fsx.AtomicOptions{SyncDir: true})
	return err
}

// bigDataFile is one item writeBigDataFiles writes.
type bigDataFile struct {
	path string
	data []byte
}

// writeBigDataFiles writes several items of one record into dir (0700),
// each atomically (0600) as writeBigDataFile does, but with one fsync of
// dir: the temp files are written and fdatasynced concurrently, renamed in
// order, then dir is fsynced. On error the temp files not yet renamed are
// removed; files already renamed stay (the caller removes dir).
func writeBigDataFiles(ctx context.Context, dir string, files []bigDataFile) error {
	if err := fsx.MkdirAllDurable(dir, 0o700); err != nil {
		return err
	}
	if _, err := fsx.RemoveStaleTemps(dir, ""); err != nil {
		return err
	}
	pend := make([]*fsx.PendingWrite, len(files))
	var g errgroup.Group
	for i, f := range files {
		g.Go(func() error { // owner: g.Wait below
			p, err := fsx.PrepareAtomicWrite(f.path, f.data, 0o600, false)
			pend[i] = p
			return err
		})
	}
	err := g.Wait()
	if err == nil {
		err = ctx.Err()
	}
	for _, p := range pend {
		switch {
		case p == nil:
		case err != nil:
			p.Abort()
		default:
			err = p.Rename() // on error the rest are aborted
		}
	}
	if err != nil {
		return err
	}
	return fsx.SyncDir(dir)
}

// writeImageBigDataLocked writes an image item and records its size and
// digest (d if given; else md for "manifest*" keys; else sha256), then
// saves. A save with an invalid manifest digest is refused.
//
// Locking: images held for writing; img is a record of is.
func (s *Store) writeImageBigDataLocked(ctx context.Context, is *image.Store, img *image.Image, key string, data []byte, d digest.Digest, md ManifestDigester) error {
	path, err := is.BigDataPath(img.ID, key)
	if err != nil {
		return fmt.Errorf("%s: %w", key, ErrInvalidBigDataName)
	}
	if d == "" {
		if strings.HasPrefix(key, "manifest") && md != nil {
			if d, err = md(data); err != nil {
				return fmt.Errorf("digesting manifest %q: %w", key, err)
			}
		} else {
			d = digest.Canonical.FromBytes(data)
		}
	}
	if err := d.Validate(); err != nil {
		return fmt.Errorf("digest of %q: %w", key, err)
	}
	if err := writeBigDataFile(path, data); err != nil {
		return err
	}
	old := image.Copy(img)
	recordBigData(&img.BigDataNames, &img.BigDataSizes, &img.BigDataDigests, key, int64(len(data)), d)
	if err := is.Update(img); err != nil {
		*img = old
		return err
	}
	return is.Save(ctx)
}

// recordBigData notes an item's size and digest in a record's big-data
// fields (making the maps if nil) and appends a new key to its names.
func recordBigData(names *[]string, sizes *map[string]int64, digests *map[string]digest.Digest, key string, size int64, d digest.Digest) {
	if *sizes == nil {
		*sizes = map[string]int64{}
	}
	if *digests == nil {
		*digests = map[string]digest.Digest{}
	}
	(*sizes)[key] = size
	(*digests)[key] = d
	if !slices.Contains(*names, key) {
		*names = append(*names, key)
	}
}

func readImageBigData(is *image.Store, img *image.Image, key string) ([]byte, error) {
	return readBigData("image", img.ID, key, is.BigDataPath)
}

// readBigData reads one item of the kind's record id from the file
// pathOf names.
func readBigData(kind, id, key string, pathOf func(id, key string) (string, error)) ([]byte, error) {
	path, err := pathOf(id, key)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, ErrInvalidBigDataName)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("locating item named %q for %s with ID %q: %w", key, kind, id, unwrapPathErr(err))
	}
	return data, nil
}

// unwrapPathErr drops the path from a PathError; a missing file is
// fs.ErrNotExist itself, whose text ("file does not exist") is what
// containers/storage prints and scripts match.
func unwrapPathErr(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fs.ErrNotExist
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// ListImageBigData returns the image's keys in insertion order.
func (s *Store) ListImageBigData(ctx context.Context, nameOrID string) ([]string, error) {
	img, err := s.Image(ctx, nameOrID)
	if err != nil {
		return nil, err
	}
	return img.BigDataNames, nil
}

// ImageBigData returns one item of an image.
func (s *Store) ImageBigData(ctx context.Context, nameOrID, key string) ([]byte, error) {
	unlock, err := s.lockStores(ctx, lockSpec{images: modeRead})
	if err != nil {
		return nil, err
	}
	defer unlock()
	img, is, ok := s.lookupImageLocked(nameOrID)
	if !ok {
		return nil, imageUnknown(nameOrID)
	}
	return readImageBigData(is, img, key)
}

// ImageBigDataSize returns the recorded size of an item (ErrSizeUnknown if none).
func (s *Store) ImageBigDataSize(ctx context.Context, nameOrID, key string) (int64, error) {
	img, err := s.Image(ctx, nameOrID)
	if err != nil {
		return -1, err
	}
	if n, ok := img.BigDataSizes[key]; ok {
		return n, nil
	}
	return -1, ErrSizeUnknown
}

// ImageBigDataDigest returns the recorded digest of an item (ErrDigestUnknown if none).
func (s *Store) ImageBigDataDigest(ctx context.Context, nameOrID, key string) (digest.Digest, error) {
	img, err := s.Image(ctx, nameOrID)
	if err != nil {
		return "", err
	}
	if d, ok := img.BigDataDigests[key]; ok && d != "" {
		return d, nil
	}
	return "", ErrDigestUnknown
}

// SetImageBigData writes an item; md computes the digest of "manifest*"
// keys (nil: sha256). An image of a read-only store is pulled up first.
func (s *Store) SetImageBigData(ctx context.Context, nameOrID, key string, data []byte, md ManifestDigester) error {
	if key == "" {
		return fmt.Errorf("can't set empty name for image big data item: %w", ErrInvalidBigDataName)
	}
	unlock, err := s.lockStores(ctx, lockSpec{layers: modeRead, images: modeWrite})
	if err != nil {
		return err
	}
	defer unlock()
	img, is, err := s.writableImageLocked(ctx, nameOrID)
	if err != nil {
		return err
	}
	return s.writeImageBigDataLocked(ctx, is, img, key, data, "", md)
}

// writableImageLocked resolves an image to a record of the primary store,
// pulling it up from a read-only store when needed (§4.4).
//
// Locking: images held for writing.
func (s *Store) writableImageLocked(ctx context.Context, nameOrID string) (*image.Image, *image.Store, error) {
	img, is, ok := s.lookupImageLocked(nameOrID)
	if !ok {
		return nil, nil, imageUnknown(nameOrID)
	}
	if !is.ReadOnly() {
		return img, is, nil // the primary or another read-write store: edit in place
	}
	img, err := s.pullUpLocked(ctx, is, img)
	return img, s.images, err
}

// pullUpLocked copies a read-only image record (created, digest,
// metadata, names history, flags, names and big data) into the primary
// store under the same ID.
//
// Locking: images held for writing.
func (s *Store) pullUpLocked(ctx context.Context, from *image.Store, img *image.Image) (*image.Image, error) {
	rec := &image.Image{
		ID: img.ID, Digest: img.Digest, TopLayer: img.TopLayer, MappedTopLayers: slices.Clone(img.MappedTopLayers),
		Metadata: img.Metadata, Created: img.Created, NamesHistory: slices.Clone(img.NamesHistory),
		Flags: copyFlags(img.Flags),
	}
	for _, n := range img.Names {
		if _, taken := s.images.Lookup(n); !taken {
			rec.Names = append(rec.Names, n)
		}
	}
	if err := s.images.Add(rec); err != nil {
		return nil, mapTableErr(err)
	}
	if err := s.copyImageBigDataLocked(ctx, from, img, rec); err != nil {
		s.images.Remove(rec.ID)
		return nil, errors.Join(err, s.images.Save(context.WithoutCancel(ctx)), os.RemoveAll(s.images.DataDir(rec.ID)))
	}
	if err := s.images.Save(ctx); err != nil {
		return nil, err
	}
	return rec, nil
}

// copyImageBigDataLocked copies every item of img (a record of from) to
// rec, a record of the primary store, keeping the recorded digests.
//
// Locking: images held for writing.
func (s *Store) copyImageBigDataLocked(ctx context.Context, from *image.Store, img, rec *image.Image) error {
	for _, key := range img.BigDataNames {
		data, err := readImageBigData(from, img, key)
		if err != nil {
			return err
		}
		if err := s.writeImageBigDataLocked(ctx, s.images, rec, key, data, img.BigDataDigests[key], nil); err != nil {
			return err
		}
	}
	return nil
}

// Container big data.

// ListContainerBigData returns the container's keys in insertion order.
func (s *Store) ListContainerBigData(ctx context.Context, nameOrID string) ([]string, error) {
	c, err := s.Container(ctx, nameOrID)
	if err != nil {
		return nil, err
	}
	return c.BigDataNames, nil
}

// ContainerBigData returns one item of a container.
func (s *Store) ContainerBigData(ctx context.Context, nameOrID, key string) ([]byte, error) {
	unlock, err := s.lockStores(ctx, lockSpec{containers: modeRead})
	if err != nil {
		return nil, err
	}
	defer unlock()
	c, ok := s.containers.Lookup(nameOrID)
	if !ok {
		return nil, ErrContainerUnknown
	}
	return readBigData("container", c.ID, key, s.containers.BigDataPath)
}

// ContainerBigDataSize returns the recorded size of an item.
func (s *Store) ContainerBigDataSize(ctx context.Context, nameOrID, key string) (int64, error) {
	c, err := s.Container(ctx, nameOrID)
	if err != nil {
		return -1, err
	}
	if n, ok := c.BigDataSizes[key]; ok {
		return n, nil
	}
	return -1, ErrSizeUnknown
}

// ContainerBigDataDigest returns the recorded digest of an item.
func (s *Store) ContainerBigDataDigest(ctx context.Context, nameOrID, key string) (digest.Digest, error) {
	c, err := s.Container(ctx, nameOrID)
	if err != nil {
		return "", err
	}
	if d, ok := c.BigDataDigests[key]; ok && d != "" {
		return d, nil
	}
	return "", ErrDigestUnknown
}

// SetContainerBigData writes an item and records its size and sha256.
func (s *Store) SetContainerBigData(ctx context.Context, nameOrID, key string, data []byte) error {
	if key == "" {
		return fmt.Errorf("can't set empty name for container big data item: %w", ErrInvalidBigDataName)
	}
	unlock, err := s.lockStores(ctx, lockSpec{containers: modeWrite})
	if err != nil {
		return err
	}
	defer unlock()
	c, ok := s.containers.Lookup(nameOrID)
	if !ok {
		return ErrContainerUnknown
	}
	path, err := s.containers.BigDataPath(c.ID, key)
	if err != nil {
		return err
	}
	if err := writeBigDataFile(path, data); err != nil {
		return err
	}
	recordBigData(&c.BigDataNames, &c.BigDataSizes, &c.BigDataDigests, key, int64(len(data)), digest.Canonical.FromBytes(data))
	s.containers.Update(c)
	return s.containers.Save(ctx)
}

// Layer big data.

// ListLayerBigData returns the layer's keys in insertion order.
func (s *Store) ListLayerBigData(ctx context.Context, nameOrID string) ([]string, error) {
	l, err := s.Layer(ctx, nameOrID)
	if err != nil {
		return nil, err
	}
	return l.BigDataNames, nil
}

// LayerBigData opens one item of a layer; the caller closes it.
func (s *Store) LayerBigData(ctx context.Context, nameOrID, key string) (io.ReadCloser, error) {
	unlock, err := s.lockStores(ctx, lockSpec{layers: modeRead})
	if err != nil {
		return nil, err
	}
	defer unlock()
	l, ls, ok := s.lookupLayerLocked(nameOrID)
	if !ok {
		return nil, ErrLayerUnknown
	}
	path, err := ls.BigDataPath(l.ID, key)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, ErrInvalidBigDataName)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("locating item named %q for layer with ID %q: %w", key, l.ID, unwrapPathErr(err))
	}
	return f, nil
}

// SetLayerBigData writes an item of a layer of the primary store.
func (s *Store) SetLayerBigData(ctx context.Context, nameOrID, key string, data io.Reader) error {
	if key == "" {
		return fmt.Errorf("can't set empty name for layer big data item: %w", ErrInvalidBigDataName)
	}
	buf, err := io.ReadAll(data) // read before locking: never block on the caller under a lock
	if err != nil {
		return err
	}
	unlock, err := s.lockStores(ctx, lockSpec{layers: modeWrite})
	if err != nil {
		return err
	}
	defer unlock()
	l, err := s.writableLayerLocked(nameOrID, ErrLayerUnknown)
	if err != nil {
		return err
	}
	path, err := s.layers.BigDataPath(l.ID, key)
	if err != nil {
		return err
	}
	if err := writeBigDataFile(path, buf); err != nil {
		return err
	}
	if !slices.Contains(l.BigDataNames, key) {
		l.BigDataNames = append(l.BigDataNames, key)
		s.layers.Update(l)
		return s.layers.Save(ctx)
	}
	return nil
}
