package archive

import (
	"crypto/sha256"
	"hash"
	"io"
	"sync"

	"github.com/opencontainers/go-digest"
)

// prefetchBufs buffers of prefetchBufSize bytes circulate between the
// reading goroutine and the consumer: at most that much input is read
// ahead (memory stays bounded).
const (
	prefetchBufSize = 1 << 20
	prefetchBufs    = 3
)

type prefetchBuf struct {
	data []byte
	n    int
	err  error
}

// prefetcher reads its source in a goroutine, counting and (optionally)
// hashing every byte there, into buffers the consumer's Read copies out
// of. The layer's input is thus read and hashed beside extraction, without
// the copy a tee into a hashing goroutine costs.
type prefetcher struct {
	full  chan *prefetchBuf
	free  chan *prefetchBuf
	quit  chan struct{}
	done  chan struct{}
	cur   *prefetchBuf
	off   int
	err   error // sticky, once the source's error was reached
	h     hash.Hash
	count int64 // bytes read from the source; read after done
	once  sync.Once
}

func newPrefetcher(src io.Reader, hashIt bool) *prefetcher {
	p := &prefetcher{
		full: make(chan *prefetchBuf, prefetchBufs),
		free: make(chan *prefetchBuf, prefetchBufs),
		quit: make(chan struct{}),
		done: make(chan struct{}),
	}
	if hashIt {
		p.h = sha256.New()
	}
	for range prefetchBufs {
		p.free <- &prefetchBuf{data: make([]byte, prefetchBufSize)}
	}
	go p.fill(src)
	return p
}

func (p *prefetcher) fill(src io.Reader) {
	defer close(p.done)
	for {
		var b *prefetchBuf
		select {
		case b = <-p.free:
		case <-p.quit:
			return
		}
		b.n, b.err = io.ReadAtLeast(src, b.data, len(b.data))
		if b.err == io.ErrUnexpectedEOF {
			b.err = io.EOF
		}
		if b.n > 0 {
			p.count += int64(b.n)
			if p.h != nil {
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

func (p *prefetcher) Read(out []byte) (int, error) {
	for {
		if p.cur != nil && p.off < p.cur.n {
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
			p.free <- p.cur
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

// stop ends the reading goroutine, waiting for a read in progress. Safe
// to call more than once.
func (p *prefetcher) stop() {
	p.once.Do(func() { close(p.quit) })
	<-p.done
}

// Sum waits for the goroutine (which has ended after the source's EOF)
// and returns the size and digest of everything read.
func (p *prefetcher) Sum() (int64, digest.Digest) {
	p.stop()
	if p.h == nil {
		return p.count, ""
	}
	return p.count, digest.NewDigest(digest.SHA256, p.h)
}
