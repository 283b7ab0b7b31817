package store

import (
	"context"
	"fmt"
	"slices"

	"github.com/stowage/stowage/internal/table"
)

// Lookup resolves nameOrID to a layer, then an image, then a container.
func (s *Store) Lookup(ctx context.Context, nameOrID string) (string, Kind, error) {
	unlock, err := s.lockStores(ctx, lockSpec{layers: modeRead, images: modeRead, containers: modeRead})
	if err != nil {
		return "", KindNone, err
	}
	defer unlock()
	if l, _, ok := s.lookupLayerLocked(nameOrID); ok {
		return l.ID, KindLayer, nil
	}
	if img, _, ok := s.lookupImageLocked(nameOrID); ok {
		return img.ID, KindImage, nil
	}
	if c, ok := s.containers.Lookup(nameOrID); ok {
		return c.ID, KindContainer, nil
	}
	return "", KindNone, ErrLayerUnknown
}

// Names returns the names of the layer, image or container nameOrID.
func (s *Store) Names(ctx context.Context, nameOrID string) ([]string, error) {
	unlock, err := s.lockStores(ctx, lockSpec{layers: modeRead, images: modeRead, containers: modeRead})
	if err != nil {
		return nil, err
	}
	defer unlock()
	if l, _, ok := s.lookupLayerLocked(nameOrID); ok {
		return slices.Clone(l.Names), nil
	}
	if img, _, ok := s.lookupImageLocked(nameOrID); ok {
		return slices.Clone(img.Names), nil
	}
	if c, ok := s.containers.Lookup(nameOrID); ok {
		return slices.Clone(c.Names), nil
	}
	return nil, ErrLayerUnknown
}

type nameOp int

const (
	opSet nameOp = iota
	opAdd
	opRemove
)

func applyNameOp(old, names []string, op nameOp) []string {
	switch op {
	case opAdd:
		return table.Dedup(append(slices.Clone(names), old...))
	case opRemove:
		return table.Dedup(slices.DeleteFunc(slices.Clone(old), func(n string) bool { return slices.Contains(names, n) }))
	}
	return table.Dedup(names)
}

// SetNames replaces the names, taking them from other objects of the same kind.
func (s *Store) SetNames(ctx context.Context, nameOrID string, names []string) error {
	return s.updateNames(ctx, nameOrID, names, opSet)
}

// AddNames prepends names (moving them from other objects of the same kind).
func (s *Store) AddNames(ctx context.Context, nameOrID string, names []string) error {
	return s.updateNames(ctx, nameOrID, names, opAdd)
}

// RemoveNames removes names.
func (s *Store) RemoveNames(ctx context.Context, nameOrID string, names []string) error {
	return s.updateNames(ctx, nameOrID, names, opRemove)
}

// updateNames changes names of a layer, image (pulling a read-only image
// up into the read-write store) or container.
func (s *Store) updateNames(ctx context.Context, nameOrID string, names []string, op nameOp) error {
	unlock, err := s.lockStores(ctx, lockSpec{layers: modeWrite, images: modeWrite, containers: modeWrite})
	if err != nil {
		return err
	}
	defer unlock()
	if l, ok := s.layers.Lookup(nameOrID); ok {
		if err := s.layers.SetNames(l.ID, applyNameOp(l.Names, names, op)); err != nil {
			return err
		}
		return s.layers.Save(ctx)
	}
	if _, _, ok := s.lookupLayerLocked(nameOrID); ok {
		return fmt.Errorf("layer %s: %w", nameOrID, ErrStoreIsReadOnly)
	}
	if orig, _, ok := s.lookupImageLocked(nameOrID); ok {
		old := slices.Clone(orig.Names)
		img, is, err := s.writableImageLocked(ctx, nameOrID)
		if err != nil {
			return err
		}
		if err := is.SetNames(img.ID, applyNameOp(old, names, op)); err != nil {
			return err
		}
		return is.Save(ctx)
	}
	if c, ok := s.containers.Lookup(nameOrID); ok {
		if err := s.containers.SetNames(c.ID, applyNameOp(c.Names, names, op)); err != nil {
			return err
		}
		return s.containers.Save(ctx)
	}
	return ErrLayerUnknown
}

// Metadata returns the metadata string of a layer, image or container.
func (s *Store) Metadata(ctx context.Context, nameOrID string) (string, error) {
	unlock, err := s.lockStores(ctx, lockSpec{layers: modeRead, images: modeRead, containers: modeRead})
	if err != nil {
		return "", err
	}
	defer unlock()
	if l, _, ok := s.lookupLayerLocked(nameOrID); ok {
		return l.Metadata, nil
	}
	if img, _, ok := s.lookupImageLocked(nameOrID); ok {
		return img.Metadata, nil
	}
	if c, ok := s.containers.Lookup(nameOrID); ok {
		return c.Metadata, nil
	}
	return "", ErrNotAnID
}

// SetMetadata replaces the metadata string of a layer, image or container.
func (s *Store) SetMetadata(ctx context.Context, nameOrID, metadata string) error {
	unlock, err := s.lockStores(ctx, lockSpec{layers: modeWrite, images: modeWrite, containers: modeWrite})
	if err != nil {
		return err
	}
	defer unlock()
	if l, ok := s.layers.Lookup(nameOrID); ok {
		l.Metadata = metadata
		s.layers.Update(l)
		return s.layers.Save(ctx)
	}
	if _, _, ok := s.lookupLayerLocked(nameOrID); ok {
		return fmt.Errorf("layer %s: %w", nameOrID, ErrStoreIsReadOnly)
	}
	if _, _, ok := s.lookupImageLocked(nameOrID); ok {
		img, is, err := s.writableImageLocked(ctx, nameOrID)
		if err != nil {
			return err
		}
		img.Metadata = metadata
		if err := is.Update(img); err != nil {
			return err
		}
		return is.Save(ctx)
	}
	if c, ok := s.containers.Lookup(nameOrID); ok {
		c.Metadata = metadata
		s.containers.Update(c)
		return s.containers.Save(ctx)
	}
	return ErrNotAnID
}
