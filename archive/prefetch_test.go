package archive

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand"
	"testing"
	"testing/iotest"

	"github.com/opencontainers/go-digest"
)

func TestPrefetcherReadsCountsAndHashesEverything(t *testing.T) {
	data := make([]byte, 5*prefetchBufSize+12345)
	rand.New(rand.NewSource(3)).Read(data)
	// A source returning short reads, like a pipe.
	p := newPrefetcher(iotest.HalfReader(bytes.NewReader(data)), true)
	got, err := io.ReadAll(iotest.OneByteReader(io.LimitReader(p, 100)))
	if err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(p)
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, rest...)
	if !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes, not the source's %d", len(got), len(data))
	}
	n, d := p.Sum()
	if n != int64(len(data)) || d != digest.NewDigestFromBytes(digest.SHA256, sha256New(data)) {
		t.Fatalf("Sum = %d %s, want %d and the source's digest", n, d, len(data))
	}
}

func sha256New(b []byte) []byte { s := sha256.Sum256(b); return s[:] }

func TestPrefetcherPassesErrorsAndStops(t *testing.T) {
	boom := errors.New("boom")
	p := newPrefetcher(io.MultiReader(bytes.NewReader([]byte("abc")), iotest.ErrReader(boom)), false)
	got, err := io.ReadAll(p)
	if string(got) != "abc" || !errors.Is(err, boom) {
		t.Fatalf("got %q, %v; want abc and the source's error", got, err)
	}
	if _, err := p.Read(make([]byte, 1)); !errors.Is(err, boom) {
		t.Fatalf("error not sticky: %v", err)
	}
	p.stop()
	p.stop()
	// Stopping before the end does not hang.
	q := newPrefetcher(bytes.NewReader(make([]byte, 10*prefetchBufSize)), true)
	q.Read(make([]byte, 10))
	q.stop()
}

func TestPrefetcherPeek(t *testing.T) {
	p := newPrefetcher(bytes.NewReader([]byte("0123456789abc")), false)
	defer p.stop()
	for range 2 {
		b, err := p.Peek(10)
		if err != nil || string(b) != "0123456789" {
			t.Fatalf("Peek(10) = %q, %v", b, err)
		}
	}
	got, err := io.ReadAll(p)
	if err != nil || string(got) != "0123456789abc" {
		t.Fatalf("after Peek, read %q, %v", got, err)
	}
	// Shorter input than asked: what there is, and EOF.
	q := newPrefetcher(bytes.NewReader([]byte("ab")), false)
	defer q.stop()
	if b, err := q.Peek(10); string(b) != "ab" || err != io.EOF {
		t.Fatalf("Peek(10) of 2 bytes = %q, %v", b, err)
	}
	e := newPrefetcher(bytes.NewReader(nil), false)
	defer e.stop()
	if b, err := e.Peek(10); len(b) != 0 || err != io.EOF {
		t.Fatalf("Peek of empty input = %q, %v", b, err)
	}
}

func TestPrefetcherAsyncHashSharesBuffers(t *testing.T) {
	// Many more buffers' worth than circulate: each must come back from
	// both the consumer and the hasher before it is refilled.
	data := make([]byte, 4*decodeBufs*prefetchBufSize+777)
	rand.New(rand.NewSource(5)).Read(data)
	p := newPrefetcherN(iotest.HalfReader(bytes.NewReader(data)), hashAsync, decodeBufs)
	got, err := io.ReadAll(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes differing from the source's %d", len(got), len(data))
	}
	n, d := p.Sum()
	if n != int64(len(data)) || d != digest.NewDigestFromBytes(digest.SHA256, sha256New(data)) {
		t.Fatalf("Sum = %d %s, want %d and the source's digest", n, d, len(data))
	}
	// Stopping early does not hang, with the hasher behind or not.
	q := newPrefetcherN(bytes.NewReader(data), hashAsync, decodeBufs)
	q.Read(make([]byte, 10))
	q.stop()
	q.stop()
}

func TestPrefetcherKeepsUnexpectedEOF(t *testing.T) {
	// A decompressor reports a truncated stream as io.ErrUnexpectedEOF:
	// that must reach the consumer, not become a clean end of input.
	src := io.MultiReader(bytes.NewReader([]byte("abc")), iotest.ErrReader(io.ErrUnexpectedEOF))
	for _, mode := range []hashMode{hashNone, hashInline, hashAsync} {
		p := newPrefetcherN(src, mode, 2)
		got, err := io.ReadAll(p)
		if string(got) != "abc" || err != io.ErrUnexpectedEOF {
			t.Fatalf("mode %d: got %q, %v; want abc and io.ErrUnexpectedEOF", mode, got, err)
		}
		p.stop()
		src = io.MultiReader(bytes.NewReader([]byte("abc")), iotest.ErrReader(io.ErrUnexpectedEOF))
	}
}

func TestPrefetcherBorrowLendsWithoutCopying(t *testing.T) {
	data := make([]byte, 3*prefetchBufSize+99)
	rand.New(rand.NewSource(7)).Read(data)
	p := newPrefetcherN(bytes.NewReader(data), hashAsync, decodeBufs)
	defer p.stop()
	p.borrow = true
	out := make([]byte, 300000)
	var got []byte
	for {
		n, err := p.Read(out)
		if n > 0 {
			if len(p.last) != n {
				t.Fatalf("lent %d bytes for a read of %d", len(p.last), n)
			}
			got = append(got, p.last...)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("lent %d bytes differing from the source's %d", len(got), len(data))
	}
	if !bytes.Equal(out, make([]byte, len(out))) {
		t.Fatalf("borrowing reads wrote into the caller's buffer")
	}
	if _, d := p.Sum(); d != digest.NewDigestFromBytes(digest.SHA256, sha256New(data)) {
		t.Fatalf("digest %s of lent buffers is not the source's", d)
	}
}
