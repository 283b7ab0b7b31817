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
	"golang.org/x/sync/errgroup"

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
// and checks ID and names for conflicts.
//
// Locking: layer stores held for writing; containers held.
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

// The commit protocol of a new layer (CreateLayer, PutLayer, Commit),
// with layers.lock held for writing unless said otherwise:
//
//  1. addIncompleteLocked creates the layer's commit marker, an empty file
//     G/<drv>-layers/tmp/commit-<id>, without flushing it, and moves the
//     lock's token. The marker only has to be seen by the next process
//     that takes the lock: if this one is killed from here to step 4, that
//     process reloads (the token moved), finds the marker and, the layer
//     having no complete record, removes its directory and tar-split. A
//     power cut may lose the marker; then at worst an unreferenced
//     directory is left (never a record of a half layer), which gc
//     removes. The marker is empty on purpose: saving an incomplete record
//     to a JSON file without flushing it, as a cheaper marker, was tried
//     and failed the ext4 power-cut test: the rename reached the disk
//     before the data and the file came back full of NUL bytes, which
//     refuses to load. A file with no content has nothing to lose.
//  2. The driver makes the (already flushed) staged tree the layer, and
//     the staged (flushed) tar-split is renamed into place; neither is
//     flushed yet.
//  3. completeLocked writes the complete record to a temp file and,
//     concurrently (one journal commit on ext4 and xfs, where the same
//     flushes one after the other cost one commit each), fdatasyncs it,
//     runs the driver's flushes (vfs: G/vfs/dir; overlay: H and H/l, its
//     layout having been staged and flushed with the content, plus lower,
//     lower-layers and H/<id> when the parent was named only at Commit)
//     and fsyncs the tar-split's directory.
//     Only when all succeeded is the temp file renamed over layers.json;
//     then the marker is removed.
//  4. The lock is released; then layers.json's directory is fsynced and
//     only then is success reported. Until that fsync the rename may not
//     be durable, but nobody was told the layer exists except processes
//     that read it from the page cache, and whatever they write into the
//     same directory later is fsynced after this rename, which persists
//     it too. A power cut before it leaves the layer's durable directory
//     without a durable record (gc), never a record without its files;
//     if the marker survives it, the next open removes the layer.
//
// Steps 1-3 cost one round of concurrent flushes under the lock, instead
// of the twelve one-after-the-other flushes of saving the record twice
// durably (once flagged incomplete, once complete).

// completeLocked clears the incomplete flag and saves the record, running
// flush (if set) concurrently with the flush of the records and before
// their rename (step 3 above), then removes the commit marker. With
// deferSync the records' directory fsync is returned as finish for the
// caller to run after releasing the lock (step 4); otherwise finish is a
// no-op.
//
// Locking: layers held for writing; finish needs no lock.
func (s *Store) completeLocked(ctx context.Context, rec *layer.Layer, flush func(context.Context) error, deferSync bool) (finish func() error, err error) {
	delete(rec.Flags, layer.IncompleteFlag)
	if len(rec.Flags) == 0 {
		rec.Flags = nil
	}
	s.layers.Update(rec)
	finish, err = s.layers.SaveWith(ctx, table.SaveOptions{Flush: flush, DeferSyncDir: deferSync})
	if err != nil {
		return finish, err
	}
	// A marker left by a failure here names a layer with a complete
	// record: the next writer only removes the marker.
	_ = s.layers.UnmarkCommit(rec.ID)
	return finish, nil
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
	if _, err := s.completeLocked(ctx, rec, nil, false); err != nil {
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

// commitStagedLocked re-checks what the unlocked extraction assumed, then
// commits the staged tree and tar-split as "The commit protocol" says:
// the record saved incomplete, the driver's commit and the tar-split's
// rename, then the record completed with digests and sizes while their
// flushes run. finish is the records' directory fsync (step 4): the caller
// runs it after releasing the lock and before reporting success.
//
// Locking: layers held for writing; finish needs no lock.
func (s *Store) commitStagedLocked(ctx context.Context, p *layerPlan, opts LayerOptions, staged *driver.Staged, tsPath string) (_ *layer.Layer, finish func() error, _ error) {
	if p.parent != nil {
		cur, _, ok := s.lookupLayerLocked(p.parent.ID)
		if !ok {
			return nil, nil, fmt.Errorf("layer %s: %w", p.parent.ID, ErrParentUnknown)
		}
		if !idmap.Equal(cur.UIDMap, p.parent.UIDMap) || !idmap.Equal(cur.GIDMap, p.parent.GIDMap) {
			return nil, nil, fmt.Errorf("parent layer %s changed its ID mappings during extraction; retry", p.parent.ID)
		}
	}
	if s.layerIDTakenLocked(p.id) {
		return nil, nil, fmt.Errorf("layer %s: %w", p.id, ErrDuplicateID)
	}
	rec := newLayerRecord(p, opts)
	if err := s.addIncompleteLocked(ctx, rec, layerLocation(opts, false)); err != nil {
		return nil, nil, err
	}
	flushLayer, err := s.commitDriverLocked(ctx, rec, staged, p.create)
	if err != nil {
		return nil, nil, s.abortLayerLocked(ctx, rec.ID, fmt.Errorf("committing layer %s: %w", rec.ID, err))
	}
	tsFinal := s.layers.TarSplitPath(rec.ID)
	if err := os.Rename(tsPath, tsFinal); err != nil {
		return nil, nil, s.abortLayerLocked(ctx, rec.ID, err)
	}
	applyResult(rec, staged.Result, opts)
	if testHookCommitted != nil {
		testHookCommitted()
	}
	flush := func(ctx context.Context) error {
		var g errgroup.Group
		if flushLayer != nil {
			g.Go(func() error { return flushLayer(ctx) }) // owner: g.Wait below
		}
		g.Go(func() error { return fsx.SyncDir(filepath.Dir(tsFinal)) }) // owner: g.Wait below
		return g.Wait()
	}
	finish, err = s.completeLocked(ctx, rec, flush, true)
	if err != nil {
		return nil, nil, s.abortLayerLocked(ctx, rec.ID, err)
	}
	return rec, finish, nil
}

// testHookCommitted, set only by tests, runs in commitStagedLocked after
// the staged tree and tar-split are in place, before the record is
// completed: where a killed process leaves the incomplete marker.
var testHookCommitted func()

// commitDriverLocked has the driver commit the staged tree and returns
// the flushes it left to do (nil if it did them: a driver without the
// driver.DeferredCommitter capability).
//
// Locking: layers held for writing.
func (s *Store) commitDriverLocked(ctx context.Context, rec *layer.Layer, staged *driver.Staged, create driver.CreateOptions) (func(context.Context) error, error) {
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
