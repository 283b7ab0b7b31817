package table

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to a table as its JSON file (the loader
// of layers.json, images.json, containers.json and mountpoints.json). It
// must never panic; a file it refuses is left byte-identical; a file it
// accepts (repairing duplicate IDs or names under the write lock) saves
// and reloads, read-only, to the same records, and a second save changes
// nothing. Seeds run in every `go test`; to fuzz longer:
//
//	go test ./internal/table -run '^$' -fuzz FuzzLoad -fuzztime 5m
func FuzzLoad(f *testing.F) {
	for _, s := range []string{
		``, `[]`, `null`, ` `, "\x00\x00\x00\x00", `{"id":1}`, `[null]`, `[{"id":5}]`, `[{"id":"a"`,
		`[{"id":"a","names":["n"]}]`,
		`[{"id":"a","names":["n","m"]},{"id":"b","names":["n"]}]`,
		`[{"id":"a"},{"id":"a","names":["x"]}]`,
		`[{"id":"a/../b"},{"id":""},{"id":" "}]`,
		`[{"id":"a","flags":{"incomplete":true,"x":[1,{"y":null}],"z":"\u00e9"}}]`,
		`[{"id":"a","names":null,"flags":null,"extra":{"k":[1e308,-0]}}]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, "x.json")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		tb := newTable(t, dir, false)
		unlock, err := tb.LockWrite(ctx)
		if err != nil {
			if got, _ := os.ReadFile(path); !bytes.Equal(got, data) {
				t.Fatalf("refused file rewritten (%v)", err)
			}
			return
		}
		want := snapshot(tb)
		tb.TouchAll()
		if err := tb.Save(ctx); err != nil {
			t.Fatalf("save: %v", err)
		}
		unlock()
		saved, _ := os.ReadFile(path)

		ro := newTable(t, dir, true)
		unlock, err = ro.LockRead(ctx)
		if err != nil {
			t.Fatalf("reloading what was saved: %v\nsaved: %s", err, saved)
		}
		got := snapshot(ro)
		unlock()
		if !slices.Equal(got, want) {
			t.Fatalf("reload differs:\n got %q\nwant %q", got, want)
		}

		again := newTable(t, dir, false)
		unlock, err = again.LockWrite(ctx)
		if err != nil {
			t.Fatal(err)
		}
		again.TouchAll()
		if err := again.Save(ctx); err != nil {
			t.Fatal(err)
		}
		unlock()
		if b, _ := os.ReadFile(path); !bytes.Equal(b, saved) {
			t.Fatalf("second save changed the file:\n%s\n%s", saved, b)
		}
	})
}

// snapshot lists each record's ID and names in table order.
func snapshot(tb *Table[rec]) []string {
	var out []string
	for _, r := range tb.All() {
		out = append(out, r.ID)
		for _, n := range r.Names {
			out = append(out, "\tname:"+n)
		}
	}
	return out
}
