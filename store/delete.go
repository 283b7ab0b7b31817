package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/stowage/stowage/internal/fsx"
	"github.com/stowage/stowage/layer"
)

// deleteLayerFilesLocked is the layer delete flow without safety checks:
// unmount, flag incomplete and save, remove the driver dir, tar-split and
// big data, drop the record and save.
//
// Locking: layers held for writing.
func (s *Store) deleteLayerFilesLocked(ctx context.Context, id string) error {
	l, ok := s.layers.Get(id)
	if !ok {
		return ErrLayerUnknown
	}
	mounts, err := s.layers.Mounts(ctx)
	if err != nil {
		return err
	}
	if m, ok := mounts[id]; ok && m.Count > 0 {
		if err := s.graphDriver().Put(ctx, id); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("unmounting layer %s: %w", id, err)
		}
		if _, err := s.layers.UpdateMount(ctx, id, func(m *layer.MountPoint) error { m.Count, m.Path = 0, ""; return nil }); err != nil {
			return err
		}
	}
	if l.Flags == nil {
		l.Flags = map[string]any{}
	}
	l.Flags[layer.IncompleteFlag] = true
	s.layers.Update(l)
	if err := s.layers.Save(ctx); err != nil {
		return err
	}
	if err := s.graphDriver().Remove(ctx, id); err != nil {
		return fmt.Errorf("removing layer %s: %w", id, err)
	}
	if err := s.layers.RemoveFiles(id); err != nil {
		return err
	}
	s.layers.Remove(id)
	return s.layers.Save(ctx)
}

// layerInUseLocked returns why a layer must not be deleted, or nil.
// skipImage is an image being deleted; removing lists layers being removed.
//
// Locking: layers, images and containers held.
func (s *Store) layerInUseLocked(id, skipImage string, removing []string) error {
	for _, l := range s.layers.All() {
		if l.Parent == id && !slices.Contains(removing, l.ID) {
			return fmt.Errorf("used by layer %v: %w", l.ID, ErrLayerHasChildren)
		}
	}
	for _, is := range s.allImageStores() {
		for _, img := range is.All() {
			if img.ID == skipImage {
				continue
			}
			if img.TopLayer == id || slices.Contains(img.MappedTopLayers, id) {
				return fmt.Errorf("layer %v used by image %v: %w", id, img.ID, ErrLayerUsedByImage)
			}
		}
	}
	if c, ok := s.containers.ByLayer(id); ok {
		return fmt.Errorf("layer %v used by container %v: %w", id, c.ID, ErrLayerUsedByContainer)
	}
	return nil
}

// DeleteLayer removes a layer that has no children and that no image or
// container uses.
func (s *Store) DeleteLayer(ctx context.Context, nameOrID string) error {
	unlock, err := s.lockStores(ctx, lockSpec{layers: modeWrite, images: modeWrite, containers: modeWrite})
	if err != nil {
		return err
	}
	defer unlock()
	l, err := s.writableLayerLocked(nameOrID, ErrNotALayer)
	if err != nil {
		return err
	}
	id := l.ID
	if err := s.layerInUseLocked(id, "", nil); err != nil {
		return err
	}
	if err := s.deleteLayerFilesLocked(ctx, id); err != nil {
		return err
	}
	return s.dropMappedLayerLocked(ctx, id)
}

// dropMappedLayerLocked removes id from every image's mapped-layers.
//
// Locking: images held for writing.
func (s *Store) dropMappedLayerLocked(ctx context.Context, id string) error {
	for _, is := range s.rwImageStores() {
		changed := false
		for _, img := range is.All() {
			if slices.Contains(img.MappedTopLayers, id) {
				img.MappedTopLayers = slices.DeleteFunc(img.MappedTopLayers, func(x string) bool { return x == id })
				if err := is.Update(img); err != nil {
					return err
				}
				changed = true
			}
		}
		if changed {
			if err := is.Save(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

// DeleteImage removes the image and, with commit, the chain of its layers
// that nothing else uses, returning the layers removed. Without commit it
// only reports what would be removed.
func (s *Store) DeleteImage(ctx context.Context, nameOrID string, commit bool) ([]string, error) {
	unlock, err := s.lockStores(ctx, lockSpec{layers: modeWrite, images: modeWrite, containers: modeWrite})
	if err != nil {
		return nil, err
	}
	defer unlock()
	img, _, ok := s.lookupRWImageLocked(nameOrID)
	if !ok {
		return nil, ErrNotAnImage
	}
	id := img.ID
	for _, c := range s.containers.All() {
		if c.ImageID == id {
			return nil, fmt.Errorf("image used by %v: %w", c.ID, ErrImageUsedByContainer)
		}
	}
	removing := s.imageLayersToRemoveLocked(id, img.TopLayer, img.MappedTopLayers)
	if !commit {
		return removing, nil
	}
	for _, is := range s.rwImageStores() {
		if _, ok := is.Get(id); !ok {
			continue
		}
		is.Remove(id)
		if err := is.Save(ctx); err != nil {
			return nil, err
		}
		if err := fsx.RemoveAll(is.DataDir(id)); err != nil {
			return nil, err
		}
	}
	_ = os.RemoveAll(s.imageRunDir(id))
	var removed []string
	for _, lid := range removing {
		if err := s.deleteLayerFilesLocked(ctx, lid); err != nil {
			return removed, err
		}
		removed = append(removed, lid)
	}
	return removed, nil
}

// imageLayersToRemoveLocked lists the mapped layers, then the top layer
// and its parents, stopping at a layer something else uses or that lives
// in a read-only store.
//
// Locking: layers, images and containers held.
func (s *Store) imageLayersToRemoveLocked(imageID, top string, mapped []string) []string {
	var out []string
	for _, m := range mapped {
		if _, ok := s.layers.Get(m); ok && s.layerInUseLocked(m, imageID, out) == nil {
			out = append(out, m)
		}
	}
	for id := top; id != ""; {
		l, ok := s.layers.Get(id)
		if !ok || s.layerInUseLocked(id, imageID, out) != nil {
			break
		}
		out = append(out, id)
		id = l.Parent
	}
	return out
}

// DeleteContainer removes a container: its layer first, then its
// directories, then its record.
func (s *Store) DeleteContainer(ctx context.Context, nameOrID string) error {
	unlock, err := s.lockStores(ctx, lockSpec{layers: modeWrite, images: modeWrite, containers: modeWrite})
	if err != nil {
		return err
	}
	defer unlock()
	c, ok := s.containers.Lookup(nameOrID)
	if !ok {
		return ErrNotAContainer
	}
	return s.deleteContainerLocked(ctx, c.ID, c.LayerID)
}

// deleteContainerLocked removes the container's dirs, its record, then its
// layer. The record goes before the layer: a process killed in between
// leaves a complete layer nothing uses (which check --repair reclaims),
// never a container whose layer is gone. (Deleting the layer first, as
// upstream does, flags it incomplete; a kill then left the record and the
// next open removed the layer under it.)
//
// Locking: layers, images and containers held for writing.
func (s *Store) deleteContainerLocked(ctx context.Context, id, layerID string) error {
	if _, ok := s.layers.Get(layerID); ok {
		// Read the mount table before changing anything: when it cannot
		// be read (corrupt mountpoints.json) the container stays whole.
		if _, err := s.layers.Mounts(ctx); err != nil {
			return err
		}
	}
	for _, d := range []string{s.containers.DataDir(id), filepath.Dir(s.containerRunDir(id))} {
		if err := fsx.RemoveAll(d); err != nil {
			return err
		}
	}
	s.containers.Remove(id)
	if err := s.containers.Save(ctx); err != nil {
		return err
	}
	if _, ok := s.layers.Get(layerID); ok {
		if err := s.deleteLayerFilesLocked(ctx, layerID); err != nil {
			return fmt.Errorf("container %s deleted, but not its layer %s: %w", id, layerID, err)
		}
	}
	return nil
}

// Delete removes whatever nameOrID names without safety checks: a
// container (with its layer), else an image record, else a layer.
func (s *Store) Delete(ctx context.Context, nameOrID string) error {
	unlock, err := s.lockStores(ctx, lockSpec{layers: modeWrite, images: modeWrite, containers: modeWrite})
	if err != nil {
		return err
	}
	defer unlock()
	if c, ok := s.containers.Lookup(nameOrID); ok {
		return s.deleteContainerLocked(ctx, c.ID, c.LayerID)
	}
	if img, is, ok := s.lookupRWImageLocked(nameOrID); ok {
		is.Remove(img.ID)
		if err := is.Save(ctx); err != nil {
			return err
		}
		return fsx.RemoveAll(is.DataDir(img.ID))
	}
	if l, ok := s.layers.Lookup(nameOrID); ok {
		return s.deleteLayerFilesLocked(ctx, l.ID)
	}
	return ErrLayerUnknown
}

// Wipe removes every container, image and layer of the read-write stores.
func (s *Store) Wipe(ctx context.Context) error {
	unlock, err := s.lockStores(ctx, lockSpec{layers: modeWrite, images: modeWrite, containers: modeWrite})
	if err != nil {
		return err
	}
	defer unlock()
	for _, c := range slices.Clone(s.containers.All()) {
		if err := s.deleteContainerLocked(ctx, c.ID, c.LayerID); err != nil {
			return err
		}
	}
	for _, is := range s.rwImageStores() {
		for _, img := range slices.Clone(is.All()) {
			is.Remove(img.ID)
			if err := fsx.RemoveAll(is.DataDir(img.ID)); err != nil {
				return err
			}
		}
		if err := is.Save(ctx); err != nil {
			return err
		}
	}
	// Children before parents: repeatedly delete layers nobody builds on.
	for len(s.layers.All()) > 0 {
		progressed := false
		for _, l := range slices.Clone(s.layers.All()) {
			if slices.ContainsFunc(s.layers.All(), func(x *layer.Layer) bool { return x.Parent == l.ID }) {
				continue
			}
			if err := s.deleteLayerFilesLocked(ctx, l.ID); err != nil {
				return err
			}
			progressed = true
		}
		if !progressed {
			return errors.New("wipe: layer parent cycle")
		}
	}
	return nil
}
