package image

// Locking: a Store's records and indexes (including the digest index) are
// guarded by its images.lock through internal/table; they are rebuilt on
// every load.

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/stowage/stowage/internal/table"
)

// Options configure Open.
type Options struct {
	Dir      string // <root>/<drv>-images
	ReadOnly bool
}

// Store is one image store (read-write or a read-only additional store).
type Store struct {
	// Fixed at construction; safe without locks.
	opts Options
	t    *table.Table[Image]

	// Guarded by images.lock; rebuilt on every load.
	byDigest map[digest.Digest][]*Image
}

// Open prepares the store; nothing is read until the first lock.
func Open(opts Options) (*Store, error) {
	if !opts.ReadOnly {
		if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
			return nil, err
		}
	}
	s := &Store{opts: opts}
	t, err := table.New(table.Options[Image]{
		LockPath:  filepath.Join(opts.Dir, "images.lock"),
		ReadOnly:  opts.ReadOnly,
		Locations: []table.Location{{Path: filepath.Join(opts.Dir, "images.json")}},
		ID:        func(i *Image) string { return i.ID },
		Names:     func(i *Image) *[]string { return &i.Names },
		Loaded:    s.loaded,
	})
	if err != nil {
		return nil, err
	}
	s.t = t
	return s, nil
}

// Dir returns the store's <drv>-images directory.
func (s *Store) Dir() string { return s.opts.Dir }

// ReadOnly reports whether this is a read-only store.
func (s *Store) ReadOnly() bool { return s.opts.ReadOnly }

// LockRead takes images.lock for reading (reloading as needed).
func (s *Store) LockRead(ctx context.Context) (func(), error) { return s.t.LockRead(ctx) }

// LockWrite takes images.lock for writing (reloading as needed).
func (s *Store) LockWrite(ctx context.Context) (func(), error) { return s.t.LockWrite(ctx) }

// RemoveStaleTemps removes temp JSON files of dead writers (see
// table.Table.RemoveStaleTemps).
func (s *Store) RemoveStaleTemps(ctx context.Context) (int, error) { return s.t.RemoveStaleTemps(ctx) }

func (s *Store) loaded(recs []*Image) error {
	s.byDigest = map[digest.Digest][]*Image{}
	for _, img := range recs {
		img.ReadOnly = s.opts.ReadOnly
		if err := RecomputeDigests(img); err != nil {
			return fmt.Errorf("loading %s: %w: %w", filepath.Join(s.opts.Dir, "images.json"), err, table.ErrCorrupt)
		}
		s.indexDigests(img)
	}
	return nil
}

func (s *Store) indexDigests(img *Image) {
	for _, d := range img.Digests {
		if !slices.Contains(s.byDigest[d], img) {
			s.byDigest[d] = append(s.byDigest[d], img)
		}
	}
}

func (s *Store) unindexDigests(img *Image) {
	for d, list := range s.byDigest {
		s.byDigest[d] = slices.DeleteFunc(list, func(x *Image) bool { return x == img })
		if len(s.byDigest[d]) == 0 {
			delete(s.byDigest, d)
		}
	}
}

// RecomputeDigests rebuilds img.Digests: Digest first (if set), then the
// digests of the big-data items whose key starts with "manifest", without
// repeats. Every digest must be valid. An unset Digest becomes the first
// digest of the list.
func RecomputeDigests(img *Image) error {
	var list []digest.Digest
	add := func(d digest.Digest, what string) error {
		if err := d.Validate(); err != nil {
			return fmt.Errorf("image %s: %s %q: %w", img.ID, what, d, err)
		}
		if !slices.Contains(list, d) {
			list = append(list, d)
		}
		return nil
	}
	if img.Digest != "" {
		if err := add(img.Digest, "digest"); err != nil {
			return err
		}
	}
	for _, key := range img.BigDataNames {
		if !strings.HasPrefix(key, "manifest") {
			continue
		}
		if d, ok := img.BigDataDigests[key]; ok && d != "" {
			if err := add(d, "digest of big-data item "+key); err != nil {
				return err
			}
		}
	}
	if img.Digest == "" && len(list) > 0 {
		img.Digest = list[0]
	}
	img.Digests = list
	return nil
}

// All returns the live records. Locking: images.lock held.
func (s *Store) All() []*Image { return s.t.All() }

// Get returns the image with exactly this ID. Locking: images.lock held.
func (s *Store) Get(id string) (*Image, bool) { return s.t.Get(id) }

// Lookup resolves an ID, a name or a unique ID prefix. Locking: images.lock held.
func (s *Store) Lookup(nameOrID string) (*Image, bool) { return s.t.Lookup(nameOrID) }

// CheckNew reports whether an image with id and names could be added. Locking: images.lock held.
func (s *Store) CheckNew(id string, names []string) error { return s.t.CheckNew(id, names) }

// ByDigest returns the images having d among their digests. Locking: images.lock held.
func (s *Store) ByDigest(d digest.Digest) []*Image { return slices.Clone(s.byDigest[d]) }

// Add appends a record (computing its digest list). Locking: images.lock held for writing.
func (s *Store) Add(img *Image) error {
	if err := RecomputeDigests(img); err != nil {
		return err
	}
	if err := s.t.Add(img, 0); err != nil {
		return err
	}
	img.ReadOnly = false
	s.indexDigests(img)
	return nil
}

// Update recomputes a changed record's digests and marks it for saving.
// Locking: images.lock held for writing.
func (s *Store) Update(img *Image) error {
	if err := RecomputeDigests(img); err != nil {
		return err
	}
	s.unindexDigests(img)
	s.indexDigests(img)
	s.t.Touch(img.ID)
	return nil
}

// Remove drops a record (not its files). Locking: images.lock held for writing.
func (s *Store) Remove(id string) {
	if img, ok := s.t.Get(id); ok {
		s.unindexDigests(img)
	}
	s.t.Remove(id)
}

// SetNames replaces an image's names (stealing them from other images)
// and prepends each of them, in order, to its names history.
// Locking: images.lock held for writing.
func (s *Store) SetNames(id string, names []string) error {
	img, ok := s.t.Get(id)
	if !ok {
		return fmt.Errorf("image %s not found", id)
	}
	names = table.Dedup(names)
	if _, err := s.t.SetNames(id, names); err != nil {
		return err
	}
	img.NamesHistory = NamesHistoryWith(img.NamesHistory, names)
	return nil
}

// NamesHistoryWith returns history after an image was given names: each
// name, in order, moved (or added) to its front.
func NamesHistoryWith(history, names []string) []string {
	for _, n := range names {
		history = table.Dedup(append([]string{n}, history...))
	}
	return history
}

// Save writes images.json. Locking: images.lock held for writing.
func (s *Store) Save(ctx context.Context) error { return s.t.Save(ctx) }

// SaveWith is Save tuned by opts (see table.Table.SaveWith).
// Locking: images.lock held for writing; finish needs no lock.
func (s *Store) SaveWith(ctx context.Context, opts table.SaveOptions) (finish func() error, err error) {
	return s.t.SaveWith(ctx, opts)
}

// DataDir returns <dir>/<id>, the image's big-data directory.
func (s *Store) DataDir(id string) string { return filepath.Join(s.opts.Dir, id) }

// BigDataPath returns the file of one big-data key.
func (s *Store) BigDataPath(id, key string) (string, error) {
	return table.BigDataPath(s.DataDir(id), key)
}

// Copy returns a deep copy of a record.
func Copy(img *Image) Image {
	c := *img
	c.Names = slices.Clone(img.Names)
	c.NamesHistory = slices.Clone(img.NamesHistory)
	c.MappedTopLayers = slices.Clone(img.MappedTopLayers)
	c.BigDataNames = slices.Clone(img.BigDataNames)
	c.Digests = slices.Clone(img.Digests)
	c.BigDataSizes = maps.Clone(img.BigDataSizes)
	c.BigDataDigests = maps.Clone(img.BigDataDigests)
	c.Flags = maps.Clone(img.Flags)
	return c
}
