package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/stowage/stowage/archive"
	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/internal/fsx"
	"github.com/stowage/stowage/internal/idmap"
	"github.com/stowage/stowage/internal/table"
	"github.com/stowage/stowage/layer"
)

// lookupLayerLocked resolves nameOrID in the primary store, then the
// read-only stores.
//
// Locking: layer stores held (R or W).
func (s *Store) lookupLayerLocked(nameOrID string) (*layer.Layer, *layer.Store, bool) {
	for _, ls := range s.allLayerStores() {
		if l, ok := ls.Lookup(nameOrID); ok {
			return l, ls, true
		}
	}
	return nil, nil, false
}

// writableLayerLocked resolves nameOrID in the primary store; a layer
// only a read-only store has is ErrStoreIsReadOnly, no layer at all is
// unknown.
//
// Locking: layer stores held (R or W).
func (s *Store) writableLayerLocked(nameOrID string, unknown error) (*layer.Layer, error) {
	if l, ok := s.layers.Lookup(nameOrID); ok {
		return l, nil
	}
	if _, _, ro := s.lookupLayerLocked(nameOrID); ro {
		return nil, fmt.Errorf("layer %s: %w", nameOrID, ErrStoreIsReadOnly)
	}
	return nil, unknown
}

// layerIDTakenLocked reports whether any layer store has this exact ID.
//
// Locking: layer stores held.
func (s *Store) layerIDTakenLocked(id string) bool {
	for _, ls := range s.allLayerStores() {
		if _, ok := ls.Get(id); ok {
			return true
		}
	}
	return false
}

// layerPlan is what a new layer's creation decided under the lock.
type layerPlan struct {
	id             string
	parent         *layer.Layer // snapshot; nil for a base layer
	uidMap, gidMap []idmap.IDMap
	create         driver.CreateOptions
}

// planLayerLocked resolves the parent, picks the ID and the ID mappings,
// and checks ID and names for conflicts. It changes nothing: StageLayer
// plans under read locks (its Commit checks again under the write lock).
//
// Locking: layer stores held (R or W); containers held.
func (s *Store) planLayerLocked(opts LayerOptions) (*layerPlan, error) {
	p := &layerPlan{id: opts.ID}
	if opts.Parent != "" {
		parent, _, ok := s.lookupLayerLocked(opts.Parent)
		if !ok {
			return nil, fmt.Errorf("layer %q: %w", opts.Parent, ErrParentUnknown)
		}
		if _, isCtr := s.containers.ByLayer(parent.ID); isCtr {
			return nil, fmt.Errorf("layer %s: %w", parent.ID, ErrParentIsContainer)
		}
		c := layer.Copy(parent)
		p.parent = &c
	}
	if p.id == "" {
		id, err := newID(s.layerIDTakenLocked)
		if err != nil {
			return nil, err
		}
		p.id = id
	} else if s.layerIDTakenLocked(p.id) {
		return nil, fmt.Errorf("layer %s: %w", p.id, ErrDuplicateID)
	}
	if err := s.layers.CheckNew(p.id, opts.Names); err != nil {
		return nil, mapTableErr(err)
	}
	p.uidMap, p.gidMap = s.defaultMaps(opts.IDMapping, p.parent)
	if s.canShift(p.uidMap, p.gidMap) {
		// The driver shifts at mount time: layers stay unmapped (idmaps.go).
		p.uidMap, p.gidMap = nil, nil
	}
	p.create = driver.CreateOptions{MountLabel: opts.MountLabel, UIDMap: p.uidMap, GIDMap: p.gidMap, ReadWrite: !opts.ReadOnly}
	if p.parent != nil {
		p.create.ParentUIDMap, p.create.ParentGIDMap = p.parent.UIDMap, p.parent.GIDMap
	}
	return p, nil
}

// defaultMaps picks a new object's mappings: host, explicit, the parent
// layer's, or the store default.
func (s *Store) defaultMaps(m IDMappingOptions, parent *layer.Layer) (uid, gid []idmap.IDMap) {
	pick := func(host bool, explicit, fromParent, def []idmap.IDMap) []idmap.IDMap {
		switch {
		case host:
			return nil
		case len(explicit) > 0:
			return slices.Clone(explicit)
		case parent != nil:
			return slices.Clone(fromParent)
		}
		return slices.Clone(def)
	}
	var pu, pg []idmap.IDMap
	if parent != nil {
		pu, pg = parent.UIDMap, parent.GIDMap
	}
	return pick(m.HostUIDMapping, m.UIDMap, pu, s.opts.UIDMap), pick(m.HostGIDMapping, m.GIDMap, pg, s.opts.GIDMap)
}

// mapTableErr turns table sentinels into the store's.
func mapTableErr(err error) error {
	switch {
	case errors.Is(err, table.ErrDuplicateID) && !errors.Is(err, ErrDuplicateID):
		return fmt.Errorf("%w: %w", err, ErrDuplicateID)
	case errors.Is(err, table.ErrDuplicateName) && !errors.Is(err, ErrDuplicateName):
		return fmt.Errorf("%w: %w", err, ErrDuplicateName)
	}
	return err
}

// newLayerRecord builds the incomplete record of a planned layer.
func newLayerRecord(p *layerPlan, opts LayerOptions) *layer.Layer {
	rec := &layer.Layer{
		ID:         p.id,
		Names:      table.Dedup(opts.Names),
		MountLabel: opts.MountLabel,
		Created:    time.Now().UTC(),
		UIDMap:     p.uidMap,
		GIDMap:     p.gidMap,
		Flags:      layer.CloneFlags(opts.Flags),
	}
	if p.parent != nil {
		rec.Parent = p.parent.ID
	}
	if rec.Flags == nil {
		rec.Flags = map[string]any{}
	}
	rec.Flags[layer.IncompleteFlag] = true
	return rec
}

func layerLocation(opts LayerOptions, volatile bool) int {
	switch {
	case volatile:
		return layer.LocVolatile
	case opts.ReadOnly:
		return layer.LocImageStore
	}
	return layer.LocStable
}

// addIncompleteLocked adds the record (flagged incomplete, in memory
// only) and creates its commit marker: the step before anything of the
// layer is created outside staging (see "The commit protocol").
//
// Locking: layers held for writing.
func (s *Store) addIncompleteLocked(ctx context.Context, rec *layer.Layer, loc int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.layers.Add(rec, loc); err != nil {
		return mapTableErr(err)
	}
	if err := s.layers.MarkCommit(rec.ID); err != nil {
		s.layers.Remove(rec.ID)
		return fmt.Errorf("layer %s: %w", rec.ID, err)
	}
	return nil
}

// The commit protocol of a staged layer (PutLayer, StagedLayer.Commit),
// after its tree and tar-split were written and flushed in staging:
//
//  1. With no store lock, the committer creates and locks the layer's
//     commit marker, an empty file G/<drv>-layers/tmp/commit-<id>
//     (layer.Store.LockCommit; a second commit of the same ID waits).
//     Under layers.lock (read) it checks the parent, ID and names, builds
//     the complete record and encodes layers.json with it added
//     (table.Prepared).
//  2. With no store lock, the driver renames the staged tree into place
//     (overlay: the whole layer directory, then the l/ symlink) and the
//     tar-split is renamed next to layers.json. Nothing names the layer
//     yet: loads, check and gc skip a layer whose marker is locked.
//  3. Still with no store lock, and concurrently (one journal commit on
//     ext4 and xfs): the driver's flushes of what step 2 changed (vfs:
//     G/vfs/dir; overlay: H and H/l, plus lower, lower-layers and H/<id>
//     when the parent was named only at Commit), the tar-split's
//     directory, and the prepared layers.json written to
//     tmp/layers-<id>.json and fdatasynced.
//  4. Under layers.lock (write): if no writer saved the table since step
//     1 (the token and this process's changes say so; then step 1's
//     checks still hold), a check that the layer's files are still in
//     place, a new token and the rename of the prepared file over
//     layers.json: no reload, no flush. If one did, the lock is released
//     at once (the reload happens at the next lock, outside this hold)
//     and step 1's encoding and step 3's write are redone from the new
//     records (up to prepareAttempts times; then the record is added and
//     saved with its flush under the lock, after the checks again). A
//     failed check removes the layer's files.
//  5. After the lock is released, layers.json's directory is fsynced,
//     then the marker is removed and unlocked, and only then is success
//     reported. Until that fsync the rename may not be durable, but nobody
//     was told the layer exists except processes that read it from the
//     page cache, and whatever they write into the same directory later
//     is fsynced after this rename, which persists it too.
//
// A process killed from step 1 to 5 leaves a marker nobody holds: the
// next writer that loads the table removes the layer unless its record is
// complete. A power cut may lose the marker; its layer's files are then
// durable but unrecorded (gc), or recorded and durable: the record is
// renamed only after every file and directory it needs was flushed.
// containers-storage 1.43 does not know the marker: between steps 2 and
// 4 it would see a layer directory without a record; to be safe its gc
// must not run during a stowage commit (step 4 checks nothing removed
// the files: a commit fails rather than record a layer whose directory
// is gone).
//
// CreateLayer (no content to flush) keeps the short form under one write
// lock: MarkCommit (an unlocked marker, safe because the lock is held for
// its whole life), the driver's Create, the record saved, the marker
// removed.

// completeLocked clears the incomplete flag, saves the record and removes
// the commit marker (CreateLayer's short form of the protocol).
//
// Locking: layers held for writing.
func (s *Store) completeLocked(ctx context.Context, rec *layer.Layer) error {
	delete(rec.Flags, layer.IncompleteFlag)
	if len(rec.Flags) == 0 {
		rec.Flags = nil
	}
	s.layers.Update(rec)
	if err := s.layers.Save(ctx); err != nil {
		return err
	}
	// A marker left by a failure here names a layer with a complete
	// record: the next writer only removes the marker.
	_ = s.layers.UnmarkCommit(rec.ID)
	return nil
}

// abortLayerLocked runs the delete flow for a half-made layer.
//
// Locking: layers held for writing.
func (s *Store) abortLayerLocked(ctx context.Context, id string, cause error) error {
	ctx = context.WithoutCancel(ctx)
	errs := []error{cause}
	if err := s.graphDriver().Remove(ctx, id); err != nil {
		errs = append(errs, err)
	}
	if err := s.layers.RemoveFiles(id); err != nil {
		errs = append(errs, err)
	}
	s.layers.Remove(id)
	if err := s.layers.Save(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := s.layers.UnmarkCommit(id); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// CreateLayer makes an empty layer, or a copy of its parent for vfs. A
// cancelled ctx leaves nothing (the incomplete record is removed, or
// cleaned at the next load).
func (s *Store) CreateLayer(ctx context.Context, opts LayerOptions) (*layer.Layer, error) {
	return s.createLayer(ctx, opts, false)
}

func (s *Store) createLayer(ctx context.Context, opts LayerOptions, volatile bool) (*layer.Layer, error) {
	unlock, err := s.lockStores(ctx, lockSpec{layers: modeWrite, containers: modeRead})
	if err != nil {
		return nil, err
	}
	defer unlock()
	rec, err := s.createLayerLocked(ctx, opts, volatile)
	if err != nil {
		return nil, err
	}
	c := layer.Copy(rec)
	return &c, nil
}

// createLayerLocked is CreateLayer with the locks held.
//
// Locking: layers held for writing; containers held.
func (s *Store) createLayerLocked(ctx context.Context, opts LayerOptions, volatile bool) (*layer.Layer, error) {
	p, err := s.planLayerLocked(opts)
	if err != nil {
		return nil, err
	}
	rec := newLayerRecord(p, opts)
	p.create.Volatile = volatile
	if err := s.addIncompleteLocked(ctx, rec, layerLocation(opts, volatile)); err != nil {
		return nil, err
	}
	if err := s.graphDriver().Create(ctx, rec.ID, rec.Parent, p.create); err != nil {
		return nil, s.abortLayerLocked(ctx, rec.ID, fmt.Errorf("creating layer %s: %w", rec.ID, err))
	}
	if err := s.completeLocked(ctx, rec); err != nil {
		return nil, s.abortLayerLocked(ctx, rec.ID, err)
	}
	return rec, nil
}

// CreateStorageLayer makes a driver-only layer with no record (check tests use it).
func (s *Store) CreateStorageLayer(ctx context.Context, id, parent string, opts LayerOptions) (string, error) {
	unlock, err := s.lockStores(ctx, lockSpec{layers: modeWrite})
	if err != nil {
		return "", err
	}
	defer unlock()
	var parentLayer *layer.Layer
	if parent != "" {
		pl, _, ok := s.lookupLayerLocked(parent)
		switch {
		case ok:
			parentLayer, parent = pl, pl.ID
		case table.ValidID(parent) == nil && s.graphDriver().Exists(parent):
			// another driver-only layer, as upstream allows
		default:
			return "", fmt.Errorf("layer %q: %w", parent, ErrParentUnknown)
		}
	}
	if id == "" {
		if id, err = newID(func(x string) bool { return s.layerIDTakenLocked(x) || s.graphDriver().Exists(x) }); err != nil {
			return "", err
		}
	} else if err := table.ValidID(id); err != nil {
		return "", err
	}
	uid, gid := s.defaultMaps(opts.IDMapping, parentLayer)
	create := driver.CreateOptions{MountLabel: opts.MountLabel, UIDMap: uid, GIDMap: gid, ReadWrite: !opts.ReadOnly}
	if parentLayer != nil {
		create.ParentUIDMap, create.ParentGIDMap = parentLayer.UIDMap, parentLayer.GIDMap
	}
	err = s.graphDriver().Create(ctx, id, parent, create)
	if err != nil {
		return "", err
	}
	return id, nil
}

// PutLayer creates a layer from a diff stream (any supported compression):
// StageLayer, then Commit on the parent it was staged on. Extraction runs
// without store locks into staging dirs under G/<drv>-layers/tmp and the
// driver's temp root; the layer lock is held only to check names and IDs
// before, and to commit the staged tree and save the record after. A
// cancelled ctx leaves only staging that recovery removes. A nil blob is
// CreateLayer.
func (s *Store) PutLayer(ctx context.Context, blob io.Reader, opts LayerOptions) (*layer.Layer, error) {
	if blob == nil {
		return s.CreateLayer(ctx, opts)
	}
	sl, err := s.StageLayer(ctx, blob, opts)
	if err != nil {
		return nil, err
	}
	parent := ""
	if sl.plan.parent != nil {
		parent = sl.plan.parent.ID
	}
	l, err := sl.Commit(ctx, parent)
	if err != nil {
		_ = sl.Discard() // err is what the caller needs; recovery reclaims leftovers
		return nil, err
	}
	return l, nil
}

// stageDiff extracts blob into a staged tree and writes the tar-split to
// tsPath (fsynced).
//
// Locking: none held.
func (s *Store) stageDiff(ctx context.Context, p *layerPlan, blob io.Reader, tsPath string, opts LayerOptions) (*driver.Staged, error) {
	f, err := os.OpenFile(tsPath, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	parent := ""
	if p.parent != nil {
		parent = p.parent.ID
	}
	staged, err := s.graphDriver().StageDiff(ctx, parent, blob, driver.ApplyOptions{
		UIDMap: p.uidMap, GIDMap: p.gidMap,
		Unpack: archive.UnpackOptions{
			TarSplit:           f,
			CompressedDigest:   opts.CompressedDigest,
			UncompressedDigest: opts.UncompressedDigest,
		},
		DeferFlush: opts.deferFlush,
	}, p.create)
	if err == nil {
		err = fsx.SyncFile(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if staged != nil && staged.Cleanup != nil {
			_ = staged.Cleanup()
		}
		return nil, err
	}
	return staged, nil
}

// testHookCommitted, set only by tests, runs in StagedLayer.place after
// the staged tree and tar-split are in place, before the record is
// saved: where a killed process leaves its commit marker.
var testHookCommitted func()

// placeDriverLayer has the driver commit the staged tree and returns
// the flushes it left to do (nil if it did them: a driver without the
// driver.DeferredCommitter capability).
//
// Locking: none needed; the caller holds the layer's commit marker.
func (s *Store) placeDriverLayer(ctx context.Context, rec *layer.Layer, staged *driver.Staged, create driver.CreateOptions) (func(context.Context) error, error) {
	d := s.graphDriver()
	if dc, ok := d.(driver.DeferredCommitter); ok {
		return dc.CommitStagedDeferSync(ctx, rec.ID, rec.Parent, staged, create)
	}
	return nil, d.CommitStaged(ctx, rec.ID, rec.Parent, staged, create)
}

// applyResult records what extraction computed (§3.8).
func applyResult(rec *layer.Layer, r archive.UnpackResult, opts LayerOptions) {
	rec.CompressedDigest = r.CompressedDigest
	rec.CompressedSize = r.CompressedSize
	if opts.CompressedDigest != "" {
		rec.CompressedDigest = opts.CompressedDigest
	}
	if opts.CompressedSize > 0 {
		rec.CompressedSize = opts.CompressedSize
	}
	rec.UncompressedDigest = r.UncompressedDigest
	if opts.UncompressedDigest != "" {
		rec.UncompressedDigest = opts.UncompressedDigest
	}
	rec.UncompressedSize = r.UncompressedSize
	rec.CompressionType = int(r.Compression)
	rec.UIDs = slices.Clone(r.UIDs)
	rec.GIDs = slices.Clone(r.GIDs)
}

// Layers returns a snapshot of every layer: the primary store's, then
// those of the read-only stores (mount counts from mountpoints.json).
func (s *Store) Layers(ctx context.Context) ([]layer.Layer, error) {
	unlock, err := s.lockStores(ctx, lockSpec{layers: modeRead})
	if err != nil {
		return nil, err
	}
	defer unlock()
	mounts, err := s.layers.Mounts(ctx)
	if err != nil {
		return nil, err
	}
	var out []layer.Layer
	seen := map[string]bool{}
	for _, ls := range s.allLayerStores() {
		for _, l := range ls.All() {
			if seen[l.ID] {
				continue
			}
			seen[l.ID] = true
			out = append(out, snapshotLayer(l, mounts))
		}
	}
	return out, nil
}

func snapshotLayer(l *layer.Layer, mounts map[string]layer.MountPoint) layer.Layer {
	c := layer.Copy(l)
	if m, ok := mounts[l.ID]; ok && !l.ReadOnly {
		c.MountPoint, c.MountCount = m.Path, m.Count
	}
	return c
}

// Layer returns a snapshot of one layer (ID, name or unique prefix).
func (s *Store) Layer(ctx context.Context, nameOrID string) (*layer.Layer, error) {
	unlock, err := s.lockStores(ctx, lockSpec{layers: modeRead})
	if err != nil {
		return nil, err
	}
	defer unlock()
	l, _, ok := s.lookupLayerLocked(nameOrID)
	if !ok {
		return nil, ErrLayerUnknown
	}
	mounts, err := s.layers.Mounts(ctx)
	if err != nil {
		return nil, err
	}
	c := snapshotLayer(l, mounts)
	return &c, nil
}

// LayersByDigest returns layers whose diff, TOC or compressed digest is d.
func (s *Store) LayersByDigest(ctx context.Context, d digest.Digest) ([]layer.Layer, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	unlock, err := s.lockStores(ctx, lockSpec{layers: modeRead})
	if err != nil {
		return nil, err
	}
	defer unlock()
	var out []layer.Layer
	seen := map[string]bool{}
	for _, ls := range s.allLayerStores() {
		for _, id := range ls.ByDigest(d) {
			if l, ok := ls.Get(id); ok && !seen[id] {
				seen[id] = true
				out = append(out, layer.Copy(l))
			}
		}
	}
	if len(out) == 0 {
		return nil, ErrLayerUnknown
	}
	return out, nil
}

// StorageLayers lists the layer directories the driver has, records or not.
func (s *Store) StorageLayers(ctx context.Context) ([]string, error) {
	unlock, err := s.lockStores(ctx, lockSpec{layers: modeRead})
	if err != nil {
		return nil, err
	}
	defer unlock()
	return s.graphDriver().ListLayers()
}

// commitTarSplit renames a staged (already fsynced) tar-split into place
// and fsyncs its directory, so the file is durable before the record that
// points at it loses its incomplete flag.
func commitTarSplit(staged, final string) error {
	if err := os.Rename(staged, final); err != nil {
		return err
	}
	return fsx.SyncDir(filepath.Dir(final))
}
