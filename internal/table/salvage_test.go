package table

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestSalvageRecords(t *testing.T) {
	id := func(r *rec) string { return r.ID }
	ids := func(rs []*rec) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return out
	}
	for _, tc := range []struct {
		name, data string
		want       []string
	}{
		{"truncated", `[{"id":"a"},{"id":"b","names":["x"]},{"id":"c","na`, []string{"a", "b"}},
		{"bad value in the middle", `[{"id":"a"},{"id":5},{"id":"c"}]`, []string{"a", "c"}},
		{"garbage in the middle", `[{"id":"a"},@@@@{"id":"b"}]`, []string{"a", "b"}},
		{"garbage start", "\x00\x00\x00{\"id\":\"a\"},{\"id\":\"b\"}]", []string{"a", "b"}},
		{"duplicates and invalid IDs", `[{"id":"a"},{"id":"a"},{"id":"../x"},{"id":""},{"id":"b"`, []string{"a"}},
		{"nothing", `garbage`, nil},
	} {
		got := ids(salvageRecords([]byte(tc.data), id))
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestVerifyAndSalvage(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "x.json")
	bad := []byte(`[{"id":"a","names":["n"]},{"id":"b"},{"id":`)
	if err := os.WriteFile(path, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	tb := newTable(t, dir, false)
	bads, err := tb.Verify(ctx)
	if err != nil || len(bads) != 1 || !errors.Is(bads[path], ErrCorrupt) {
		t.Fatalf("Verify: %v %v", bads, err)
	}
	if got, _ := os.ReadFile(path); string(got) != string(bad) {
		t.Fatal("Verify wrote the file")
	}
	done, err := tb.Salvage(ctx)
	if err != nil || len(done) != 1 || done[0].Records != 2 || done[0].Path != path {
		t.Fatalf("Salvage: %+v %v", done, err)
	}
	if got, _ := os.ReadFile(done[0].Kept); string(got) != string(bad) {
		t.Fatalf("kept copy: %q", got)
	}
	unlock, err := tb.LockRead(ctx)
	if err != nil {
		t.Fatalf("load after salvage: %v", err)
	}
	if _, ok := tb.ByName("n"); !ok || len(tb.All()) != 2 {
		t.Fatalf("records after salvage: %d", len(tb.All()))
	}
	unlock()
	// A second salvage finds nothing to do.
	if done, err := tb.Salvage(ctx); err != nil || len(done) != 0 {
		t.Fatalf("second Salvage: %+v %v", done, err)
	}
	if _, err := newTable(t, dir, true).Salvage(ctx); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("read-only Salvage: %v", err)
	}
}

func TestPartialFields(t *testing.T) {
	data := []byte(`[{"id":"a","names":["n"]},{"id":"b","names":["x","y"],"parent":"a","uidmap":[{"container_id":0,"ho`)
	got := PartialFields(data, "b")
	if len(got) != 3 || string(got["names"]) != `["x","y"]` || string(got["parent"]) != `"a"` || string(got["id"]) != `"b"` {
		t.Fatalf("fields of b: %v", got)
	}
	if _, ok := got["uidmap"]; ok {
		t.Fatal("a truncated value was returned")
	}
	if got := PartialFields(data, "a"); len(got) != 2 {
		t.Fatalf("fields of a: %v", got)
	}
	if got := PartialFields(data, "c"); got != nil {
		t.Fatalf("fields of a missing record: %v", got)
	}
	// The fuller of two copies wins (an older one kept beside a newer).
	two := []byte(`{"id":"b","names":["x"]} {"id":"b","names":["x"],"parent":"p"`)
	if got := PartialFields(two, "b"); string(got["parent"]) != `"p"` {
		t.Fatalf("fuller copy not chosen: %v", got)
	}
}
