package store

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/stowage/stowage/image"
	"github.com/stowage/stowage/internal/table"
)

// lookupImageLocked resolves nameOrID in the read-write image stores,
// then the read-only ones.
//
// Locking: image stores held.
func (s *Store) lookupImageLocked(nameOrID string) (*image.Image, *image.Store, bool) {
	for _, is := range s.allImageStores() {
		if img, ok := is.Lookup(nameOrID); ok {
			return img, is, true
		}
	}
	return nil, nil, false
}

func imageUnknown(nameOrID string) error {
	return fmt.Errorf("locating image with ID %q: %w", nameOrID, ErrImageUnknown)
}

// CreateImage records an image on top of opts.TopLayer (resolved across
// the read-write and read-only layer stores). An ID that exists only in a
// read-only store is pulled up into the read-write store. On failure the
// record and its data dir are removed.
func (s *Store) CreateImage(ctx context.Context, opts ImageOptions) (*image.Image, error) {
	unlock, err := s.lockStores(ctx, lockSpec{layers: modeRead, images: modeWrite})
	if err != nil {
		return nil, err
	}
	defer unlock()
	top := ""
	if opts.TopLayer != "" {
		l, _, ok := s.lookupLayerLocked(opts.TopLayer)
		if !ok {
			return nil, fmt.Errorf("locating layer for top layer %q: %w", opts.TopLayer, ErrLayerUnknown)
		}
		top = l.ID
	}
	id := opts.ID
	if id == "" {
		if id, err = newID(func(x string) bool { _, _, ok := s.lookupImageByIDLocked(x); return ok }); err != nil {
			return nil, err
		}
	} else if err := table.ValidID(id); err != nil {
		return nil, err
	}
	var pulled *image.Image
	img, pulledFrom, ok := s.lookupImageByIDLocked(id)
	if ok {
		if !pulledFrom.ReadOnly() {
			return nil, fmt.Errorf("image %s: %w", id, ErrDuplicateID)
		}
		c := image.Copy(img)
		pulled = &c
	}
	names := table.Dedup(opts.Names)
	for _, n := range names {
		if holder, ok := s.images.Lookup(n); ok && holder.ID != id && slices.Contains(holder.Names, n) {
			return nil, fmt.Errorf("image name %q is already associated with image %q: %w", n, holder.ID, ErrDuplicateName)
		}
	}
	created := opts.Created
	if created.IsZero() {
		created = time.Now().UTC()
	}
	rec := &image.Image{
		ID: id, Digest: opts.Digest, Names: names, TopLayer: top,
		Metadata: opts.Metadata, Created: created, Flags: copyFlags(opts.Flags),
	}
	if pulled != nil {
		rec.Names = table.Dedup(append(slices.Clone(pulled.Names), names...))
		rec.Created, rec.NamesHistory = pulled.Created, pulled.NamesHistory
		if rec.Digest == "" {
			rec.Digest = pulled.Digest
		}
		if rec.Metadata == "" {
			rec.Metadata = pulled.Metadata
		}
	}
	files, err := s.newImageBigDataLocked(rec, pulledFrom, pulled, opts.BigData)
	if err != nil {
		return nil, err
	}
	if err := s.images.Add(rec); err != nil {
		return nil, mapTableErr(err)
	}
	// One durable save: the big-data files are written and flushed (their
	// directory too) while images.json's temp file is, and images.json is
	// renamed only once they are, so the record never names a missing item.
	var flush func(context.Context) error
	if len(files) > 0 {
		dir := s.images.DataDir(id)
		flush = func(ctx context.Context) error { return writeBigDataFiles(ctx, dir, files) }
	}
	if _, err := s.images.SaveWith(ctx, table.SaveOptions{Flush: flush}); err != nil {
		s.images.Remove(id)
		errs := []error{err, s.images.Save(context.WithoutCancel(ctx)), os.RemoveAll(s.images.DataDir(id))}
		return nil, errors.Join(errs...)
	}
	c := image.Copy(rec)
	return &c, nil
}

// newImageBigDataLocked records in rec (not yet added) a pulled-up
// image's big data (pulled, a record of the read-only store from; nil if
// none) followed by the caller's items, and returns the files to write,
// one per key (a later item with the same key wins).
//
// Locking: images held for writing.
func (s *Store) newImageBigDataLocked(rec *image.Image, from *image.Store, pulled *image.Image, items []BigDataItem) ([]bigDataFile, error) {
	var all []BigDataItem
	if pulled != nil {
		for _, key := range pulled.BigDataNames {
			data, err := readImageBigData(from, pulled, key)
			if err != nil {
				return nil, err
			}
			all = append(all, BigDataItem{Key: key, Data: data, Digest: pulled.BigDataDigests[key]})
		}
	}
	all = append(all, items...)
	var files []bigDataFile
	at := map[string]int{}
	for _, it := range all {
		if it.Key == "" {
			return nil, fmt.Errorf("can't set empty name for image big data item: %w", ErrInvalidBigDataName)
		}
		path, err := s.images.BigDataPath(rec.ID, it.Key)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", it.Key, ErrInvalidBigDataName)
		}
		d := it.Digest
		if d == "" {
			d = digest.Canonical.FromBytes(it.Data)
		}
		if err := d.Validate(); err != nil {
			return nil, fmt.Errorf("digest of %q: %w", it.Key, err)
		}
		recordBigData(&rec.BigDataNames, &rec.BigDataSizes, &rec.BigDataDigests, it.Key, int64(len(it.Data)), d)
		if k, ok := at[path]; ok {
			files[k].data = it.Data
			continue
		}
		at[path] = len(files)
		files = append(files, bigDataFile{path: path, data: it.Data})
	}
	return files, nil
}

// lookupRWImageLocked resolves nameOrID in the read-write image stores
// only (the primary first).
//
// Locking: image stores held.
func (s *Store) lookupRWImageLocked(nameOrID string) (*image.Image, *image.Store, bool) {
	for _, is := range s.rwImageStores() {
		if img, ok := is.Lookup(nameOrID); ok {
			return img, is, true
		}
	}
	return nil, nil, false
}

// lookupImageByIDLocked finds an exact image ID in any image store.
//
// Locking: image stores held.
func (s *Store) lookupImageByIDLocked(id string) (*image.Image, *image.Store, bool) {
	for _, is := range s.allImageStores() {
		if img, ok := is.Get(id); ok {
			return img, is, true
		}
	}
	return nil, nil, false
}

func copyFlags(f map[string]any) map[string]any {
	if len(f) == 0 {
		return nil
	}
	return maps.Clone(f)
}

// Images returns a snapshot of every image; read-write records shadow
// read-only ones with the same ID.
func (s *Store) Images(ctx context.Context) ([]image.Image, error) {
	unlock, err := s.lockStores(ctx, lockSpec{images: modeRead})
	if err != nil {
		return nil, err
	}
	defer unlock()
	return s.imageSnapshotsLocked((*image.Store).All), nil
}

// imageSnapshotsLocked copies the records list returns from each image
// store, read-write first, skipping an ID already taken from an earlier
// store.
//
// Locking: image stores held.
func (s *Store) imageSnapshotsLocked(list func(*image.Store) []*image.Image) []image.Image {
	var out []image.Image
	seen := map[string]bool{}
	for _, is := range s.allImageStores() {
		for _, img := range list(is) {
			if !seen[img.ID] {
				seen[img.ID] = true
				out = append(out, image.Copy(img))
			}
		}
	}
	return out
}

// Image returns a snapshot of one image (ID, name or unique prefix).
func (s *Store) Image(ctx context.Context, nameOrID string) (*image.Image, error) {
	unlock, err := s.lockStores(ctx, lockSpec{images: modeRead})
	if err != nil {
		return nil, err
	}
	defer unlock()
	img, _, ok := s.lookupImageLocked(nameOrID)
	if !ok {
		return nil, imageUnknown(nameOrID)
	}
	c := image.Copy(img)
	return &c, nil
}

// ImagesByDigest returns the images having d among their digests.
func (s *Store) ImagesByDigest(ctx context.Context, d digest.Digest) ([]image.Image, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	unlock, err := s.lockStores(ctx, lockSpec{images: modeRead})
	if err != nil {
		return nil, err
	}
	defer unlock()
	return s.imageSnapshotsLocked(func(is *image.Store) []*image.Image { return is.ByDigest(d) }), nil
}

// ImageSize sums the diff sizes of every layer reachable from the image's
// top and mapped layers (each once) and the sizes of its big-data items.
func (s *Store) ImageSize(ctx context.Context, nameOrID string) (int64, error) {
	unlock, err := s.lockStores(ctx, lockSpec{layers: modeRead, images: modeRead})
	if err != nil {
		return -1, err
	}
	defer unlock()
	img, is, ok := s.lookupImageLocked(nameOrID)
	if !ok {
		return -1, imageUnknown(nameOrID)
	}
	var size int64
	visited := map[string]bool{}
	queue := append([]string{img.TopLayer}, img.MappedTopLayers...)
	for len(queue) > 0 {
		id := queue[0]
		queue = queue[1:]
		if id == "" || visited[id] {
			continue
		}
		visited[id] = true
		l, _, ok := s.lookupLayerLocked(id)
		if !ok {
			return -1, fmt.Errorf("locating layer with ID %q: %w", id, ErrLayerUnknown)
		}
		n := l.UncompressedSize
		if l.UncompressedDigest == "" {
			if n, err = s.graphDriver().DiffSize(ctx, l.ID, l.Parent); err != nil {
				return -1, err
			}
		}
		size += n
		queue = append(queue, l.Parent)
	}
	for _, key := range img.BigDataNames {
		n, ok := img.BigDataSizes[key]
		if !ok {
			p, err := is.BigDataPath(img.ID, key)
			if err != nil {
				return -1, err
			}
			fi, err := os.Stat(p)
			if err != nil {
				return -1, err
			}
			n = fi.Size()
		}
		size += n
	}
	return size, nil
}

// ImageDirectory returns (creating) G/<drv>-images/<id>/userdata.
func (s *Store) ImageDirectory(ctx context.Context, nameOrID string) (string, error) {
	return s.imageUserdataDir(ctx, nameOrID, func(is *image.Store, id string) string { return is.DataDir(id) })
}

// ImageRunDirectory returns (creating) R/<drv>-images/<id>/userdata.
func (s *Store) ImageRunDirectory(ctx context.Context, nameOrID string) (string, error) {
	return s.imageUserdataDir(ctx, nameOrID, func(_ *image.Store, id string) string { return s.imageRunDir(id) })
}

// imageRunDir is R/<drv>-images/<id>.
func (s *Store) imageRunDir(id string) string {
	return filepath.Join(s.opts.RunRoot, s.driverName+"-images", id)
}

// imageUserdataDir resolves an image and makes the userdata directory
// under parent(its store, its ID), with the images lock held for reading.
func (s *Store) imageUserdataDir(ctx context.Context, nameOrID string, parent func(*image.Store, string) string) (string, error) {
	unlock, err := s.lockStores(ctx, lockSpec{images: modeRead})
	if err != nil {
		return "", err
	}
	defer unlock()
	img, is, ok := s.lookupImageLocked(nameOrID)
	if !ok {
		return "", imageUnknown(nameOrID)
	}
	d := filepath.Join(parent(is, img.ID), "userdata")
	return d, os.MkdirAll(d, 0o700)
}

// rwImageStores returns the primary then the other read-write image stores.
func (s *Store) rwImageStores() []*image.Store {
	return append([]*image.Store{s.images}, s.extraImages...)
}
