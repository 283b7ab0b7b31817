package store

import (
	"bytes"
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
// the read-write and read-only layer stores), with its big-data items and
// names, in one save of images.json. An ID that exists only in a
// read-only store is pulled up into the read-write store. On failure the
// record and its data dir are removed (and names it took from other
// images given back).
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
	var holders []image.Image // with MoveNames: the images that had names, as they were
	for _, n := range names {
		holder, ok := s.images.Lookup(n)
		if !ok || holder.ID == id || !slices.Contains(holder.Names, n) {
			continue
		}
		if !opts.MoveNames {
			return nil, fmt.Errorf("image name %q is already associated with image %q: %w", n, holder.ID, ErrDuplicateName)
		}
		if !slices.ContainsFunc(holders, func(h image.Image) bool { return h.ID == holder.ID }) {
			holders = append(holders, image.Copy(holder))
		}
	}
	created := opts.Created
	if created.IsZero() {
		created = time.Now().UTC()
	}
	rec := &image.Image{
		ID: id, Digest: opts.Digest, TopLayer: top,
		Metadata: opts.Metadata, Created: created, Flags: copyFlags(opts.Flags),
	}
	if !opts.MoveNames {
		rec.Names = names
	}
	if pulled != nil {
		rec.Names = table.Dedup(append(slices.Clone(pulled.Names), rec.Names...))
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
	if opts.MoveNames && len(names) > 0 {
		if err := s.images.SetNames(id, applyNameOp(rec.Names, names, opAdd)); err != nil {
			s.images.Remove(id)
			return nil, errors.Join(err, s.giveNamesBackLocked(holders))
		}
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
		errs := []error{err, s.giveNamesBackLocked(holders), s.images.Save(context.WithoutCancel(ctx)), os.RemoveAll(s.images.DataDir(id))}
		return nil, errors.Join(errs...)
	}
	c := image.Copy(rec)
	return &c, nil
}

// giveNamesBackLocked restores the names and names history of the
// primary store's images as they were in holders (copies taken before a
// new image took names from them, the new image since removed).
//
// Locking: images held for writing.
func (s *Store) giveNamesBackLocked(holders []image.Image) error {
	var errs []error
	for _, h := range holders {
		live, ok := s.images.Get(h.ID)
		if !ok {
			continue
		}
		if err := s.images.SetNames(h.ID, h.Names); err != nil {
			errs = append(errs, err)
			continue
		}
		live.NamesHistory = slices.Clone(h.NamesHistory)
		errs = append(errs, s.images.Update(live))
	}
	return errors.Join(errs...)
}

// UpdateImage writes big-data items of an image and adds names to it, as
// SetImageBigData and AddNames would one after the other, under one lock
// and with at most one save of images.json: the items are written and
// flushed before images.json is renamed, as in CreateImage. An item the
// image already has with the same size, digest and data, and names it
// already has (in that order, with the names history they would give),
// change nothing; when nothing changes nothing is written. An image of a
// read-only store is pulled up first. After a failure (a cancelled ctx
// included) the next lock reloads the record as images.json has it; the
// items may hold their new data, as after a failed SetImageBigData.
func (s *Store) UpdateImage(ctx context.Context, nameOrID string, u ImageUpdate) error {
	unlock, err := s.lockStores(ctx, lockSpec{layers: modeRead, images: modeWrite})
	if err != nil {
		return err
	}
	defer unlock()
	orig, _, ok := s.lookupImageLocked(nameOrID)
	if !ok {
		return imageUnknown(nameOrID)
	}
	oldNames := slices.Clone(orig.Names) // before a pull-up drops the taken ones, as AddNames
	img, is, err := s.writableImageLocked(ctx, nameOrID)
	if err != nil {
		return err
	}
	before := image.Copy(img)
	files, err := imageBigDataFiles(is, img, u.BigData, true)
	if err == nil && len(files) > 0 {
		err = is.Update(img)
	}
	if err != nil {
		*img = before // nothing marked for saving
		return err
	}
	named := false
	if len(u.AddNames) > 0 {
		names := applyNameOp(oldNames, u.AddNames, opAdd)
		if !slices.Equal(names, img.Names) || !slices.Equal(image.NamesHistoryWith(img.NamesHistory, names), img.NamesHistory) {
			if err := is.SetNames(img.ID, names); err != nil {
				return err
			}
			named = true
		}
	}
	if len(files) == 0 && !named {
		return nil
	}
	var flush func(context.Context) error
	if len(files) > 0 {
		dir := is.DataDir(img.ID)
		flush = func(ctx context.Context) error { return writeBigDataFiles(ctx, dir, files) }
	}
	_, err = is.SaveWith(ctx, table.SaveOptions{Flush: flush}) // on failure the next lock reloads
	return err
}

// newImageBigDataLocked records in rec (not yet added to the primary
// store) a pulled-up image's big data (pulled, a record of the read-only
// store from; nil if none) followed by the caller's items, and returns the
// files to write (see imageBigDataFiles).
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
	return imageBigDataFiles(s.images, rec, append(all, items...), false)
}

// imageBigDataFiles records items (an empty Digest: sha256 of Data) in
// rec, whose data dir is in is, and returns the files to write, one per
// key (a later item with the same key wins). With keep, an item rec
// already records with the same size and digest, and whose file holds the
// same data, is left out.
//
// Locking: is held (for writing if rec is one of its records).
func imageBigDataFiles(is *image.Store, rec *image.Image, items []BigDataItem, keep bool) ([]bigDataFile, error) {
	var files []bigDataFile
	at := map[string]int{}
	for _, it := range items {
		if it.Key == "" {
			return nil, fmt.Errorf("can't set empty name for image big data item: %w", ErrInvalidBigDataName)
		}
		path, err := is.BigDataPath(rec.ID, it.Key)
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
		if keep && storedBigData(rec, it.Key, path, it.Data, d) {
			continue
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

// storedBigData reports whether rec records key with data's size and
// digest d and its file (path) holds data.
func storedBigData(rec *image.Image, key, path string, data []byte, d digest.Digest) bool {
	if !slices.Contains(rec.BigDataNames, key) || rec.BigDataDigests[key] != d {
		return false
	}
	if n, ok := rec.BigDataSizes[key]; !ok || n != int64(len(data)) {
		return false
	}
	have, err := os.ReadFile(path)
	return err == nil && bytes.Equal(have, data)
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
