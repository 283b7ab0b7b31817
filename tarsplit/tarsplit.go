package tarsplit

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"hash"
	"hash/crc64"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/vbatts/tar-split/tar/storage"
)

// Opener opens a layer file by its tar-split name (as it appeared in the archive).
type Opener func(name string) (io.ReadCloser, error)

// Reassemble writes the original uncompressed tar to w from the gzip'd
// tar-split stream and the files open returns, verifying each file's CRC-64
// (a mismatch fails with an error wrapping ErrFileIntegrity whose text is
// "file integrity checksum failed for <name>"). ctx is checked between
// entries; a cancelled ctx leaves w with a prefix of the tar.
func Reassemble(ctx context.Context, w io.Writer, tarSplitGz io.Reader, open Opener) error {
	zr, err := gzip.NewReader(tarSplitGz)
	if err != nil {
		return fmt.Errorf("reading tar-split: %w: %w", ErrCorrupt, err)
	}
	defer zr.Close()
	return ReassembleJSON(ctx, w, zr, open)
}

// ReassembleJSON is Reassemble on the uncompressed JSON stream.
func ReassembleJSON(ctx context.Context, w io.Writer, jsonStream io.Reader, open Opener) error {
	// Headers and padding are small writes; batching them (and the file
	// data) into 1 MiB writes matters when w is a pipe to another
	// goroutine or process: one hand-off per MiB instead of per header.
	bw := bufio.NewWriterSize(w, outBufSize)
	err := reassemble(ctx, bw, jsonStream, open)
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	return err
}

const outBufSize = 1 << 20

func reassemble(ctx context.Context, w *bufio.Writer, jsonStream io.Reader, open Opener) error {
	up := storage.NewJSONUnpacker(jsonStream)
	fc := fileCopier{w: w, open: open, buf: make([]byte, 1<<20), crc: crc64.New(storage.CRCTable), sum: make([]byte, 0, 8)}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		e, err := up.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading tar-split: %w: %w", ErrCorrupt, err)
		}
		switch e.Type {
		case storage.SegmentType:
			if _, err := w.Write(e.Payload); err != nil {
				return err
			}
		case storage.FileType:
			if e.Size == 0 {
				continue
			}
			if e.Size < 0 {
				return fmt.Errorf("reading tar-split: entry %q has size %d: %w", e.GetName(), e.Size, ErrCorrupt)
			}
			if err := fc.copy(e); err != nil {
				return err
			}
		default:
			return fmt.Errorf("reading tar-split: unknown entry type %d: %w", e.Type, ErrCorrupt)
		}
	}
}

// fileCopier writes layer files into the reassembled tar, reusing its
// buffers across entries.
type fileCopier struct {
	w    io.Writer
	open Opener
	buf  []byte
	crc  hash.Hash64
	sum  []byte
}

// copy writes the file entry e names, checking its size and CRC-64.
func (c *fileCopier) copy(e *storage.Entry) error {
	name := e.GetName()
	f, err := c.open(name)
	if err != nil {
		return fmt.Errorf("opening layer file %q: %w", name, err)
	}
	defer f.Close()
	c.crc.Reset()
	// Copy exactly Size bytes; a shorter or longer file is an integrity failure.
	n, err := io.CopyBuffer(io.MultiWriter(c.w, c.crc), io.LimitReader(f, e.Size), c.buf)
	if err != nil {
		return fmt.Errorf("copying layer file %q: %w", name, err)
	}
	var extra [1]byte
	m, _ := io.ReadFull(f, extra[:])
	if n != e.Size || m != 0 {
		return fmt.Errorf("%w for %s (size differs from %d)", ErrFileIntegrity, name, e.Size)
	}
	c.sum = c.crc.Sum(c.sum[:0])
	if !bytes.Equal(c.sum, e.Payload) {
		return fmt.Errorf("%w for %s", ErrFileIntegrity, name)
	}
	return nil
}
