package table

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/stowage/stowage/internal/fsx"
	"github.com/stowage/stowage/lockfile"
)

// Location is one JSON file that holds part of a table's records.
type Location struct {
	Path     string
	Volatile bool // written without fdatasync (volatile-*.json)
}

// Options configure New. ID is required; the hooks are optional.
type Options[R any] struct {
	// LockPath is the table's lock file; ExtraLockPaths are taken after it
	// in the same mode (the imagestore's layers.lock). The token is read
	// from LockPath only.
	LockPath       string
	ExtraLockPaths []string
	// ReadOnly tables open their lock files read-only, take only read
	// locks, never repair and never save.
	ReadOnly bool
	// Locations are loaded in order; the first copy of a repeated ID wins.
	// A location with an empty Path is unused (kept so indexes stay stable).
	Locations []Location
	// TrackMtime also reloads when a location file's mtime changed (layers).
	TrackMtime bool

	// ID returns a record's ID; Names (optional) its names slice.
	ID    func(*R) string
	Names func(*R) *[]string
	// Loaded (optional) runs after every (re)load, under the lock, to
	// rebuild secondary indexes; an error refuses the load.
	Loaded func(recs []*R) error
	// NeedsRepair (optional) reports whether the loaded records need a
	// repair that only a writer may do (e.g. incomplete layers).
	NeedsRepair func(recs []*R) bool
	// Repair (optional) runs with the write lock held after a load that
	// NeedsRepair; it is expected to Save what it changed.
	Repair func(ctx context.Context) error
}

// Table is a cached, lock-protected list of records of type R.
type Table[R any] struct {
	// Fixed at construction; safe without locks.
	opts  Options[R]
	lock  *lockfile.File
	extra []*lockfile.File

	mu sync.Mutex // in-process; guards reloads and the fields below against concurrent readers
	// Guarded by the lock file (read to use, write to change) plus mu for reloads.
	recs       []*R
	loc        map[string]int // ID -> location index
	byID       map[string]*R
	byName     map[string]*R
	dirty      map[int]bool
	needSave   bool // duplicate names were resolved in memory and must be saved
	loaded     bool
	seen       lockfile.LastWrite
	mtimes     []time.Time
	writeDepth int // >0 while this process holds the write lock through LockWrite
	// gen counts loads and in-memory changes: a Prepared file is current
	// while gen has not moved since it was encoded.
	gen uint64
}

// New opens the lock files (creating them for read-write tables) and returns
// an unloaded table; the first LockRead/LockWrite loads it.
func New[R any](opts Options[R]) (*Table[R], error) {
	if opts.ID == nil || opts.LockPath == "" || len(opts.Locations) == 0 {
		return nil, errors.New("table: ID, LockPath and Locations are required")
	}
	get := lockfile.Get
	if opts.ReadOnly {
		get = lockfile.GetReadOnly
	}
	l, err := get(opts.LockPath)
	if err != nil {
		return nil, err
	}
	t := &Table[R]{opts: opts, lock: l, mtimes: make([]time.Time, len(opts.Locations))}
	for _, p := range opts.ExtraLockPaths {
		x, err := get(p)
		if err != nil {
			return nil, err
		}
		t.extra = append(t.extra, x)
	}
	t.reset()
	return t, nil
}

func (t *Table[R]) reset() {
	t.gen++
	t.recs = nil
	t.loc = map[string]int{}
	t.byID = map[string]*R{}
	t.byName = map[string]*R{}
	t.dirty = map[int]bool{}
	t.needSave = false
}

// ReadOnly reports whether the table is a read-only view.
func (t *Table[R]) ReadOnly() bool { return t.opts.ReadOnly }

// LockPath returns the path of the table's lock file.
func (t *Table[R]) LockPath() string { return t.lock.Path() }

func (t *Table[R]) lockAll(ctx context.Context, write bool) error {
	all := append([]*lockfile.File{t.lock}, t.extra...)
	for i, l := range all {
		var err error
		if write {
			err = l.Lock(ctx)
		} else {
			err = l.RLock(ctx)
		}
		if err != nil {
			for j := i - 1; j >= 0; j-- {
				all[j].Unlock()
			}
			return err
		}
	}
	return nil
}

func (t *Table[R]) unlockAll() {
	for i := len(t.extra) - 1; i >= 0; i-- {
		t.extra[i].Unlock()
	}
	t.lock.Unlock()
}

// LockRead takes the read lock and reloads the records if another writer
// changed them. A read-write table whose load needs repair (see
// Options.NeedsRepair, or duplicate names) escalates to the write lock to
// repair, then takes the read lock again (at most 3 rounds).
// The returned function releases the lock.
func (t *Table[R]) LockRead(ctx context.Context) (func(), error) {
	for round := 0; ; round++ {
		if err := t.lockAll(ctx, false); err != nil {
			return nil, err
		}
		t.mu.Lock()
		err := t.refreshLocked()
		repair := err == nil && !t.opts.ReadOnly && t.needsRepairLocked()
		t.mu.Unlock()
		if err != nil {
			t.unlockAll()
			return nil, err
		}
		if !repair {
			return t.unlockAll, nil
		}
		t.unlockAll()
		if round >= 3 {
			return nil, fmt.Errorf("%s: store still needs repair after %d rounds", t.lock.Path(), round)
		}
		unlock, err := t.LockWrite(ctx)
		if err != nil {
			return nil, err
		}
		unlock()
	}
}

// LockWrite takes the write lock, reloads if another writer changed the
// records, and repairs what the load found. The returned function
// releases the lock; if a mutation was not saved, the cache is dropped so
// the next lock reloads from disk.
func (t *Table[R]) LockWrite(ctx context.Context) (func(), error) {
	if t.opts.ReadOnly {
		return nil, fmt.Errorf("%s: %w", t.lock.Path(), ErrReadOnly)
	}
	if err := t.lockAll(ctx, true); err != nil {
		return nil, err
	}
	t.mu.Lock()
	err := t.refreshLocked()
	t.writeDepth++
	t.mu.Unlock()
	unlock := t.unlockWrite
	if err == nil && t.needsRepairLocked() {
		if t.opts.NeedsRepair != nil && t.opts.NeedsRepair(t.recs) && t.opts.Repair != nil {
			err = t.opts.Repair(ctx)
		}
		if err == nil && t.needSave {
			err = t.Save(ctx)
		}
	}
	if err != nil {
		unlock()
		return nil, err
	}
	return unlock, nil
}

// unlockWrite releases a write lock taken by LockWrite or LockWriteFor;
// if a mutation was not saved, the cache is dropped so the next lock
// reloads from disk.
func (t *Table[R]) unlockWrite() {
	t.mu.Lock()
	t.writeDepth--
	if len(t.dirty) > 0 || t.needSave {
		t.loaded = false // unsaved in-memory changes: reload next time
	}
	t.mu.Unlock()
	t.unlockAll()
}

// needsRepairLocked reports whether the loaded records must be repaired
// or saved before use.
//
// Locking: t.lock held and t.mu held, or t.lock held for writing (no
// reader of this process can reload meanwhile).
func (t *Table[R]) needsRepairLocked() bool {
	return t.needSave || (t.opts.NeedsRepair != nil && t.opts.NeedsRepair(t.recs))
}

// refreshLocked reloads when the token (or a tracked mtime) changed.
//
// Locking: t.lock held; t.mu held.
func (t *Table[R]) refreshLocked() error {
	tok, err := t.lock.LastWrite()
	if err != nil {
		return fmt.Errorf("reading last-writer token of %s: %w", t.lock.Path(), err)
	}
	if t.upToDateLocked(tok) {
		return nil
	}
	t.loaded = false
	if err := t.loadLocked(); err != nil {
		return err
	}
	t.seen = tok
	t.loaded = true
	return nil
}

// upToDateLocked reports whether the loaded records are what is on disk:
// loaded, no other writer's token since (tok is the lock file's), no
// tracked file changed.
//
// Locking: t.lock held; t.mu held.
func (t *Table[R]) upToDateLocked(tok lockfile.LastWrite) bool {
	return t.loaded && tok == t.seen && !t.mtimeChanged()
}

func (t *Table[R]) mtimeChanged() bool {
	if !t.opts.TrackMtime {
		return false
	}
	for i, l := range t.opts.Locations {
		if l.Path != "" && !mtimeOf(l.Path).Equal(t.mtimes[i]) {
			return true
		}
	}
	return false
}

func mtimeOf(path string) time.Time {
	fi, err := os.Stat(path)
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}

// loadLocked reads every location file and rebuilds the indexes.
//
// Locking: t.lock held; t.mu held.
func (t *Table[R]) loadLocked() error {
	t.reset()
	for i, l := range t.opts.Locations {
		if l.Path == "" {
			continue // an unused location
		}
		t.mtimes[i] = mtimeOf(l.Path)
		recs, err := decodeFile[R](l.Path)
		if err != nil {
			return err
		}
		for _, r := range recs {
			id := t.opts.ID(r)
			if _, dup := t.byID[id]; dup {
				t.dirty[i] = true // the later copy is dropped at the next save of this file
				continue
			}
			t.recs = append(t.recs, r)
			t.byID[id] = r
			t.loc[id] = i
		}
	}
	if err := t.indexNamesLocked(); err != nil {
		return err
	}
	if t.opts.Loaded != nil {
		if err := t.opts.Loaded(t.recs); err != nil {
			return err
		}
	}
	if !t.opts.ReadOnly && len(t.dirty) > 0 {
		t.needSave = true
	}
	return nil
}

// indexNamesLocked builds the name index; a name held by several records
// stays with the last one (upstream's rule) and the table must be saved.
//
// Locking: t.lock held; t.mu held.
func (t *Table[R]) indexNamesLocked() error {
	if t.opts.Names == nil {
		return nil
	}
	for _, r := range t.recs {
		for _, n := range *t.opts.Names(r) {
			prev, taken := t.byName[n]
			if taken && prev != r {
				if t.opts.ReadOnly {
					return fmt.Errorf("%s: name %q: %w", t.lock.Path(), n, ErrDuplicateNames)
				}
				removeName(t.opts.Names(prev), n)
				t.dirty[t.loc[t.opts.ID(prev)]] = true
				t.needSave = true
			}
			t.byName[n] = r
		}
	}
	return nil
}

func removeName(names *[]string, n string) {
	*names = slices.DeleteFunc(*names, func(s string) bool { return s == n })
	if len(*names) == 0 {
		*names = nil
	}
}

// decodeFile reads one location file. Missing or empty files are empty
// tables; malformed JSON is refused with the file name and byte offset.
func decodeFile[R any](path string) ([]*R, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", path, err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil
	}
	var recs []*R
	if err := json.Unmarshal(data, &recs); err != nil {
		return nil, fmt.Errorf("loading %s: %w", path, corruptError(err))
	}
	out := recs[:0]
	for i, r := range recs {
		if r == nil {
			return nil, fmt.Errorf("loading %s: record %d is null: %w", path, i, ErrCorrupt)
		}
		out = append(out, r)
	}
	return out, nil
}

func corruptError(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("at byte offset %d: %v: %w", se.Offset, err, ErrCorrupt)
	case errors.As(err, &te):
		return fmt.Errorf("at byte offset %d: %v: %w", te.Offset, err, ErrCorrupt)
	}
	return fmt.Errorf("%v: %w", err, ErrCorrupt)
}

// All returns the live records in table order.
//
// Locking: read or write lock held; the caller must not keep the pointers
// past the unlock and must not modify them without the write lock.
func (t *Table[R]) All() []*R { return t.recs }

// Get returns the record with exactly this ID.
//
// Locking: read or write lock held.
func (t *Table[R]) Get(id string) (*R, bool) {
	r, ok := t.byID[id]
	return r, ok
}

// ByName returns the record holding name.
//
// Locking: read or write lock held.
func (t *Table[R]) ByName(name string) (*R, bool) {
	r, ok := t.byName[name]
	return r, ok
}

// ByPrefix returns the only record whose ID starts with prefix.
//
// Locking: read or write lock held.
func (t *Table[R]) ByPrefix(prefix string) (*R, bool) {
	if prefix == "" || strings.ContainsRune(prefix, ' ') {
		return nil, false
	}
	var found *R
	for _, r := range t.recs {
		id := t.opts.ID(r)
		if id == "" || strings.ContainsRune(id, ' ') || !strings.HasPrefix(id, prefix) {
			continue
		}
		if found != nil {
			return nil, false // ambiguous
		}
		found = r
	}
	return found, found != nil
}

// Lookup resolves an exact ID, then a name, then a unique ID prefix.
//
// Locking: read or write lock held.
func (t *Table[R]) Lookup(nameOrID string) (*R, bool) {
	if r, ok := t.byID[nameOrID]; ok {
		return r, true
	}
	if r, ok := t.byName[nameOrID]; ok {
		return r, true
	}
	return t.ByPrefix(nameOrID)
}

// Location returns the location index of a record.
//
// Locking: read or write lock held.
func (t *Table[R]) Location(id string) int { return t.loc[id] }

// Add appends a record at location loc after checking its ID and names.
//
// Locking: write lock held.
func (t *Table[R]) Add(r *R, loc int) error {
	t.lock.AssertWriter()
	id := t.opts.ID(r)
	if err := ValidID(id); err != nil { // CheckNew lets "" pass
		return err
	}
	if err := t.CheckNew(id, t.names(r)); err != nil {
		return err
	}
	t.recs = append(t.recs, r)
	t.byID[id] = r
	t.loc[id] = loc
	for _, n := range t.names(r) {
		t.byName[n] = r
	}
	t.dirty[loc] = true
	t.gen++
	return nil
}

// names returns r's names (none in a table without names).
func (t *Table[R]) names(r *R) []string {
	if t.opts.Names == nil {
		return nil
	}
	return *t.opts.Names(r)
}

// unindexNames drops the name-index entries that point at r.
//
// Locking: write lock held.
func (t *Table[R]) unindexNames(r *R) {
	for _, n := range t.names(r) {
		if t.byName[n] == r {
			delete(t.byName, n)
		}
	}
}

// CheckNew reports whether a record with this ID and names could be added.
//
// Locking: read or write lock held.
func (t *Table[R]) CheckNew(id string, names []string) error {
	if id != "" {
		if err := ValidID(id); err != nil {
			return err
		}
		if _, dup := t.byID[id]; dup {
			return fmt.Errorf("%s: %w", id, ErrDuplicateID)
		}
	}
	for _, n := range names {
		if _, taken := t.byName[n]; taken {
			return fmt.Errorf("%s: %w", n, ErrDuplicateName)
		}
	}
	return nil
}

// Remove drops the record with this ID.
//
// Locking: write lock held.
func (t *Table[R]) Remove(id string) {
	t.lock.AssertWriter()
	r, ok := t.byID[id]
	if !ok {
		return
	}
	t.recs = slices.DeleteFunc(t.recs, func(x *R) bool { return x == r })
	t.unindexNames(r)
	t.dirty[t.loc[id]] = true
	t.gen++
	delete(t.byID, id)
	delete(t.loc, id)
}

// Touch marks the record's location file as changed.
//
// Locking: write lock held.
func (t *Table[R]) Touch(id string) {
	t.lock.AssertWriter()
	if loc, ok := t.loc[id]; ok {
		t.dirty[loc] = true
		t.gen++
	}
}

// TouchAll marks every location file as changed.
//
// Locking: write lock held.
func (t *Table[R]) TouchAll() {
	t.lock.AssertWriter()
	for i := range t.opts.Locations {
		t.dirty[i] = true
	}
	t.gen++
}

// SetNames replaces a record's names, stealing each name from any other
// record that holds it. It returns the IDs that lost names.
//
// Locking: write lock held.
func (t *Table[R]) SetNames(id string, names []string) ([]string, error) {
	t.lock.AssertWriter()
	r, ok := t.byID[id]
	if !ok || t.opts.Names == nil {
		return nil, fmt.Errorf("%s: record not found", id)
	}
	names = Dedup(names)
	var losers []string
	for _, n := range names {
		if prev, taken := t.byName[n]; taken && prev != r {
			removeName(t.opts.Names(prev), n)
			pid := t.opts.ID(prev)
			t.dirty[t.loc[pid]] = true
			losers = append(losers, pid)
		}
	}
	t.unindexNames(r)
	*t.opts.Names(r) = names
	for _, n := range names {
		t.byName[n] = r
	}
	t.dirty[t.loc[id]] = true
	t.gen++
	return losers, nil
}

// Save writes a new token, then atomically replaces each changed location
// file (volatile ones without fdatasync) and fsyncs the directories of the
// durable ones. On failure the cache is dropped so the next lock reloads
// what is on disk.
//
// Locking: write lock held.
func (t *Table[R]) Save(ctx context.Context) error {
	_, err := t.SaveWith(ctx, SaveOptions{})
	return err
}

// SaveOptions tune one SaveWith; the zero value is Save.
type SaveOptions struct {
	// Flush, if set, runs concurrently with the flushes of the temp files,
	// and no file is renamed before all of them succeeded: flushes that
	// must be durable before the records (a layer's directories) share the
	// file system's journal commit with the records' own.
	Flush func(ctx context.Context) error
	// DeferSyncDir makes SaveWith return the directory fsyncs as its
	// finish function instead of running them, so the caller can release
	// the lock first. The new content is visible to other processes at
	// once; the caller must run finish before it reports the change as
	// done.
	DeferSyncDir bool
}

// SaveWith is Save tuned by opts: it writes a new token, writes every
// changed location file to a temp file (flushed unless the location is
// volatile) while opts.Flush runs, renames them in location order, and
// fsyncs the durable ones' directories (or returns that as finish, with
// DeferSyncDir; finish is never nil). On failure the temp files are
// removed and the cache is dropped so the next lock reloads what is on
// disk.
//
// Locking: write lock held; finish needs no lock.
func (t *Table[R]) SaveWith(ctx context.Context, opts SaveOptions) (finish func() error, err error) {
	noop := func() error { return nil }
	t.lock.AssertWriter()
	if t.opts.ReadOnly {
		return noop, fmt.Errorf("%s: %w", t.lock.Path(), ErrReadOnly)
	}
	if err := ctx.Err(); err != nil {
		return noop, err
	}
	tok, err := t.lock.RecordWrite()
	if err != nil {
		t.loaded = false
		return noop, fmt.Errorf("recording write to %s: %w", t.lock.Path(), err)
	}
	t.seen = tok
	var locs []int
	var data [][]byte
	for i, l := range t.opts.Locations {
		if !t.dirty[i] || l.Path == "" {
			continue
		}
		b, err := t.encodeLocation(i)
		if err != nil {
			t.loaded = false
			return noop, err
		}
		locs, data = append(locs, i), append(data, b)
	}
	// Phase 1: the temp files, flushed concurrently with opts.Flush.
	pend := make([]*fsx.PendingWrite, len(locs))
	var g errgroup.Group
	if opts.Flush != nil {
		g.Go(func() error { return opts.Flush(ctx) }) // owner: g.Wait below
	}
	for k, i := range locs {
		l := t.opts.Locations[i]
		g.Go(func() error { // owner: g.Wait below
			p, err := fsx.PrepareAtomicWrite(l.Path, data[k], 0o600, l.Volatile)
			if err != nil {
				return fmt.Errorf("saving %s: %w", l.Path, err)
			}
			pend[k] = p
			return nil
		})
	}
	abort := func(from int) {
		for _, p := range pend[from:] {
			if p != nil {
				p.Abort()
			}
		}
		t.loaded = false
	}
	if err := g.Wait(); err != nil {
		abort(0)
		return noop, err
	}
	// Phase 2: the renames, in location order.
	var dirs []string
	for k, i := range locs {
		l := t.opts.Locations[i]
		if err := pend[k].Rename(); err != nil {
			abort(k + 1)
			return noop, fmt.Errorf("saving %s: %w", l.Path, err)
		}
		t.mtimes[i] = pend[k].Mtime()
		if !l.Volatile && !slices.Contains(dirs, pend[k].Dir()) {
			dirs = append(dirs, pend[k].Dir())
		}
	}
	t.needSave = false
	t.dirty = map[int]bool{}
	// Phase 3: the directories, making the renames durable.
	finish = func() error {
		if len(dirs) == 0 {
			return nil
		}
		if err := fsx.SyncConcurrently(context.WithoutCancel(ctx), nil, dirs); err != nil {
			return fmt.Errorf("saving records in %s: %w", strings.Join(dirs, ", "), err)
		}
		return nil
	}
	if opts.DeferSyncDir {
		return finish, nil
	}
	return noop, finish()
}

// encodeLocation marshals the records of location i.
//
// Locking: write lock held.
func (t *Table[R]) encodeLocation(i int) ([]byte, error) {
	out := make([]*R, 0, len(t.recs))
	for _, r := range t.recs {
		if t.loc[t.opts.ID(r)] == i {
			out = append(out, r)
		}
	}
	data, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("encoding %s: %w", t.opts.Locations[i].Path, err)
	}
	return data, nil
}

// MarkWritten writes a new token into the lock file without saving
// anything: other processes reload (and run NeedsRepair) at their next
// lock, as after a save. For state the table's owner keeps beside the
// location files (layer commit markers).
//
// Locking: write lock held.
func (t *Table[R]) MarkWritten() error {
	t.lock.AssertWriter()
	tok, err := t.lock.RecordWrite()
	if err != nil {
		return fmt.Errorf("recording write to %s: %w", t.lock.Path(), err)
	}
	t.seen = tok
	return nil
}

// Invalidate drops the cache so the next lock reloads from disk.
func (t *Table[R]) Invalidate() {
	t.mu.Lock()
	t.loaded = false
	t.mu.Unlock()
}

// ValidID rejects IDs that would break paths or the prefix index.
func ValidID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("empty ID: %w", ErrInvalidID)
	case strings.ContainsAny(id, "/ \t\n"), strings.Contains(id, ".."):
		return fmt.Errorf("%q: %w", id, ErrInvalidID)
	}
	return nil
}

// Dedup returns names without repeats, keeping the first occurrence.
func Dedup(names []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, n := range names {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

// RemoveStaleTemps removes the atomic-write temp files of the table's
// location files (".tmp-<name>*" beside each) that writers which died
// mid-save left behind. Only a writer creates them, under the write lock,
// so they are probed without a lock and, if any exist, removed with the
// write lock held: no live save is disturbed. Read-only tables are left
// alone. It returns how many files it removed.
func (t *Table[R]) RemoveStaleTemps(ctx context.Context) (int, error) {
	if t.opts.ReadOnly {
		return 0, nil
	}
	found := false
	for _, l := range t.opts.Locations {
		if l.Path == "" {
			continue
		}
		names, err := fsx.StaleTemps(filepath.Dir(l.Path), filepath.Base(l.Path))
		if err != nil {
			return 0, err
		}
		found = found || len(names) > 0
	}
	if !found {
		return 0, nil
	}
	if err := t.lockAll(ctx, true); err != nil {
		return 0, err
	}
	defer t.unlockAll()
	n := 0
	var errs []error
	for _, l := range t.opts.Locations {
		if l.Path == "" {
			continue
		}
		k, err := fsx.RemoveStaleTemps(filepath.Dir(l.Path), filepath.Base(l.Path))
		n += k
		if err != nil {
			errs = append(errs, fmt.Errorf("removing stale temp files of %s: %w", l.Path, err))
		}
	}
	return n, errors.Join(errs...)
}
