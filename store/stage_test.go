package store

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stowage/stowage/internal/fsx"
)

// A layer staged before its parent exists commits on overlay on the parent
// named at Commit, and its root takes the parent's diff root attributes.
func TestStageLayerLateParentOverlay(t *testing.T) {
	s := openDriverTest(t, "overlay")
	ctx := testCtx(t)
	if !s.StagesWithoutParent() {
		t.Fatal("overlay: StagesWithoutParent is false")
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "base", Typeflag: tar.TypeReg, Mode: 0o644, ModTime: time.Unix(0, 0)}); err != nil {
		t.Fatal(err)
	}
	tw.Close()
	child, err := s.StageLayer(ctx, bytes.NewReader(makeTar(t, map[string]string{"child": "c"})), LayerOptions{ID: "child", ReadOnly: true})
	if err != nil {
		t.Fatalf("StageLayer child: %v", err)
	}
	base, err := s.StageLayer(ctx, &buf, LayerOptions{ID: "base", ReadOnly: true})
	if err != nil {
		t.Fatalf("StageLayer base: %v", err)
	}
	if _, err := child.Commit(ctx, "base"); !errors.Is(err, ErrParentUnknown) {
		t.Fatalf("Commit before the parent exists: %v, want ErrParentUnknown", err)
	}
	// That failure discarded child; stage it again.
	child, err = s.StageLayer(ctx, bytes.NewReader(makeTar(t, map[string]string{"child": "c"})), LayerOptions{ID: "child", ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := base.Commit(ctx, ""); err != nil {
		t.Fatalf("Commit base: %v", err)
	}
	// A parent whose diff root is not the default 0555: a child staged on
	// it would have copied its mode, so a late-parented child must too.
	if err := os.Chmod(filepath.Join(s.GraphRoot(), "overlay", "base", "diff"), 0o750); err != nil {
		t.Fatal(err)
	}
	l, err := s.StageLayer(ctx, bytes.NewReader(makeTar(t, map[string]string{"x": "x"})), LayerOptions{ID: "other"})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Discard(); err != nil {
		t.Fatalf("Discard: %v", err)
	}
	got, err := child.Commit(ctx, "base")
	if err != nil {
		t.Fatalf("Commit child on base: %v", err)
	}
	if got.Parent != "base" || got.UncompressedDigest == "" {
		t.Fatalf("child record: parent %q diff digest %q", got.Parent, got.UncompressedDigest)
	}
	mnt, err := s.Mount(ctx, "child", MountOptions{})
	if err != nil {
		t.Fatalf("Mount: %v", err)
	}
	defer s.Unmount(ctx, "child", true)
	for _, f := range []string{"base", "child"} {
		if _, err := os.Stat(filepath.Join(mnt, f)); err != nil {
			t.Errorf("merged view lacks %s: %v", f, err)
		}
	}
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(s.GraphRoot(), "overlay", "child", "diff"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&0o7777 != 0o750 {
		t.Errorf("child diff root mode %o, want the parent's 750", st.Mode&0o7777)
	}
	if _, err := s.Layer(ctx, "other"); !errors.Is(err, ErrLayerUnknown) {
		t.Errorf("a discarded staged layer exists: %v", err)
	}
}

// On vfs a layer is a copy of its parent: Commit on any other parent than
// the staging one is refused and the staged tree is dropped.
func TestStageLayerVFSNeedsParent(t *testing.T) {
	s, _ := openTest(t)
	ctx := testCtx(t)
	if s.StagesWithoutParent() {
		t.Fatal("vfs: StagesWithoutParent is true")
	}
	if _, err := s.PutLayer(ctx, bytes.NewReader(makeTar(t, map[string]string{"a": "a"})), LayerOptions{ID: "base"}); err != nil {
		t.Fatal(err)
	}
	sl, err := s.StageLayer(ctx, bytes.NewReader(makeTar(t, map[string]string{"b": "b"})), LayerOptions{ID: "child"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sl.Commit(ctx, "base"); !errors.Is(err, ErrStagedParent) {
		t.Fatalf("Commit on another parent: %v, want ErrStagedParent", err)
	}
	sl, err = s.StageLayer(ctx, bytes.NewReader(makeTar(t, map[string]string{"b": "b"})), LayerOptions{ID: "child", Parent: "base"})
	if err != nil {
		t.Fatal(err)
	}
	l, err := sl.Commit(ctx, "base")
	if err != nil {
		t.Fatalf("Commit on the staging parent: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.GraphRoot(), "vfs", "dir", l.ID, "a")); err != nil {
		t.Errorf("vfs child lacks its parent's file: %v", err)
	}
	// A second staged layer with the same ID loses: ErrDuplicateID, and
	// the staged tree is still the caller's to Discard.
	sl, err = s.StageLayer(ctx, bytes.NewReader(makeTar(t, map[string]string{"c": "c"})), LayerOptions{ID: "third", Parent: "base"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutLayer(ctx, bytes.NewReader(makeTar(t, map[string]string{"c": "c"})), LayerOptions{ID: "third", Parent: "base"}); err != nil {
		t.Fatal(err)
	}
	if _, err := sl.Commit(ctx, "base"); !errors.Is(err, ErrDuplicateID) {
		t.Fatalf("Commit of a taken ID: %v, want ErrDuplicateID", err)
	}
	if err := sl.Discard(); err != nil {
		t.Fatal(err)
	}
	left, err := os.ReadDir(filepath.Join(s.GraphRoot(), "vfs-layers", "tmp"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	for _, e := range left {
		t.Errorf("staging left behind: %s", e.Name())
	}
}

// LockLayerFetch excludes a second holder until the first releases, and
// a waiter gives up when its ctx ends.
func TestLockLayerFetch(t *testing.T) {
	s, _ := openTest(t)
	ctx := testCtx(t)
	id := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	unlock, err := s.LockLayerFetch(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := s.LockLayerFetch(short, id); err == nil {
		t.Fatal("a second LockLayerFetch succeeded while the first is held")
	}
	got := make(chan error, 1)
	go func() {
		u, err := s.LockLayerFetch(ctx, id)
		if err == nil {
			u()
		}
		got <- err
	}()
	time.Sleep(50 * time.Millisecond)
	unlock()
	if err := <-got; err != nil {
		t.Fatalf("waiter after release: %v", err)
	}
	if _, err := s.LockLayerFetch(ctx, "../x"); err == nil {
		t.Fatal("LockLayerFetch accepted a path as ID")
	}
	dir := s.fetchLockDir()
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("lock files left after every release: %v", left)
	}
	// A killed holder's file is taken over and removed by the next holder.
	stale := filepath.Join(dir, id+".lock")
	if err := os.WriteFile(stale, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	u, err := s.LockLayerFetch(ctx, id)
	if err != nil {
		t.Fatalf("over a stale lock file: %v", err)
	}
	u()
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stale lock file after release: %v", err)
	}
}

// Holders that remove the lock file on release still exclude each other:
// many waiters racing for the file being unlinked never overlap.
func TestLockLayerFetchRemovalRace(t *testing.T) {
	s, _ := openTest(t)
	ctx := testCtx(t)
	id := "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
	var inside, overlaps, total atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 40 {
				u, err := s.LockLayerFetch(ctx, id)
				if err != nil {
					t.Error(err)
					return
				}
				if inside.Add(1) != 1 {
					overlaps.Add(1)
				}
				total.Add(1)
				time.Sleep(50 * time.Microsecond)
				inside.Add(-1)
				u()
			}
		}()
	}
	wg.Wait()
	if overlaps.Load() != 0 || total.Load() != 8*40 {
		t.Fatalf("%d of %d holds overlapped another", overlaps.Load(), total.Load())
	}
	dir := s.fetchLockDir()
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("lock files left: %v", left)
	}
}

// GC removes the lock files of killed pulls and keeps a held one.
func TestGCRemovesStaleFetchLocks(t *testing.T) {
	s, _ := openTest(t)
	ctx := testCtx(t)
	held := "1111111111111111111111111111111111111111111111111111111111111111"
	unlock, err := s.LockLayerFetch(ctx, held)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	stale := filepath.Join(s.fetchLockDir(), "2222222222222222222222222222222222222222222222222222222222222222.lock")
	if err := os.WriteFile(stale, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	removed, err := s.GC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(removed, []string{stale}) {
		t.Errorf("GC removed %v, want only %s", removed, stale)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale lock file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.fetchLockDir(), held+".lock")); err != nil {
		t.Errorf("held lock file: %v", err)
	}
}

// StageLayer leaves the staged tree unflushed; Commit flushes it before
// the layer is published.
func TestStageLayerFlushesAtCommit(t *testing.T) {
	for _, drv := range []string{"vfs", "overlay"} {
		t.Run(drv, func(t *testing.T) {
			s := openDriverTest(t, drv)
			ctx := testCtx(t)
			get := recordSyncs(t)
			sl, err := s.StageLayer(ctx, bytes.NewReader(makeTar(t, map[string]string{"a": "1", "b": "2"})), LayerOptions{ID: "l1", ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			stagedFile := func(e syncEvent) bool {
				// overlay stages the layer directory, its files in diff/
				return e.kind == fsx.SyncFileData && strings.Contains(e.path, "/tempdirs/") &&
					(strings.HasSuffix(e.path, "-addition/a") || strings.HasSuffix(e.path, "-addition/diff/a"))
			}
			if i := indexOf(get(), false, stagedFile); i >= 0 {
				t.Fatalf("StageLayer flushed the staged tree: %v", get())
			}
			if _, err := sl.Commit(ctx, ""); err != nil {
				t.Fatal(err)
			}
			evs := get()
			data := indexOf(evs, false, stagedFile)
			rec := indexOf(evs, false, isLayerRecords)
			if data < 0 || rec < 0 || data > rec {
				t.Fatalf("staged file flushed at %d, first layer record at %d: %v", data, rec, evs)
			}
		})
	}
}

// RemoveStaleFetchLock removes a lock file nobody holds and leaves a held one.
func TestRemoveStaleFetchLock(t *testing.T) {
	s := openDriverTest(t, "vfs")
	ctx := testCtx(t)
	id := strings.Repeat("ab", 32)
	if err := s.RemoveStaleFetchLock(id); err != nil {
		t.Fatalf("no file: %v", err)
	}
	if err := os.MkdirAll(s.fetchLockDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(s.fetchLockDir(), id+".lock")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveStaleFetchLock(id); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stale lock file still there: %v", err)
	}
	release, err := s.LockLayerFetch(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveStaleFetchLock(id); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(p); err != nil {
		t.Fatalf("a held lock file was removed: %v", err)
	}
	release()
}
