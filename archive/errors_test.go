package archive_test

import (
	"archive/tar"
	"bytes"
	"context"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/stowage/stowage/archive"
	"github.com/stowage/stowage/internal/idmap"
)

func TestGarbageMessages(t *testing.T) {
	garbage := bytes.Repeat([]byte("garbage!"), 200)
	for _, comp := range []string{"plain", "gzip", "bzip2", "xz", "zstd"} {
		t.Run(comp, func(t *testing.T) {
			err := unpack(t, t.TempDir(), compressWith(t, comp, garbage), archive.UnpackOptions{})
			if err == nil || !strings.Contains(err.Error(), "invalid tar header") {
				t.Errorf("1600 bytes of garbage: %v", err)
			}
			err = unpack(t, t.TempDir(), compressWith(t, comp, []byte("x")), archive.UnpackOptions{})
			if err == nil || !strings.Contains(err.Error(), "unexpected EOF") {
				t.Errorf("one byte: %v", err)
			}
		})
	}
}

// A reader that returns one byte per Read must still be detected as
// compressed (peek with ReadFull semantics), and digests must not change.
func TestShortReadsDetection(t *testing.T) {
	data := makeTar(t, tar.FormatUnknown, 0, file("a", "hello", 0o644))
	for _, comp := range []string{"gzip", "zstd", "xz"} {
		blob := compressWith(t, comp, data)
		res, err := archive.Unpack(context.Background(), t.TempDir(), iotest.OneByteReader(bytes.NewReader(blob)), archive.UnpackOptions{IgnoreChownErrors: true})
		if err != nil {
			t.Fatalf("%s: %v", comp, err)
		}
		if res.Compression == archive.Uncompressed || res.UncompressedDigest != digest.FromBytes(data) || res.CompressedDigest != digest.FromBytes(blob) {
			t.Errorf("%s: %+v", comp, res)
		}
	}
}

func TestExportMapsOwnersBack(t *testing.T) {
	needRoot(t)
	maps := []idmap.IDMap{{ContainerID: 0, HostID: 100000, Size: 65536}}
	f := file("f", "x", 0o644)
	f.hdr.Uid, f.hdr.Gid = 5, 7
	dir := t.TempDir()
	if err := unpack(t, dir, makeTar(t, tar.FormatUnknown, 0, f), archive.UnpackOptions{UIDMap: maps, GIDMap: maps}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	err := archive.ExportChanges(context.Background(), &buf, dir, []archive.Change{{Path: "/f", Kind: archive.ChangeAdd}}, archive.ExportOptions{UIDMap: maps, GIDMap: maps})
	if err != nil {
		t.Fatal(err)
	}
	h, err := tar.NewReader(&buf).Next()
	if err != nil {
		t.Fatal(err)
	}
	if h.Uid != 5 || h.Gid != 7 {
		t.Errorf("exported owner %d:%d, want 5:7", h.Uid, h.Gid)
	}
}

func TestCompressionNames(t *testing.T) {
	for c, want := range map[archive.Compression][2]string{
		archive.Uncompressed: {"tar", "tar"}, archive.Gzip: {"gzip", "tar.gz"}, archive.Bzip2: {"bzip2", "tar.bz2"},
		archive.Xz: {"xz", "tar.xz"}, archive.Zstd: {"zstd", "tar.zst"},
	} {
		if c.String() != want[0] || c.Extension() != want[1] {
			t.Errorf("%d: %s %s", int(c), c.String(), c.Extension())
		}
	}
}

// Failed unpacks must not leak goroutines (hashers, tar-split recorder,
// gzip writer, decompressors).
func TestNoGoroutineLeakOnFailure(t *testing.T) {
	good := makeTar(t, tar.FormatUnknown, 0, file("a", strings.Repeat("a", 3000), 0o644), file("b", "b", 0o644))
	var inputs [][]byte
	for _, comp := range []string{"plain", "gzip", "zstd", "xz"} {
		blob := compressWith(t, comp, good)
		inputs = append(inputs, blob[:len(blob)/2], append(bytes.Clone(blob[:len(blob)-1]), 'x'))
	}
	inputs = append(inputs, bytes.Repeat([]byte("garbage!"), 100))
	run := func() {
		for _, in := range inputs {
			archive.Unpack(context.Background(), t.TempDir(), bytes.NewReader(in), archive.UnpackOptions{TarSplit: &bytes.Buffer{}, IgnoreChownErrors: true})
		}
	}
	run()
	time.Sleep(100 * time.Millisecond)
	before := runtime.NumGoroutine()
	for i := 0; i < 10; i++ {
		run()
	}
	time.Sleep(200 * time.Millisecond)
	if after := runtime.NumGoroutine(); after > before+2 {
		t.Fatalf("goroutines grew from %d to %d over failed unpacks", before, after)
	}
}
