package store

// Repair (`check --repair`). Locking: SalvageMetadata first takes each
// table's lock on its own; then storage.lock and the layer, image and
// container stores are write-locked (read-only stores read-locked) for the
// re-creation of lost layer records, the check and every fix, so what is
// removed is exactly what the check found.
//
// What Repair removes, and nothing else (every intact layer, image and
// container stays):
//
//   - with RemoveContainers, the damaged containers (and their layers);
//   - damaged read-write images: the record and its data directories only,
//     not its layers (a damaged layer is removed on its own account);
//     an image a remaining container uses is not removed;
//   - damaged read-write layers (and unreferenced ones older than the
//     maximum age), children before parents; a layer a remaining image or
//     container uses, or with children that stay, is not removed;
//   - driver layer directories no record accounts for, except those whose
//     tar-split is intact: those get their record back instead;
//   - orphan big-data directories and tar-split files (kept, and still
//     reported, while a <table>.corrupt-* file sits beside their table),
//     and files in a record's big-data directory that are none of its
//     items (the record stays);
//   - leftover temporary files.
//
// Problems of read-only stores are reported and never touched; a
// read-only store whose metadata does not decode is set aside (reported
// under Files) and the read-write stores are repaired without it: layers
// and images that could be its are then neither reported missing nor
// removed as unreferenced.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/stowage/stowage/container"
	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/internal/fsx"
	"github.com/stowage/stowage/internal/table"
	"github.com/stowage/stowage/layer"
	"github.com/stowage/stowage/tarsplit"
)

// RepairOptions select what Repair checks and may remove.
type RepairOptions struct {
	CheckOptions
	// RemoveContainers also removes damaged containers (the CLI's -f).
	RemoveContainers bool
}

// Repair salvages metadata files that do not decode, re-creates the
// records of layers that lost theirs, checks the store and removes what is
// damaged (see the top of this file). It returns the report of what it
// found and the fixes that failed; a nil report comes with the error that
// stopped it.
func (s *Store) Repair(ctx context.Context, opts RepairOptions) (*CheckReport, []error) {
	r := newCheckReport()
	salvaged, err := s.SalvageMetadata(ctx)
	for _, sv := range salvaged {
		r.Files[sv.Path] = append(r.Files[sv.Path], fmt.Errorf("%w; kept the original as %s and saved the %d records that still decode",
			describeCorruptShort(sv.Path, sv.Cause), sv.Kept, sv.Records))
	}
	if err != nil {
		return nil, []error{fmt.Errorf("salvaging metadata: %w", err)}
	}
	// What is still corrupt belongs to read-only stores (or could not be
	// salvaged): the former are set aside and reported, the latter stop us.
	if ok, err := s.reportCorruptMetadata(ctx, r, describeCorruptShort); err != nil || !ok {
		if err == nil {
			err = fmt.Errorf("metadata still does not decode after the salvage: %w", ErrCorruptMetadata)
		}
		return nil, []error{err}
	}
	unlock, err := s.lockStores(ctx, lockSpec{graphWrite: true, layers: modeWrite, images: modeWrite, containers: modeWrite})
	if err != nil {
		return nil, []error{err}
	}
	defer unlock()
	adopted, errs := s.adoptLayersLocked(ctx)
	if mp := s.mountpointsPath(); slices.ContainsFunc(salvaged, func(sv SalvagedFile) bool { return sv.Path == mp }) {
		found, err := s.recoverMountRecordsLocked(ctx)
		if err != nil {
			errs = append(errs, err)
		}
		r.Files[mp] = append(r.Files[mp], found...)
	}
	if err := s.checkLocked(ctx, opts.CheckOptions, r); err != nil {
		return nil, append(errs, err)
	}
	for _, id := range adopted {
		r.Layers[id] = append([]error{fmt.Errorf("layer %s: %w: its record was re-created from its driver directory (and tar-split) and the records naming it", id, ErrLayerUnaccounted)}, r.Layers[id]...)
	}
	return r, append(errs, s.repairLocked(ctx, opts, r, adopted)...)
}

// describeCorruptShort is describeCorrupt without the advice.
func describeCorruptShort(path string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "loading "+path+": ")
	msg = strings.TrimSuffix(msg, ": "+ErrCorruptMetadata.Error())
	return fmt.Errorf("%s: %s: %w", path, msg, ErrCorruptMetadata)
}

// repairLocked removes what r reports as damaged.
//
// Locking: storage.lock, layers, images and containers held for writing.
func (s *Store) repairLocked(ctx context.Context, opts RepairOptions, r *CheckReport, adopted []string) []error {
	var errs []error
	if opts.RemoveContainers {
		for _, id := range sortedKeys(r.Containers) {
			c, ok := s.containers.Get(id)
			if !ok || onlyErrors(r.Containers[id], ErrOrphanData) {
				continue
			}
			if err := s.deleteContainerLocked(ctx, c.ID, c.LayerID); err != nil {
				errs = append(errs, fmt.Errorf("deleting container %s: %w", id, err))
			}
		}
	}
	for _, id := range sortedKeys(r.Images) {
		_, is, ok := s.lookupRWImageLocked(id)
		if !ok || is == nil || onlyErrors(r.Images[id], ErrOrphanData) {
			continue
		}
		if idx := slices.IndexFunc(s.containers.All(), func(c *container.Container) bool { return c.ImageID == id }); idx >= 0 {
			errs = append(errs, fmt.Errorf("deleting image %s: image used by %v: %w", id, s.containers.All()[idx].ID, ErrImageUsedByContainer))
			continue
		}
		is.Remove(id)
		if err := is.Save(ctx); err != nil {
			errs = append(errs, fmt.Errorf("deleting image %s: %w", id, err))
			continue
		}
		if err := fsx.RemoveAll(is.DataDir(id)); err != nil {
			errs = append(errs, fmt.Errorf("deleting image %s: %w", id, err))
		}
		_ = os.RemoveAll(s.imageRunDir(id))
	}
	// Layers with a record, deepest first.
	var doomed []string
	for id, lerrs := range r.Layers {
		if _, ok := s.layers.Get(id); !ok {
			continue
		}
		if slices.Contains(adopted, id) && onlyErrors(lerrs, ErrLayerUnreferenced, ErrLayerUnaccounted, ErrOrphanData) {
			continue
		}
		if onlyErrors(lerrs, ErrOrphanData) { // stray files beside an intact layer: removed below
			continue
		}
		doomed = append(doomed, id)
	}
	depth := func(id string) int {
		d := 0
		for p := r.parents[id]; p != "" && d <= len(r.parents); p = r.parents[p] {
			d++
		}
		return d
	}
	sort.Slice(doomed, func(i, j int) bool {
		if di, dj := depth(doomed[i]), depth(doomed[j]); di != dj {
			return di > dj
		}
		return doomed[i] < doomed[j]
	})
	for _, id := range doomed {
		if _, ok := s.layers.Get(id); !ok {
			continue
		}
		if err := s.layerInUseLocked(id, "", nil); err != nil {
			errs = append(errs, fmt.Errorf("deleting layer %s: %w", id, err))
			continue
		}
		if err := s.deleteLayerFilesLocked(ctx, id); err != nil {
			errs = append(errs, fmt.Errorf("deleting layer %s: %w", id, err))
			continue
		}
		if err := s.dropMappedLayerLocked(ctx, id); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, s.removeUnaccountedLocked(ctx, r, adopted)...)
	errs = append(errs, s.removeOrphansLocked(r, true)...)
	for _, p := range r.temps {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("removing %s: %w", p, err))
		}
	}
	return errs
}

// removeUnaccountedLocked removes driver layer dirs without a record
// (except re-adopted ones) with their tar-split and big-data dir.
//
// Locking: layers held for writing.
func (s *Store) removeUnaccountedLocked(ctx context.Context, r *CheckReport, keep []string) []error {
	var errs []error
	for i := len(r.unaccounted) - 1; i >= 0; i-- {
		id := r.unaccounted[i]
		if slices.Contains(keep, id) {
			continue
		}
		if _, ok := s.layers.Get(id); ok {
			continue
		}
		if err := s.graphDriver().Remove(ctx, id); err != nil {
			errs = append(errs, fmt.Errorf("deleting storage layer %s: %w", id, err))
			continue
		}
		if err := s.layers.RemoveFiles(id); err != nil {
			errs = append(errs, fmt.Errorf("deleting storage layer %s: %w", id, err))
		}
	}
	return errs
}

// removeOrphansLocked removes orphan big-data dirs and tar-split files;
// with respectQuarantine, not those beside a table that was salvaged.
//
// Locking: layers, images and containers held for writing.
func (s *Store) removeOrphansLocked(r *CheckReport, respectQuarantine bool) []error {
	var errs []error
	for _, p := range sortedKeys(r.orphans) {
		dir := filepath.Dir(p)
		if respectQuarantine && quarantined(dir, "layers.json", "volatile-layers.json", "images.json", "containers.json", "volatile-containers.json") {
			continue
		}
		if err := fsx.RemoveAll(p); err != nil {
			errs = append(errs, fmt.Errorf("removing %s: %w", p, err))
		}
	}
	return errs
}

// adoptable reports whether a driver layer without a record has a
// tar-split file, i.e. was a committed layer whose record was lost.
func (s *Store) adoptable(id string) bool {
	_, err := os.Stat(s.layers.TarSplitPath(id))
	return err == nil
}

// adoptLayersLocked re-creates the record of every driver layer without
// one that was evidently a layer of this store: its tar-split re-assembles
// from the driver's files, or an image or container record names it. The
// record gets the ID, the parent (when the driver records it; else, for a
// container's layer, its image's top layer; else none, flagged
// ParentUnknownFlag), the uncompressed digest and size (from the
// tar-split), the big-data names, and is created now (so the usual grace
// period applies before it counts as unreferenced). Names (those still
// free), ID mappings, compressed digests, metadata, flags and, when the
// driver does not record it, the parent are taken from what the kept copy
// of a damaged record file still holds of its record (lostLayerFields);
// anything else stays empty.
//
// Locking: layers, images and containers held for writing.
func (s *Store) adoptLayersLocked(ctx context.Context) ([]string, []error) {
	list, err := s.graphDriver().ListLayers()
	if err != nil {
		if errors.Is(err, driver.ErrNotSupported) {
			return nil, nil
		}
		return nil, []error{err}
	}
	named := s.namedLayersLocked()
	committing := s.layers.LiveCommits()
	var adopted []string
	var errs []error
	for _, id := range list {
		if s.layerIDTakenLocked(id) || committing[id] {
			continue
		}
		parentHint, isNamed := named[id]
		if !isNamed && !s.adoptable(id) {
			continue
		}
		rec, err := s.rebuildLayerRecord(ctx, id, parentHint)
		if err != nil {
			continue // left unaccounted: the check reports it and repair removes it
		}
		if err := s.layers.Add(rec, layer.LocStable); err != nil {
			errs = append(errs, fmt.Errorf("re-creating the record of layer %s: %w", id, err))
			continue
		}
		adopted = append(adopted, id)
	}
	if len(adopted) > 0 {
		if err := s.layers.Save(ctx); err != nil {
			return nil, append(errs, err)
		}
	}
	return adopted, errs
}

// ErrMountRecordLost is a layer mounted where the driver mounts it whose
// mountpoints.json record was lost with the damaged file.
var ErrMountRecordLost = errors.New("mounted, but its mountpoints.json record was lost: recorded again with count 1")

// mountpointsPath is R/<drv>-layers/mountpoints.json.
func (s *Store) mountpointsPath() string {
	return filepath.Join(s.opts.RunRoot, s.driverName+"-layers", "mountpoints.json")
}

// recoverMountRecordsLocked gives every layer of the primary store that
// has no mount record but is mounted where the driver mounts it (the
// kernel's mount table of this mount namespace says so) a record with
// count 1, the least it had: one unmount then takes the mount away. Run
// after mountpoints.json was salvaged, whose lost records it restores as
// far as they can be known (the counts cannot). Drivers that mount nothing
// (vfs) have no such records to restore.
//
// Locking: layers held for writing.
func (s *Store) recoverMountRecordsLocked(ctx context.Context) ([]error, error) {
	mp, ok := s.graphDriver().(driver.MountPather)
	if !ok {
		return nil, nil
	}
	mounts, err := s.layers.Mounts(ctx)
	if err != nil {
		return nil, err
	}
	var found []error
	for _, l := range s.layers.All() {
		if m, ok := mounts[l.ID]; ok && m.Count > 0 {
			continue
		}
		p, err := mp.MountPath(l.ID)
		if err != nil || !isMountPoint(p) {
			continue
		}
		if _, err := s.layers.UpdateMount(ctx, l.ID, func(m *layer.MountPoint) error {
			m.Path, m.Count = p, 1
			return nil
		}); err != nil {
			return found, fmt.Errorf("layer %s: restoring its mount record: %w", l.ID, err)
		}
		found = append(found, fmt.Errorf("layer %s: %s: %w", l.ID, p, ErrMountRecordLost))
	}
	return found, nil
}

// namedLayersLocked returns the layers image and container records name,
// each with a parent hint (a container layer's image's top layer).
//
// Locking: images and containers held.
func (s *Store) namedLayersLocked() map[string]string {
	named := map[string]string{}
	tops := map[string]string{}
	for _, is := range s.allImageStores() {
		for _, img := range is.All() {
			if _, ok := tops[img.ID]; !ok {
				tops[img.ID] = img.TopLayer
			}
			for _, l := range append([]string{img.TopLayer}, img.MappedTopLayers...) {
				if l != "" {
					named[l] = ""
				}
			}
		}
	}
	for _, c := range s.containers.All() {
		if c.LayerID != "" {
			named[c.LayerID] = tops[c.ImageID]
		}
	}
	return named
}

// rebuildLayerRecord builds the record of a driver layer from its
// tar-split (if it has one) and the driver's files.
//
// Locking: layers held.
func (s *Store) rebuildLayerRecord(ctx context.Context, id, parentHint string) (*layer.Layer, error) {
	rec := &layer.Layer{ID: id, Created: time.Now().UTC()}
	drv := s.graphDriver()
	f, err := os.Open(s.layers.TarSplitPath(id))
	switch {
	case err == nil:
		defer f.Close()
		sum := &countingHash{h: digest.Canonical.Hash()}
		if err := tarsplit.Reassemble(ctx, sum, f, func(name string) (io.ReadCloser, error) { return drv.OpenFile(id, name) }); err != nil {
			return nil, err
		}
		rec.UncompressedDigest, rec.UncompressedSize = digest.NewDigest(digest.Canonical, sum.h), sum.n
	case !errors.Is(err, os.ErrNotExist):
		return nil, err
	}
	old := s.lostLayerFields(id)
	parentKnown := false
	if pr, ok := drv.(driver.ParentRecorder); ok {
		if parent, known, err := pr.LayerParent(id); err == nil && known {
			rec.Parent, parentKnown = parent, true
		}
	}
	if !parentKnown && old.Parent != "" {
		rec.Parent, parentKnown = old.Parent, true
	}
	if !parentKnown && parentHint != "" {
		rec.Parent, parentKnown = parentHint, true
	}
	for k, v := range old.Flags {
		if rec.Flags == nil {
			rec.Flags = map[string]any{}
		}
		rec.Flags[k] = v
	}
	if !parentKnown {
		if rec.Flags == nil {
			rec.Flags = map[string]any{}
		}
		rec.Flags[ParentUnknownFlag] = true
	}
	for _, n := range old.Names {
		if s.layers.CheckNew(id, []string{n}) == nil && !slices.Contains(rec.Names, n) {
			rec.Names = append(rec.Names, n)
		}
	}
	rec.Metadata, rec.MountLabel = old.Metadata, old.MountLabel
	rec.CompressedDigest, rec.CompressedSize, rec.CompressionType = old.CompressedDigest, old.CompressedSize, old.CompressionType
	rec.TOCDigest, rec.UIDs, rec.GIDs = old.TOCDigest, old.UIDs, old.GIDs
	rec.UIDMap, rec.GIDMap = old.UIDMap, old.GIDMap
	if ents, err := os.ReadDir(s.layers.BigDataDir(id)); err == nil {
		for _, e := range ents {
			if !e.Type().IsRegular() {
				continue
			}
			key := e.Name()
			if strings.HasPrefix(key, "=") {
				b, err := base64.StdEncoding.DecodeString(key[1:])
				if err != nil {
					continue
				}
				key = string(b)
			}
			rec.BigDataNames = append(rec.BigDataNames, key)
		}
	}
	return rec, nil
}

// lostLayerFields returns what the copies of the layer record files that
// SalvageMetadata kept (<file>.corrupt-*, newest first) still hold of the
// record of id: each field that decodes completely (see
// table.PartialFields); the zero Layer if none does.
//
// Locking: layers held.
func (s *Store) lostLayerFields(id string) layer.Layer {
	var kept []string
	for _, dir := range []string{s.layers.Dir(), filepath.Join(s.opts.RunRoot, s.driverName+"-layers")} {
		for _, name := range []string{"layers.json", "volatile-layers.json"} {
			m, _ := filepath.Glob(filepath.Join(dir, name+".corrupt-*"))
			kept = append(kept, m...)
		}
	}
	// Newest first: the names end in the UTC time they were kept.
	sort.Slice(kept, func(i, j int) bool {
		return kept[i][strings.LastIndex(kept[i], ".corrupt-"):] > kept[j][strings.LastIndex(kept[j], ".corrupt-"):]
	})
	var out layer.Layer
	for _, p := range kept {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		fields := table.PartialFields(data, id)
		if len(fields) == 0 {
			continue
		}
		for k, v := range fields {
			one, err := json.Marshal(map[string]json.RawMessage{k: v})
			if err == nil {
				_ = json.Unmarshal(one, &out) // a field of the wrong type is left out
			}
		}
		break
	}
	return out
}

// ParentUnknownFlag marks a layer record Repair re-created on a driver
// that does not record parents (vfs): its parent is unknown, so its
// changes cannot be compared with its diff (the diff itself still is).
const ParentUnknownFlag = "stowage-parent-unknown"

// onlyErrors reports whether every error of errs is one of kinds.
func onlyErrors(errs []error, kinds ...error) bool {
	for _, e := range errs {
		if !slices.ContainsFunc(kinds, func(k error) bool { return errors.Is(e, k) }) {
			return false
		}
	}
	return true
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
