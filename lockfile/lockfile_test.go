package lockfile

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func newLock(t *testing.T) *File {
	t.Helper()
	f, err := Get(filepath.Join(t.TempDir(), "sub", "test.lock"))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestGetCreatesFileAndParent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	f, err := Get(filepath.Join(dir, "layers.lock"))
	if err != nil {
		t.Fatal(err)
	}
	di, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if di.Mode().Perm() != 0o700 {
		t.Errorf("parent dir mode %v, want 0700", di.Mode().Perm())
	}
	fi, err := os.Stat(f.Path())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != 0 || fi.Mode().Perm()&^0o644 != 0 {
		t.Errorf("lock file size %d mode %v, want empty and at most 0644", fi.Size(), fi.Mode().Perm())
	}
}

func TestRegistryOnePerCleanPath(t *testing.T) {
	dir := t.TempDir()
	a, err := Get(filepath.Join(dir, "x.lock"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Get(dir + "/sub/../x.lock")
	if err != nil {
		t.Fatal(err)
	}
	c, err := GetReadOnly(dir + "//x.lock")
	if err != nil {
		t.Fatal(err)
	}
	if a != b || a != c {
		t.Fatalf("different *File for the same cleaned path: %p %p %p", a, b, c)
	}
	if a.ReadOnly() {
		t.Error("read-write file reported read-only")
	}
}

func TestReadOnlyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ro.lock")
	f, err := GetReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	if !f.ReadOnly() {
		t.Fatal("GetReadOnly file not read-only")
	}
	if err := f.Lock(context.Background()); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("Lock on read-only file: %v, want ErrReadOnly", err)
	}
	if err := f.RLock(context.Background()); err != nil {
		t.Fatal(err)
	}
	if lw, err := f.LastWrite(); err != nil || !lw.IsZero() {
		t.Fatalf("LastWrite = %v, %v; want zero", lw, err)
	}
	// Reopening read-write while held is refused; after unlock it works.
	if _, err := Get(path); err == nil {
		t.Fatal("Get of a held read-only file succeeded")
	}
	f.Unlock()
	g, err := Get(path)
	if err != nil || g != f || g.ReadOnly() {
		t.Fatalf("Get after GetReadOnly: %p %v readOnly=%v", g, err, g != nil && g.ReadOnly())
	}
	if err := g.Lock(context.Background()); err != nil {
		t.Fatal(err)
	}
	g.Unlock()
}

func TestTokenFormat(t *testing.T) {
	f := newLock(t)
	ctx := context.Background()
	if err := f.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	defer f.Unlock()
	before := time.Now()
	a, err := f.RecordWrite()
	if err != nil {
		t.Fatal(err)
	}
	b, err := f.RecordWrite()
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Fatal("two RecordWrite calls gave equal tokens")
	}
	raw := a.Bytes()
	if len(raw) != TokenSize {
		t.Fatalf("token is %d bytes, want %d", len(raw), TokenSize)
	}
	ns := int64(binary.LittleEndian.Uint64(raw[0:8]))
	if d := time.Unix(0, ns).Sub(before); d < -time.Second || d > time.Minute {
		t.Errorf("token time %v is not now (%v)", time.Unix(0, ns), before)
	}
	ca := binary.LittleEndian.Uint64(raw[8:16])
	cb := binary.LittleEndian.Uint64(b.Bytes()[8:16])
	if ca == 0 || cb != ca+1 {
		t.Errorf("counters %d, %d: want consecutive, from 1", ca, cb)
	}
	if pid := binary.LittleEndian.Uint32(raw[16:20]); pid != uint32(os.Getpid()) {
		t.Errorf("token pid %d, want %d", pid, os.Getpid())
	}
	onDisk, err := os.ReadFile(f.Path())
	if err != nil {
		t.Fatal(err)
	}
	if string(onDisk) != string(b.Bytes()) {
		t.Errorf("file holds %x, want last token %x", onDisk, b.Bytes())
	}
	cur, err := f.LastWrite()
	if err != nil || cur != b {
		t.Errorf("LastWrite = %v, %v; want %v", cur, err, b)
	}
	if _, changed, err := f.ModifiedSince(b); err != nil || changed {
		t.Errorf("ModifiedSince(current) = %v, %v; want unchanged", changed, err)
	}
	if now, changed, err := f.ModifiedSince(a); err != nil || !changed || now != b {
		t.Errorf("ModifiedSince(old) = %v, %v, %v; want changed to current", now, changed, err)
	}
}

func TestShortTokenIsValid(t *testing.T) {
	f := newLock(t)
	if err := os.WriteFile(f.Path(), []byte("short"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := f.RLock(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer f.Unlock()
	lw, err := f.LastWrite()
	if err != nil {
		t.Fatal(err)
	}
	if lw.IsZero() || string(lw.Bytes()) != "short" {
		t.Fatalf("LastWrite = %q, want \"short\"", lw.Bytes())
	}
}

func TestRecordWriteRequiresWriteLock(t *testing.T) {
	f := newLock(t)
	assertPanics(t, "RecordWrite unlocked", func() { _, _ = f.RecordWrite() })
	if err := f.RLock(context.Background()); err != nil {
		t.Fatal(err)
	}
	assertPanics(t, "RecordWrite read-locked", func() { _, _ = f.RecordWrite() })
	assertPanics(t, "AssertWriter read-locked", f.AssertWriter)
	f.Unlock()
	assertPanics(t, "Unlock unlocked", f.Unlock)
}

func assertPanics(t *testing.T, what string, fn func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Errorf("%s: did not panic", what)
		}
	}()
	fn()
}

func TestWriterExcludesReadersAndWriters(t *testing.T) {
	f := newLock(t)
	if err := f.Lock(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, m := range []struct {
		name string
		fn   func(context.Context) error
	}{{"RLock", f.RLock}, {"Lock", f.Lock}} {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		err := m.fn(ctx)
		cancel()
		var lwe *LockWaitError
		if !errors.As(err, &lwe) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%s while write-locked: %v, want LockWaitError(deadline)", m.name, err)
		}
		if lwe.Path != f.Path() || lwe.Waited < 40*time.Millisecond {
			t.Errorf("%s: LockWaitError %+v", m.name, lwe)
		}
	}
	f.Unlock()
	// After the timed-out writer gave up, readers are not blocked.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := f.RLock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.RLock(ctx); err != nil {
		t.Fatalf("second reader: %v", err)
	}
	short, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if err := f.Lock(short); err == nil {
		t.Fatal("Lock succeeded while read-locked")
	}
	f.Unlock()
	f.Unlock()
	if err := f.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	f.Unlock()
}

func TestWaitingWriterBlocksNewReaders(t *testing.T) {
	f := newLock(t)
	ctx := context.Background()
	if err := f.RLock(ctx); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() { // owner: this test, which waits on got
		err := f.Lock(ctx)
		if err == nil {
			f.Unlock()
		}
		got <- err
	}()
	waitFor(t, func() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.writersWaiting == 1 })
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := f.RLock(short); err == nil {
		t.Fatal("new reader got in ahead of a waiting writer")
	}
	f.Unlock()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestCancelWhileWaiting(t *testing.T) {
	f := newLock(t)
	if err := f.Lock(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan error, 1)
	go func() { got <- f.Lock(ctx) }() // owner: this test, which waits on got
	time.Sleep(30 * time.Millisecond)
	cancel()
	select {
	case err := <-got:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled Lock: %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("cancelled Lock did not return")
	}
	f.Unlock()
	// Already-cancelled context fails fast even on a free lock.
	if err := f.RLock(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("RLock with cancelled ctx: %v", err)
	}
	if err := f.RLock(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.Unlock()
}

func TestMutualExclusionStress(t *testing.T) {
	f := newLock(t)
	ctx := context.Background()
	var inWrite, inRead atomic.Int32
	var wg sync.WaitGroup
	var bad atomic.Int32
	for i := range 8 {
		wg.Add(1)
		go func() { // owner: wg
			defer wg.Done()
			for range 200 {
				if i%2 == 0 {
					if err := f.Lock(ctx); err != nil {
						t.Error(err)
						return
					}
					if inWrite.Add(1) != 1 || inRead.Load() != 0 {
						bad.Add(1)
					}
					inWrite.Add(-1)
					f.Unlock()
				} else {
					if err := f.RLock(ctx); err != nil {
						t.Error(err)
						return
					}
					inRead.Add(1)
					if inWrite.Load() != 0 {
						bad.Add(1)
					}
					inRead.Add(-1)
					f.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d exclusion violations", bad.Load())
	}
}

func TestStatsAndHoldReporter(t *testing.T) {
	f := newLock(t)
	var reported atomic.Int64
	SetHoldReporter(20*time.Millisecond, func(path string, held time.Duration) {
		if path == f.Path() {
			reported.Add(1)
		}
	})
	defer SetHoldReporter(0, nil)
	ctx := context.Background()
	_ = f.Lock(ctx)
	time.Sleep(25 * time.Millisecond)
	f.Unlock()
	_ = f.RLock(ctx)
	time.Sleep(40 * time.Millisecond)
	f.Unlock()
	var st *Stat
	for _, s := range Stats() {
		if s.Path == f.Path() {
			st = &s
		}
	}
	if st == nil {
		t.Fatal("no stats for lock")
	}
	if st.Locks != 1 || st.RLocks != 1 || st.LongestHold < 40*time.Millisecond || st.Held < st.LongestHold {
		t.Errorf("stats %+v", *st)
	}
	// The write hold is counted apart: 25 ms, not the read hold's 40.
	if st.LongestWriteHold < 25*time.Millisecond || st.LongestWriteHold >= 40*time.Millisecond {
		t.Errorf("longest write hold %v; want the 25 ms write hold", st.LongestWriteHold)
	}
	if reported.Load() != 2 {
		t.Errorf("hold reporter called %d times, want 2 (the two long holds)", reported.Load())
	}
}

func TestTryLock(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "lock-1")
	h, err := TryLock(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := TryLock(path); !errors.Is(err, ErrLocked) {
		t.Fatalf("second TryLock in the same process: %v, want ErrLocked", err)
	}
	// A File on the same path conflicts too (separate open file descriptions).
	f, err := Get(path)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := f.RLock(short); err == nil {
		t.Fatal("RLock succeeded while TryLock held")
	}
	if err := h.Release(); err != nil {
		t.Fatal(err)
	}
	if err := h.Release(); err != nil {
		t.Fatalf("second Release: %v", err)
	}
	h2, err := TryLock(path)
	if err != nil {
		t.Fatalf("TryLock after Release: %v", err)
	}
	if err := h2.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("lock file still present after Remove: %v", err)
	}
	if _, err := TryLock(filepath.Join(dir, "missing", "lock-2")); err == nil {
		t.Fatal("TryLock in a missing directory succeeded")
	}
}

func TestTryLockNew(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock-7")
	h, err := TryLockNew(path)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Remove()
	if _, err := TryLockNew(path); !errors.Is(err, os.ErrExist) {
		t.Fatalf("TryLockNew of existing path: %v, want ErrExist", err)
	}
}

// TryLockExisting never creates the file: a missing (or just removed)
// path is os.ErrNotExist and stays missing; a held one is ErrLocked; a
// free one is locked.
func TestTryLockExisting(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "commit-x")
	if _, err := TryLockExisting(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v, want ErrNotExist", err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("TryLockExisting created the file: %v", err)
	}
	owner, err := TryLock(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := TryLockExisting(path); !errors.Is(err, ErrLocked) {
		t.Fatalf("held file: %v, want ErrLocked", err)
	}
	if err := owner.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := TryLockExisting(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("removed file: %v, want ErrNotExist", err)
	}
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	h, err := TryLockExisting(path)
	if err != nil {
		t.Fatalf("free file: %v", err)
	}
	_ = h.Release()
}
