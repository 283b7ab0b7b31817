package store

// ID mappings across layers, images and containers, as containers/storage
// v1.43 keeps them on disk (spec store-format.md §7.3, layers-and-drivers.md
// §1.9):
//
//   - A driver that shifts IDs at mount time (driver.Shifter: overlay with
//     idmapped lowers) gets every new layer unmapped: the record has no
//     maps and files keep the IDs of the tar. A container keeps its maps in
//     its record only; Mount hands them to the driver, which shows the
//     lowers through them.
//   - Otherwise (vfs, or overlay without idmapped lowers or with
//     _CONTAINERS_OVERLAY_DISABLE_IDMAP=yes) a layer records its maps and
//     its files are chowned when written; a child whose maps differ from
//     its parent's is re-owned by the driver (CreateOptions.ParentUIDMap),
//     and a container whose maps differ from its image's top layer's sits
//     on a mapped copy of that layer, listed in the image's mapped-layers
//     and reused by later containers with the same maps.
//
// So a layer's recorded maps always say how its files are owned on disk,
// and the driver only maps lowers at mount time for a container whose
// layer is unmapped: lowers never get shifted twice.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"time"

	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/image"
	"github.com/stowage/stowage/internal/fsx"
	"github.com/stowage/stowage/internal/idmap"
	"github.com/stowage/stowage/layer"
)

// canShift reports whether the driver shifts IDs at mount time for these
// maps (upstream's canUseShifting: a shifting driver and contiguous maps).
func (s *Store) canShift(uidMap, gidMap []idmap.IDMap) bool {
	sh, ok := s.graphDriver().(driver.Shifter)
	return ok && sh.SupportsShifting() && idmap.Contiguous(uidMap) && idmap.Contiguous(gidMap)
}

// layerMatchesMapping reports whether l can be the parent of a container
// layer wanting m: an unmapped layer when the driver shifts, else a layer
// with exactly the wanted maps (and none where host IDs are asked for).
func (s *Store) layerMatchesMapping(l *layer.Layer, m IDMappingOptions) bool {
	if len(l.UIDMap) == 0 && len(l.GIDMap) == 0 && s.canShift(m.UIDMap, m.GIDMap) {
		return true
	}
	if (m.HostUIDMapping && len(l.UIDMap) != 0) || (m.HostGIDMapping && len(l.GIDMap) != 0) {
		return false
	}
	return idmap.Equal(l.UIDMap, m.UIDMap) && idmap.Equal(l.GIDMap, m.GIDMap)
}

// topLayerForMappingLocked picks the layer a container wanting m is
// created on: the image's top layer or one of its mapped copies that
// matches, else a new mapped copy of the first one found (registered in
// the image's mapped-layers) when both the image and that layer are in
// the read-write stores, else that layer as it is (the driver then
// re-owns the container layer itself).
//
// Locking: layers held for writing; images held for writing.
func (s *Store) topLayerForMappingLocked(ctx context.Context, img *image.Image, is *image.Store, m IDMappingOptions) (*layer.Layer, error) {
	var first *layer.Layer
	firstWritable := false
	for _, id := range append([]string{img.TopLayer}, img.MappedTopLayers...) {
		l, ls, ok := s.lookupLayerLocked(id)
		if !ok || l.ID != id {
			continue
		}
		if l.Parent != "" {
			if _, _, ok := s.lookupLayerLocked(l.Parent); !ok {
				continue
			}
		}
		if s.layerMatchesMapping(l, m) {
			return l, nil
		}
		if first == nil {
			first, firstWritable = l, ls == s.layers
		}
	}
	if first == nil {
		return nil, fmt.Errorf("top layer %s of image %s: %w", img.TopLayer, img.ID, ErrLayerUnknown)
	}
	if !firstWritable || !slices.Contains(s.rwImageStores(), is) {
		return first, nil
	}
	uidMap, gidMap := m.UIDMap, m.GIDMap
	if m.HostUIDMapping {
		uidMap = nil
	}
	if m.HostGIDMapping {
		gidMap = nil
	}
	if s.canShift(uidMap, gidMap) {
		uidMap, gidMap = nil, nil
	}
	mapped, err := s.createMappedCopyLocked(ctx, first, uidMap, gidMap)
	if err != nil {
		return nil, fmt.Errorf("creating an ID-mapped copy of layer %q: %w", first.ID, err)
	}
	img.MappedTopLayers = append(img.MappedTopLayers, mapped.ID)
	err = is.Update(img)
	if err == nil {
		err = is.Save(ctx)
	}
	if err != nil {
		img.MappedTopLayers = slices.DeleteFunc(img.MappedTopLayers, func(x string) bool { return x == mapped.ID })
		_ = is.Update(img) // restores the in-memory record; the file was not saved
		return nil, errors.Join(fmt.Errorf("registering ID-mapped layer with image %q: %w", img.ID, err),
			s.deleteLayerFilesLocked(context.WithoutCancel(ctx), mapped.ID))
	}
	return mapped, nil
}

// createMappedCopyLocked makes a copy of tmpl owned in the given maps,
// with tmpl's parent, metadata, digests, sizes, ID sets and tar-split: the
// driver creates it on tmpl (vfs copies tmpl's tree; overlay stacks it on
// tmpl) and re-owns tmpl's files into the new maps.
//
// Locking: layers held for writing.
func (s *Store) createMappedCopyLocked(ctx context.Context, tmpl *layer.Layer, uidMap, gidMap []idmap.IDMap) (*layer.Layer, error) {
	id, err := newID(s.layerIDTakenLocked)
	if err != nil {
		return nil, err
	}
	rec := &layer.Layer{
		ID:                 id,
		Parent:             tmpl.Parent,
		Metadata:           tmpl.Metadata,
		MountLabel:         tmpl.MountLabel,
		Created:            time.Now().UTC(),
		CompressedDigest:   tmpl.CompressedDigest,
		CompressedSize:     tmpl.CompressedSize,
		UncompressedDigest: tmpl.UncompressedDigest,
		UncompressedSize:   tmpl.UncompressedSize,
		CompressionType:    tmpl.CompressionType,
		UIDs:               slices.Clone(tmpl.UIDs),
		GIDs:               slices.Clone(tmpl.GIDs),
		UIDMap:             slices.Clone(uidMap),
		GIDMap:             slices.Clone(gidMap),
		Flags:              map[string]any{layer.IncompleteFlag: true},
	}
	if err := s.addIncompleteLocked(ctx, rec, layer.LocImageStore); err != nil {
		return nil, err
	}
	create := driver.CreateOptions{
		MountLabel: tmpl.MountLabel, UIDMap: uidMap, GIDMap: gidMap,
		ParentUIDMap: tmpl.UIDMap, ParentGIDMap: tmpl.GIDMap,
	}
	if err := s.graphDriver().Create(ctx, id, tmpl.ID, create); err != nil {
		return nil, s.abortLayerLocked(ctx, id, fmt.Errorf("creating copy of template layer %q with ID %q: %w", tmpl.ID, id, err))
	}
	if err := s.copyTarSplitLocked(tmpl, id); err != nil {
		return nil, s.abortLayerLocked(ctx, id, err)
	}
	if err := s.completeLocked(ctx, rec); err != nil {
		return nil, s.abortLayerLocked(ctx, id, err)
	}
	return rec, nil
}

// copyTarSplitLocked copies tmpl's tar-split (if it has one) to layer id.
//
// Locking: layers held for writing.
func (s *Store) copyTarSplitLocked(tmpl *layer.Layer, id string) error {
	src := s.layers.TarSplitPath(tmpl.ID) // tmpl is in the read-write store
	data, err := os.ReadFile(src)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	tmp := s.layers.TarSplitPath(id) + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	f, err := os.Open(tmp)
	if err == nil {
		err = fsx.SyncFile(f)
		f.Close()
	}
	if err == nil {
		err = commitTarSplit(tmp, s.layers.TarSplitPath(id))
	}
	if err != nil {
		_ = os.Remove(tmp) // err is what the caller needs
	}
	return err
}

// mountMaps returns the maps the driver must shift a mount of layer l
// through for a container with maps c: the container's when its layer is
// unmapped (the driver shifts the lowers), none when the layer's files
// already carry maps. A container whose layer is unmapped needs a
// shifting driver.
func (s *Store) mountMaps(l *layer.Layer, cUID, cGID []idmap.IDMap) ([]idmap.IDMap, []idmap.IDMap, error) {
	if len(l.UIDMap) != 0 || len(l.GIDMap) != 0 || (len(cUID) == 0 && len(cGID) == 0) {
		return nil, nil, nil
	}
	if sh, ok := s.graphDriver().(driver.Shifter); !ok || !sh.SupportsShifting() {
		return nil, nil, fmt.Errorf("cannot mount layer %s: shifting not enabled: %w", l.ID, driver.ErrNotSupported)
	}
	return cUID, cGID, nil
}
