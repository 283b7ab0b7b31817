package archive

import (
	"io"
	"os"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The extraction loop's per-file system calls (create, write, close, set
// times) go through syscall.RawSyscall: the goroutine keeps its P instead of
// announcing a blocking call. With the announced calls (unix.Openat,
// unix.Write, ...) each call that lasts over 20 µs, as most do when several
// imports share the CPUs, lets the runtime's sysmon hand the P to another
// thread, and sysmon keeps polling every 20 µs: a single 8k-file import
// made 7.5k nanosleep calls and 1k futex wakes, and 8 parallel imports
// spent 5-8 % of the machine's CPU time on that (measured on the 2-core
// VM, where a context switch is expensive). Raw calls are safe here
// because each works on a regular file this process has just created with
// O_EXCL in its own staging tree, so none waits for anything in this
// process: at worst a call waits for the disk (journal, writeback
// throttling), holding up only this P's other goroutines meanwhile. The
// input is read raw only when it is a regular file (rawFileReader): a pipe
// may wait for a writer in this very process.

// rawOpenat is openat(2) without the scheduler's blocking-call hooks.
func rawOpenat(dirfd int, path string, flags int, mode uint32) (int, error) {
	p, err := unix.BytePtrFromString(path)
	if err != nil {
		return -1, err
	}
	for {
		r, _, e := syscall.RawSyscall6(unix.SYS_OPENAT, uintptr(dirfd), uintptr(unsafe.Pointer(p)), uintptr(flags), uintptr(mode), 0, 0)
		runtime.KeepAlive(p)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return -1, e
		}
		return int(r), nil
	}
}

// rawWrite is write(2) without the scheduler's hooks; EINTR is retried.
func rawWrite(fd int, b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	for {
		r, _, e := syscall.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		runtime.KeepAlive(b)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return 0, e
		}
		return int(r), nil
	}
}

// rawClose is close(2) without the scheduler's hooks (never retried: the
// descriptor is gone even when close reports EINTR).
func rawClose(fd int) error {
	if _, _, e := syscall.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0); e != 0 {
		return e
	}
	return nil
}

// futimens is utimensat(2) on fd itself (a nil path), without the
// scheduler's hooks.
func futimens(fd int, ts *[2]unix.Timespec) error {
	for {
		_, _, e := syscall.RawSyscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(ts)), 0, 0, 0)
		runtime.KeepAlive(ts)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return e
		}
		return nil
	}
}

// rawFileReader reads a regular file with raw read(2) calls (see above):
// a read of a regular file waits at most for the disk, never for another
// goroutine. Used for the layer input when it is a regular file, whose
// 1 MiB reads otherwise keep sysmon polling.
type rawFileReader struct {
	f  *os.File
	fd uintptr
}

// regularFileReader returns r read through raw calls when it is a regular
// *os.File, else r.
func regularFileReader(r io.Reader) io.Reader {
	f, ok := r.(*os.File)
	if !ok {
		return r
	}
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return r
	}
	return rawFileReader{f: f, fd: f.Fd()}
}

func (r rawFileReader) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	for {
		n, _, e := syscall.RawSyscall(unix.SYS_READ, r.fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		runtime.KeepAlive(b)
		runtime.KeepAlive(r.f)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return 0, &os.PathError{Op: "read", Path: r.f.Name(), Err: e}
		}
		if n == 0 {
			return 0, io.EOF
		}
		return int(n), nil
	}
}
