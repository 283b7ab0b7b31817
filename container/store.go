package container

// Locking: a Store's records and indexes are guarded by containers.lock
// (in G, or in R in transient mode) through internal/table.

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/stowage/stowage/internal/table"
)

// Location indexes of a container Store.
const (
	LocStable   = 0
	LocVolatile = 1
)

// Options configure Open.
type Options struct {
	Dir string // G/<drv>-containers: containers.json and big data
	// LockDir holds containers.lock and volatile-containers.json (Dir, or
	// R/<drv>-containers in transient mode).
	LockDir string
}

// Store is the container store.
type Store struct {
	// Fixed at construction; safe without locks.
	opts Options
	t    *table.Table[Container]

	// Guarded by containers.lock; rebuilt on every load.
	byLayer map[string]*Container
}

// Open prepares the store; nothing is read until the first lock.
func Open(opts Options) (*Store, error) {
	if opts.LockDir == "" {
		opts.LockDir = opts.Dir
	}
	for _, d := range []string{opts.Dir, opts.LockDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	s := &Store{opts: opts}
	t, err := table.New(table.Options[Container]{
		LockPath: filepath.Join(opts.LockDir, "containers.lock"),
		Locations: []table.Location{
			{Path: filepath.Join(opts.Dir, "containers.json")},
			{Path: filepath.Join(opts.LockDir, "volatile-containers.json"), Volatile: true},
		},
		ID:     func(c *Container) string { return c.ID },
		Names:  func(c *Container) *[]string { return &c.Names },
		Loaded: s.loaded,
	})
	if err != nil {
		return nil, err
	}
	s.t = t
	return s, nil
}

func (s *Store) loaded(recs []*Container) error {
	s.byLayer = map[string]*Container{}
	for _, c := range recs {
		s.byLayer[c.LayerID] = c
		c.Volatile = s.t.Location(c.ID) == LocVolatile
	}
	return nil
}

// LockRead takes containers.lock for reading (reloading as needed).
func (s *Store) LockRead(ctx context.Context) (func(), error) { return s.t.LockRead(ctx) }

// LockWrite takes containers.lock for writing (reloading as needed).
func (s *Store) LockWrite(ctx context.Context) (func(), error) { return s.t.LockWrite(ctx) }

// RemoveStaleTemps removes temp JSON files of dead writers (see
// table.Table.RemoveStaleTemps).
func (s *Store) RemoveStaleTemps(ctx context.Context) (int, error) { return s.t.RemoveStaleTemps(ctx) }

// All returns the live records. Locking: containers.lock held.
func (s *Store) All() []*Container { return s.t.All() }

// Get returns the container with exactly this ID. Locking: containers.lock held.
func (s *Store) Get(id string) (*Container, bool) { return s.t.Get(id) }

// Lookup resolves an ID, then a name, then a layer ID, then a unique ID
// prefix. Locking: containers.lock held.
func (s *Store) Lookup(nameOrID string) (*Container, bool) {
	if c, ok := s.t.Get(nameOrID); ok {
		return c, true
	}
	if c, ok := s.t.ByName(nameOrID); ok {
		return c, true
	}
	if c, ok := s.byLayer[nameOrID]; ok {
		return c, true
	}
	return s.t.ByPrefix(nameOrID)
}

// ByLayer returns the container whose layer is layerID. Locking: containers.lock held.
func (s *Store) ByLayer(layerID string) (*Container, bool) {
	c, ok := s.byLayer[layerID]
	return c, ok
}

// CheckNew reports whether a container with id and names could be added. Locking: containers.lock held.
func (s *Store) CheckNew(id string, names []string) error { return s.t.CheckNew(id, names) }

// Add appends a record. Locking: containers.lock held for writing.
func (s *Store) Add(c *Container) error {
	loc := LocStable
	if c.Volatile {
		loc = LocVolatile
	}
	if err := s.t.Add(c, loc); err != nil {
		return err
	}
	s.byLayer[c.LayerID] = c
	return nil
}

// Update marks a changed record for saving. Locking: containers.lock held for writing.
func (s *Store) Update(c *Container) { s.t.Touch(c.ID) }

// Remove drops a record. Locking: containers.lock held for writing.
func (s *Store) Remove(id string) {
	if c, ok := s.t.Get(id); ok && s.byLayer[c.LayerID] == c {
		delete(s.byLayer, c.LayerID)
	}
	s.t.Remove(id)
}

// SetNames replaces a container's names, stealing them from others.
// Locking: containers.lock held for writing.
func (s *Store) SetNames(id string, names []string) error {
	_, err := s.t.SetNames(id, names)
	return err
}

// Save writes the changed files. Locking: containers.lock held for writing.
func (s *Store) Save(ctx context.Context) error { return s.t.Save(ctx) }

// DataDir returns G/<drv>-containers/<id>.
func (s *Store) DataDir(id string) string { return filepath.Join(s.opts.Dir, id) }

// BigDataPath returns the file of one big-data key.
func (s *Store) BigDataPath(id, key string) (string, error) {
	return table.BigDataPath(s.DataDir(id), key)
}

// Copy returns a deep copy of a record.
func Copy(c *Container) Container {
	out := *c
	out.Names = slices.Clone(c.Names)
	out.BigDataNames = slices.Clone(c.BigDataNames)
	out.UIDMap = slices.Clone(c.UIDMap)
	out.GIDMap = slices.Clone(c.GIDMap)
	out.BigDataSizes = maps.Clone(c.BigDataSizes)
	out.BigDataDigests = maps.Clone(c.BigDataDigests)
	out.Flags = maps.Clone(c.Flags)
	return out
}
