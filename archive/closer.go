package archive

import (
	"fmt"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// closeBatch is how many written files the extraction loop hands to the
// closer at once; with closeQueue batches queued, at most
// (closeQueue+2)*closeBatch descriptors are open at a time.
const (
	closeBatch = 64
	closeQueue = 2
)

// closer sets the times of and closes the regular files the extraction
// loop has written, in a goroutine of its own: utimensat and close are
// about a quarter of the loop's system calls, and on two cores they can
// run beside the next files' openat and write. Files reach it fully
// written, owned and chmodded; only their times are left, and those
// belong to the inode, so a later hard link to the file (which sets the
// inode's times itself) must wait for the queue to drain (sync).
type closer struct {
	ch   chan *closeWork
	done chan struct{}
	cur  *closeWork
	mu   sync.Mutex
	err  error // first failure, with the entry's name
}

type closeFile struct {
	fd           int
	name         string // the tar entry's name, for errors
	rel          string
	atime, mtime time.Time
}

type closeWork struct {
	files []closeFile
	ack   chan struct{} // closed once processed; sync's barrier
}

var closeWorkPool = sync.Pool{New: func() any { return &closeWork{files: make([]closeFile, 0, closeBatch)} }}

// closeTimes sets the times of a written file; tests replace it.
var closeTimes = futimens

func newCloser() *closer {
	c := &closer{ch: make(chan *closeWork, closeQueue), done: make(chan struct{})}
	ch := c.ch
	go func() {
		defer close(c.done)
		for w := range ch {
			for _, f := range w.files {
				c.closeOne(f)
			}
			if w.ack != nil {
				close(w.ack)
			}
			w.files = w.files[:0]
			w.ack = nil
			closeWorkPool.Put(w)
		}
	}()
	return c
}

func (c *closer) closeOne(f closeFile) {
	var err error
	if c.failed() == nil {
		ts := [2]unix.Timespec{unix.NsecToTimespec(f.atime.UnixNano()), unix.NsecToTimespec(f.mtime.UnixNano())}
		for {
			err = closeTimes(f.fd, &ts)
			if err != unix.EINTR {
				break
			}
		}
		if err != nil {
			err = fmt.Errorf("setting times: %w", err)
		}
	}
	if cerr := rawClose(f.fd); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		c.mu.Lock()
		if c.err == nil {
			c.err = fmt.Errorf("extracting tar entry %q (%s): %w", f.name, f.rel, err)
		}
		c.mu.Unlock()
	}
}

func (c *closer) failed() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// add queues a written file; it owns fd from now on. It reports an
// earlier file's failure, if any.
func (c *closer) add(fd int, name, rel string, atime, mtime time.Time) error {
	if c.cur == nil {
		c.cur = closeWorkPool.Get().(*closeWork)
	}
	c.cur.files = append(c.cur.files, closeFile{fd: fd, name: name, rel: rel, atime: atime, mtime: mtime})
	if len(c.cur.files) == closeBatch {
		c.ch <- c.cur
		c.cur = nil
	}
	return c.failed()
}

// sync waits until every queued file is done and reports the first
// failure.
func (c *closer) sync() error {
	if c.ch == nil {
		return c.failed()
	}
	w := c.cur
	c.cur = nil
	if w == nil {
		w = closeWorkPool.Get().(*closeWork)
	}
	ack := make(chan struct{})
	w.ack = ack
	c.ch <- w
	<-ack
	return c.failed()
}

// stop finishes the queue (every descriptor is closed) and ends the
// goroutine; safe to call more than once.
func (c *closer) stop() error {
	if c.ch != nil {
		if c.cur != nil {
			c.ch <- c.cur
			c.cur = nil
		}
		close(c.ch)
		c.ch = nil
		<-c.done
	}
	return c.failed()
}
