package store

// Locking: StageLayer takes layers.lock and containers.lock (read)
// briefly to plan, extracts with no store lock held, and Commit flushes
// the staged tree with no store lock held, takes the layer's commit
// marker lock (layer.Store.LockCommit, before any store lock), checks
// under layers.lock read, puts the layer in place and flushes with no
// store lock, renames the records under layers.lock write, and fsyncs the
// records' directory after releasing it (see "The commit protocol" in
// layers.go). LockLayerFetch takes a per-layer lock
// file R/<drv>-layers/pull-locks/<id>.lock that is not part of the store's
// lock order: hold it only while staging and committing that one layer, and
// take the store locks inside it, never the other way round. Its release
// removes the file (see LockLayerFetch for why that is safe).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sync/errgroup"

	"github.com/stowage/stowage/archive"
	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/internal/fsx"
	"github.com/stowage/stowage/internal/idmap"
	"github.com/stowage/stowage/internal/table"
	"github.com/stowage/stowage/layer"
	"github.com/stowage/stowage/lockfile"
	"github.com/stowage/stowage/staging"
)

// ErrStagedParent refuses a Commit whose parent differs from the one the
// layer was staged on, with a driver whose staged tree is a copy of it.
var ErrStagedParent = errors.New("staged layer was extracted on a different parent")

// reparenter is the optional driver capability of drivers whose staged
// tree does not depend on the parent's files (overlay).
type reparenter interface {
	StagesWithoutParent() bool
	ReparentStaged(s *driver.Staged, parent string) error
}

// StagesWithoutParent reports whether StageLayer can extract a layer
// before its parent exists (overlay: a diff does not contain its parent's
// files). When false (vfs copies the parent first), stage each layer on
// its committed parent.
func (s *Store) StagesWithoutParent() bool {
	r, ok := s.graphDriver().(reparenter)
	return ok && r.StagesWithoutParent()
}

// StagedLayer is a layer extracted by StageLayer and not yet visible to
// anyone: Commit makes it a layer, Discard throws it away. A StagedLayer
// is used by one goroutine at a time.
type StagedLayer struct {
	s      *Store
	plan   *layerPlan
	opts   LayerOptions
	staged *driver.Staged
	tsDir  *staging.Dir
	tsPath string
	done   bool
}

// StageLayer extracts blob (any supported compression) into staging dirs
// with no store lock held, like the first two steps of PutLayer, but
// leaves flushing the tree to Commit (before it takes a lock), so that
// layers staged at once share one syncfs and the caller's next extraction
// does not wait for the disk. The ID and
// names in opts are checked now and again at Commit. opts.Parent, if set,
// must exist; with StagesWithoutParent, leave it empty and name the parent
// at Commit. A cancelled ctx or an error leaves only staging that recovery
// removes; on success the caller must Commit or Discard.
func (s *Store) StageLayer(ctx context.Context, blob io.Reader, opts LayerOptions) (*StagedLayer, error) {
	if blob == nil {
		return nil, errors.New("stage layer: no diff")
	}
	unlock, err := s.lockStores(ctx, lockSpec{layers: modeRead, containers: modeRead})
	if err != nil {
		return nil, err
	}
	p, err := s.planLayerLocked(opts)
	unlock()
	if err != nil {
		return nil, err
	}
	tsDir, err := staging.New(filepath.Join(s.layers.Dir(), "tmp"))
	if err != nil {
		return nil, err
	}
	tsPath := tsDir.Addition()
	opts.deferFlush = true
	staged, err := s.stageDiff(ctx, p, blob, tsPath, opts)
	if err != nil {
		_ = tsDir.Cleanup() // err is what the caller needs; recovery reclaims leftovers
		return nil, err
	}
	return &StagedLayer{s: s, plan: p, opts: opts, staged: staged, tsDir: tsDir, tsPath: tsPath}, nil
}

// Result is what extraction computed: compression, digests and sizes.
func (sl *StagedLayer) Result() archive.UnpackResult { return sl.staged.Result }

// Discard removes the staged tree and tar-split. It is a no-op after
// Commit or a previous Discard.
func (sl *StagedLayer) Discard() error {
	if sl.done {
		return nil
	}
	sl.done = true
	var errs []error
	if sl.staged.Cleanup != nil {
		errs = append(errs, sl.staged.Cleanup())
	}
	errs = append(errs, sl.tsDir.Cleanup())
	return errors.Join(errs...)
}

// Commit flushes the staged tree as the driver's sync mode says (with no
// lock held; a syncfs that started after the tree was written and has
// completed counts), then makes it the layer opts.ID (or the random ID
// picked at staging) on parent ("" for a base layer), following "The
// commit protocol" in layers.go: layers.lock is held only to check and to
// rename the (already flushed) new layers.json into place. parent must be
// the staging parent unless StagesWithoutParent; an ID taken meanwhile is
// ErrDuplicateID (the staged tree is kept, so the caller may Discard).
// After an error other than ErrDuplicateID the staged layer is discarded.
// The layer is durable when Commit returns nil; if the last flush (the
// records' directory, after the lock is released) fails, the layer exists
// but Commit reports the error.
func (sl *StagedLayer) Commit(ctx context.Context, parent string) (*layer.Layer, error) {
	rec, finish, err := sl.CommitDeferSync(ctx, parent)
	if err != nil {
		return nil, err
	}
	if err := finish(); err != nil {
		return nil, err
	}
	return rec, nil
}

// CommitDeferSync is Commit that returns its last step, the fsync of the
// records' directory (and the release of the layer's commit marker), as
// finish instead of running it: the layer is visible at once, and durable
// once finish returned nil. A caller committing a chain (a pull) commits
// the next layer without waiting for that fsync, and runs every finish
// (any one persists the renames before it) before it records anything
// that names the layers or reports them stored. finish must be called
// exactly once; until then the commit marker stays locked.
func (sl *StagedLayer) CommitDeferSync(ctx context.Context, parent string) (_ *layer.Layer, finish func() error, _ error) {
	if sl.done {
		return nil, nil, errors.New("commit staged layer: already committed or discarded")
	}
	if sl.staged.Flush != nil {
		if err := sl.staged.Flush(ctx); err != nil {
			return nil, nil, errors.Join(err, sl.Discard())
		}
		sl.staged.Flush = nil
	}
	marker, err := sl.s.layers.LockCommit(ctx, sl.plan.id)
	if err != nil {
		return nil, nil, err
	}
	rec, syncDir, err := sl.commitMarked(ctx, parent)
	if err != nil {
		if errors.Is(err, errPlacedLeft) {
			_ = marker.Release() // the next writer removes what is left
		} else {
			_ = marker.Remove()
		}
		return nil, nil, err
	}
	// Commit point passed: the layer is visible; only cleanup is left.
	_ = sl.tsDir.Cleanup() // only an empty temp dir remains; recovery reclaims it
	return rec, func() error {
		err := syncDir()
		_ = marker.Remove() // the record is complete: a marker left is only removed
		if err != nil {
			return fmt.Errorf("layer %s: %w", rec.ID, err)
		}
		return nil
	}, nil
}

// errPlacedLeft marks a failed commit that could not remove the layer's
// files it had put in place: its marker must stay for recovery.
var errPlacedLeft = errors.New("layer files left for recovery")

// prepareAttempts bounds how often a commit prepares layers.json again
// when another writer saved it between the prepare and the write lock,
// before it saves under the lock instead.
const prepareAttempts = 8

// commitMarked is Commit with the layer's commit marker held (steps 1-5
// of "The commit protocol"). It returns a snapshot of the new layer and
// the records' directory fsync to run after the lock is released.
//
// Locking: takes layers.lock (read, then write); finish needs no lock.
func (sl *StagedLayer) commitMarked(ctx context.Context, parent string) (_ *layer.Layer, finish func() error, _ error) {
	s := sl.s
	loc := layerLocation(sl.opts, false)
	// Step 1: check and prepare under the read lock.
	var rec *layer.Layer
	var prep *table.Prepared[layer.Layer]
	err := s.withLayersLock(ctx, modeRead, func() error {
		if err := sl.reparentLocked(parent); err != nil {
			return errors.Join(err, sl.Discard())
		}
		if err := sl.checkLocked(); err != nil {
			return err
		}
		rec = newLayerRecord(sl.plan, sl.opts)
		delete(rec.Flags, layer.IncompleteFlag)
		if len(rec.Flags) == 0 {
			rec.Flags = nil
		}
		applyResult(rec, sl.staged.Result, sl.opts)
		var err error
		prep, _, err = s.layers.PrepareAdd(rec, loc)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	// Steps 2-3: the files in place and flushed, with layers.json's new
	// content, all with no store lock held.
	if err := sl.place(ctx, rec, prep); err != nil {
		return nil, nil, err
	}
	// Step 4: under the write lock, the rename of layers.json.
	for attempt := 1; prep != nil; attempt++ {
		snap, finish, ok, err := sl.commitPrepared(ctx, rec, prep)
		if err != nil {
			return nil, nil, err
		}
		if ok {
			sl.done = true
			return snap, finish, nil
		}
		prep.Abort()
		prep = nil
		if attempt == prepareAttempts {
			break
		}
		// Another writer saved meanwhile: prepare again from its records.
		err = s.withLayersLock(ctx, modeRead, func() error {
			if err := sl.checkLocked(); err != nil {
				return err
			}
			var err error
			prep, _, err = s.layers.PrepareAdd(rec, loc)
			return err
		})
		if err == nil && prep != nil {
			err = prep.Write()
		}
		if err != nil {
			return nil, nil, sl.removePlaced(ctx, rec.ID, err)
		}
	}
	// No prepared file (a location not in layers.json's directory), or
	// other writers kept saving first: add and save under the lock.
	var snap layer.Layer
	locked := false
	err = s.withLayersLock(ctx, modeWrite, func() error {
		locked = true
		if err := sl.checkLocked(); err != nil {
			return sl.removePlacedLocked(ctx, rec.ID, err)
		}
		if err := s.checkPlacedLocked(rec.ID); err != nil {
			return sl.removePlacedLocked(ctx, rec.ID, err)
		}
		if err := s.layers.Add(rec, loc); err != nil {
			return sl.removePlacedLocked(ctx, rec.ID, mapTableErr(err))
		}
		f, err := s.layers.SaveWith(ctx, table.SaveOptions{DeferSyncDir: true})
		if err != nil {
			return sl.removePlacedLocked(ctx, rec.ID, err)
		}
		finish, snap = f, layer.Copy(rec)
		return nil
	})
	if err != nil && !locked {
		// The lock was not taken (ctx ended): the marker stays for the
		// next writer to remove the layer's files.
		_ = sl.Discard() // only empty staging dirs are left
		return nil, nil, errors.Join(err, errPlacedLeft)
	}
	if err != nil {
		return nil, nil, err
	}
	sl.done = true
	return &snap, finish, nil
}

// commitPrepared is step 4's fast path: under the write lock, taken only
// if no writer saved the records since prep was encoded (so step 1's
// checks still hold: the read-only stores are not looked at again), the
// rename of prep over layers.json. ok is false, with nothing done, when
// the records moved on.
//
// Locking: takes layers.lock for writing.
func (sl *StagedLayer) commitPrepared(ctx context.Context, rec *layer.Layer, prep *table.Prepared[layer.Layer]) (_ *layer.Layer, finish func() error, ok bool, _ error) {
	s := sl.s
	err := s.checkDriver(ctx)
	var unlock func()
	if err == nil {
		unlock, ok, err = s.layers.LockWriteFor(ctx, prep)
	}
	if err != nil {
		// No lock (ctx ended): the marker stays for the next writer to
		// remove the layer's files.
		_ = sl.Discard() // only empty staging dirs are left
		return nil, nil, false, errors.Join(err, errPlacedLeft)
	}
	if !ok {
		return nil, nil, false, nil
	}
	defer unlock()
	if err := s.checkPlacedLocked(rec.ID); err != nil {
		return nil, nil, false, sl.removePlacedLocked(ctx, rec.ID, err)
	}
	finish, ok, err = s.layers.CommitPrepared(ctx, prep, rec)
	if err != nil {
		return nil, nil, false, sl.removePlacedLocked(ctx, rec.ID, err)
	}
	if !ok {
		return nil, nil, false, nil
	}
	snap := layer.Copy(rec)
	return &snap, finish, true, nil
}

// withLayersLock runs fn with layers.lock held in mode.
func (s *Store) withLayersLock(ctx context.Context, mode lockMode, fn func() error) error {
	unlock, err := s.lockStores(ctx, lockSpec{layers: mode})
	if err != nil {
		return err
	}
	defer unlock()
	return fn()
}

// checkLocked re-checks what staging and the commit assumed: the ID and
// names are free and the parent exists with the maps the layer was
// staged with. A taken ID is ErrDuplicateID with the staged tree kept;
// after other errors the staged layer is discarded.
//
// Locking: layers held (R or W).
func (sl *StagedLayer) checkLocked() error {
	s, p := sl.s, sl.plan
	if p.parent != nil {
		cur, _, ok := s.lookupLayerLocked(p.parent.ID)
		if !ok {
			return errors.Join(fmt.Errorf("layer %s: %w", p.parent.ID, ErrParentUnknown), sl.Discard())
		}
		if !idmap.Equal(cur.UIDMap, p.parent.UIDMap) || !idmap.Equal(cur.GIDMap, p.parent.GIDMap) {
			return errors.Join(fmt.Errorf("parent layer %s changed its ID mappings during extraction; retry", p.parent.ID), sl.Discard())
		}
	}
	if s.layerIDTakenLocked(p.id) {
		return fmt.Errorf("layer %s: %w", p.id, ErrDuplicateID)
	}
	if err := s.layers.CheckNew(p.id, sl.opts.Names); err != nil {
		return errors.Join(mapTableErr(err), sl.Discard())
	}
	return nil
}

// checkPlacedLocked makes sure the files a commit put in place with no
// lock held are still there (a tool that knows no commit markers, such as
// containers-storage's gc, may have taken them for garbage).
//
// Locking: layers held for writing.
func (s *Store) checkPlacedLocked(id string) error {
	if !s.graphDriver().Exists(id) {
		return fmt.Errorf("layer %s: its directory was removed during the commit", id)
	}
	if _, err := os.Lstat(s.layers.TarSplitPath(id)); err != nil {
		return fmt.Errorf("layer %s: its tar-split was removed during the commit: %w", id, err)
	}
	return nil
}

// place puts the staged tree and tar-split in place as layer rec.ID
// (steps 2-3 of "The commit protocol") and flushes what that changed
// concurrently with writing prep (if any). On error nothing of the layer
// is left in place, or the error is errPlacedLeft.
//
// Locking: none held; the caller holds the layer's commit marker.
func (sl *StagedLayer) place(ctx context.Context, rec *layer.Layer, prep *table.Prepared[layer.Layer]) error {
	s := sl.s
	flushLayer, err := s.placeDriverLayer(ctx, rec, sl.staged, sl.plan.create)
	if err != nil {
		return errors.Join(fmt.Errorf("committing layer %s: %w", rec.ID, err), sl.Discard())
	}
	tsFinal := s.layers.TarSplitPath(rec.ID)
	if err := os.Rename(sl.tsPath, tsFinal); err != nil {
		return sl.removePlaced(ctx, rec.ID, err)
	}
	if testHookCommitted != nil {
		testHookCommitted()
	}
	var g errgroup.Group
	if flushLayer != nil {
		g.Go(func() error { return flushLayer(ctx) }) // owner: g.Wait below
	}
	g.Go(func() error { return fsx.SyncDir(filepath.Dir(tsFinal)) }) // owner: g.Wait below
	if prep != nil {
		g.Go(prep.Write) // owner: g.Wait below
	}
	if err := g.Wait(); err != nil {
		if prep != nil {
			prep.Abort()
		}
		return sl.removePlaced(ctx, rec.ID, err)
	}
	return nil
}

// removePlaced removes the layer files a failed commit put in place,
// under the write lock, and returns cause (with errPlacedLeft if that
// failed too); the staged layer is done.
//
// Locking: takes layers.lock for writing.
func (sl *StagedLayer) removePlaced(ctx context.Context, id string, cause error) error {
	ctx = context.WithoutCancel(ctx)
	err := sl.s.withLayersLock(ctx, modeWrite, func() error { return sl.removePlacedLocked(ctx, id, cause) })
	if errors.Is(err, errPlacedLeft) {
		return err
	}
	return errors.Join(cause, err)
}

// removePlacedLocked is removePlaced with the lock held: it returns cause,
// joined with errPlacedLeft and the removal's error if that failed.
//
// Locking: layers held for writing.
func (sl *StagedLayer) removePlacedLocked(ctx context.Context, id string, cause error) error {
	ctx = context.WithoutCancel(ctx)
	_ = sl.Discard() // the staging dirs: only empty ones are left
	if sl.s.layerIDTakenLocked(id) {
		return cause // someone else's layer by that ID: not ours to remove
	}
	errs := []error{cause}
	if err := sl.s.graphDriver().Remove(ctx, id); err != nil {
		errs = append(errs, err)
	}
	if err := sl.s.layers.RemoveFiles(id); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 1 {
		errs = append(errs, errPlacedLeft)
	}
	return errors.Join(errs...)
}

// reparentLocked points the plan at parent, checking what staging assumed.
//
// Locking: layers held for writing.
func (sl *StagedLayer) reparentLocked(parent string) error {
	p := sl.plan
	staged := ""
	if p.parent != nil {
		staged = p.parent.ID
	}
	if parent == "" && staged == "" {
		return nil
	}
	pl, _, ok := sl.s.lookupLayerLocked(parent)
	if !ok {
		return fmt.Errorf("layer %q: %w", parent, ErrParentUnknown)
	}
	if pl.ID == staged {
		return nil
	}
	r, ok := sl.s.graphDriver().(reparenter)
	if staged != "" || !ok || !r.StagesWithoutParent() {
		return fmt.Errorf("layer %s on %s: %w", p.id, pl.ID, ErrStagedParent)
	}
	if !idmap.Equal(pl.UIDMap, p.uidMap) || !idmap.Equal(pl.GIDMap, p.gidMap) {
		return fmt.Errorf("layer %s on %s: the parent's ID mappings differ from the staged layer's: %w", p.id, pl.ID, ErrStagedParent)
	}
	if err := r.ReparentStaged(sl.staged, pl.ID); err != nil {
		return err
	}
	c := layer.Copy(pl)
	p.parent = &c
	p.create.ParentUIDMap, p.create.ParentGIDMap = c.UIDMap, c.GIDMap
	sl.opts.Parent = pl.ID
	return nil
}

// fetchLockDir is where LockLayerFetch's files are.
func (s *Store) fetchLockDir() string {
	return filepath.Join(s.RunRoot(), s.GraphDriverName()+"-layers", "pull-locks")
}

// RemoveStaleFetchLock removes layer id's LockLayerFetch file if nobody
// holds it (a holder killed after committing the layer leaves it, and no
// later pull takes the lock of a layer it finds stored). A held or
// missing file is left alone.
func (s *Store) RemoveStaleFetchLock(id string) error {
	if err := table.ValidID(id); err != nil {
		return err
	}
	p := filepath.Join(s.fetchLockDir(), id+".lock")
	if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	_, err := removeFreeLock(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// removeFreeLock removes the lock file p under its lock, as a release
// does, unless someone holds it (then removed is false and err nil).
func removeFreeLock(p string) (removed bool, err error) {
	h, err := lockfile.TryLock(p)
	if errors.Is(err, lockfile.ErrLocked) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, h.Remove()
}

// removeStaleFetchLocks removes the LockLayerFetch files nobody holds (a
// killed holder's), each under its lock as a release does, and returns
// their paths. GC calls it.
func (s *Store) removeStaleFetchLocks() ([]string, error) {
	dir := s.fetchLockDir()
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, e := range ents {
		if !e.Type().IsRegular() || filepath.Ext(e.Name()) != ".lock" {
			continue
		}
		p := filepath.Join(dir, e.Name())
		ok, err := removeFreeLock(p)
		if err != nil {
			errs = append(errs, err)
		} else if ok {
			removed = append(removed, p)
		}
	}
	return removed, errors.Join(errs...)
}

// LockLayerFetch takes the cross-process lock that serialises creating
// layer id (a pull's layer ID: its chain ID) by pulls, and returns its
// release. Waiting honours ctx (a *lockfile.LockWaitError). The lock is an
// OFD lock on R/<drv>-layers/pull-locks/<id>.lock (the run root, next to
// mountpoints.lock: every process sharing the store shares it, check does
// not take the files for orphaned layer data, and a tmpfs run root drops
// them at reboot), so a killed holder frees it. The release unlinks the
// file while still holding it, so the files do not pile up: a waiter that
// then locks the unlinked file sees that the path no longer names it and
// tries again (lockfile.TryLock), so only a lock on the file the path names
// counts. A killed holder leaves its file, which the next holder of that
// ID or GC removes. The lock only avoids duplicate work: after taking it, look
// the layer up again, and a Commit that finds the ID taken means another
// process won.
func (s *Store) LockLayerFetch(ctx context.Context, id string) (func(), error) {
	if err := table.ValidID(id); err != nil {
		return nil, err
	}
	dir := s.fetchLockDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	h, err := lockfile.WaitLock(ctx, filepath.Join(dir, id+".lock"))
	if err != nil {
		return nil, err
	}
	return func() { _ = h.Remove() }, nil // a leftover file only costs an inode
}
