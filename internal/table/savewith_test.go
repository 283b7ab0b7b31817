package table

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stowage/stowage/internal/fsx"
)

// SaveWith: a failing Flush leaves every file as it was and no temp file;
// a Flush runs before any rename; DeferSyncDir leaves the directory fsync
// to finish.
func TestSaveWithFlushAndDeferredDirSync(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	tb := newTable(t, dir, false)
	unlock, err := tb.LockWrite(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	if err := tb.Add(&rec{ID: "a"}, 0); err != nil {
		t.Fatal(err)
	}
	if err := tb.Save(ctx); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, "x.json"))

	if err := tb.Add(&rec{ID: "b"}, 0); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	if _, err := tb.SaveWith(ctx, SaveOptions{Flush: func(context.Context) error { return boom }}); !errors.Is(err, boom) {
		t.Fatalf("SaveWith with a failing Flush: %v", err)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "x.json")); string(after) != string(before) {
		t.Errorf("x.json changed after a failed Flush: %s", after)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			t.Errorf("temp file left: %s", e.Name())
		}
	}

	var mu sync.Mutex
	var dirSyncs int
	defer fsx.SetSyncHook(func(k fsx.SyncKind, p string) {
		if k == fsx.SyncDirectory && p == dir {
			mu.Lock()
			dirSyncs++
			mu.Unlock()
		}
	})()
	sawOld := false
	finish, err := tb.SaveWith(ctx, SaveOptions{
		DeferSyncDir: true,
		Flush: func(context.Context) error {
			b, _ := os.ReadFile(filepath.Join(dir, "x.json"))
			sawOld = !strings.Contains(string(b), `"b"`)
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !sawOld {
		t.Error("Flush ran after the rename")
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "x.json")); !strings.Contains(string(b), `"b"`) {
		t.Errorf("x.json after SaveWith: %s", b)
	}
	mu.Lock()
	n := dirSyncs
	mu.Unlock()
	if n != 0 {
		t.Errorf("directory fsynced %d times before finish", n)
	}
	if err := finish(); err != nil {
		t.Fatal(err)
	}
	if dirSyncs != 1 {
		t.Errorf("finish fsynced the directory %d times, want 1", dirSyncs)
	}
}
