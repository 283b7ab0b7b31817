package layer

// Locking: a Store's records and indexes are guarded by its layers.lock
// (through internal/table). mountpoints.json is guarded by
// mountpoints.lock, which is only taken while layers.lock is held (R or
// W) and only briefly: see LockRead and the Mount* methods. The digest
// indexes are rebuilt under the layers lock on every load.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/stowage/stowage/internal/fsx"
	"github.com/stowage/stowage/internal/table"
	"github.com/stowage/stowage/lockfile"
)

// IncompleteFlag marks a layer whose creation or deletion did not finish.
const IncompleteFlag = "incomplete"

// Location indexes of a layer Store.
const (
	LocStable     = 0
	LocImageStore = 1
	LocVolatile   = 2
)

// Options configure Open.
type Options struct {
	// Dir is <root>/<drv>-layers: layers.lock, layers.json, tar-splits, big data.
	Dir string
	// RunDir is R/<drv>-layers (mountpoints); empty for read-only stores.
	RunDir string
	// ImageStoreDir, if set, is I/<drv>-layers: read-only (image) layers are
	// saved there and its layers.lock is taken together with Dir's.
	ImageStoreDir string
	// VolatileDir holds volatile-layers.json (Dir, or RunDir in transient mode).
	VolatileDir string
	ReadOnly    bool
	// RemoveLayer removes whatever the driver and the store keep for an
	// incomplete layer found at load (driver dir, tar-split, big data);
	// called with the write lock held.
	RemoveLayer func(ctx context.Context, id string) error
}

// Store is one layer store (the primary read-write one or a read-only
// additional store).
type Store struct {
	// Fixed at construction; safe without locks.
	opts   Options
	t      *table.Table[Layer]
	mounts *table.Table[MountPoint] // nil for read-only stores

	// Guarded by the layers lock; rebuilt on every load.
	markers        []string // IDs of commit markers present at the load (see MarkCommit)
	byCompressed   map[digest.Digest][]string
	byUncompressed map[digest.Digest][]string
	byTOC          map[digest.Digest][]string
}

// Open prepares the store; nothing is read until the first lock.
func Open(opts Options) (*Store, error) {
	if opts.VolatileDir == "" {
		opts.VolatileDir = opts.Dir
	}
	if !opts.ReadOnly {
		if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
			return nil, err
		}
	}
	s := &Store{opts: opts}
	locs := []table.Location{
		{Path: filepath.Join(opts.Dir, "layers.json")},
		{Path: filepath.Join(opts.Dir, "layers.json")}, // replaced below when an image store is set
		{Path: filepath.Join(opts.VolatileDir, "volatile-layers.json"), Volatile: true},
	}
	var extra []string
	if opts.ImageStoreDir != "" {
		if err := os.MkdirAll(opts.ImageStoreDir, 0o700); err != nil {
			return nil, err
		}
		locs[LocImageStore].Path = filepath.Join(opts.ImageStoreDir, "layers.json")
		extra = append(extra, filepath.Join(opts.ImageStoreDir, "layers.lock"))
	} else {
		locs[LocImageStore].Path = "" // no image store: the table skips this location
	}
	if opts.ReadOnly {
		locs = locs[:1] // read-only stores: layers.json only
	}
	t, err := table.New(table.Options[Layer]{
		LockPath:       filepath.Join(opts.Dir, "layers.lock"),
		ExtraLockPaths: extra,
		ReadOnly:       opts.ReadOnly,
		Locations:      locs,
		TrackMtime:     true,
		ID:             func(l *Layer) string { return l.ID },
		Names:          func(l *Layer) *[]string { return &l.Names },
		Loaded:         s.loaded,
		NeedsRepair:    s.needsRepair,
		Repair:         s.repair,
	})
	if err != nil {
		return nil, err
	}
	s.t = t
	if !opts.ReadOnly && opts.RunDir != "" {
		if err := os.MkdirAll(opts.RunDir, 0o700); err != nil {
			return nil, err
		}
		m, err := table.New(table.Options[MountPoint]{
			LockPath:  filepath.Join(opts.RunDir, "mountpoints.lock"),
			Locations: []table.Location{{Path: filepath.Join(opts.RunDir, "mountpoints.json")}},
			ID:        func(m *MountPoint) string { return m.ID },
		})
		if err != nil {
			return nil, err
		}
		s.mounts = m
	}
	return s, nil
}

// Dir returns the store's <drv>-layers directory.
func (s *Store) Dir() string { return s.opts.Dir }

// ReadOnly reports whether this is a read-only (additional) store.
func (s *Store) ReadOnly() bool { return s.opts.ReadOnly }

// LockRead takes layers.lock for reading (reloading and repairing as needed).
func (s *Store) LockRead(ctx context.Context) (func(), error) { return s.t.LockRead(ctx) }

// LockWrite takes layers.lock for writing (reloading and repairing as needed).
func (s *Store) LockWrite(ctx context.Context) (func(), error) { return s.t.LockWrite(ctx) }

// RemoveStaleTemps removes temp JSON files of dead writers of the layer
// records and mountpoints.json (see table.Table.RemoveStaleTemps).
func (s *Store) RemoveStaleTemps(ctx context.Context) (int, error) {
	n, err := s.t.RemoveStaleTemps(ctx)
	if err != nil || s.mounts == nil {
		return n, err
	}
	m, err := s.mounts.RemoveStaleTemps(ctx)
	return n + m, err
}

func (s *Store) loaded(recs []*Layer) error {
	s.markers = nil
	if !s.opts.ReadOnly {
		s.markers, _ = s.listMarkers()
	}
	s.byCompressed = map[digest.Digest][]string{}
	s.byUncompressed = map[digest.Digest][]string{}
	s.byTOC = map[digest.Digest][]string{}
	for _, l := range recs {
		l.ReadOnly = s.opts.ReadOnly
		l.Volatile = s.t != nil && s.t.Location(l.ID) == LocVolatile
		s.index(l)
	}
	return nil
}

// Incomplete reports whether a record carries flags.incomplete == true.
func Incomplete(l *Layer) bool {
	v, ok := l.Flags[IncompleteFlag].(bool)
	return ok && v
}

// needsRepair reports incomplete records or commit markers left by a
// killed process. Locking: layers.lock held.
func (s *Store) needsRepair(recs []*Layer) bool {
	return len(s.markers) > 0 || slices.ContainsFunc(recs, Incomplete)
}

// repair removes every incomplete layer completely, and every layer a
// dead commit marker names that has no complete record, then the markers,
// and saves if it removed a record. A marker is dead when nobody holds
// its lock (see LockCommit); each is locked while its layer is removed,
// and stays if that fails.
//
// Locking: layers.lock held for writing.
func (s *Store) repair(ctx context.Context) error {
	removed := false
	for _, l := range slices.Clone(s.t.All()) {
		if Incomplete(l) {
			if err := s.removeLayer(ctx, l.ID); err != nil {
				return err
			}
			removed = true
		}
	}
	for _, id := range s.markers {
		h, err := lockfile.TryLockExisting(s.markerPath(id))
		if errors.Is(err, lockfile.ErrLocked) || errors.Is(err, os.ErrNotExist) {
			continue // a live commit took it, or its owner removed it, since the load
		}
		if err != nil {
			return fmt.Errorf("commit marker of layer %s: %w", id, err)
		}
		if _, ok := s.t.Get(id); !ok {
			if err := s.removeLayer(ctx, id); err != nil {
				_ = h.Release() // the marker stays: the next writer retries
				return err
			}
			removed = true
		}
		err = errors.Join(s.removePrepared(id), h.Remove())
		if err != nil {
			return fmt.Errorf("removing commit marker of layer %s: %w", id, err)
		}
	}
	s.markers = nil
	if !removed {
		// Only markers of complete records went: saving would move the
		// token and make every commit in flight prepare again.
		return nil
	}
	return s.Save(ctx)
}

// removeLayer removes everything of layer id and its record.
//
// Locking: layers.lock held for writing.
func (s *Store) removeLayer(ctx context.Context, id string) error {
	if s.opts.RemoveLayer != nil {
		if err := s.opts.RemoveLayer(ctx, id); err != nil {
			return fmt.Errorf("removing incomplete layer %s: %w", id, err)
		}
	}
	if err := s.RemoveFiles(id); err != nil {
		return fmt.Errorf("removing incomplete layer %s: %w", id, err)
	}
	s.t.Remove(id)
	return nil
}

// RemoveFiles deletes a layer's tar-split and big-data directory.
//
// Locking: layers.lock held for writing.
func (s *Store) RemoveFiles(id string) error {
	if err := os.Remove(s.TarSplitPath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return fsx.RemoveAll(s.BigDataDir(id))
}

// Save writes the records, then drops from mountpoints.json the entries
// of layers that are gone (see SaveMounts).
//
// Locking: layers.lock held for writing; takes mountpoints.lock after the
// records are written.
func (s *Store) Save(ctx context.Context) error {
	_, err := s.SaveWith(ctx, table.SaveOptions{})
	return err
}

// SaveWith is Save tuned by opts (see table.SaveOptions): with
// opts.DeferSyncDir the records' directory fsync is returned as finish,
// which the caller runs after releasing layers.lock and before it reports
// success. finish is never nil.
//
// Locking: layers.lock held for writing; takes mountpoints.lock after the
// records are written. finish needs no lock.
func (s *Store) SaveWith(ctx context.Context, opts table.SaveOptions) (finish func() error, err error) {
	finish, err = s.t.SaveWith(ctx, opts)
	if err != nil {
		return finish, err
	}
	if err := s.SaveMounts(ctx); err != nil {
		return func() error { return nil }, errors.Join(err, finish())
	}
	return finish, nil
}

// The commit marker of a new layer is an empty file
// <dir>/tmp/commit-<id>, created (unflushed) before anything of the layer
// exists outside staging and removed once its complete record is saved.
// Being empty, a marker has no content a crash could damage: after a
// power cut it exists or not. Its creator either holds layers.lock for
// writing for the marker's whole life (MarkCommit: CreateLayer) or holds
// an OFD lock on the marker itself (LockCommit: a staged layer's commit,
// whose files are put in place with no store lock held). So a marker that
// is not locked and seen under layers.lock is one a killed process left:
// the next writer removes the layer it names unless its record is
// complete. A locked one is a live commit: loads, check and gc leave it
// and its layer alone.
const commitMarkerPrefix = "commit-"

func (s *Store) markerPath(id string) string {
	return filepath.Join(s.opts.Dir, "tmp", commitMarkerPrefix+id)
}

// preparedPath is where a commit writes layers.json ahead of the lock
// (table.Prepared); the marker's repair removes it with the marker.
func (s *Store) preparedPath(id string) string {
	return filepath.Join(s.opts.Dir, "tmp", "layers-"+id+".json")
}

func (s *Store) removePrepared(id string) error {
	if err := os.Remove(s.preparedPath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// MarkCommit creates the commit marker of layer id and moves the token,
// so that every other process looks for markers at its next lock.
//
// Locking: layers.lock held for writing.
func (s *Store) MarkCommit(id string) error {
	if err := table.ValidID(id); err != nil {
		return err
	}
	p := s.markerPath(id)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return s.t.MarkWritten()
}

// UnmarkCommit removes the commit marker of layer id (none is no error).
//
// Locking: layers.lock held for writing.
func (s *Store) UnmarkCommit(id string) error {
	if err := os.Remove(s.markerPath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// LockCommit creates layer id's commit marker and locks it, waiting (as
// ctx allows) while another commit of the same ID holds it. The caller
// holds it, with no store lock needed, from before it puts any file of
// the layer in place until the complete record is saved (or the files
// removed), then releases it with Held.Remove. A process killed meanwhile
// frees the lock, and the next writer that loads the table removes the
// layer. Lock order: taken before layers.lock, never while holding it.
func (s *Store) LockCommit(ctx context.Context, id string) (*lockfile.Held, error) {
	if err := table.ValidID(id); err != nil {
		return nil, err
	}
	p := s.markerPath(id)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return nil, err
	}
	return lockfile.WaitLock(ctx, p)
}

// listMarkers returns the IDs of the commit markers present, split into
// dead ones (nobody holds them) and live ones.
func (s *Store) listMarkers() (dead, live []string) {
	ents, err := os.ReadDir(filepath.Join(s.opts.Dir, "tmp"))
	if err != nil {
		return nil, nil
	}
	for _, e := range ents {
		id, ok := strings.CutPrefix(e.Name(), commitMarkerPrefix)
		if !ok || !e.Type().IsRegular() || table.ValidID(id) != nil {
			continue
		}
		h, err := lockfile.TryLockExisting(filepath.Join(s.opts.Dir, "tmp", e.Name()))
		switch {
		case errors.Is(err, lockfile.ErrLocked):
			live = append(live, id)
		case err == nil:
			_ = h.Release()
			dead = append(dead, id)
		}
	}
	return dead, live
}

// RemoveStalePrepared removes the prepared layers.json files
// (tmp/layers-<id>.json) that have no marker: a power cut can lose a
// marker but keep its prepared file (a marker's repair removes the file
// with it). Each is removed holding the marker's lock, so a commit of
// that ID cannot be between its prepare and rename. It returns the paths
// removed.
//
// Locking: layers.lock held for writing.
func (s *Store) RemoveStalePrepared() ([]string, error) {
	dir := filepath.Join(s.opts.Dir, "tmp")
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var removed []string
	var errs []error
	for _, e := range ents {
		id, ok := strings.CutPrefix(e.Name(), "layers-")
		id, ok2 := strings.CutSuffix(id, ".json")
		if !ok || !ok2 || !e.Type().IsRegular() || table.ValidID(id) != nil {
			continue
		}
		if _, err := os.Lstat(s.markerPath(id)); err == nil {
			continue // a live commit's, or a dead one's that repair removes
		}
		h, err := lockfile.TryLock(s.markerPath(id))
		if errors.Is(err, lockfile.ErrLocked) {
			continue
		}
		if err == nil {
			err = s.removePrepared(id)
			err = errors.Join(err, h.Remove())
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, filepath.Join(dir, e.Name()))
	}
	return removed, errors.Join(errs...)
}

// LiveCommits returns the IDs of layers whose commit is in progress in a
// live process (a locked marker): their files may be in place without a
// record yet. Check and gc leave them alone.
//
// Locking: layers.lock held.
func (s *Store) LiveCommits() map[string]bool {
	_, live := s.listMarkers()
	out := make(map[string]bool, len(live))
	for _, id := range live {
		out[id] = true
	}
	return out
}

// PrepareAdd prepares layers.json with l added at loc (see
// table.Prepared), written to a file only l's commit-marker holder uses.
// ok is false when loc is not saved to layers.json in Dir (volatile
// layers, a separate image store): add and save those under the lock.
//
// Locking: layers.lock held (R or W); the caller holds l's LockCommit.
func (s *Store) PrepareAdd(l *Layer, loc int) (p *table.Prepared[Layer], ok bool, err error) {
	if loc == LocImageStore && s.opts.ImageStoreDir == "" {
		loc = LocStable
	}
	if loc != LocStable {
		return nil, false, nil
	}
	p, err = s.t.PrepareAdd(l, loc, s.preparedPath(l.ID))
	return p, err == nil, err
}

// LockWriteFor takes layers.lock for writing to commit p, keeping it only
// if nothing changed the records since p was prepared (see
// table.Table.LockWriteFor).
func (s *Store) LockWriteFor(ctx context.Context, p *table.Prepared[Layer]) (unlock func(), ok bool, err error) {
	return s.t.LockWriteFor(ctx, p)
}

// CommitPrepared installs a prepared layers.json if the table did not
// change since (see table.Table.CommitPrepared) and indexes the new layer.
//
// Locking: layers.lock held for writing; finish needs no lock.
func (s *Store) CommitPrepared(ctx context.Context, p *table.Prepared[Layer], l *Layer) (finish func() error, ok bool, err error) {
	finish, ok, err = s.t.CommitPrepared(ctx, p)
	if ok {
		s.index(l)
		l.Volatile = false
	}
	return finish, ok, err
}

// All returns the live records. Locking: layers.lock held.
func (s *Store) All() []*Layer { return s.t.All() }

// Get returns the layer with exactly this ID. Locking: layers.lock held.
func (s *Store) Get(id string) (*Layer, bool) { return s.t.Get(id) }

// Lookup resolves an ID, a name or a unique ID prefix. Locking: layers.lock held.
func (s *Store) Lookup(nameOrID string) (*Layer, bool) { return s.t.Lookup(nameOrID) }

// CheckNew reports whether a layer with id and names could be added. Locking: layers.lock held.
func (s *Store) CheckNew(id string, names []string) error { return s.t.CheckNew(id, names) }

// Add appends a record at loc. Locking: layers.lock held for writing.
func (s *Store) Add(l *Layer, loc int) error {
	if s.opts.ImageStoreDir == "" && loc == LocImageStore {
		loc = LocStable
	}
	if err := s.t.Add(l, loc); err != nil {
		return err
	}
	s.index(l)
	l.Volatile = loc == LocVolatile
	return nil
}

// index adds the layer to the digest indexes it is not in yet.
func (s *Store) index(l *Layer) {
	if l.CompressedDigest != "" && !slices.Contains(s.byCompressed[l.CompressedDigest], l.ID) {
		s.byCompressed[l.CompressedDigest] = append(s.byCompressed[l.CompressedDigest], l.ID)
	}
	if l.UncompressedDigest != "" && !slices.Contains(s.byUncompressed[l.UncompressedDigest], l.ID) {
		s.byUncompressed[l.UncompressedDigest] = append(s.byUncompressed[l.UncompressedDigest], l.ID)
	}
	if l.TOCDigest != "" && !slices.Contains(s.byTOC[l.TOCDigest], l.ID) {
		s.byTOC[l.TOCDigest] = append(s.byTOC[l.TOCDigest], l.ID)
	}
}

// Update marks a changed record for saving and re-indexes its digests.
// Locking: layers.lock held for writing.
func (s *Store) Update(l *Layer) {
	s.t.Touch(l.ID)
	s.index(l)
}

// Remove drops a record (not its files). Locking: layers.lock held for writing.
func (s *Store) Remove(id string) {
	s.t.Remove(id)
	for _, m := range []map[digest.Digest][]string{s.byCompressed, s.byUncompressed, s.byTOC} {
		for d, ids := range m {
			m[d] = slices.DeleteFunc(ids, func(x string) bool { return x == id })
			if len(m[d]) == 0 {
				delete(m, d)
			}
		}
	}
}

// SetNames replaces a layer's names, stealing them from other layers.
// Locking: layers.lock held for writing.
func (s *Store) SetNames(id string, names []string) error {
	_, err := s.t.SetNames(id, names)
	return err
}

// ByDigest returns the IDs of layers whose uncompressed, TOC or compressed
// digest is d, in that order of preference. Locking: layers.lock held.
func (s *Store) ByDigest(d digest.Digest) []string {
	var out []string
	for _, m := range []map[digest.Digest][]string{s.byUncompressed, s.byTOC, s.byCompressed} {
		for _, id := range m[d] {
			if !slices.Contains(out, id) {
				out = append(out, id)
			}
		}
	}
	return out
}

// ByCompressedDigest etc. return the index entries. Locking: layers.lock held.
func (s *Store) ByCompressedDigest(d digest.Digest) []string { return slices.Clone(s.byCompressed[d]) }

// ByUncompressedDigest returns layer IDs by diff digest. Locking: layers.lock held.
func (s *Store) ByUncompressedDigest(d digest.Digest) []string {
	return slices.Clone(s.byUncompressed[d])
}

// ByTOCDigest returns layer IDs by TOC digest. Locking: layers.lock held.
func (s *Store) ByTOCDigest(d digest.Digest) []string { return slices.Clone(s.byTOC[d]) }

// TarSplitPath returns <dir>/<id>.tar-split.gz.
func (s *Store) TarSplitPath(id string) string {
	return filepath.Join(s.opts.Dir, id+".tar-split.gz")
}

// BigDataDir returns <dir>/<id>.
func (s *Store) BigDataDir(id string) string { return filepath.Join(s.opts.Dir, id) }

// BigDataPath returns the file of one big-data key.
func (s *Store) BigDataPath(id, key string) (string, error) {
	return table.BigDataPath(s.BigDataDir(id), key)
}

// Copy returns a deep copy of a record (the caller's snapshot).
func Copy(l *Layer) Layer {
	c := *l
	c.Names = slices.Clone(l.Names)
	c.UIDs = slices.Clone(l.UIDs)
	c.GIDs = slices.Clone(l.GIDs)
	c.UIDMap = slices.Clone(l.UIDMap)
	c.GIDMap = slices.Clone(l.GIDMap)
	c.BigDataNames = slices.Clone(l.BigDataNames)
	c.Flags = CloneFlags(l.Flags)
	return c
}

// CloneFlags copies a flags map (values are shared; they are JSON scalars
// or treated as immutable).
func CloneFlags(f map[string]any) map[string]any { return maps.Clone(f) }
