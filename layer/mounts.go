package layer

import (
	"context"
	"fmt"
	"path/filepath"
)

// MountPoint is one entry of mountpoints.json (no omitempty, as upstream).
type MountPoint struct {
	ID    string `json:"id"`
	Path  string `json:"path"`
	Count int    `json:"count"`
}

// Mounts returns a snapshot of mountpoints.json, taking mountpoints.lock
// for reading briefly. Read-only stores have no mounts.
//
// Locking: layers.lock held (R or W); takes mountpoints.lock inside it.
func (s *Store) Mounts(ctx context.Context) (map[string]MountPoint, error) {
	out := map[string]MountPoint{}
	if s.mounts == nil {
		return out, nil
	}
	unlock, err := s.mounts.LockRead(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	for _, m := range s.mounts.All() {
		out[m.ID] = *m
	}
	return out, nil
}

// UpdateMount runs fn on the mount entry of id (zero if absent) under
// mountpoints.lock held for writing and saves the result; entries whose
// count drops to 0 are removed.
//
// Locking: layers.lock held for writing; takes mountpoints.lock inside it.
func (s *Store) UpdateMount(ctx context.Context, id string, fn func(m *MountPoint) error) (MountPoint, error) {
	if s.mounts == nil {
		return MountPoint{}, fmt.Errorf("layer %s: mounting read-only store layers read-write: %w", id, errReadOnlyMount)
	}
	unlock, err := s.mounts.LockWrite(ctx)
	if err != nil {
		return MountPoint{}, err
	}
	defer unlock()
	cur := MountPoint{ID: id}
	if m, ok := s.mounts.Get(id); ok {
		cur = *m
	}
	if err := fn(&cur); err != nil {
		return cur, err
	}
	if cur.Path != "" {
		cur.Path = filepath.Clean(cur.Path)
	}
	s.mounts.Remove(id)
	if cur.Count > 0 {
		rec := cur
		if err := s.mounts.Add(&rec, 0); err != nil {
			return cur, err
		}
	}
	return cur, s.mounts.Save(ctx)
}

// SaveMounts drops the entries of layers that are gone from
// mountpoints.json (a deleted layer's), saving it with a new token in
// mountpoints.lock. When no entry is stale nothing is written.
//
// Upstream rewrites the file (and its token) on every layer-store save;
// nobody needs that when the mounts did not change: both upstream versions
// reload mountpoints.json whenever they reload layers.json (whose token
// did change), and readers of the mount counts alone watch this token,
// which changes whenever a count does. Skipping the rewrite saves a
// flushed write and a directory fsync per layer commit under layers.lock.
//
// Locking: layers.lock held for writing; takes mountpoints.lock inside it.
func (s *Store) SaveMounts(ctx context.Context) error {
	if s.mounts == nil {
		return nil
	}
	unlock, err := s.mounts.LockWrite(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	stale := false
	for _, m := range append([]*MountPoint(nil), s.mounts.All()...) {
		if _, ok := s.t.Get(m.ID); !ok {
			s.mounts.Remove(m.ID)
			stale = true
		}
	}
	if !stale {
		return nil
	}
	return s.mounts.Save(ctx)
}
