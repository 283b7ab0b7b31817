package archive

import (
	"crypto/sha256"
	"hash"
	"sync"

	"github.com/opencontainers/go-digest"
)

// hashChunk and hashQueue bound the memory a lagging hasher holds
// (hashQueue+2 chunks): a layer's import must stay well under 64 MiB of
// RSS even with both digests computed on a CPU-starved machine.
const (
	hashChunk = 1 << 20
	hashQueue = 6
)

var chunkPool = sync.Pool{New: func() any { b := make([]byte, 0, hashChunk); return &b }}

// asyncHasher is an io.Writer that hashes what is written to it in a
// separate goroutine, so SHA-256 (slow on CPUs without SHA instructions)
// overlaps with decompression and extraction. Writes are copied into 1 MiB
// chunks handed over a bounded channel.
type asyncHasher struct {
	h    hash.Hash
	ch   chan *[]byte
	cur  *[]byte
	done chan struct{}
}

func newAsyncHasher() *asyncHasher {
	a := &asyncHasher{h: sha256.New(), ch: make(chan *[]byte, hashQueue), done: make(chan struct{})}
	ch := a.ch
	go func() {
		defer close(a.done)
		for b := range ch {
			a.h.Write(*b)
			*b = (*b)[:0]
			chunkPool.Put(b)
		}
	}()
	return a
}

func (a *asyncHasher) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if a.cur == nil {
			a.cur = chunkPool.Get().(*[]byte)
		}
		b := *a.cur
		k := copy(b[len(b):cap(b)], p)
		*a.cur = b[:len(b)+k]
		p = p[k:]
		if len(*a.cur) == cap(*a.cur) {
			a.ch <- a.cur
			a.cur = nil
		}
	}
	return n, nil
}

// Sum flushes, waits for the hashing goroutine and returns the digest.
// The hasher must not be written to afterwards.
func (a *asyncHasher) Sum() digest.Digest {
	a.stop()
	return digest.NewDigest(digest.SHA256, a.h)
}

// stop ends the goroutine; safe to call more than once.
func (a *asyncHasher) stop() {
	if a.ch == nil {
		return
	}
	if a.cur != nil && len(*a.cur) > 0 {
		a.ch <- a.cur
		a.cur = nil
	}
	close(a.ch)
	a.ch = nil
	<-a.done
}

// countWriter counts bytes written.
type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }
