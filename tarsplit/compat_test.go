package tarsplit_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/vbatts/tar-split/tar/storage"

	"github.com/stowage/stowage/archive"
	"github.com/stowage/stowage/tarsplit"
)

type flatEntry struct {
	typ     storage.Type
	name    string
	size    int64
	payload string
}

// decode flattens a gzip'd tar-split stream, merging adjacent segments
// (where a stream is cut into segments is not significant).
func decode(t *testing.T, gz []byte) []flatEntry {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	up := storage.NewJSONUnpacker(zr)
	var out []flatEntry
	for {
		e, err := up.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if e.Type == storage.SegmentType && len(out) > 0 && out[len(out)-1].typ == storage.SegmentType {
			out[len(out)-1].payload += string(e.Payload)
			continue
		}
		out = append(out, flatEntry{e.Type, string(e.GetNameBytes()), e.Size, string(e.Payload)})
	}
}

func TestCompatWithReference(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the fixtures have files owned by other users")
	}
	for _, name := range []string{"layer", "nonutf8"} {
		t.Run(name, func(t *testing.T) {
			orig, err := os.ReadFile(filepath.Join("testdata/compat", name+".tar"))
			if err != nil {
				t.Fatal(err)
			}
			ref, err := os.ReadFile(filepath.Join("testdata/compat", name+".tar-split.gz"))
			if err != nil {
				t.Fatal(err)
			}
			dest := t.TempDir()
			var ours bytes.Buffer
			if _, err := archive.Unpack(context.Background(), dest, bytes.NewReader(orig), archive.UnpackOptions{TarSplit: &ours}); err != nil {
				t.Fatal(err)
			}
			// The reference's tar-split + our files = the original tar.
			var out bytes.Buffer
			if err := tarsplit.Reassemble(context.Background(), &out, bytes.NewReader(ref), tarsplit.DirOpener(dest)); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out.Bytes(), orig) {
				t.Fatalf("reassembled from the reference tar-split: %d bytes, want %d identical", out.Len(), len(orig))
			}
			// Our tar-split says the same as the reference's.
			a, b := decode(t, ours.Bytes()), decode(t, ref)
			if len(a) != len(b) {
				t.Fatalf("%d entries, reference has %d", len(a), len(b))
			}
			for i := range a {
				if a[i] != b[i] {
					t.Errorf("entry %d: %+v, reference %+v", i, a[i].name, b[i].name)
				}
			}
		})
	}
}

func TestReassembleErrors(t *testing.T) {
	ctx := context.Background()
	open := func(string) (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("")), nil }
	if err := tarsplit.Reassemble(ctx, io.Discard, strings.NewReader("not gzip"), open); !errors.Is(err, tarsplit.ErrCorrupt) {
		t.Errorf("not gzip: %v", err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(`{"type":1,"name":"a","size":3,"payload":"AAAAAAAAAAA=","position":0}` + "\n"))
	zw.Close()
	if err := tarsplit.Reassemble(ctx, io.Discard, bytes.NewReader(gz.Bytes()), open); !errors.Is(err, tarsplit.ErrFileIntegrity) {
		t.Errorf("short file: %v", err)
	}
	missing := func(string) (io.ReadCloser, error) { return nil, os.ErrNotExist }
	if err := tarsplit.Reassemble(ctx, io.Discard, bytes.NewReader(gz.Bytes()), missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestDirOpenerConfined(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "layer")
	os.Mkdir(dir, 0o755)
	os.WriteFile(filepath.Join(base, "secret"), []byte("s"), 0o644)
	os.Symlink("/secret", filepath.Join(dir, "abs"))
	os.Symlink("../secret", filepath.Join(dir, "rel"))
	open := tarsplit.DirOpener(dir)
	for _, name := range []string{"../secret", "/../secret", "abs", "rel"} {
		if f, err := open(name); err == nil {
			b, _ := io.ReadAll(f)
			f.Close()
			t.Errorf("%s opened outside the layer: %q", name, b)
		}
	}
}

func TestDirOpenerRefusesFIFO(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Skip("mkfifo:", err)
	}
	if f, err := tarsplit.DirOpener(dir)("fifo"); err == nil {
		f.Close()
		t.Fatal("opened a FIFO")
	}
}

// LayerDir gives the same confinement as DirOpener: names are resolved
// inside the directory, symlinks (absolute or relative, as a parent or as
// the file) never lead outside it, and only regular files open.
func TestLayerDirConfined(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "layer")
	os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755)
	os.WriteFile(filepath.Join(base, "secret"), []byte("outside"), 0o644)
	os.WriteFile(filepath.Join(dir, "a", "b", "f"), []byte("inside"), 0o644)
	os.WriteFile(filepath.Join(dir, "secret"), []byte("layer secret"), 0o644)
	os.Symlink("/", filepath.Join(dir, "abs"))
	os.Symlink("../..", filepath.Join(dir, "a", "up"))
	os.Symlink(filepath.Join(base, "secret"), filepath.Join(dir, "a", "link"))
	ld, err := tarsplit.OpenLayerDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ld.Close()
	read := func(name string) (string, error) {
		f, err := ld.Open(name)
		if err != nil {
			return "", err
		}
		defer f.Close()
		b, err := io.ReadAll(f)
		return string(b), err
	}
	for name, want := range map[string]string{
		"a/b/f": "inside", "/a/b/f": "inside", "../../a/b/f": "inside", "a/b/../b/f": "inside",
		"secret": "layer secret", "a/up/secret": "layer secret", "abs/secret": "layer secret",
	} {
		if got, err := read(name); err != nil || got != want {
			t.Errorf("Open(%q) = %q, %v; want %q", name, got, err, want)
		}
	}
	for _, name := range []string{"a/link", "a", "", "missing", "a/b/missing"} {
		if got, err := read(name); err == nil {
			t.Errorf("Open(%q) = %q, want an error", name, got)
		}
	}
}
