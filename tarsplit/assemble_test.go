package tarsplit_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stowage/stowage/archive"
	"github.com/stowage/stowage/tarsplit"
)

// bigLayer builds a tar of many small files and a few spanning several
// reassembly chunks (and a PAX header larger than one), unpacks it and
// returns the tar, its tar-split and the unpacked directory.
func bigLayer(t *testing.T) (orig, ts []byte, dir string) {
	t.Helper()
	rng := rand.New(rand.NewSource(1))
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, size int, pax map[string]string) {
		data := make([]byte, size)
		rng.Read(data)
		hdr := &tar.Header{Name: name, Mode: 0o644, Size: int64(size), Typeflag: tar.TypeReg, PAXRecords: pax, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		tw.Write(data)
	}
	tw.WriteHeader(&tar.Header{Name: "d/", Mode: 0o755, Typeflag: tar.TypeDir})
	for i := 0; i < 300; i++ {
		add(fmt.Sprintf("d/small%03d", i), rng.Intn(9000), nil)
		if i%100 == 50 {
			add(fmt.Sprintf("d/big%d", i), 1<<20+rng.Intn(3<<20), nil)
		}
	}
	add("d/paxed", 100, map[string]string{"comment": strings.Repeat("x", 1<<20-1000)})
	add("d/empty", 0, nil)
	tw.Close()
	dir = t.TempDir()
	var tsb bytes.Buffer
	if _, err := archive.Unpack(context.Background(), dir, bytes.NewReader(buf.Bytes()), archive.UnpackOptions{TarSplit: &tsb}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), tsb.Bytes(), dir
}

type failWriter struct{ n int }

func (w *failWriter) Write(p []byte) (int, error) {
	if w.n -= len(p); w.n < 0 {
		return 0, errors.New("disk on fire")
	}
	return len(p), nil
}

func TestReassembleChunks(t *testing.T) {
	orig, ts, dir := bigLayer(t)
	ctx := context.Background()
	ld, err := tarsplit.OpenLayerDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ld.Close()
	// A plain reader with one-byte reads: neither an *os.File nor sized.
	slow := func(name string) (io.ReadCloser, error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		return io.NopCloser(iotest.HalfReader(bytes.NewReader(b))), nil
	}
	for oname, open := range map[string]tarsplit.Opener{"LayerDir": ld.Open, "DirOpener": tarsplit.DirOpener(dir), "reader": slow} {
		var out bytes.Buffer
		if err := tarsplit.Reassemble(ctx, &out, bytes.NewReader(ts), open); err != nil {
			t.Fatalf("%s: %v", oname, err)
		}
		if !bytes.Equal(out.Bytes(), orig) {
			t.Fatalf("%s: reassembled %d bytes, want the original %d", oname, out.Len(), len(orig))
		}
	}

	// A write error stops the reassembly and is its result.
	for _, n := range []int{0, 1 << 20, 3<<20 + 5} {
		if err := tarsplit.Reassemble(ctx, &failWriter{n: n}, bytes.NewReader(ts), ld.Open); err == nil || !strings.Contains(err.Error(), "disk on fire") {
			t.Fatalf("writer failing after %d bytes: %v", n, err)
		}
	}

	// A cancelled context stops it.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := tarsplit.Reassemble(cctx, io.Discard, bytes.NewReader(ts), ld.Open); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}

	// A damaged multi-chunk file fails the CRC-64 check; the output is
	// the original up to the end of that file.
	big := filepath.Join(dir, "d/big150")
	data, err := os.ReadFile(big)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-2] ^= 1
	os.WriteFile(big, data, 0o644)
	var out bytes.Buffer
	err = tarsplit.Reassemble(ctx, &out, bytes.NewReader(ts), ld.Open)
	if !errors.Is(err, tarsplit.ErrFileIntegrity) || !strings.Contains(err.Error(), "file integrity checksum failed for d/big150") {
		t.Fatalf("damaged file: %v", err)
	}
	end := bytes.Index(orig, data[:len(data)-2]) // the file's data in the tar
	if end < 0 {
		t.Fatal("file data not found in the tar")
	}
	end += len(data)
	if got := out.Bytes(); len(got) != end || !bytes.Equal(got[:end-2], orig[:end-2]) {
		t.Fatalf("damaged file: wrote %d bytes, want the %d up to its end", len(got), end)
	}

	// A file of another size fails before its data is written.
	os.WriteFile(big, data[:len(data)-1], 0o644)
	if err := tarsplit.Reassemble(ctx, io.Discard, bytes.NewReader(ts), ld.Open); !errors.Is(err, tarsplit.ErrFileIntegrity) {
		t.Fatalf("shorter file: %v", err)
	}
	if err := tarsplit.Reassemble(ctx, io.Discard, bytes.NewReader(ts), slow); !errors.Is(err, tarsplit.ErrFileIntegrity) {
		t.Fatalf("shorter file, reader opener: %v", err)
	}
	os.WriteFile(big, append(data, 'x'), 0o644)
	if err := tarsplit.Reassemble(ctx, io.Discard, bytes.NewReader(ts), slow); !errors.Is(err, tarsplit.ErrFileIntegrity) {
		t.Fatalf("longer file, reader opener: %v", err)
	}
}
