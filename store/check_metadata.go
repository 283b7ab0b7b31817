package store

// Corrupt metadata. Open refuses a store whose JSON files do not decode
// (ErrCorruptMetadata, naming the file and byte offset) and never writes
// them back. OpenForCheck opens such a store without loading it, so that
// Check can say which file is damaged and how, and SalvageMetadata (run
// by Repair first) can set the damaged file aside and keep what it still
// holds:
//
//   - the original is kept, hard-linked as <file>.corrupt-<UTC time>;
//   - the file is replaced (atomically, synced) by every record that still
//     decodes: those before the damage and each complete record after it;
//   - records that are lost are not invented. Layers whose record was lost
//     but whose driver directory and tar-split survive are re-created from
//     them by Repair (adoptLayersLocked); images and containers whose
//     record was lost show up as orphan data directories, which Repair
//     leaves alone while a .corrupt-* file sits next to their table (their
//     names and data can be recovered by hand from it) and gc removes.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/stowage/stowage/image"
	"github.com/stowage/stowage/internal/table"
	"github.com/stowage/stowage/layer"
)

// ErrReadOnlyStoreSetAside marks a metadata file of a read-only store that
// does not decode: Check and Repair set that store aside and go on.
var ErrReadOnlyStoreSetAside = errors.New("a read-only store: not checked and never repaired; the read-write stores are checked without it")

// SalvagedFile describes one metadata file SalvageMetadata replaced.
type SalvagedFile = table.Salvaged

// OpenForCheck opens the store like Open, but does not load the tables,
// so that it succeeds when a metadata file does not decode. Only Check,
// Repair and SalvageMetadata should be called on a store opened this way
// before its metadata is known to decode.
func OpenForCheck(ctx context.Context, opts Options) (*Store, error) {
	return openNoLoad(ctx, opts)
}

// corruptMetadata returns the metadata files of every store that do not
// decode (each under its own lock), and which of them belong to read-only
// stores.
func (s *Store) corruptMetadata(ctx context.Context) (bad map[string]error, roBad map[string]bool, err error) {
	bad, roBad = map[string]error{}, map[string]bool{}
	add := func(ro bool) func(map[string]error, error) error {
		return func(m map[string]error, err error) error {
			for p, e := range m {
				bad[p], roBad[p] = e, ro
			}
			return err
		}
	}
	for _, ls := range s.allLayerStores() {
		if err := add(ls.ReadOnly())(ls.VerifyFiles(ctx)); err != nil {
			return bad, roBad, err
		}
	}
	for _, is := range s.allImageStores() {
		if err := add(is.ReadOnly())(is.VerifyFiles(ctx)); err != nil {
			return bad, roBad, err
		}
	}
	return bad, roBad, add(false)(s.containers.VerifyFiles(ctx))
}

// reportCorruptMetadata adds the metadata files that do not decode to r
// and reports whether the check can go on: it can when they all belong to
// read-only stores, which are then set aside (setAsideReadOnly) and
// reported as such.
func (s *Store) reportCorruptMetadata(ctx context.Context, r *CheckReport, describe func(string, error) error) (bool, error) {
	bad, roBad, err := s.corruptMetadata(ctx)
	rwBad := 0
	for p, e := range bad {
		if roBad[p] {
			e = fmt.Errorf("%w (%w)", describeCorruptShort(p, e), ErrReadOnlyStoreSetAside)
		} else {
			e = describe(p, e)
			rwBad++
		}
		r.Files[p] = append(r.Files[p], e)
	}
	if err != nil || rwBad > 0 {
		return false, err
	}
	if len(bad) > 0 {
		s.setAsideReadOnly(roBad)
		r.roSetAside = true
	}
	return true, nil
}

// setAsideReadOnly drops from s the read-only layer and image stores that
// own one of the files in paths, for the rest of s's life (s comes from
// OpenForCheck, whose callers make no concurrent calls).
func (s *Store) setAsideReadOnly(paths map[string]bool) {
	owns := func(dir string) bool {
		for p := range paths {
			if filepath.Dir(p) == dir {
				return true
			}
		}
		return false
	}
	var ls []*layer.Store
	for _, l := range s.roLayers {
		if !owns(l.Dir()) {
			ls = append(ls, l)
		}
	}
	var is []*image.Store
	for _, i := range s.roImages {
		if !owns(i.Dir()) {
			is = append(is, i)
		}
	}
	s.roLayers, s.roImages = ls, is
}

// SalvageMetadata sets aside every metadata file of the read-write stores
// that does not decode and replaces it by the records that still do (see
// the top of this file). Files of read-only stores are never touched.
func (s *Store) SalvageMetadata(ctx context.Context) ([]SalvagedFile, error) {
	var out []SalvagedFile
	add := func(list []SalvagedFile, err error) error {
		out = append(out, list...)
		return err
	}
	if err := add(s.layers.SalvageFiles(ctx)); err != nil {
		return out, err
	}
	for _, is := range s.rwImageStores() {
		if err := add(is.SalvageFiles(ctx)); err != nil {
			return out, err
		}
	}
	return out, add(s.containers.SalvageFiles(ctx))
}

// quarantined reports whether dir holds a <name>.corrupt-* file (left by
// SalvageMetadata) for any of the table files in names.
func quarantined(dir string, names ...string) bool {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range ents {
		for _, n := range names {
			if strings.HasPrefix(e.Name(), n+".corrupt-") {
				return true
			}
		}
	}
	return false
}

// describeCorrupt turns a decode error into the report's text.
func describeCorrupt(path string, err error) error {
	if !errors.Is(err, ErrCorruptMetadata) {
		return fmt.Errorf("%s: %w", path, err)
	}
	msg := strings.TrimPrefix(err.Error(), "loading "+path+": ")
	msg = strings.TrimSuffix(msg, ": "+ErrCorruptMetadata.Error())
	return fmt.Errorf("%s: %s: %w (check --repair keeps it as %s.corrupt-<time> and salvages the records that still decode)",
		path, msg, ErrCorruptMetadata, filepath.Base(path))
}
