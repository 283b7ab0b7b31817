package tarsplit

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/vbatts/tar-split/tar/storage"
)

// Reassembly runs in two goroutines joined by a ring of chunkCount output
// buffers: the caller's goroutine decodes the tar-split entries, opens the
// layer files and reads them (and copies headers and padding) straight
// into a chunk; a writer goroutine computes the CRC-64 of the file data in
// each full chunk, checks it at each file's end and writes the chunk to w.
// The system calls of the one overlap the CRC and the writes of the other.
// w is only ever called from the writer goroutine, and not after
// reassemble returns.
const (
	chunkSize  = 1 << 20 // also the size of the writes to w
	chunkCount = 3
)

// chunk is a run of output bytes and the file data within it.
type chunk struct {
	buf   []byte
	files []fileSpan
}

// fileSpan is (part of) one file's data in a chunk: buf[start:end].
type fileSpan struct {
	start, end int
	seq        int // file number in the stream: spans of a file share it
	last       bool
	name       string // set on the last span
	want       uint64 // CRC-64 recorded in the tar-split, on the last span
	wantOK     bool   // the recorded payload is 8 bytes long
}

type assembler struct {
	open Opener
	cur  *chunk
	seq  int
	free chan *chunk   // empty chunks for the reader
	full chan *chunk   // filled chunks for the writer (never blocks: capacity chunkCount)
	done chan struct{} // closed when the writer returned
	werr error         // the writer's error, read after done
}

func reassemble(ctx context.Context, w io.Writer, up *unpacker, open Opener) error {
	a := &assembler{
		open: open,
		free: make(chan *chunk, chunkCount),
		full: make(chan *chunk, chunkCount),
		done: make(chan struct{}),
	}
	for i := 0; i < chunkCount-1; i++ {
		a.free <- &chunk{buf: make([]byte, 0, chunkSize)}
	}
	a.cur = &chunk{buf: make([]byte, 0, chunkSize)}
	go a.writer(w)
	err := a.run(ctx, up)
	if len(a.cur.buf) > 0 {
		a.full <- a.cur
	}
	a.cur = nil
	close(a.full)
	<-a.done
	// The writer's error is about an earlier part of the stream.
	if a.werr != nil {
		return a.werr
	}
	return err
}

// writer checks and writes full chunks until a.full is closed or an error.
func (a *assembler) writer(w io.Writer) {
	defer close(a.done)
	var crc uint64
	for c := range a.full {
		for _, f := range c.files {
			crc = UpdateCRC64(crc, c.buf[f.start:f.end])
			if !f.last {
				continue
			}
			if !f.wantOK || crc != f.want {
				// What precedes the end of the damaged file is written,
				// as the tar-split library does.
				if _, err := w.Write(c.buf[:f.end]); err != nil {
					a.werr = err
					return
				}
				a.werr = fmt.Errorf("%w for %s", ErrFileIntegrity, f.name)
				return
			}
			crc = 0
		}
		if _, err := w.Write(c.buf); err != nil {
			a.werr = err
			return
		}
		c.buf, c.files = c.buf[:0], c.files[:0]
		a.free <- c
	}
}

// next hands the current chunk to the writer and takes an empty one.
func (a *assembler) next() error {
	a.full <- a.cur
	a.cur = nil
	select {
	case c := <-a.free:
		a.cur = c
		return nil
	case <-a.done:
		// The writer failed; reassemble returns its error.
		a.cur = &chunk{}
		return errWriterStopped
	}
}

var errWriterStopped = fmt.Errorf("tar-split reassembly: writer stopped")

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

// write appends p to the output.
func (a *assembler) write(p []byte) error {
	for len(p) > 0 {
		if len(a.cur.buf) == cap(a.cur.buf) {
			if err := a.next(); err != nil {
				return err
			}
		}
		n := copy(a.cur.buf[len(a.cur.buf):cap(a.cur.buf)], p)
		a.cur.buf = a.cur.buf[:len(a.cur.buf)+n]
		p = p[n:]
	}
	return nil
}

// copyFile appends the file entry e names to the output, reading it
// straight into the chunks, and checks its size; the writer checks its
// CRC-64.
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
	a.seq++
	left := e.Size
	for left > 0 {
		c := a.cur
		if len(c.buf) == cap(c.buf) {
			if err := a.next(); err != nil {
				return err
			}
			c = a.cur
		}
		start := len(c.buf)
		buf := c.buf[start:cap(c.buf)]
		if int64(len(buf)) > left {
			buf = buf[:left]
		}
		n, err := f.Read(buf)
		if n > 0 {
			c.buf = c.buf[:start+n]
			left -= int64(n)
			if k := len(c.files) - 1; k >= 0 && c.files[k].seq == a.seq && c.files[k].end == start {
				c.files[k].end += n
			} else {
				c.files = append(c.files, fileSpan{start: start, end: start + n, seq: a.seq})
			}
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
	last := &a.cur.files[len(a.cur.files)-1]
	last.last, last.name = true, name
	if len(e.Payload) == 8 {
		last.want, last.wantOK = binary.BigEndian.Uint64(e.Payload), true
	}
	return nil
}
