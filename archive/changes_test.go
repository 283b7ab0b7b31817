package archive_test

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stowage/stowage/archive"
)

func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, body := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if body == "/" {
			os.MkdirAll(full, 0o755)
			continue
		}
		if err := os.WriteFile(full, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestChangesDirsAndExport(t *testing.T) {
	old, cur := t.TempDir(), t.TempDir()
	writeTree(t, old, map[string]string{"same": "s", "mod": "a", "gone/x": "1", "gone/y": "2", "d/keep": "k", "d/rm": "r"})
	writeTree(t, cur, map[string]string{"same": "s", "mod": "bb", "d/keep": "k", "d/new": "n", "added/f": "f"})
	// Same content/mtime for unchanged files.
	ts := time.Unix(1600000000, 0)
	for _, p := range []string{"same", "d/keep", "d", "."} {
		os.Chtimes(filepath.Join(old, p), ts, ts)
		os.Chtimes(filepath.Join(cur, p), ts, ts)
	}
	os.Link(filepath.Join(cur, "added/f"), filepath.Join(cur, "added/f2"))
	ch, err := archive.ChangesDirs(context.Background(), cur, old)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range ch {
		got = append(got, c.String())
	}
	slices.Sort(got)
	want := []string{"A /added", "A /added/f", "A /added/f2", "A /d/new", "C /d", "C /mod", "D /d/rm", "D /gone"}
	if !slices.Equal(got, want) {
		t.Fatalf("changes %v, want %v", got, want)
	}
	size, err := archive.ChangesSize(cur, ch)
	if err != nil || size != int64(len("bb")+len("f")+len("n")) {
		t.Errorf("ChangesSize = %d, %v", size, err)
	}

	var buf bytes.Buffer
	if err := archive.ExportChanges(context.Background(), &buf, cur, ch, archive.ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	exported := slices.Clone(buf.Bytes())
	tr := tar.NewReader(&buf)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		switch h.Name {
		case ".wh.gone", "d/.wh.rm":
			if h.Mode != 0 || h.Uid != 0 || h.Size != 0 {
				t.Errorf("whiteout %s: mode %o uid %d", h.Name, h.Mode, h.Uid)
			}
		case "added/f2":
			if h.Typeflag != tar.TypeLink || h.Linkname != "added/f" {
				t.Errorf("hard link: %c %s", h.Typeflag, h.Linkname)
			}
		}
	}
	wantNames := []string{"added/", "added/f", "added/f2", "d/", "d/new", "d/.wh.rm", ".wh.gone", "mod"}
	slices.Sort(names)
	slices.Sort(wantNames)
	if !slices.Equal(names, wantNames) {
		t.Errorf("exported %v, want %v", names, wantNames)
	}

	// Applying the export on a copy of old reproduces cur's file set.
	if err := unpack(t, old, exported, archive.UnpackOptions{IgnoreChownErrors: true}); err != nil {
		t.Fatal(err)
	}
	again, err := archive.ChangesDirs(context.Background(), cur, old)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range again {
		if c.Kind != archive.ChangeModify {
			t.Errorf("after applying the export: %s", c)
		}
	}
}

func TestChangesEmptyOld(t *testing.T) {
	cur := t.TempDir()
	writeTree(t, cur, map[string]string{"a/b": "x"})
	ch, err := archive.ChangesDirs(context.Background(), cur, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(ch) != 2 || ch[0].String() != "A /a" || ch[1].String() != "A /a/b" {
		t.Fatalf("changes %v", ch)
	}
}

func TestCompressStream(t *testing.T) {
	for _, c := range []archive.Compression{archive.Uncompressed, archive.Gzip, archive.Zstd} {
		var buf bytes.Buffer
		w, err := archive.CompressStream(&buf, c)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte("payload"))
		w.Close()
		r, got, err := archive.DecompressStream(&buf)
		if err != nil || got != c {
			t.Fatalf("%v: detected %v, %v", c, got, err)
		}
		b, _ := io.ReadAll(r)
		if string(b) != "payload" {
			t.Errorf("%v: %q", c, b)
		}
	}
	for c, msg := range map[archive.Compression]string{archive.Bzip2: "unsupported compression format tar.bz2", archive.Xz: "unsupported compression format tar.xz"} {
		if _, err := archive.CompressStream(io.Discard, c); err == nil || err.Error() != msg {
			t.Errorf("%v: %v", c, err)
		}
	}
	r, c, err := archive.DecompressStream(bytes.NewReader(nil))
	if err != nil || c != archive.Uncompressed {
		t.Fatalf("empty: %v %v", c, err)
	}
	if b, _ := io.ReadAll(r); len(b) != 0 {
		t.Errorf("empty: %q", b)
	}
}
