package fsx

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

func noTempFiles(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			t.Errorf("temp file %s left behind", e.Name())
		}
	}
}

func TestAtomicWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "layers.json")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, opts := range []AtomicOptions{{}, {SyncDir: true}, {NoSync: true}, {NoSync: true, SyncDir: true}} {
		data := []byte(`[{"id":"x"}]`)
		mtime, err := AtomicWriteFile(path, data, 0o600, opts)
		if err != nil {
			t.Fatalf("%+v: %v", opts, err)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != string(data) {
			t.Fatalf("%+v: content %q, %v", opts, got, err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%+v: mode %v, want 0600", opts, fi.Mode().Perm())
		}
		if !fi.ModTime().Equal(mtime) {
			t.Errorf("%+v: returned mtime %v, file has %v", opts, mtime, fi.ModTime())
		}
		noTempFiles(t, dir)
	}
	// The mode is applied exactly, regardless of umask.
	old := syscall.Umask(0o077)
	_, err := AtomicWriteFile(path, nil, 0o644, AtomicOptions{})
	syscall.Umask(old)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o644 || fi.Size() != 0 {
		t.Errorf("mode %v size %d, want 0644 and empty", fi.Mode().Perm(), fi.Size())
	}
}

func TestAtomicWriteFileErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := AtomicWriteFile(filepath.Join(dir, "missing", "f"), []byte("x"), 0o600, AtomicOptions{}); err == nil {
		t.Error("write into a missing directory succeeded")
	}
	// Rename over a non-empty directory fails: the temp file must go.
	target := filepath.Join(dir, "adir")
	if err := os.MkdirAll(filepath.Join(target, "child"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := AtomicWriteFile(target, []byte("x"), 0o600, AtomicOptions{}); err == nil {
		t.Error("replacing a directory succeeded")
	}
	noTempFiles(t, dir)
	for _, bad := range []string{"", "/"} {
		if _, err := AtomicWriteFile(bad, nil, 0o600, AtomicOptions{}); err == nil {
			t.Errorf("AtomicWriteFile(%q) succeeded", bad)
		}
	}
}

func TestSyncDirAndSyncfs(t *testing.T) {
	dir := t.TempDir()
	if err := SyncDir(dir); err != nil {
		t.Fatal(err)
	}
	if err := SyncDir(filepath.Join(dir, "missing")); err == nil {
		t.Error("SyncDir of a missing dir succeeded")
	}
	if err := Syncfs(dir); err != nil && !errors.Is(err, ErrNotSupported) {
		t.Fatal(err)
	}
	if err := Syncfs(filepath.Join(dir, "missing")); err == nil {
		t.Error("Syncfs of a missing path succeeded")
	}
}

// makeTree builds root/{f1, a/{f2, b/{f3}, link->missing, fifo}, c/}.
func makeTree(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "tree")
	for _, d := range []string{"a/b", "c"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"f1", "a/f2", "a/b/f3"} {
		if err := os.WriteFile(filepath.Join(root, f), []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("/nonexistent/target", filepath.Join(root, "a", "link")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(root, "a", "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

func TestSyncTreeOrder(t *testing.T) {
	root := makeTree(t)
	var mu sync.Mutex
	var order []string
	prev := syncPathFn
	syncPathFn = func(p string, dir bool) error {
		mu.Lock()
		order = append(order, p)
		mu.Unlock()
		return prev(p, dir)
	}
	defer func() { syncPathFn = prev }() // the hook-reporting one, which later tests need
	if err := SyncTree(context.Background(), root); err != nil {
		t.Fatal(err)
	}
	pos := map[string]int{}
	for i, p := range order {
		rel, _ := filepath.Rel(root, p)
		pos[rel] = i
	}
	want := []string{".", "f1", "a", "a/f2", "a/b", "a/b/f3", "c"}
	if len(order) != len(want) {
		t.Fatalf("synced %v, want exactly %v (no symlink, no fifo)", order, want)
	}
	before := func(x, y string) {
		if pos[x] >= pos[y] {
			t.Errorf("%s synced after %s (order %v)", x, y, order)
		}
	}
	for _, f := range []string{"f1", "a/f2", "a/b/f3"} {
		before(f, "a/b")
	}
	before("a/b", "a")
	before("a", ".")
	before("c", ".")
}

func TestSyncTreeErrors(t *testing.T) {
	root := makeTree(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := SyncTree(ctx, root); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled SyncTree: %v", err)
	}
	if err := SyncTree(context.Background(), filepath.Join(root, "missing")); err == nil {
		t.Error("SyncTree of a missing root succeeded")
	}
	// A symlink root is not followed: nothing to sync, no error.
	link := filepath.Join(t.TempDir(), "l")
	if err := os.Symlink(root, link); err != nil {
		t.Fatal(err)
	}
	if err := SyncTree(context.Background(), link); err != nil {
		t.Errorf("SyncTree of a symlink: %v", err)
	}
}

func TestRemoveAllBasics(t *testing.T) {
	root := makeTree(t)
	if err := RemoveAll(filepath.Join(root, "missing")); err != nil {
		t.Errorf("missing path: %v", err)
	}
	// A symlink to a directory is removed, its target kept.
	link := filepath.Join(t.TempDir(), "l")
	if err := os.Symlink(root, link); err != nil {
		t.Fatal(err)
	}
	if err := RemoveAll(link); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(link); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("symlink still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "a", "b", "f3")); err != nil {
		t.Errorf("symlink target damaged: %v", err)
	}
	if err := RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(root); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("tree still there: %v", err)
	}
	if err := RemoveAll("/"); err == nil {
		t.Error("RemoveAll(/) was not refused")
	}
}

// PrepareAtomicWrite leaves the target alone until Rename; Abort removes
// the temp file. SyncConcurrently flushes every path it is given and fails
// on a missing one.
func TestPendingWriteAndSyncConcurrently(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "f.json")
	if err := os.WriteFile(target, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := PrepareAtomicWrite(target, []byte("new"), 0o644, false)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(target); string(b) != "old" {
		t.Errorf("target changed before Rename: %q", b)
	}
	if err := p.Rename(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(target); string(b) != "new" {
		t.Errorf("target after Rename: %q", b)
	}
	if fi, _ := os.Stat(target); fi.Mode().Perm() != 0o644 || !fi.ModTime().Equal(p.Mtime()) {
		t.Errorf("target mode %v mtime %v, want 0644 and %v", fi.Mode(), fi.ModTime(), p.Mtime())
	}
	q, err := PrepareAtomicWrite(target, []byte("newer"), 0o600, true)
	if err != nil {
		t.Fatal(err)
	}
	q.Abort()
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("entries after Abort: %v", ents)
	}

	var mu sync.Mutex
	seen := map[string]SyncKind{}
	defer SetSyncHook(func(k SyncKind, p string) {
		mu.Lock()
		seen[p] = k
		mu.Unlock()
	})()
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := SyncConcurrently(context.Background(), []string{target}, []string{dir, sub}); err != nil {
		t.Fatal(err)
	}
	if seen[target] != SyncFileData || seen[dir] != SyncDirectory || seen[sub] != SyncDirectory || len(seen) != 3 {
		t.Errorf("flushes: %v", seen)
	}
	if err := SyncConcurrently(context.Background(), []string{filepath.Join(dir, "missing")}, nil); err == nil {
		t.Error("a missing path was flushed")
	}
}
