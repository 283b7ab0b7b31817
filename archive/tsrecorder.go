package archive

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/vbatts/tar-split/tar/storage"

	"github.com/stowage/stowage/tarsplit"
)

// tsRecorder records tar-split entries in a separate goroutine, so JSON
// and gzip encoding overlap with extraction. The extraction loop appends
// operations (copies of header and padding bytes) to batches that the
// goroutine applies in order to the packer, exactly as the tar-split
// library's disassembler would. The CRC-64 of file payloads is computed
// by the extraction loop itself as the data passes: measured on a 250 MB
// layer, copying the payload to the goroutine cost about as much CPU as
// the CRC (slicing-by-8, ~1.6 GB/s) it moved off the loop; the loop now
// uses tarsplit.UpdateCRC64 (several times faster).
type tsRecorder struct {
	ch   chan *tsBatch
	done chan struct{}
	err  error // set by the goroutine; read after done
	cur  *tsBatch
	crc  payloadCRC // of the current file's payload, in the caller's goroutine
}

// payloadCRC is the running CRC-64 of one file's payload, as tar-split
// records it (tarsplit.UpdateCRC64: hash/crc64 with tar-split's table,
// folded with carry-less multiplication where the CPU has it).
type payloadCRC struct{ crc uint64 }

func (c *payloadCRC) Write(p []byte) { c.crc = tarsplit.UpdateCRC64(c.crc, p) }
func (c *payloadCRC) Sum64() uint64  { return c.crc }
func (c *payloadCRC) Reset()         { c.crc = 0 }

type tsOpKind uint8

const (
	tsSegment tsOpKind = iota
	tsFile
)

type tsOp struct {
	kind   tsOpKind
	off, n int
	name   string
	size   int64
	crc    uint64 // tsFile with size > 0
}

type tsBatch struct {
	ops   []tsOp
	arena []byte
}

const tsBatchBytes = 1 << 20

var tsBatchPool = sync.Pool{New: func() any {
	return &tsBatch{ops: make([]tsOp, 0, 256), arena: make([]byte, 0, 256<<10)}
}}

func newTSRecorder(p storage.Packer) *tsRecorder {
	r := &tsRecorder{ch: make(chan *tsBatch, 4), done: make(chan struct{})}
	ch := r.ch
	go func() {
		defer close(r.done)
		for b := range ch {
			for _, op := range b.ops {
				if r.err != nil {
					break
				}
				data := b.arena[op.off : op.off+op.n]
				switch op.kind {
				case tsSegment:
					_, r.err = p.AddEntry(storage.Entry{Type: storage.SegmentType, Payload: data})
				case tsFile:
					e := storage.Entry{Type: storage.FileType, Size: op.size}
					if op.size > 0 {
						e.Payload = binary.BigEndian.AppendUint64(nil, op.crc)
					}
					e.SetName(op.name)
					_, r.err = p.AddEntry(e)
					if errors.Is(r.err, storage.ErrDuplicatePath) {
						r.err = fmt.Errorf("tar entry %q: %w", op.name, ErrDuplicatePath)
					}
				}
			}
			b.ops = b.ops[:0]
			b.arena = b.arena[:0]
			tsBatchPool.Put(b)
		}
	}()
	return r
}

func (r *tsRecorder) add(kind tsOpKind, data []byte, name string, size int64, crc uint64) {
	if r.cur == nil {
		r.cur = tsBatchPool.Get().(*tsBatch)
	}
	b := r.cur
	off := len(b.arena)
	b.arena = append(b.arena, data...)
	b.ops = append(b.ops, tsOp{kind: kind, off: off, n: len(data), name: name, size: size, crc: crc})
	if len(b.arena) >= tsBatchBytes || len(b.ops) == cap(b.ops) {
		r.flush()
	}
}

func (r *tsRecorder) flush() {
	if r.cur != nil && len(r.cur.ops) > 0 {
		r.ch <- r.cur
		r.cur = nil
	}
}

func (r *tsRecorder) segment(b []byte) {
	if len(b) > 0 {
		r.add(tsSegment, b, "", 0, 0)
	}
}

// data feeds payload bytes of the current file to its CRC-64.
func (r *tsRecorder) data(b []byte) { r.crc.Write(b) }

// file records the current file's entry and starts the next file's CRC.
func (r *tsRecorder) file(name string, size int64) {
	r.add(tsFile, nil, name, size, r.crc.Sum64())
	r.crc.Reset()
}

// close waits for everything recorded so far and reports the first error.
// Safe to call more than once.
func (r *tsRecorder) close() error {
	if r.ch != nil {
		r.flush()
		close(r.ch)
		r.ch = nil
		<-r.done
	}
	if r.err != nil {
		return fmt.Errorf("recording tar-split: %w", r.err)
	}
	return nil
}
