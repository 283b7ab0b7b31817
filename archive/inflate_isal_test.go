//go:build linux && cgo && isal

package archive

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"math/rand"
	"testing"
	"testing/iotest"
)

// gzipMembers compresses each part as its own gzip member at level.
func gzipMembers(t testing.TB, level int, parts ...[]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	for _, p := range parts {
		zw, err := gzip.NewWriterLevel(&buf, level)
		if err != nil {
			t.Fatal(err)
		}
		zw.Name = "member"
		if _, err := zw.Write(p); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// sampleData is part random (stored blocks), part repetitive (long
// matches across read boundaries).
func sampleData(n int, seed int64) []byte {
	r := rand.New(rand.NewSource(seed))
	b := make([]byte, n)
	for i := 0; i < n; {
		if r.Intn(2) == 0 {
			k := min(n-i, 1+r.Intn(70000))
			r.Read(b[i : i+k])
			i += k
		} else {
			word := []byte("layer-file-content ")
			k := min(n-i, 1+r.Intn(90000))
			for j := 0; j < k; j++ {
				b[i+j] = word[j%len(word)]
			}
			i += k
		}
	}
	return b
}

// goInflate is the reference: compress/gzip in multistream mode.
func goInflate(in []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(in))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}

// isalInflate reads src through an isalReader with reads of size chunk.
func isalInflate(src io.Reader, chunk int) ([]byte, error) {
	z, err := newISALReader(src)
	if err != nil {
		return nil, err
	}
	defer z.Close()
	var out bytes.Buffer
	buf := make([]byte, chunk)
	for {
		n, err := z.Read(buf)
		out.Write(buf[:n])
		if err == io.EOF {
			return out.Bytes(), nil
		}
		if err != nil {
			return out.Bytes(), err
		}
	}
}

func TestISALMatchesGo(t *testing.T) {
	big := sampleData(3<<20, 1)
	cases := map[string][]byte{
		"one member level 1": gzipMembers(t, 1, big),
		"one member level 9": gzipMembers(t, 9, big),
		"stored":             gzipMembers(t, gzip.NoCompression, big[:300000]),
		"three members":      gzipMembers(t, 6, big[:100000], big[100000:2000000], big[2000000:]),
		"empty member":       gzipMembers(t, 6, nil),
		"empty then data":    gzipMembers(t, 6, nil, big[:5000]),
	}
	for name, in := range cases {
		want, err := goInflate(in)
		if err != nil {
			t.Fatalf("%s: compress/gzip: %v", name, err)
		}
		for _, chunk := range []int{1, 7, 4096, 1 << 20} {
			if chunk == 1 && len(want) > 200000 {
				continue
			}
			got, err := isalInflate(bytes.NewReader(in), chunk)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("%s, reads of %d: got %d bytes, err %v; want %d bytes", name, chunk, len(got), err, len(want))
			}
		}
		// The source returns one byte per Read: headers and trailers
		// arrive split across reads.
		if len(in) < 400000 {
			got, err := isalInflate(iotest.OneByteReader(bytes.NewReader(in)), 1<<16)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("%s, one-byte source: got %d bytes, err %v; want %d bytes", name, len(got), err, len(want))
			}
		}
	}
}

func TestISALTruncated(t *testing.T) {
	in := gzipMembers(t, 6, sampleData(200000, 2))
	for _, cut := range []int{1, 2, 5, 10, 11, 100, len(in) / 2, len(in) - 8, len(in) - 1} {
		_, err := isalInflate(bytes.NewReader(in[:cut]), 1<<16)
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("cut at %d of %d: err %v, want io.ErrUnexpectedEOF", cut, len(in), err)
		}
	}
}

func TestISALCorrupt(t *testing.T) {
	in := gzipMembers(t, 6, sampleData(200000, 3))

	crc := bytes.Clone(in)
	crc[len(crc)-6] ^= 0xff // CRC-32 in the trailer
	if _, err := isalInflate(bytes.NewReader(crc), 1<<16); err == nil || err.Error() != "gzip: invalid checksum" {
		t.Errorf("bad CRC: err %v, want gzip: invalid checksum", err)
	}

	size := bytes.Clone(in)
	size[len(size)-1] ^= 0x01 // ISIZE in the trailer
	if _, err := isalInflate(bytes.NewReader(size), 1<<16); err == nil {
		t.Error("bad ISIZE: no error")
	}

	garbage := append(bytes.Clone(in), "not gzip"...)
	if _, err := isalInflate(bytes.NewReader(garbage), 1<<16); err == nil || err.Error() != "gzip: invalid header" {
		t.Errorf("trailing garbage: err %v, want gzip: invalid header", err)
	}

	method := bytes.Clone(in)
	method[2] = 7 // compression method other than deflate
	if _, err := isalInflate(bytes.NewReader(method), 1<<16); err == nil {
		t.Error("unknown compression method: no error")
	}

	body := bytes.Clone(in)
	for i := 20; i < len(body)-20; i += 997 {
		body[i] ^= 0x5a
	}
	if _, err := isalInflate(bytes.NewReader(body), 1<<16); err == nil {
		t.Error("corrupt deflate data: no error")
	}
}

func TestISALSourceError(t *testing.T) {
	in := gzipMembers(t, 6, sampleData(500000, 4))
	boom := errors.New("registry went away")
	src := io.MultiReader(bytes.NewReader(in[:len(in)/2]), iotest.ErrReader(boom))
	if _, err := isalInflate(src, 1<<16); !errors.Is(err, boom) {
		t.Errorf("err %v, want the source's error", err)
	}
}

func TestISALClose(t *testing.T) {
	in := gzipMembers(t, 6, []byte("hello"))
	z, err := newISALReader(bytes.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	if err := z.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := z.Read(make([]byte, 10)); err == nil {
		t.Fatal("Read after Close succeeded")
	}
}

// The decompressor Unpack uses is ISA-L's in this build, and Go's when
// useISAL is off; both give the same layer.
func TestDecompressorUsesISAL(t *testing.T) {
	in := gzipMembers(t, 6, []byte("hello"))
	rc, err := decompressor(bytes.NewReader(in), Gzip)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, ok := rc.(*isalReader); !ok {
		t.Fatalf("gzip decompressor is %T, want *isalReader", rc)
	}
	useISAL = false
	defer func() { useISAL = true }()
	rc2, err := decompressor(bytes.NewReader(in), Gzip)
	if err != nil {
		t.Fatal(err)
	}
	defer rc2.Close()
	if _, ok := rc2.(*isalReader); ok {
		t.Fatal("useISAL=false still gives the ISA-L reader")
	}
}

// longHeaderString reports whether the first member's header has a file
// name or comment of 512 bytes or more (not NUL-terminated within 512).
func longHeaderString(in []byte) bool {
	if len(in) < 10 {
		return false
	}
	flg, p := in[3], 10
	if flg&0x04 != 0 { // FEXTRA
		if len(in) < p+2 {
			return false
		}
		p += 2 + (int(in[p]) | int(in[p+1])<<8)
	}
	for _, bit := range []byte{0x08, 0x10} { // FNAME, FCOMMENT
		if flg&bit == 0 {
			continue
		}
		if p >= len(in) {
			return false
		}
		n := bytes.IndexByte(in[p:], 0)
		if n >= 511 || (n < 0 && len(in)-p >= 511) {
			return true
		}
		if n < 0 {
			return false
		}
		p += n + 1
	}
	return false
}

// FuzzISALInflate: on any input ISA-L's reader and compress/gzip agree on
// the output, and on whether it is an error.
func FuzzISALInflate(f *testing.F) {
	f.Add(gzipMembers(f, 6, []byte("hello, layer")))
	f.Add(gzipMembers(f, 1, sampleData(5000, 5), []byte("x")))
	f.Add(gzipMembers(f, gzip.NoCompression, []byte("stored")))
	f.Add([]byte{0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) < 2 || in[0] != 0x1f || in[1] != 0x8b {
			return // the decompressor is only used after the magic was seen
		}
		if longHeaderString(in) {
			return // compress/gzip refuses names/comments over 511 bytes; ISA-L skips them
		}
		want, werr := goInflate(in)
		got, gerr := isalInflate(bytes.NewReader(in), 4096)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("compress/gzip err %v, ISA-L err %v", werr, gerr)
		}
		if werr == nil && !bytes.Equal(got, want) {
			t.Fatalf("outputs differ: %d vs %d bytes", len(got), len(want))
		}
	})
}
