package table

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stowage/stowage/internal/fsx"
)

// prepare encodes x.json plus r under the read lock and writes it.
func prepare(t *testing.T, tb *Table[rec], r *rec, tmp string) *Prepared[rec] {
	t.Helper()
	unlock, err := tb.LockRead(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	p, err := tb.PrepareAdd(r, 0, tmp)
	unlock()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Write(); err != nil {
		t.Fatal(err)
	}
	return p
}

// addSaved adds record id to tb and saves, under the write lock.
func addSaved(t *testing.T, tb *Table[rec], id string) {
	t.Helper()
	ctx := context.Background()
	unlock, err := tb.LockWrite(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	if err := tb.Add(&rec{ID: id}, 0); err != nil {
		t.Fatal(err)
	}
	if err := tb.Save(ctx); err != nil {
		t.Fatal(err)
	}
}

// commit runs CommitPrepared under the write lock.
func commit(t *testing.T, tb *Table[rec], p *Prepared[rec]) (finish func() error, ok bool) {
	t.Helper()
	unlock, err := tb.LockWrite(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	finish, ok, err = tb.CommitPrepared(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	return finish, ok
}

func fileIDs(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var recs []rec
	if err := json.Unmarshal(data, &recs); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range recs {
		ids = append(ids, r.ID)
	}
	slices.Sort(ids)
	return ids
}

// A prepared file is flushed by Write (not under the lock) and renamed by
// CommitPrepared, which flushes nothing; finish fsyncs the directory.
func TestCommitPreparedFlushesOutsideTheLock(t *testing.T) {
	dir := t.TempDir()
	tb := newTable(t, dir, false)
	var mu sync.Mutex
	var evs []string
	defer fsx.SetSyncHook(func(k fsx.SyncKind, p string) {
		mu.Lock()
		evs = append(evs, filepath.Base(p))
		mu.Unlock()
	})()
	tmp := filepath.Join(dir, "prep-a.json")
	p := prepare(t, tb, &rec{ID: "a", Names: []string{"n"}}, tmp)
	mu.Lock()
	if !slices.Equal(evs, []string{"prep-a.json"}) {
		t.Errorf("flushes by Write: %v; want the prepared file", evs)
	}
	evs = nil
	mu.Unlock()
	finish, ok := commit(t, tb, p)
	if !ok {
		t.Fatal("CommitPrepared refused an unchanged table")
	}
	mu.Lock()
	if len(evs) != 0 {
		t.Errorf("flushes under the write lock: %v", evs)
	}
	mu.Unlock()
	if err := finish(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if !slices.Equal(evs, []string{filepath.Base(dir)}) {
		t.Errorf("finish flushed %v; want the directory", evs)
	}
	mu.Unlock()
	if got := fileIDs(t, filepath.Join(dir, "x.json")); !slices.Equal(got, []string{"a"}) {
		t.Errorf("x.json holds %v", got)
	}
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("prepared file left: %v", err)
	}
	// The in-memory table has it, by ID and name, and another process
	// (table) sees it after its next lock.
	unlock, _ := tb.LockRead(context.Background())
	if _, ok := tb.ByName("n"); !ok {
		t.Errorf("name not indexed")
	}
	unlock()
	other := newTable(t, dir, false)
	unlock, err := other.LockRead(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := other.Get("a"); !ok {
		t.Errorf("another table does not see the record")
	}
	unlock()
}

// A save by another process (table) or a change in this one between the
// prepare and the commit makes CommitPrepared refuse, changing nothing:
// installing the stale file would lose that save.
func TestCommitPreparedRefusesStale(t *testing.T) {
	ctx := context.Background()
	for _, how := range []string{"other process", "this process", "reload"} {
		t.Run(how, func(t *testing.T) {
			dir := t.TempDir()
			tb := newTable(t, dir, false)
			p := prepare(t, tb, &rec{ID: "a"}, filepath.Join(dir, "prep-a.json"))
			switch how {
			case "other process":
				addSaved(t, newTable(t, dir, false), "b")
			case "this process":
				addSaved(t, tb, "b")
			case "reload":
				tb.Invalidate()
			}
			if _, ok := commit(t, tb, p); ok {
				t.Fatal("CommitPrepared installed a stale file")
			}
			p.Abort()
			if _, err := os.Stat(filepath.Join(dir, "prep-a.json")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("Abort left the prepared file: %v", err)
			}
			want := []string{"b"}
			if how == "reload" {
				want = nil
			}
			if how != "reload" {
				if got := fileIDs(t, filepath.Join(dir, "x.json")); !slices.Equal(got, want) {
					t.Errorf("x.json holds %v; want %v", got, want)
				}
			}
			unlock, _ := tb.LockRead(ctx)
			_, has := tb.Get("a")
			unlock()
			if has {
				t.Errorf("a refused commit left the record in memory")
			}
			// Prepared again from the current records, it commits.
			p = prepare(t, tb, &rec{ID: "a"}, filepath.Join(dir, "prep-a.json"))
			finish, ok := commit(t, tb, p)
			if !ok {
				t.Fatal("a fresh prepare was refused")
			}
			if err := finish(); err != nil {
				t.Fatal(err)
			}
			want = append(want, "a")
			slices.Sort(want)
			if got := fileIDs(t, filepath.Join(dir, "x.json")); !slices.Equal(got, want) {
				t.Errorf("x.json holds %v; want %v", got, want)
			}
		})
	}
}

// PrepareAdd checks the ID and names like Add.
func TestPrepareAddChecksIDAndNames(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	tb := newTable(t, dir, false)
	unlock, err := tb.LockWrite(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	if err := tb.Add(&rec{ID: "a", Names: []string{"n"}}, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.PrepareAdd(&rec{ID: "a"}, 0, filepath.Join(dir, "p")); !errors.Is(err, ErrDuplicateID) {
		t.Errorf("duplicate ID: %v", err)
	}
	if _, err := tb.PrepareAdd(&rec{ID: "b", Names: []string{"n"}}, 0, filepath.Join(dir, "p")); !errors.Is(err, ErrDuplicateName) {
		t.Errorf("duplicate name: %v", err)
	}
	if _, err := tb.PrepareAdd(&rec{ID: "c"}, 5, filepath.Join(dir, "p")); err == nil {
		t.Errorf("a bad location was accepted")
	}
}

// LockWriteFor keeps the write lock only while p is current; after another
// writer's save it lets go at once, without reloading (the next lock
// does), and a fresh prepare then commits.
func TestLockWriteFor(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	tb := newTable(t, dir, false)
	p := prepare(t, tb, &rec{ID: "a"}, filepath.Join(dir, "prep-a.json"))
	other := newTable(t, dir, false)
	addSaved(t, other, "b")
	gen := tb.gen
	if u, ok, err := tb.LockWriteFor(ctx, p); err != nil || ok || u != nil {
		t.Fatalf("LockWriteFor after another save: ok %v, %v; want refused", ok, err)
	}
	if tb.gen != gen {
		t.Errorf("LockWriteFor reloaded the table")
	}
	tctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	unlock, err := other.LockWrite(tctx)
	cancel()
	if err != nil {
		t.Fatalf("LockWriteFor kept the lock after refusing: %v", err)
	}
	unlock()
	p.Abort()
	p = prepare(t, tb, &rec{ID: "a"}, filepath.Join(dir, "prep-a.json"))
	u, ok, err := tb.LockWriteFor(ctx, p)
	if err != nil || !ok {
		t.Fatalf("LockWriteFor on a current prepare: %v, %v", ok, err)
	}
	finish, ok, err := tb.CommitPrepared(ctx, p)
	u()
	if err != nil || !ok {
		t.Fatalf("CommitPrepared: %v, %v", ok, err)
	}
	if err := finish(); err != nil {
		t.Fatal(err)
	}
	if got := fileIDs(t, filepath.Join(dir, "x.json")); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("x.json holds %v", got)
	}
}
