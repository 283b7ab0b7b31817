package archive

import (
	"errors"
	"fmt"
	"hash/crc64"
	"sync"

	"github.com/vbatts/tar-split/tar/storage"
)

// tsRecorder records tar-split entries in a separate goroutine, so the
// CRC-64 of file payloads, JSON and gzip encoding overlap with extraction.
// The extraction loop appends operations (copies of the bytes) to batches
// that the goroutine applies in order to the packer, exactly as the
// tar-split library's disassembler would.
type tsRecorder struct {
	ch   chan *tsBatch
	done chan struct{}
	err  error // set by the goroutine; read after done
	cur  *tsBatch
}

type tsOpKind uint8

const (
	tsSegment tsOpKind = iota
	tsData
	tsFile
)

type tsOp struct {
	kind   tsOpKind
	off, n int
	name   string
	size   int64
}

type tsBatch struct {
	ops   []tsOp
	arena []byte
}

const tsBatchBytes = 1 << 20

var tsBatchPool = sync.Pool{New: func() any {
	return &tsBatch{ops: make([]tsOp, 0, 256), arena: make([]byte, 0, 2*tsBatchBytes)}
}}

func newTSRecorder(p storage.Packer) *tsRecorder {
	r := &tsRecorder{ch: make(chan *tsBatch, 8), done: make(chan struct{})}
	ch := r.ch
	go func() {
		defer close(r.done)
		crc := crc64.New(storage.CRCTable)
		sum := make([]byte, 0, 8)
		for b := range ch {
			for _, op := range b.ops {
				if r.err != nil {
					break
				}
				data := b.arena[op.off : op.off+op.n]
				switch op.kind {
				case tsSegment:
					_, r.err = p.AddEntry(storage.Entry{Type: storage.SegmentType, Payload: data})
				case tsData:
					crc.Write(data)
				case tsFile:
					e := storage.Entry{Type: storage.FileType, Size: op.size}
					if op.size > 0 {
						e.Payload = crc.Sum(sum[:0])
					}
					e.SetName(op.name)
					_, r.err = p.AddEntry(e)
					crc.Reset()
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

func (r *tsRecorder) add(kind tsOpKind, data []byte, name string, size int64) {
	if r.cur == nil {
		r.cur = tsBatchPool.Get().(*tsBatch)
	}
	b := r.cur
	off := len(b.arena)
	b.arena = append(b.arena, data...)
	b.ops = append(b.ops, tsOp{kind: kind, off: off, n: len(data), name: name, size: size})
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
		r.add(tsSegment, b, "", 0)
	}
}

func (r *tsRecorder) data(b []byte) { r.add(tsData, b, "", 0) }

func (r *tsRecorder) file(name string, size int64) { r.add(tsFile, nil, name, size) }

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
