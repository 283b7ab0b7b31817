package table

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/stowage/stowage/internal/fsx"
)

// Prepared is a location file with one more record, encoded under a read
// lock (PrepareAdd), written and flushed with no lock held (Write), and
// renamed into place under the write lock by CommitPrepared if nothing
// changed the table meanwhile. It moves a save's flush out of the write
// lock: under it only the token, the rename and the in-memory add remain.
// A Prepared is used by one goroutine.
type Prepared[R any] struct {
	t    *Table[R]
	gen  uint64 // t.gen when encoded
	loc  int
	rec  *R
	data []byte
	tmp  string
	pend *fsx.PendingWrite
}

// PrepareAdd encodes location loc's records plus r, to be written at tmp
// (a path the caller owns, on the location file's file system) by Write.
// r's ID and names must be free, as for Add.
//
// Locking: read or write lock held.
func (t *Table[R]) PrepareAdd(r *R, loc int, tmp string) (*Prepared[R], error) {
	if t.opts.ReadOnly {
		return nil, fmt.Errorf("%s: %w", t.lock.Path(), ErrReadOnly)
	}
	if loc < 0 || loc >= len(t.opts.Locations) || t.opts.Locations[loc].Path == "" {
		return nil, fmt.Errorf("%s: no location %d", t.lock.Path(), loc)
	}
	id := t.opts.ID(r)
	if err := ValidID(id); err != nil {
		return nil, err
	}
	if err := t.CheckNew(id, t.names(r)); err != nil {
		return nil, err
	}
	out := make([]*R, 0, len(t.recs)+1)
	for _, x := range t.recs {
		if t.loc[t.opts.ID(x)] == loc {
			out = append(out, x)
		}
	}
	data, err := json.Marshal(append(out, r))
	if err != nil {
		return nil, fmt.Errorf("encoding %s: %w", t.opts.Locations[loc].Path, err)
	}
	return &Prepared[R]{t: t, gen: t.gen, loc: loc, rec: r, data: data, tmp: tmp}, nil
}

// Write writes the prepared file (flushed unless the location is
// volatile).
//
// Locking: none needed.
func (p *Prepared[R]) Write() error {
	l := p.t.opts.Locations[p.loc]
	pend, err := fsx.PrepareAtomicWriteAs(p.tmp, l.Path, p.data, 0o600, l.Volatile)
	if err != nil {
		return err
	}
	p.pend = pend
	return nil
}

// Abort removes the written file, if any. Locking: none needed.
func (p *Prepared[R]) Abort() {
	if p.pend != nil {
		p.pend.Abort()
		p.pend = nil
	}
}

// unchangedSinceLocked reports whether the table is as it was when p was
// encoded: not reloaded, not changed in memory, nothing unsaved.
//
// Locking: t.lock held.
func (t *Table[R]) unchangedSinceLocked(p *Prepared[R]) bool {
	return t.loaded && t.gen == p.gen && len(t.dirty) == 0 && !t.needSave
}

// LockWriteFor takes the write lock to commit p: if the table is still
// as it was when p was encoded (no other writer's token, no change in
// this process), it keeps the lock (ok true) without reloading or
// repairing anything; otherwise it releases the lock at once (ok false)
// and leaves the reload to the next lock, so a stale attempt costs the
// lock only for a token read. The returned function releases the lock.
func (t *Table[R]) LockWriteFor(ctx context.Context, p *Prepared[R]) (unlock func(), ok bool, err error) {
	if t.opts.ReadOnly {
		return nil, false, fmt.Errorf("%s: %w", t.lock.Path(), ErrReadOnly)
	}
	if err := t.lockAll(ctx, true); err != nil {
		return nil, false, err
	}
	t.mu.Lock()
	tok, err := t.lock.LastWrite()
	current := err == nil && t.upToDateLocked(tok) && t.unchangedSinceLocked(p)
	if !current {
		t.mu.Unlock()
		t.unlockAll()
		if err != nil {
			return nil, false, fmt.Errorf("reading last-writer token of %s: %w", t.lock.Path(), err)
		}
		return nil, false, nil
	}
	t.writeDepth++
	t.mu.Unlock()
	return t.unlockWrite, true, nil
}

// CommitPrepared installs p if the table is as it was when p was encoded
// (no reload, no change in this process): it adds p's record in memory,
// writes a new token and renames p's file over the location file. ok is
// false, with nothing changed, when the table moved on: Abort p and
// prepare again (or Add and Save). On a rename error the record is
// dropped again and the cache too. finish fsyncs the location file's
// directory (nothing for a volatile one); run it after releasing the lock
// and before reporting the record saved.
//
// Locking: write lock held; finish needs no lock.
func (t *Table[R]) CommitPrepared(ctx context.Context, p *Prepared[R]) (finish func() error, ok bool, err error) {
	t.lock.AssertWriter()
	noop := func() error { return nil }
	if p.t != t || p.pend == nil {
		return noop, false, fmt.Errorf("%s: commit of a prepared file that was not written", t.lock.Path())
	}
	if err := ctx.Err(); err != nil {
		return noop, false, err
	}
	if !t.unchangedSinceLocked(p) {
		return noop, false, nil
	}
	if err := t.Add(p.rec, p.loc); err != nil {
		return noop, false, err // cannot happen: the ID and names were free at gen
	}
	tok, err := t.lock.RecordWrite()
	if err != nil {
		t.loaded = false
		return noop, false, fmt.Errorf("recording write to %s: %w", t.lock.Path(), err)
	}
	t.seen = tok
	if err := p.pend.Rename(); err != nil {
		p.pend = nil
		t.Remove(t.opts.ID(p.rec))
		t.loaded = false
		return noop, false, err
	}
	t.mtimes[p.loc] = p.pend.Mtime()
	p.pend = nil
	t.dirty = map[int]bool{}
	l := t.opts.Locations[p.loc]
	if l.Volatile {
		return noop, true, nil
	}
	return func() error {
		if err := fsx.SyncDir(filepath.Dir(l.Path)); err != nil {
			return fmt.Errorf("saving records in %s: %w", l.Path, err)
		}
		return nil
	}, true, nil
}
