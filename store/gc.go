package store

// Garbage collection (`gc`). Locking: storage.lock and the layer, image and
// container stores are write-locked for the whole run.
//
// GC removes directories and files that nothing references and nothing can
// use, and never a record or anything a record points to:
//
//   - staging and temp dirs whose owner died (G/<drv>-layers/tmp,
//     the driver's tempdirs), as every open does;
//   - driver layer directories no layer record accounts for, except those
//     with a tar-split or that an image or container names (check --repair
//     re-creates their record);
//   - big-data directories and tar-split files whose record is gone
//     (including those check --repair keeps after salvaging a corrupt
//     table: run gc once what is needed was recovered from the
//     .corrupt-* file);
//   - temporary files left by an interrupted atomic write, and
//     layers.json files a commit prepared (G/<drv>-layers/tmp/layers-<id>.json)
//     whose commit is not running;
//   - pull lock files (LockLayerFetch) a killed pull left, unless held.
//
// A store whose metadata does not decode is refused (run check --repair
// first).

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
)

// GC removes unreferenced directories and files (see the top of this
// file) and returns their paths or, for driver layers, their IDs.
func (s *Store) GC(ctx context.Context) ([]string, error) {
	unlock, err := s.lockStores(ctx, lockSpec{graphWrite: true, layers: modeWrite, images: modeWrite, containers: modeWrite})
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := s.recoverStale(); err != nil {
		return nil, err
	}
	r := newCheckReport()
	if err := s.checkLocked(ctx, CheckOptions{Quick: true, metadataOnly: true, MaxUnreferencedAge: 1 << 62}, r); err != nil {
		return nil, err
	}
	var removed []string
	var keep []string
	named := s.namedLayersLocked()
	for _, id := range r.unaccounted {
		if _, isNamed := named[id]; isNamed || s.adoptable(id) {
			keep = append(keep, id)
		} else {
			removed = append(removed, id)
		}
	}
	var errs []error
	errs = append(errs, s.removeUnaccountedLocked(ctx, r, keep)...)
	errs = append(errs, s.removeOrphansLocked(r, false)...)
	for p := range r.orphans {
		removed = append(removed, p)
	}
	for _, p := range r.temps {
		if err := removeFile(p); err != nil {
			errs = append(errs, err)
		}
		removed = append(removed, p)
	}
	prepared, err := s.layers.RemoveStalePrepared()
	removed = append(removed, prepared...)
	if err != nil {
		errs = append(errs, err)
	}
	locks, err := s.removeStaleFetchLocks()
	removed = append(removed, locks...)
	if err != nil {
		errs = append(errs, err)
	}
	slices.Sort(removed)
	if len(errs) > 0 {
		return removed, errs[0]
	}
	return removed, nil
}

func removeFile(p string) error {
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing %s: %w", p, err)
	}
	return nil
}
