package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// flushTestTar is a tar of n files of size bytes each.
func flushTestTar(t *testing.T, n, size int) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	body := bytes.Repeat([]byte("x"), size)
	for i := range n {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "f" + strings.Repeat("x", i), Mode: 0o644, Size: int64(size)}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// withEarlySyncfs replaces syncfs and the flush interval for one test.
func withEarlySyncfs(t *testing.T, every int64, fn func(fd int) error) {
	oldFn, oldBytes := earlySyncfs, earlyFlushBytes
	earlySyncfs, earlyFlushBytes = fn, every
	t.Cleanup(func() { earlySyncfs, earlyFlushBytes = oldFn, oldBytes })
}

func TestFlushEarlyFlushesWhileExtracting(t *testing.T) {
	var calls atomic.Int32
	withEarlySyncfs(t, 64<<10, func(fd int) error { calls.Add(1); return unix.Syncfs(fd) })
	data := flushTestTar(t, 8, 256<<10)

	if _, err := Unpack(context.Background(), t.TempDir(), bytes.NewReader(data), UnpackOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("without FlushEarly: %d early flushes, want 0", n)
	}
	if _, err := Unpack(context.Background(), t.TempDir(), bytes.NewReader(data), UnpackOptions{FlushEarly: true}); err != nil {
		t.Fatal(err)
	}
	// 2 MiB written, a flush due every 64 KiB: at least one ran (more
	// when the flushing goroutine keeps up).
	if n := calls.Load(); n < 1 {
		t.Fatalf("with FlushEarly: %d early flushes, want at least 1", n)
	}
}

func TestFlushEarlyErrorFailsUnpack(t *testing.T) {
	withEarlySyncfs(t, 64<<10, func(int) error { return unix.EIO })
	data := flushTestTar(t, 4, 256<<10)
	_, err := Unpack(context.Background(), t.TempDir(), bytes.NewReader(data), UnpackOptions{FlushEarly: true})
	if !errors.Is(err, unix.EIO) {
		t.Fatalf("got %v, want EIO from the early flush", err)
	}
}

// A tar too small for any early flush: stop must not wait for a flusher
// goroutine that has not started yet.
func TestFlushEarlySmallTarReturns(t *testing.T) {
	data := flushTestTar(t, 1, 10)
	for range 50 {
		if _, err := Unpack(context.Background(), t.TempDir(), bytes.NewReader(data), UnpackOptions{FlushEarly: true}); err != nil {
			t.Fatal(err)
		}
	}
}
