package archive

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
	"github.com/ulikunitz/xz"
)

// String returns the name containers/storage uses for c.
func (c Compression) String() string {
	switch c {
	case Uncompressed:
		return "tar"
	case Bzip2:
		return "bzip2"
	case Gzip:
		return "gzip"
	case Xz:
		return "xz"
	case Zstd:
		return "zstd"
	}
	return fmt.Sprintf("compression(%d)", int(c))
}

// Extension returns the file name extension of a tar with compression c
// ("tar", "tar.gz", "tar.bz2", "tar.xz", "tar.zst").
func (c Compression) Extension() string {
	switch c {
	case Uncompressed:
		return "tar"
	case Bzip2:
		return "tar.bz2"
	case Gzip:
		return "tar.gz"
	case Xz:
		return "tar.xz"
	case Zstd:
		return "tar.zst"
	}
	return ""
}

var magics = []struct {
	c     Compression
	magic []byte
}{
	{Bzip2, []byte{0x42, 0x5a, 0x68}},
	{Gzip, []byte{0x1f, 0x8b, 0x08}},
	{Xz, []byte{0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00}},
	{Zstd, []byte{0x28, 0xb5, 0x2f, 0xfd}},
}

// DetectCompression reports the compression whose magic prefixes head.
func DetectCompression(head []byte) Compression {
	for _, m := range magics {
		if bytes.HasPrefix(head, m.magic) {
			return m.c
		}
	}
	return Uncompressed
}

// peeker is a buffered reader that can show the next bytes unread:
// *bufio.Reader, or Unpack's prefetcher.
type peeker interface {
	io.Reader
	Peek(n int) ([]byte, error)
}

// peekCompression detects the compression of br's stream with ReadFull
// semantics: Peek keeps reading until it has the bytes or the stream
// ends, so a short first read from a pipe does not matter.
func peekCompression(br peeker) (Compression, error) {
	head, err := br.Peek(10)
	if err != nil && err != io.EOF {
		return Uncompressed, err
	}
	return DetectCompression(head), nil
}

// useISAL: gzip is inflated with ISA-L when the build has it (tests turn
// it off to compare with Go's decoder).
var useISAL = true

// decompressor wraps br (already peeked) for compression c.
func decompressor(br io.Reader, c Compression) (io.ReadCloser, error) {
	switch c {
	case Uncompressed:
		return io.NopCloser(br), nil
	case Gzip:
		if isalAvailable && useISAL {
			return newISALReader(br)
		}
		zr, err := pgzip.NewReaderN(br, 1<<20, 4)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return zr, nil
	case Zstd:
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(false))
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		return zstdCloser{zr}, nil
	case Bzip2:
		return io.NopCloser(bzip2.NewReader(br)), nil
	case Xz:
		zr, err := xz.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("xz: %w", err)
		}
		return io.NopCloser(zr), nil
	}
	return nil, fmt.Errorf("%w %d", ErrUnsupportedCompr, int(c))
}

type zstdCloser struct{ *zstd.Decoder }

func (z zstdCloser) Close() error { z.Decoder.Close(); return nil }

// DecompressStream detects the compression of r (peeking with ReadFull) and
// returns the decompressed stream. Empty input is an empty uncompressed stream.
func DecompressStream(r io.Reader) (io.ReadCloser, Compression, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	c, err := peekCompression(br)
	if err != nil {
		return nil, Uncompressed, err
	}
	rc, err := decompressor(br, c)
	if err != nil {
		return nil, c, err
	}
	return rc, c, nil
}

// CompressStream wraps w with the given compression (Uncompressed, Gzip or
// Zstd; others fail with ErrUnsupportedCompr, e.g. "unsupported compression format tar.bz2").
func CompressStream(w io.Writer, c Compression) (io.WriteCloser, error) {
	switch c {
	case Uncompressed:
		return nopWriteCloser{w}, nil
	case Gzip:
		return pgzip.NewWriter(w), nil
	case Zstd:
		return zstd.NewWriter(w)
	}
	if ext := c.Extension(); ext != "" {
		return nil, fmt.Errorf("%w %s", ErrUnsupportedCompr, ext)
	}
	return nil, fmt.Errorf("%w %d", ErrUnsupportedCompr, int(c))
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
