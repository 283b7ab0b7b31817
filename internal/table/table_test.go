package table

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type rec struct {
	ID    string         `json:"id"`
	Names []string       `json:"names,omitempty"`
	Flags map[string]any `json:"flags,omitempty"`
}

func newTable(t *testing.T, dir string, ro bool) *Table[rec] {
	t.Helper()
	tb, err := New(Options[rec]{
		LockPath:  filepath.Join(dir, "x.lock"),
		ReadOnly:  ro,
		Locations: []Location{{Path: filepath.Join(dir, "x.json")}, {Path: filepath.Join(dir, "volatile-x.json"), Volatile: true}},
		ID:        func(r *rec) string { return r.ID },
		Names:     func(r *rec) *[]string { return &r.Names },
	})
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func TestMalformedJSONRefused(t *testing.T) {
	dir := t.TempDir()
	bad := []byte(`[{"id":"a"},{"id":5}]`)
	if err := os.WriteFile(filepath.Join(dir, "x.json"), bad, 0o600); err != nil {
		t.Fatal(err)
	}
	tb := newTable(t, dir, false)
	_, err := tb.LockRead(context.Background())
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "x.json") || !strings.Contains(err.Error(), "offset 19") {
		t.Fatalf("error = %v", err)
	}
	if _, err := tb.LockWrite(context.Background()); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("write lock error = %v", err)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "x.json"))
	if string(got) != string(bad) {
		t.Fatalf("file rewritten: %s", got)
	}
	if err := os.WriteFile(filepath.Join(dir, "x.json"), []byte(`[{"id":"a"`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.LockRead(context.Background()); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "offset") {
		t.Fatalf("syntax error = %v", err)
	}
}

func TestSaveReloadAndFlags(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	a := newTable(t, dir, false)
	unlock, err := a.LockWrite(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Add(&rec{ID: "one", Names: []string{"n"}, Flags: map[string]any{"x.y": true}}, 0); err != nil {
		t.Fatal(err)
	}
	if err := a.Add(&rec{ID: "two", Names: []string{"n"}}, 0); !errors.Is(err, ErrDuplicateName) {
		t.Fatalf("duplicate name: %v", err)
	}
	if err := a.Add(&rec{ID: "a/b"}, 0); !errors.Is(err, ErrInvalidID) {
		t.Fatalf("bad ID: %v", err)
	}
	if err := a.Save(ctx); err != nil {
		t.Fatal(err)
	}
	unlock()
	data, _ := os.ReadFile(filepath.Join(dir, "x.json"))
	if string(data) != `[{"id":"one","names":["n"],"flags":{"x.y":true}}]` {
		t.Fatalf("saved %s", data)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "x.json")); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
	if _, err := os.Stat(filepath.Join(dir, "volatile-x.json")); !os.IsNotExist(err) {
		t.Fatalf("untouched volatile file written: %v", err)
	}
	// A second table (another "process" view) reloads when the token changes.
	b := newTable(t, dir, false)
	unlock, err = b.LockRead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := b.Lookup("n"); !ok {
		t.Fatal("b does not see a's record")
	}
	unlock()
	unlock, _ = a.LockWrite(ctx)
	if _, err := a.SetNames("one", []string{"m"}); err != nil {
		t.Fatal(err)
	}
	if err := a.Save(ctx); err != nil {
		t.Fatal(err)
	}
	unlock()
	unlock, _ = b.LockRead(ctx)
	r, ok := b.Lookup("m")
	unlock()
	if !ok || r.ID != "one" || r.Flags["x.y"] != true {
		t.Fatalf("b after a's rename: %+v %v", r, ok)
	}
}

func TestDuplicateNamesRepairedAtLoad(t *testing.T) {
	dir := t.TempDir()
	recs := []rec{{ID: "a", Names: []string{"n", "k"}}, {ID: "b", Names: []string{"n"}}, {ID: "a", Names: []string{"dup"}}}
	data, _ := json.Marshal(recs)
	os.WriteFile(filepath.Join(dir, "x.json"), data, 0o600)
	ro := newTable(t, dir, true)
	if _, err := ro.LockRead(context.Background()); !errors.Is(err, ErrDuplicateNames) {
		t.Fatalf("read-only load: %v", err)
	}
	tb := newTable(t, dir, false)
	unlock, err := tb.LockRead(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	r, _ := tb.Lookup("n")
	unlock()
	if r.ID != "b" {
		t.Fatalf("name n held by %s", r.ID)
	}
	data, _ = os.ReadFile(filepath.Join(dir, "x.json"))
	if string(data) != `[{"id":"a","names":["k"]},{"id":"b","names":["n"]}]` {
		t.Fatalf("repaired file %s", data)
	}
}

func TestBigDataFileName(t *testing.T) {
	for key, want := range map[string]string{
		"manifest":                "manifest",
		"manifest-sha256:abcd":    "=bWFuaWZlc3Qtc2hhMjU2OmFiY2Q=",
		"sha256:0123456789abcdef": "=c2hhMjU2OjAxMjM0NTY3ODlhYmNkZWY=",
		"layer.data":              "layer.data",
	} {
		if got, err := BigDataFileName(key); err != nil || got != want {
			t.Errorf("%q: %q %v, want %q", key, got, err, want)
		}
	}
	if _, err := BigDataFileName(""); !errors.Is(err, ErrInvalidBigDataName) {
		t.Errorf("empty key: %v", err)
	}
}

func TestBigDataPath(t *testing.T) {
	if got, err := BigDataPath("/g/vfs-images/abc", "manifest-sha256:abcd"); err != nil || got != "/g/vfs-images/abc/=bWFuaWZlc3Qtc2hhMjU2OmFiY2Q=" {
		t.Errorf("BigDataPath: %q %v", got, err)
	}
	if _, err := BigDataPath("/g/vfs-images/abc", ""); !errors.Is(err, ErrInvalidBigDataName) {
		t.Errorf("empty key: %v", err)
	}
}

func TestNewID(t *testing.T) {
	id, err := NewID(nil)
	if err != nil || len(id) != 64 || strings.Trim(id, "0123456789abcdef") != "" {
		t.Fatalf("%q %v", id, err)
	}
	if strings.Trim(id[:12], "0123456789") == "" {
		t.Fatalf("all-digit prefix %q", id)
	}
}
