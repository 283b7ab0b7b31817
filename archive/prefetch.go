package archive

import (
	"crypto/sha256"
	"hash"
	"io"
	"sync"
	"sync/atomic"

	"github.com/opencontainers/go-digest"
)

// prefetchBufSize is the size of the buffers circulating between a
// prefetcher's reading goroutine and its consumer; at most prefetchBufs
// (or decodeBufs) of them are read ahead, so memory stays bounded.
const (
	prefetchBufSize = 1 << 20
	prefetchBufs    = 3
	decodeBufs      = 6
)

type prefetchBuf struct {
	data []byte
	n    int
	err  error
	refs atomic.Int32 // consumers still using data (the reader, the hasher)
}

// hashMode says whether and where a prefetcher hashes what it reads.
type hashMode uint8

const (
	hashNone hashMode = iota
	// hashInline hashes in the reading goroutine: for raw input, whose
	// reads cost little beside the hash.
	hashInline
	// hashAsync hashes in a goroutine of its own that shares the
	// buffers with the consumer (no copy): for decompressed input, whose
	// decoding is itself CPU work the hash should not queue behind.
	hashAsync
)

// prefetcher reads its source in a goroutine, counting and (optionally)
// hashing every byte, into buffers the consumer's Read copies out of.
// Unpack uses one for the layer's input and, for a compressed layer, one
// over the decompressor, so inflating runs beside the extraction's system
// calls instead of between them.
type prefetcher struct {
	full     chan *prefetchBuf
	free     chan *prefetchBuf
	hashq    chan *prefetchBuf // hashAsync only; closed by fill
	quit     chan struct{}
	done     chan struct{}
	hashDone chan struct{}
	cur      *prefetchBuf
	off      int
	err      error // sticky, once the source's error was reached
	h        hash.Hash
	count    int64 // bytes read from the source; read after done
	once     sync.Once

	// borrow makes Read lend its buffer instead of copying: it returns n
	// without writing out, and last is the n bytes read, valid until the
	// next Read. Unpack's payload loop sets it around tar.Reader.Read,
	// which passes payload reads straight to its source: the payload is
	// written to the file from the prefetched buffer, not copied first.
	borrow bool
	last   []byte
}

func newPrefetcher(src io.Reader, hashIt bool) *prefetcher {
	mode := hashNone
	if hashIt {
		mode = hashInline
	}
	return newPrefetcherN(src, mode, prefetchBufs)
}

func newPrefetcherN(src io.Reader, mode hashMode, bufs int) *prefetcher {
	p := &prefetcher{
		full:     make(chan *prefetchBuf, bufs),
		free:     make(chan *prefetchBuf, bufs),
		quit:     make(chan struct{}),
		done:     make(chan struct{}),
		hashDone: make(chan struct{}),
	}
	if mode != hashNone {
		p.h = sha256.New()
	}
	for range bufs {
		p.free <- &prefetchBuf{data: make([]byte, prefetchBufSize)}
	}
	if mode == hashAsync {
		p.hashq = make(chan *prefetchBuf, bufs)
		go p.hash()
	} else {
		close(p.hashDone)
	}
	go p.fill(src)
	return p
}

// release hands b back to fill once neither the consumer nor the hasher
// uses it. free has room for every buffer, so this never blocks.
func (p *prefetcher) release(b *prefetchBuf) {
	if b.refs.Add(-1) == 0 {
		p.free <- b
	}
}

func (p *prefetcher) hash() {
	defer close(p.hashDone)
	for b := range p.hashq {
		p.h.Write(b.data[:b.n])
		p.release(b)
	}
}

func (p *prefetcher) fill(src io.Reader) {
	defer close(p.done)
	if p.hashq != nil {
		defer close(p.hashq)
	}
	for {
		var b *prefetchBuf
		select {
		case b = <-p.free:
		case <-p.quit:
			return
		}
		b.n, b.err = readFull(src, b.data)
		b.refs.Store(1)
		if b.n > 0 {
			p.count += int64(b.n)
			switch {
			case p.hashq != nil:
				b.refs.Store(2)
				p.hashq <- b // room for every buffer: never blocks
			case p.h != nil:
				p.h.Write(b.data[:b.n])
			}
		}
		select {
		case p.full <- b:
		case <-p.quit:
			return
		}
		if b.err != nil {
			return
		}
	}
}

// readFull reads until buf is full or src fails, returning src's error
// as is (io.ReadFull would turn a decompressor's io.ErrUnexpectedEOF,
// a truncated stream, into a clean end when the buffer is partly full).
func readFull(src io.Reader, buf []byte) (n int, err error) {
	for n < len(buf) && err == nil {
		var k int
		k, err = src.Read(buf[n:])
		n += k
	}
	return n, err
}

func (p *prefetcher) Read(out []byte) (int, error) {
	for {
		if p.cur != nil && p.off < p.cur.n {
			if p.borrow {
				k := min(len(out), p.cur.n-p.off)
				p.last = p.cur.data[p.off : p.off+k]
				p.off += k
				return k, nil
			}
			k := copy(out, p.cur.data[p.off:p.cur.n])
			p.off += k
			return k, nil
		}
		if p.err != nil {
			return 0, p.err
		}
		if p.cur != nil {
			if p.cur.err != nil {
				p.err = p.cur.err
				continue
			}
			p.release(p.cur)
		}
		p.cur, p.off = <-p.full, 0
	}
}

// Peek returns the next n unread bytes without consuming them; fewer,
// with the source's error, when the input ends first. n must not exceed
// prefetchBufSize.
func (p *prefetcher) Peek(n int) ([]byte, error) {
	if p.cur == nil || p.off == p.cur.n {
		if _, err := p.Read(nil); err != nil {
			return nil, err
		}
	}
	if p.cur == nil {
		return nil, p.err
	}
	avail := p.cur.data[p.off:p.cur.n]
	if len(avail) >= n {
		return avail[:n], nil
	}
	if p.cur.err != nil {
		return avail, p.cur.err
	}
	// A buffer is filled completely unless the input ended in it.
	return avail, io.ErrShortBuffer
}

// stop ends the reading goroutine, waiting for a read in progress, and
// the hashing one. Safe to call more than once.
func (p *prefetcher) stop() {
	p.once.Do(func() { close(p.quit) })
	<-p.done
	<-p.hashDone
}

// Sum waits for the goroutines (which have ended after the source's EOF)
// and returns the size and digest of everything read.
func (p *prefetcher) Sum() (int64, digest.Digest) {
	p.stop()
	if p.h == nil {
		return p.count, ""
	}
	return p.count, digest.NewDigest(digest.SHA256, p.h)
}
