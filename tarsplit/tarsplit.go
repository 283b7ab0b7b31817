package tarsplit

import (
	"context"
	"encoding/binary"
	"fmt"
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
	a := assembler{w: w, open: open, out: make([]byte, 0, outBufSize)}
	err := a.run(ctx, newUnpacker(jsonStream))
	if ferr := a.flush(); err == nil {
		err = ferr
	}
	return err
}

// outBufSize is the size of the writes to w: headers, padding and file
// data are batched (file data is read straight into the buffer), which
// matters when w is a pipe to another goroutine or process: one hand-off
// per MiB instead of per header.
const outBufSize = 1 << 20

// assembler writes the reassembled tar through one output buffer.
type assembler struct {
	w    io.Writer
	open Opener
	out  []byte // pending output, cap outBufSize
}

func (a *assembler) run(ctx context.Context, up *unpacker) error {
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
			if err := a.write(e.Payload); err != nil {
				return err
			}
		case storage.FileType:
			if e.Size == 0 {
				continue
			}
			if e.Size < 0 {
				return fmt.Errorf("reading tar-split: entry %q has size %d: %w", e.GetName(), e.Size, ErrCorrupt)
			}
			if err := a.copyFile(e); err != nil {
				return err
			}
		default:
			return fmt.Errorf("reading tar-split: unknown entry type %d: %w", e.Type, ErrCorrupt)
		}
	}
}

func (a *assembler) flush() error {
	if len(a.out) == 0 {
		return nil
	}
	_, err := a.w.Write(a.out)
	a.out = a.out[:0]
	return err
}

func (a *assembler) write(p []byte) error {
	if len(p) > cap(a.out)-len(a.out) {
		if err := a.flush(); err != nil {
			return err
		}
		if len(p) > cap(a.out) {
			_, err := a.w.Write(p)
			return err
		}
	}
	a.out = append(a.out, p...)
	return nil
}

// copyFile appends the file entry e names to the output, reading it
// straight into the output buffer, and checks its size and CRC-64.
func (a *assembler) copyFile(e *storage.Entry) error {
	name := e.GetName()
	f, err := a.open(name)
	if err != nil {
		return fmt.Errorf("opening layer file %q: %w", name, err)
	}
	defer f.Close()
	// A file of the LayerDir knows its size from the fstat of its open:
	// no read to probe for the end.
	fr, sized := f.(*fdReader)
	if sized && fr.size != e.Size {
		return fmt.Errorf("%w for %s (size differs from %d)", ErrFileIntegrity, name, e.Size)
	}
	var crc uint64
	left := e.Size
	for left > 0 {
		if len(a.out) == cap(a.out) {
			if err := a.flush(); err != nil {
				return err
			}
		}
		buf := a.out[len(a.out):cap(a.out)]
		if int64(len(buf)) > left {
			buf = buf[:left]
		}
		n, err := f.Read(buf)
		if n > 0 {
			crc = crc64.Update(crc, storage.CRCTable, buf[:n])
			a.out = a.out[:len(a.out)+n]
			left -= int64(n)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("copying layer file %q: %w", name, err)
		}
	}
	if left != 0 {
		return fmt.Errorf("%w for %s (size differs from %d)", ErrFileIntegrity, name, e.Size)
	}
	if !sized {
		// Copy exactly Size bytes; a longer file is an integrity failure.
		var extra [1]byte
		if m, _ := io.ReadFull(f, extra[:]); m != 0 {
			return fmt.Errorf("%w for %s (size differs from %d)", ErrFileIntegrity, name, e.Size)
		}
	}
	if len(e.Payload) != 8 || binary.BigEndian.Uint64(e.Payload) != crc {
		return fmt.Errorf("%w for %s", ErrFileIntegrity, name)
	}
	return nil
}
