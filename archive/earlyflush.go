package archive

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// earlyFlushBytes is how much file content Unpack writes between two
// early flushes (UnpackOptions.FlushEarly). Each syncfs also commits the
// journal and flushes the device cache, so flushing too often costs:
// measured under load on the 2-core VM (loop-mounted ext4, durable
// import + sync -f, 3 interleaved rounds), 32 MiB was the slowest of 32,
// 64 and 128 MiB on the 1 GiB / 8-file layer and all three were alike
// on the 250 MB / 17k-file one; without early flushes most rounds of
// both were slower (4 of 4 on the 250 MB layer).
var earlyFlushBytes int64 = 64 << 20

// earlySyncfs is syncfs(2); tests replace it.
var earlySyncfs = unix.Syncfs

// earlyFlusher runs syncfs(2) on the layer's file system in a goroutine
// whenever another earlyFlushBytes of file content was written and the
// previous flush is done, so the disk writes overlap with extraction and
// the durable flush after Unpack finds little left to do. It is only a
// head start: the caller's flush still decides durability. syncfs marks
// a writeback error as seen, so a later syncfs would not report it again:
// the first error is kept and fails the unpack.
type earlyFlusher struct {
	fd      int
	kick    chan struct{}
	done    chan struct{}
	pending int64 // bytes written since the last kick
	err     error // set by the goroutine; read after done
}

func newEarlyFlusher(dest string) (*earlyFlusher, error) {
	fd, err := unix.Open(dest, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dest, Err: err}
	}
	f := &earlyFlusher{fd: fd, kick: make(chan struct{}, 1), done: make(chan struct{})}
	kick := f.kick // stop sets the field to nil
	go func() {
		defer close(f.done)
		for range kick {
			if f.err != nil {
				continue
			}
			for {
				err := earlySyncfs(f.fd)
				if err != unix.EINTR {
					f.err = err
					break
				}
			}
		}
	}()
	return f, nil
}

// wrote accounts n bytes of file content and starts a flush when due and
// none is running (or queued).
func (f *earlyFlusher) wrote(n int) {
	f.pending += int64(n)
	if f.pending < earlyFlushBytes {
		return
	}
	select {
	case f.kick <- struct{}{}:
		f.pending = 0
	default: // a flush is queued; it will cover these bytes too
	}
}

// stop waits for a running flush and reports the first error. Safe to
// call more than once.
func (f *earlyFlusher) stop() error {
	if f.kick != nil {
		close(f.kick)
		f.kick = nil
		<-f.done
		unix.Close(f.fd)
	}
	if f.err != nil {
		return fmt.Errorf("flushing written data: syncfs: %w", f.err)
	}
	return nil
}
