package archive

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/vbatts/tar-split/tar/storage"

	"github.com/stowage/stowage/tarsplit"
)

// tsRecorder records tar-split entries in a separate goroutine, so JSON
// and gzip encoding overlap with extraction. The extraction loop appends
// operations (copies of header and padding bytes) to batches that the
// goroutine encodes in order, as the tar-split library's disassembler and
// JSON packer would. The CRC-64 of file payloads is computed
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

// newTSRecorder records into w, which receives the JSON lines of
// tar-split's storage.Entry stream (see appendEntryJSON). Duplicate paths
// are the caller's to refuse (Unpack checks them as it reads).
func newTSRecorder(w io.Writer) *tsRecorder {
	r := &tsRecorder{ch: make(chan *tsBatch, 4), done: make(chan struct{})}
	ch := r.ch
	go func() {
		defer close(r.done)
		var line []byte
		pos := 0
		for b := range ch {
			if r.err == nil {
				line = line[:0]
				for _, op := range b.ops {
					data := b.arena[op.off : op.off+op.n]
					switch op.kind {
					case tsSegment:
						line = appendEntryJSON(line, storage.SegmentType, "", 0, data, pos)
					case tsFile:
						var crc []byte
						if op.size > 0 {
							crc = binary.BigEndian.AppendUint64(make([]byte, 0, 8), op.crc)
						}
						line = appendEntryJSON(line, storage.FileType, op.name, op.size, crc, pos)
					}
					pos++
				}
				_, r.err = w.Write(line)
			}
			b.ops = b.ops[:0]
			b.arena = b.arena[:0]
			tsBatchPool.Put(b)
		}
	}()
	return r
}

// appendEntryJSON appends the line tar-split's JSON packer writes for an
// entry (encoding/json of storage.Entry, with its Position), byte for
// byte, without reflection. A name that is not valid UTF-8 goes to
// name_raw, as the packer does; a nil payload is null.
func appendEntryJSON(dst []byte, typ storage.Type, name string, size int64, payload []byte, pos int) []byte {
	dst = append(dst, `{"type":`...)
	dst = strconv.AppendInt(dst, int64(typ), 10)
	if name != "" {
		if utf8.ValidString(name) {
			dst = append(dst, `,"name":`...)
			dst = appendJSONString(dst, name)
		} else {
			dst = append(dst, `,"name_raw":"`...)
			dst = base64.StdEncoding.AppendEncode(dst, []byte(name))
			dst = append(dst, '"')
		}
	}
	if size != 0 {
		dst = append(dst, `,"size":`...)
		dst = strconv.AppendInt(dst, size, 10)
	}
	if payload == nil {
		dst = append(dst, `,"payload":null`...)
	} else {
		dst = append(dst, `,"payload":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, payload)
		dst = append(dst, '"')
	}
	dst = append(dst, `,"position":`...)
	dst = strconv.AppendInt(dst, int64(pos), 10)
	return append(dst, '}', '\n')
}

// appendJSONString appends s (valid UTF-8) quoted as encoding/json does;
// names needing any escape (rare) take encoding/json itself.
func appendJSONString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, err := json.Marshal(s)
			if err != nil { // cannot happen for a string
				panic(err)
			}
			return append(dst, q...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
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
