package fsx

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// recordSyncs installs a hook recording "<kind> <path>" until the test ends.
func recordSyncs(t *testing.T) func() []string {
	t.Helper()
	var mu sync.Mutex
	var got []string
	restore := SetSyncHook(func(k SyncKind, p string) {
		mu.Lock()
		got = append(got, k.String()+" "+p)
		mu.Unlock()
	})
	t.Cleanup(restore)
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
}

func TestParseSyncMode(t *testing.T) {
	for in, want := range map[string]SyncMode{"": SyncDurable, "durable": SyncDurable, "filesystem": SyncFilesystem, "NONE": SyncNone} {
		got, err := ParseSyncMode(in)
		if err != nil || got != want {
			t.Errorf("ParseSyncMode(%q) = %v, %v; want %v", in, got, err, want)
		}
		if in != "" && in != "NONE" && got.String() != in {
			t.Errorf("%v.String() = %q", got, got.String())
		}
	}
	if _, err := ParseSyncMode("fsync"); !errors.Is(err, ErrBadSyncMode) {
		t.Errorf("bad mode: %v", err)
	}
}

func TestFlushTreeModes(t *testing.T) {
	root := makeTree(t) // 3 regular files, dirs ., a, a/b, c
	got := recordSyncs(t)
	if err := FlushTree(context.Background(), root, SyncNone); err != nil || len(got()) != 0 {
		t.Fatalf("SyncNone: %v, syncs %v", err, got())
	}
	if err := FlushTree(context.Background(), root, SyncFilesystem); err != nil {
		t.Fatal(err)
	}
	if g := got(); len(g) != 1 || g[0] != "syncfs "+root {
		t.Fatalf("SyncFilesystem made %v", g)
	}
	n := len(got())
	if err := FlushTree(context.Background(), root, SyncDurable); err != nil {
		t.Fatal(err)
	}
	durable := got()[n:]
	want := map[string]bool{}
	for _, f := range []string{"f1", "a/f2", "a/b/f3"} {
		want["fdatasync "+filepath.Join(root, f)] = true
	}
	for _, d := range []string{"", "a", "a/b", "c"} {
		want["fsync-dir "+filepath.Join(root, d)] = true
	}
	if len(durable) != len(want) {
		t.Fatalf("SyncDurable made %v, want %d flushes", durable, len(want))
	}
	for _, s := range durable {
		if !want[s] {
			t.Errorf("unexpected flush %q", s)
		}
	}
	// The root directory comes last (bottom-up).
	if durable[len(durable)-1] != "fsync-dir "+root {
		t.Errorf("root not flushed last: %v", durable)
	}
}

func TestFlushTreeLargeUsesSyncfs(t *testing.T) {
	root := t.TempDir()
	old := TreeFileLimit
	TreeFileLimit = 4
	t.Cleanup(func() { TreeFileLimit = old })
	for i := range 5 {
		if err := os.WriteFile(filepath.Join(root, fmt.Sprint(i)), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got := recordSyncs(t)
	if err := FlushTree(context.Background(), root, SyncDurable); err != nil {
		t.Fatal(err)
	}
	if g := got(); len(g) != 1 || g[0] != "syncfs "+root {
		t.Fatalf("over the limit: %v, want one syncfs", g)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := FlushTree(ctx, root, SyncDurable); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

func TestAtomicWriteFileSyncs(t *testing.T) {
	dir := t.TempDir()
	got := recordSyncs(t)
	if _, err := AtomicWriteFile(filepath.Join(dir, "images.json"), []byte("[]"), 0o600, AtomicOptions{SyncDir: true}); err != nil {
		t.Fatal(err)
	}
	g := got()
	if len(g) != 2 || !slices.Contains([]string{"fdatasync"}, g[0][:9]) || g[1] != "fsync-dir "+dir {
		t.Fatalf("flushes %v, want the temp file's fdatasync then the directory", g)
	}
	if base := filepath.Base(g[0][len("fdatasync "):]); len(base) <= len(TempPrefix("images.json")) || base[:len(TempPrefix("images.json"))] != TempPrefix("images.json") {
		t.Errorf("fdatasync of %q, want the temp file", base)
	}
	if _, err := AtomicWriteFile(filepath.Join(dir, "v.json"), []byte("[]"), 0o600, AtomicOptions{NoSync: true, SyncDir: true}); err != nil {
		t.Fatal(err)
	}
	if len(got()) != 2 {
		t.Errorf("NoSync flushed: %v", got()[2:])
	}
}

func TestMkdirAllDurable(t *testing.T) {
	dir := t.TempDir()
	got := recordSyncs(t)
	if err := MkdirAllDurable(filepath.Join(dir, "a", "b"), 0o700); err != nil {
		t.Fatal(err)
	}
	want := []string{"fsync-dir " + dir, "fsync-dir " + filepath.Join(dir, "a")}
	if !slices.Equal(got(), want) {
		t.Fatalf("flushes %v, want %v", got(), want)
	}
	if err := MkdirAllDurable(filepath.Join(dir, "a", "b"), 0o700); err != nil || len(got()) != 2 {
		t.Errorf("existing dir: %v, flushes %v", err, got())
	}
	if err := os.WriteFile(filepath.Join(dir, "f"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := MkdirAllDurable(filepath.Join(dir, "f", "x"), 0o700); err == nil {
		t.Error("mkdir under a file succeeded")
	}
}

func TestRemoveStaleTemps(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{".tmp-layers.json123", ".tmp-layers.json9", ".tmp-volatile-layers.json1", "layers.json", ".tmp-other"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	n, err := RemoveStaleTemps(dir, "layers.json")
	if err != nil || n != 2 {
		t.Fatalf("removed %d, %v; want 2", n, err)
	}
	left, _ := os.ReadDir(dir)
	if len(left) != 3 {
		t.Errorf("left %v", left)
	}
	if n, err := RemoveStaleTemps(dir, ""); err != nil || n != 2 {
		t.Errorf("all temps: removed %d, %v; want 2", n, err)
	}
	if n, err := RemoveStaleTemps(filepath.Join(dir, "missing"), ""); err != nil || n != 0 {
		t.Errorf("missing dir: %d, %v", n, err)
	}
}

func TestFlushTreeUnreadableFileFallsBack(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root opens a 0200 file anyway")
	}
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "wo"), []byte("x"), 0o200); err != nil {
		t.Fatal(err)
	}
	got := recordSyncs(t)
	if err := FlushTree(context.Background(), root, SyncDurable); err != nil {
		t.Fatal(err)
	}
	if g := got(); len(g) == 0 || g[len(g)-1] != "syncfs "+root {
		t.Errorf("flushes %v, want a syncfs fallback", g)
	}
}

// SyncfsSince skips the syncfs when one that started after since has
// completed, and FlushTreeSince uses it for trees over the limit.
func TestSyncfsSinceShares(t *testing.T) {
	root := t.TempDir()
	got := recordSyncs(t)
	since := time.Now()
	if err := SyncfsSince(root, since); err != nil {
		t.Fatal(err)
	}
	if err := SyncfsSince(root, since); err != nil {
		t.Fatal(err)
	}
	if g := got(); len(g) != 1 || g[0] != "syncfs "+root {
		t.Fatalf("two calls with one since: %v, want one syncfs", g)
	}
	if err := SyncfsSince(root, time.Now()); err != nil {
		t.Fatal(err)
	}
	if g := got(); len(g) != 2 {
		t.Fatalf("a call after the syncfs: %v, want a second syncfs", g)
	}
	old := TreeFileLimit
	TreeFileLimit = 1
	t.Cleanup(func() { TreeFileLimit = old })
	for i := range 3 {
		if err := os.WriteFile(filepath.Join(root, fmt.Sprint(i)), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	written := time.Now()
	if err := FlushTreeSince(context.Background(), root, SyncDurable, written); err != nil {
		t.Fatal(err)
	}
	if err := FlushTreeSince(context.Background(), root, SyncDurable, written); err != nil {
		t.Fatal(err)
	}
	if g := got(); len(g) != 3 {
		t.Fatalf("two trees written before one syncfs: %v, want one more syncfs", g)
	}
	// Concurrent callers with one since share one syncfs.
	written = time.Now()
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := SyncfsSince(root, written); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if g := got(); len(g) != 4 {
		t.Fatalf("4 concurrent callers: %v, want one more syncfs", g)
	}
}
